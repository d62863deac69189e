"""What Django itself answers under an API prefix — no route, an unreadable request, a crash,
the database gone — in that prefix's own error body instead of Django's HTML pages.

One table (:data:`SHAPES`) names each API shape's prefix and its one exception handler; the
root URLconf mounts a catch-all per prefix after the shape's own routes and points Django's
``handler400/403/404/500`` here. Every answer is made by the shape's exception handler, so
a 404 or 500 reads exactly like the ones its views give.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from outbound.console.views.errors import database_unavailable as console_unavailable
from outbound.core.errors import exception_handler as native_handler
from outbound.core.errors import is_database_unavailable
from outbound.dialects.commvault.errors import commvault_exception_handler
from outbound.dialects.hitachi.errors import hitachi_exception_handler
from outbound.dialects.privx.errors import exception_handler as privx_handler
from outbound.dialects.zitadel.errors import exception_handler as zitadel_handler
from outbound.dialects.zitadel.errors import route_not_found as zitadel_route_not_found

logger = logging.getLogger(__name__)

Handler = Callable[[Exception, dict[str, Any]], Response | None]


@dataclass(frozen=True)
class Shape:
    prefix: str  # as mounted in the root URLconf, without leading or trailing slash
    handler: Handler
    not_found: Callable[[], Exception] = exceptions.NotFound
    # Routes end with a slash (ALX): a path without one is redirected to the route that has
    # it, as Django's APPEND_SLASH does. The vendors' routes have none to append.
    append_slash: bool = False

    def owns(self, path: str) -> bool:
        return path == f"/{self.prefix}" or path.startswith(f"/{self.prefix}/")


SHAPES = (
    Shape("api", native_handler, append_slash=True),
    Shape("admin/v1", zitadel_handler, zitadel_route_not_found),
    Shape("Analytics/v1", hitachi_exception_handler),
    Shape("commandcenter/api", commvault_exception_handler),
    Shape("workflow-engine/api/v1", privx_handler),
)


class JsonErrorsMixin(APIView):
    """For the API views whose success is not JSON (the OpenAPI document in YAML, Swagger
    UI's page): their refusals (a 405, a 406) are still JSON, not YAML or HTML."""

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and getattr(response, "exception", False):
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        return response


def shape_of(request: HttpRequest) -> Shape | None:
    return next((s for s in SHAPES if s.owns(request.path_info)), None)


def shaped_response(request: HttpRequest, shape: Shape, exc: Exception) -> HttpResponse:
    """``exc`` answered by ``shape``'s exception handler, rendered as JSON."""
    response = shape.handler(exc, {"request": request, "view": None, "args": (), "kwargs": {}})
    if response is None:  # the handler does not know ``exc``: a server error in any shape
        response = shape.handler(exceptions.APIException(), {"request": request, "view": None})
    assert response is not None  # every handler answers an APIException
    shaped = HttpResponse(
        JSONRenderer().render(response.data),
        status=response.status_code,
        content_type=JSONRenderer.media_type,
    )
    for header in ("WWW-Authenticate", "Retry-After"):
        if header in response:
            shaped[header] = response[header]
    for mark in ("database_unavailable", "_has_been_logged"):  # see core.errors
        if getattr(response, mark, False):
            setattr(shaped, mark, True)
    return shaped


def database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    """A database outage met outside a view's exception handler (a middleware, a plain Django
    view, the console): under an API prefix that shape's own answer (its 503, Hitachi's
    412), elsewhere the console's plain page — never Django's 500."""
    shape = shape_of(request)
    if shape is None:
        return console_unavailable(request, exc)
    return shaped_response(request, shape, exc)


def _routed_elsewhere(path: str) -> bool:
    try:
        return resolve(path).func is not not_found
    except Resolver404:
        return False


@csrf_exempt  # it changes nothing, and a CSRF refusal would be Django's HTML page
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """The catch-all under each API prefix, for every method: that shape's 404."""
    shape = shape_of(request)
    if shape is None:  # mounted under a prefix missing from SHAPES: still no HTML
        return JsonResponse({"detail": "Not found."}, status=404)
    path = request.path_info
    slashless = shape.append_slash and settings.APPEND_SLASH and not path.endswith("/")
    if slashless and _routed_elsewhere(path + "/"):
        # What CommonMiddleware would have done had this catch-all not matched the path.
        return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
    return shaped_response(request, shape, shape.not_found())


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    shape = shape_of(request)
    if shape is None:
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return shaped_response(request, shape, exceptions.ParseError("The request is too large."))
    return shaped_response(request, shape, exceptions.ParseError("The request is malformed."))


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    shape = shape_of(request)
    if shape is None:
        return defaults.permission_denied(request, exception)
    return shaped_response(request, shape, exceptions.PermissionDenied())


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    shape = shape_of(request)
    if shape is None:
        return defaults.page_not_found(request, exception)
    return shaped_response(request, shape, shape.not_found())


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this while handling the exception (a middleware's, say the session's).
    exc = sys.exc_info()[1]
    if isinstance(exc, Exception) and is_database_unavailable(exc):
        return database_unavailable(request, exc)
    shape = shape_of(request)
    if shape is None:
        return defaults.server_error(request)
    return shaped_response(request, shape, exceptions.APIException())
