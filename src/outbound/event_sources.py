"""Which way in a request came — which API shape, or the console — so that every event it
records says so (``Event.source``) without any caller passing it.

:class:`EventSourceMiddleware` sets the source (:func:`outbound.core.events.set_source`) once
the URL is resolved, from the view that will answer: a view of a dialect package
(``outbound.dialects.<name>``) is that vendor's shape, a console view the console, and under
``/api/`` the path tells ALX's resources (:data:`ALX_RESOURCES`, the paths the ALX seed
documents or names) from Outbound's own (``native``: messages, API keys, users and roles,
events, webhooks, …). Outside a request nothing sets it and events record ``cli``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from contextvars import Token
from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponseBase

from outbound import api_errors
from outbound.core.events import reset_source, set_source
from outbound.core.models import EventSource

# The resources of the ALX seed (/api/ paths, without the prefix): the ones it documents
# (SMTP settings, integrations) and the ones its documents name and link to (authentication
# objects, object classes and their fields, users' autocomplete and permissions, the JWT it
# authenticates with). Everything else under /api/ is Outbound's own.
ALX_RESOURCES: tuple[str, ...] = (
    "administration/smtp-settings/",
    "integrations/",
    "authentication-objects/",
    "object-classes/",
    "users/autocomplete/",
    "users/permissions/",
    "auth/token/",
)

_TOKEN = "_outbound_event_source"


def api_source(path: str) -> str:
    """``alx`` or ``native`` for ``path`` below ``/api/`` (e.g. ``integrations/…``)."""
    if any(path.startswith(r) or f"{path}/" == r for r in ALX_RESOURCES):
        return EventSource.ALX
    return EventSource.NATIVE


def request_source(request: HttpRequest, view: Callable[..., Any]) -> str:
    """The source of the events ``view`` records for ``request``; ``""``: none we can tell."""
    parts = (getattr(view, "__module__", None) or "").split(".")
    if parts[:2] == ["outbound", "dialects"] and len(parts) > 2:
        name = parts[2]
        return name if name in EventSource.values else ""
    if parts[:2] == ["outbound", "console"]:
        return EventSource.CONSOLE
    shape = api_errors.shape_of(request)
    if shape is not None and shape is api_errors.SHAPES[0]:  # /api/: ALX and Outbound's own
        return api_source(request.path_info[len(shape.prefix) + 2 :])
    return ""


def _within(source: str, chunks: Iterable[Any]) -> Iterator[Any]:
    """``chunks`` produced with ``source`` set: a streamed answer runs after the view."""
    iterator = iter(chunks)
    while True:
        token = set_source(source)
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        finally:
            reset_source(token)
        yield chunk


class EventSourceMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        try:
            response = self.get_response(request)
        finally:
            set_by_view: tuple[str, Token[str]] | None = request.__dict__.pop(_TOKEN, None)
            if set_by_view is not None:
                with suppress(ValueError):  # set in another context (an async view's thread)
                    reset_source(set_by_view[1])
        if (
            set_by_view is not None
            and response.streaming
            and not isinstance(response, FileResponse)
            and not getattr(response, "is_async", False)
        ):
            response.streaming_content = _within(set_by_view[0], response.streaming_content)  # type: ignore[attr-defined]
        return response

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> None:
        # Whatever the view records is this request's, never ``cli``: "" (unknown) for a view
        # this module cannot place.
        source = request_source(request, view)
        setattr(request, _TOKEN, (source, set_source(source)))
