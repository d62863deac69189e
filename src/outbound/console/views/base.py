"""What every console view shares: sign-in, permission checks, service errors onto forms.

A console view declares ``required`` — HTTP method -> permission name, as the API's
``required_permissions`` does — and anything it does not declare is refused. The buttons a
user lacks permission for are hidden by the templates (``can``); this check is what refuses
a forged request anyway.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, TypeVar

from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Page, Paginator
from django.db import IntegrityError, transaction
from django.db.models import F, ProtectedError
from django.db.models.expressions import OrderBy
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.text import capfirst
from django.views import View

from outbound.core.api.throttling import CallOutThrottle
from outbound.core.errors import CONFLICT_MESSAGE, ServiceError
from outbound.core.permissions import has_permission

T = TypeVar("T")
logger = logging.getLogger(__name__)

AUTHENTICATED = None  # marker: signed in is enough
IN_USE = "This object is in use and cannot be deleted."
# What a service may refuse a write with; apply_errors puts each on the form.
REFUSALS = (ValidationError, ServiceError, ProtectedError, IntegrityError)


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


class ConfirmDeleteView(ConsoleView):
    """GET asks; POST deletes through the service. A refusal (in use, not allowed) is shown on
    the same page, and nothing is deleted.

    Subclasses name the ``kind`` and give :meth:`get_object`, :meth:`perform_delete` and the
    URLs; :meth:`warning` says what deleting will do.
    """

    kind = ""
    refused_message = "You do not have permission to perform this action."

    def get_object(self, **kwargs: Any) -> Any:
        raise NotImplementedError

    def perform_delete(self, request: HttpRequest, obj: Any) -> None:
        raise NotImplementedError

    def cancel_url(self, obj: Any) -> str:
        raise NotImplementedError

    def success_url(self, obj: Any) -> str:
        raise NotImplementedError

    def label(self, obj: Any) -> str:
        return str(obj)

    def warning(self, request: HttpRequest, obj: Any) -> str:
        return ""

    def page(
        self, request: HttpRequest, obj: Any, *, error: str = "", status: int = 200
    ) -> HttpResponse:
        context = {
            "kind": self.kind,
            "object_label": self.label(obj),
            "cancel_url": self.cancel_url(obj),
            "warning": self.warning(request, obj),
            "error": error,
        }
        return render(request, "console/confirm_delete.html", context, status=status)

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return self.page(request, self.get_object(**kwargs))

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        obj = self.get_object(**kwargs)
        label, success = self.label(obj), self.success_url(obj)
        try:
            self.perform_delete(request, obj)
        except PermissionDenied:
            return self.page(request, obj, error=self.refused_message, status=403)
        except (ValidationError, ServiceError, ProtectedError) as exc:
            return self.page(request, obj, error=refusal(exc), status=400)
        messages.success(request, f"{capfirst(self.kind)} {label} deleted.")
        return redirect(success)


def submit(form: forms.BaseForm, write: Callable[[], T]) -> T | None:
    """Validate ``form``, then run ``write`` (a service call) with its data. ``None`` when the
    form or the service refused: the errors are then on the form, next to their fields —
    every field's, in one round (see :func:`collect_errors`).

    ``write`` must only write to the database: after a refusal it runs again, rolled back.
    """
    if form.is_valid():
        try:
            return write()
        except REFUSALS as exc:
            apply_errors(form, exc)
    collect_errors(form, write)
    return None


class _RolledBack(Exception):
    """Ends a trial write (:func:`collect_errors`) so its transaction rolls back."""


def _trial(write: Callable[[], Any]) -> dict[str, list[str]]:
    """The field errors ``write`` is refused with; nothing it does is kept."""
    try:
        with transaction.atomic():
            write()
            raise _RolledBack
    except _RolledBack:
        return {}
    except ValidationError as exc:
        return dict(exc.message_dict) if hasattr(exc, "error_dict") else {}
    except Exception:
        # The input the form kept may be too partial to write at all: the errors found so
        # far stand (the real write never ran on this input).
        logger.debug("trial write stopped", exc_info=True)
        return {}


def collect_errors(form: forms.BaseForm, write: Callable[[], Any]) -> None:
    """After the form or the service refused some fields, ask the service about the others.

    A form checks its fields before the service sees them, and a service stops at its first
    refusal, so each round used to show one more error. Here the write is tried again with
    the refused fields left out (``add_error`` drops them from ``cleaned_data``), rolled back
    each time, until the service finds no new field to refuse. Only errors on fields the form
    has and has not refused yet are added; anything else waits for the real write.
    """
    for _ in range(len(form.fields)):
        found = {
            field: errors
            for field, errors in _trial(write).items()
            if field in form.fields and field not in form.errors
        }
        if not found:
            return
        for field, errors in found.items():
            form.add_error(field, errors)


def refusal(exc: ValidationError | ServiceError | ProtectedError) -> str:
    """A service's refusal as one sentence."""
    if isinstance(exc, ServiceError):
        return exc.detail
    if isinstance(exc, ProtectedError):
        return IN_USE
    return " ".join(exc.messages)


def plural(count: int, noun: str) -> str:
    """``"3 fields"``, ``"1 field"``; empty for none."""
    return f"{count} {noun}{'' if count == 1 else 's'}" if count else ""


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
    elif isinstance(exc, IntegrityError):  # a race lost past the service's checks
        form.add_error(None, CONFLICT_MESSAGE)
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
