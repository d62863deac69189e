"""Limit/offset pagination with the ALX envelope: limit, offset, total_count, filtered_count.

``limit`` and ``offset`` are read by :func:`limit_offset`, the one place that parses them for
every list (and every autocomplete): a malformed value is a 400 naming the parameter in DRF's
words, never silently replaced by the default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

# DRF's IntegerField messages, so a bad page parameter reads like a bad integer field.
INVALID_INTEGER = "A valid integer is required."
MIN_VALUE = "Ensure this value is greater than or equal to {limit_value}."
MAX_VALUE = "Ensure this value is less than or equal to {limit_value}."
# No database offsets beyond a signed 64-bit integer.
MAX_OFFSET = 2**63 - 1

P = TypeVar("P")

LIMIT = "limit"
OFFSET = "offset"


def _parse(raw: str, *, minimum: int, maximum: int) -> tuple[int | None, str | None]:
    """``(value, None)`` or ``(None, message)``. Only ASCII digits: ``int()`` would also take
    ``" 5"``, ``"+5"``, ``"1_000"`` and other scripts' digits."""
    if not raw.isascii() or not raw.isdigit():
        if raw.startswith("-") and raw[1:].isascii() and raw[1:].isdigit():
            return None, MIN_VALUE.format(limit_value=minimum)
        return None, INVALID_INTEGER
    if len(raw) > len(str(maximum)) or int(raw) > maximum:
        return None, MAX_VALUE.format(limit_value=maximum)
    value = int(raw)
    if value < minimum:
        return None, MIN_VALUE.format(limit_value=minimum)
    return value, None


def limit_offset(request: Request, *, default_limit: int, max_limit: int) -> tuple[int, int]:
    """``(limit, offset)`` from the query string. Absent or empty means the default (``limit``
    ``default_limit``, ``offset`` 0); a limit above ``max_limit`` is served as ``max_limit``
    (the answer's ``limit`` says so); anything else that is not a whole number in range is a
    400 ``{"limit": [...]}`` / ``{"offset": [...]}``."""
    errors: dict[str, list[str]] = {}
    limit, offset = default_limit, 0
    raw_limit = request.query_params.get(LIMIT, "")
    if raw_limit != "":
        value, error = _parse(raw_limit, minimum=1, maximum=MAX_OFFSET)
        if error:
            errors[LIMIT] = [error]
        else:
            limit = min(value or default_limit, max_limit)
    raw_offset = request.query_params.get(OFFSET, "")
    if raw_offset != "":
        value, error = _parse(raw_offset, minimum=0, maximum=MAX_OFFSET)
        if error:
            errors[OFFSET] = [error]
        else:
            offset = value or 0
    if errors:
        raise ValidationError(errors)
    return limit, offset


def schema_parameters(*, default_limit: int, max_limit: int) -> list[dict[str, Any]]:
    """The OpenAPI description of ``limit`` and ``offset`` as :func:`limit_offset` reads them."""
    return [
        {
            "name": LIMIT,
            "required": False,
            "in": "query",
            "description": f"Number of results to return (default {default_limit}; "
            f"more than {max_limit} returns {max_limit}).",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_OFFSET},
        },
        {
            "name": OFFSET,
            "required": False,
            "in": "query",
            "description": "The index of the first result to return (default 0).",
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
        },
    ]


class CountingLimitOffsetPagination(LimitOffsetPagination):
    default_limit = 20
    max_limit = 1000

    def paginate_queryset(
        self, queryset: Any, request: Request, view: Any = None
    ) -> list[Any] | None:
        # Parsed before anything is counted: a bad parameter costs no query.
        self._requested = limit_offset(
            request, default_limit=self.default_limit, max_limit=self.max_limit
        )
        # total_count: everything the caller may see, before the query's filters.
        self.total_count = view.get_queryset().count() if view is not None else None
        return super().paginate_queryset(queryset, request, view)

    def paginate_counted(
        self, request: Request, fetch: Callable[[int, int], tuple[P, int, int]]
    ) -> P:
        """A page and both counts from one call, ``fetch(offset, limit)`` -> ``(page,
        total_count, filtered_count)`` (e.g. one query that counts as it reads); ``page`` is
        returned as it is (nothing past the end, like :meth:`paginate_queryset`). The
        envelope and links are those of :meth:`paginate_queryset`."""
        self._requested = limit_offset(
            request, default_limit=self.default_limit, max_limit=self.max_limit
        )
        self.request = request
        self.limit, self.offset = self._requested
        page, self.total_count, self.count = fetch(self.offset, self.limit)
        if self.count > self.limit and self.template is not None:
            self.display_page_controls = True
        return page

    def get_limit(self, request: Request) -> int:
        return self._requested[0]

    def get_offset(self, request: Request) -> int:
        return self._requested[1]

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return schema_parameters(default_limit=self.default_limit, max_limit=self.max_limit)

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {
                "limit": self.limit,
                "offset": self.offset,
                "total_count": self.total_count if self.total_count is not None else self.count,
                "filtered_count": self.count,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["limit", "offset", "total_count", "filtered_count", "results"],
            "properties": {
                "limit": {"type": "integer"},
                "offset": {"type": "integer"},
                "total_count": {"type": "integer"},
                "filtered_count": {"type": "integer"},
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }
