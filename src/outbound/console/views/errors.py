"""The console's page for a database outage: plain, and made without the database."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from outbound.core.errors import RETRY_AFTER_SECONDS, answer_unavailable


def database_unavailable(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """503 with ``Retry-After``: the database is unavailable, try again shortly. Rendered
    without the request, so no context processor asks the database for the user, the menu
    or the messages (the page must render while it is away)."""
    page = render_to_string("console/503.html", {"retry_after": RETRY_AFTER_SECONDS})
    return answer_unavailable(exc, HttpResponse(page, status=503))
