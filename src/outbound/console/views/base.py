"""What every console view shares: sign-in, permission checks, service errors onto forms.

A console view declares ``required`` — HTTP method -> permission name, as the API's
``required_permissions`` does — and anything it does not declare is refused. The buttons a
user lacks permission for are hidden by the templates (``can``); this check is what refuses
a forged request anyway.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

from django import forms
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.db.models import F, ProtectedError
from django.db.models.expressions import OrderBy
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.views import View

from outbound.core.api.throttling import CallOutThrottle
from outbound.core.errors import ServiceError
from outbound.core.permissions import has_permission

AUTHENTICATED = None  # marker: signed in is enough
IN_USE = "This object is in use and cannot be deleted."


class ConsoleView(View):
    """A signed-in, permission-checked console page."""

    required: dict[str, str | None] = {}

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # Console forms carry passwords and secrets: keep every POSTed value out of error
        # reports (what ``@sensitive_post_parameters()`` does, for every console view).
        request.sensitive_post_parameters = "__ALL__"  # type: ignore[attr-defined]
        user = request.user
        if not (user.is_authenticated and user.is_active):
            return redirect_to_login(request.get_full_path())
        method = "GET" if request.method == "HEAD" else str(request.method)
        if method not in self.required:
            return self.http_method_not_allowed(request, *args, **kwargs)
        needed = self.required[method]
        if needed is not AUTHENTICATED and not has_permission(user, needed):
            return forbidden(request, needed)
        return super().dispatch(request, *args, **kwargs)


def forbidden(request: HttpRequest, needed: str | None) -> HttpResponse:
    return render(request, "console/403.html", {"needed": needed}, status=403)


def apply_errors(form: forms.BaseForm, exc: Exception, names: dict[str, str] | None = None) -> None:
    """Put a service's refusal next to the fields it names (core names mapped by ``names``).

    Messages are the services' own, so the console says what the API says.
    """
    names = names or {}
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        for field, messages in exc.message_dict.items():
            target = names.get(field, field)
            form.add_error(target if target in form.fields else None, list(messages))
    elif isinstance(exc, ValidationError):
        form.add_error(None, exc.messages)
    elif isinstance(exc, ServiceError):
        form.add_error(None, exc.detail)
    elif isinstance(exc, ProtectedError):
        form.add_error(None, IN_USE)
    else:
        raise exc


def call_out_refusal(request: HttpRequest, scope: str) -> str | None:
    """The API's per-user budget for calls out of the building (``OUTBOUND_TEST_RATE``),
    shared with the API's endpoints of the same ``scope``: a message when it is spent."""
    throttle = CallOutThrottle()
    if throttle.allow_request(request, SimpleNamespace(throttle_scope=scope)):  # type: ignore[arg-type]
        return None
    wait = math.ceil(throttle.wait() or 1)
    return f"Too many tests. Try again in {wait} seconds."


def paginate(request: HttpRequest, rows: Any, per_page: int = 20) -> Page:
    """One page of ``rows`` for the ``page`` query parameter (bad values give page 1)."""
    paginator = Paginator(rows, per_page)
    return paginator.get_page(request.GET.get("page"))


def ordering_param(request: HttpRequest, allowed: dict[str, str], default: str) -> str:
    """The ``?ordering=`` key (``name`` or ``-name``) if ``allowed`` knows it, else ``default``."""
    value = request.GET.get("ordering", "")
    return value if value.lstrip("-") in allowed else default


def order_by(ordering: str, columns: dict[str, str]) -> OrderBy:
    """The column behind an ordering key; empty values (nulls) last either way."""
    expr = F(columns[ordering.lstrip("-")])
    return expr.desc(nulls_last=True) if ordering.startswith("-") else expr.asc(nulls_last=True)
