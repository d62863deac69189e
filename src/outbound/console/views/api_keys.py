"""API keys: the signed-in user's keys (a superuser's: everyone's), create, revoke.

The same selector and services as ``/api/auth/api-keys/``: any signed-in user manages their
own keys; a key holds only permissions its owner holds; an expiry lies in the future;
revoking keeps the row (greyed in the list) for the audit trail.

The key itself is shown once, on the page that answers the create — rendered, not
redirected to, and marked ``no-store`` — and nowhere else: not in the list, a message, the
session or History (whose events name fields, never values).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables

from outbound.accounts import selectors, services
from outbound.accounts.keys import KEY_MARK
from outbound.accounts.models import ApiKey
from outbound.console.forms.accounts import permission_summary
from outbound.console.forms.api_keys import ApiKeyForm
from outbound.console.views.base import (
    AUTHENTICATED,
    REFUSALS,
    ConsoleView,
    apply_errors,
    collect_errors,
    order_by,
    ordering_param,
    paginate,
)
from outbound.core.authentication import API_KEY_KEYWORD
from outbound.core.permissions import user_permissions

PER_PAGE = 50
# ?ordering= key -> the column it sorts on
ORDERINGS = {"name": "name", "created": "created_at", "last_used": "last_used_at"}
SORTS = [("Name", "name"), ("Created", "created"), ("Last used", "last_used")]
DEFAULT_ORDERING = "-created"  # the API's order: newest first
# Nonces of the create forms already used in this session (see ApiKeyCreateView.post).
USED_NONCES = "console_api_key_nonces"
KEEP_NONCES = 20
ALREADY_CREATED = (
    "That key was already created, and a key is shown only once. If it was not copied, "
    "revoke it and create a new one."
)


def shown_prefix(key: ApiKey) -> str:
    """The key's public part as it starts the key: ``ob_abcd1234_…``."""
    return f"{KEY_MARK}_{key.prefix}_…"


def visible_keys(request: HttpRequest) -> QuerySet[ApiKey]:
    """The API's set: one's own keys; a superuser's, everyone's. Others' keys are 404."""
    return selectors.api_key_list(user=request.user)


class ApiKeyListView(ConsoleView):
    required = {"GET": AUTHENTICATED}

    def get(self, request: HttpRequest) -> HttpResponse:
        ordering = ordering_param(request, ORDERINGS, DEFAULT_ORDERING)
        keys = visible_keys(request).order_by(order_by(ordering, ORDERINGS), "-pk")
        page = paginate(request, keys, PER_PAGE)
        now = timezone.now()
        rows = [
            {
                "key": k,
                "prefix": shown_prefix(k),
                "summary": permission_summary(k.permissions),
                "state": k.state(now),
            }
            for k in page
        ]
        return render(
            request,
            "console/api_keys/list.html",
            {
                "page": page,
                "rows": rows,
                "ordering": ordering,
                "sorts": SORTS,
                "show_owner": request.user.is_superuser,
            },
        )


def _form_page(request: HttpRequest, form: ApiKeyForm, *, status: int = 200) -> HttpResponse:
    return render(
        request,
        "console/api_keys/form.html",
        {"form": form, "groups": form.permission_groups()},
        status=status,
    )


class ApiKeyCreateView(ConsoleView):
    required = {"GET": AUTHENTICATED, "POST": AUTHENTICATED}

    def get(self, request: HttpRequest) -> HttpResponse:
        return _form_page(request, ApiKeyForm(offered=user_permissions(request.user)))

    @method_decorator(sensitive_variables("plaintext"))
    def post(self, request: HttpRequest) -> HttpResponse:
        form = ApiKeyForm(request.POST, offered=user_permissions(request.user))

        def create() -> tuple[ApiKey, str]:
            return services.api_key_create(
                owner=request.user,  # type: ignore[arg-type]
                **form.core_data(),
                actor=request.user,
            )

        if not form.is_valid():
            collect_errors(form, create)
            return _form_page(request, form, status=400)
        nonce = form.cleaned_data["nonce"]
        used: list[str] = request.session.get(USED_NONCES, [])
        if nonce and nonce in used:
            # The browser re-sent a form that already made a key (reload, back and resend).
            messages.warning(request, ALREADY_CREATED)
            return redirect("console:api-key-list")
        try:
            key, plaintext = create()
        except PermissionDenied as exc:  # only a request made with a key; kept for parity
            form.add_error(None, str(exc) or "You cannot create API keys.")
            return _form_page(request, form, status=403)
        except REFUSALS as exc:
            apply_errors(form, exc)
            collect_errors(form, create)
            return _form_page(request, form, status=400)
        if nonce:
            request.session[USED_NONCES] = [*used, nonce][-KEEP_NONCES:]
        response = render(
            request,
            "console/api_keys/created.html",
            {
                "key": key,
                "plaintext": plaintext,
                "prefix": shown_prefix(key),
                "summary": permission_summary(key.permissions),
                "keyword": API_KEY_KEYWORD,
            },
        )
        # The key is in this page only: keep it out of every cache and the back button.
        add_never_cache_headers(response)
        return response


class ApiKeyRevokeView(ConsoleView):
    """GET asks, POST revokes. Someone else's key is 404, unless one is a superuser."""

    required = {"GET": AUTHENTICATED, "POST": AUTHENTICATED}

    def page(self, request: HttpRequest, key: ApiKey) -> HttpResponse:
        return render(
            request,
            "console/api_keys/revoke.html",
            {
                "key": key,
                "prefix": shown_prefix(key),
                "state": key.state(),
                "others": key.owner_id != request.user.pk,
            },
        )

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self.page(request, get_object_or_404(visible_keys(request), pk=pk))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        key = get_object_or_404(visible_keys(request), pk=pk)
        was_revoked = key.revoked_at is not None
        # Revoking a revoked key changes nothing and records nothing (the service's rule).
        services.api_key_revoke(key=key, actor=request.user)
        if was_revoked:
            messages.info(request, f"API key “{key.name}” was already revoked.")
        else:
            messages.success(request, f"API key “{key.name}” revoked: it no longer works.")
        return redirect("console:api-key-list")


urlpatterns = [
    path("", ApiKeyListView.as_view(), name="api-key-list"),
    path("new/", ApiKeyCreateView.as_view(), name="api-key-create"),
    path("<int:pk>/revoke/", ApiKeyRevokeView.as_view(), name="api-key-revoke"),
]
