"""Limit/offset pagination with the ALX envelope: limit, offset, total_count, filtered_count."""

from __future__ import annotations

from typing import Any

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response


class CountingLimitOffsetPagination(LimitOffsetPagination):
    default_limit = 20
    max_limit = 1000

    def paginate_queryset(
        self, queryset: Any, request: Request, view: Any = None
    ) -> list[Any] | None:
        # total_count: everything the caller may see, before the query's filters.
        self.total_count = view.get_queryset().count() if view is not None else None
        return super().paginate_queryset(queryset, request, view)

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
