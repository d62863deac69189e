"""Credentials: authentication objects, with forms generated from the provider registry.

Secrets are write-only here as in the API: they are sent to the services and never
rendered back; the pages only say whether each one is set.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Count, F, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse

from outbound.console.forms.credentials import (
    CredentialForm,
    ProviderPickForm,
    provider_or_none,
)
from outbound.console.views.base import (
    ConfirmDeleteView,
    ConsoleView,
    order_by,
    ordering_param,
    paginate,
    plural,
    submit,
)
from outbound.core.permissions import has_permission
from outbound.integrations import selectors, services
from outbound.integrations.models import AuthenticationObject
from outbound.integrations.providers import PROVIDER_CHOICES, PROVIDERS, Provider

LIST = "authentication_objects.list"
VIEW = "authentication_objects.view"
CREATE = "authentication_objects.create"
EDIT = "authentication_objects.edit"
DELETE = "authentication_objects.delete"
ORDERINGS = {
    "name": "name",
    "provider": "provider",
    "modified": "modified_at",
    "used": "used",
}
SORTS = [("Name", "name"), ("Provider", "provider"), ("Used by", "used"), ("Changed", "modified")]


def _with_use(rows: QuerySet[AuthenticationObject]) -> QuerySet[AuthenticationObject]:
    """Each row with how many integrations and SMTP configurations use it (one query)."""
    return rows.annotate(
        integration_count=Count("integrations", distinct=True),
        smtp_count=Count("smtp_configs", distinct=True),
    ).annotate(used=F("integration_count") + F("smtp_count"))


def _summary(obj: AuthenticationObject) -> dict[str, Any]:
    """What the list shows of a row: required public values, and which secrets are set."""
    provider = PROVIDERS.get(obj.provider)
    if provider is None:  # a provider removed from the registry: show the row, not a 500
        return {"label": obj.provider, "public": [], "secrets": []}
    public = [
        {"label": p.label or p.name, "value": obj.param(p.name)}
        for p in provider.params
        if not p.secret and p.required and obj.param(p.name)
    ]
    secrets = [
        {"label": p.label or p.name, "set": obj.has_secret(p.name)}
        for p in provider.params
        if p.secret
    ]
    return {"label": provider.label, "public": public, "secrets": secrets}


class CredentialListView(ConsoleView):
    required = {"GET": LIST}

    def get(self, request: HttpRequest) -> HttpResponse:
        rows = _with_use(selectors.authentication_object_list())
        provider = request.GET.get("provider", "")
        if provider in PROVIDERS:
            rows = rows.filter(provider=provider)
        ordering = ordering_param(request, ORDERINGS, "name")
        rows = rows.order_by(order_by(ordering, ORDERINGS), "name")
        page = paginate(request, rows)
        items = [{"obj": obj, **_summary(obj)} for obj in page.object_list]
        return render(
            request,
            "console/credentials/list.html",
            {
                "page": page,
                "items": items,
                "providers": PROVIDER_CHOICES,
                "ordering": ordering,
                "sorts": SORTS,
                "provider": provider,
                "filtered": provider in PROVIDERS,
            },
        )


def _form_page(
    request: HttpRequest,
    form: CredentialForm,
    *,
    obj: AuthenticationObject | None,
    status: int = 200,
) -> HttpResponse:
    used_by: dict[str, Any] = {}
    if obj is not None:
        used_by = {
            "integrations": list(obj.integrations.order_by("name").values_list("name", flat=True)),
            "smtp_configs": list(obj.smtp_configs.all()),
        }
    return render(
        request,
        "console/credentials/form.html",
        {
            "form": form,
            "obj": obj,
            "provider": form.provider,
            "can_edit": has_permission(request.user, EDIT if obj else CREATE),
            "used_by": used_by,
        },
        status=status,
    )


class CredentialCreateView(ConsoleView):
    """Without a valid ``?provider=`` it asks for the provider; then the provider's form."""

    required = {"GET": CREATE, "POST": CREATE}

    def _picker(self, request: HttpRequest, pick: ProviderPickForm, status: int) -> HttpResponse:
        return render(request, "console/credentials/pick.html", {"pick": pick}, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        provider = provider_or_none(request.GET.get("provider"))
        if provider is None:
            if len(PROVIDERS) == 1:
                provider = next(iter(PROVIDERS.values()))
            else:
                pick = ProviderPickForm(request.GET if "provider" in request.GET else None)
                if pick.is_bound:
                    pick.is_valid()  # shows "not a valid choice" next to the select
                return self._picker(request, pick, 400 if pick.is_bound else 200)
        return _form_page(request, CredentialForm(provider=provider), obj=None)

    def post(self, request: HttpRequest) -> HttpResponse:
        provider: Provider | None = provider_or_none(
            request.POST.get("provider") or request.GET.get("provider")
        )
        if provider is None:
            pick = ProviderPickForm(request.POST)
            pick.is_valid()
            return self._picker(request, pick, 400)
        form = CredentialForm(request.POST, provider=provider)
        obj = submit(
            form,
            lambda: services.authentication_object_create(
                name=form.cleaned_data["name"],
                provider=provider.key,
                params=form.params(),
                actor=request.user,
            ),
        )
        if obj is None:
            return _form_page(request, form, obj=None, status=400)
        messages.success(request, f"Credential {obj} created.")
        return redirect("console:credential-list")


class CredentialEditView(ConsoleView):
    """Every user with ``view`` sees the values (never the secrets); ``edit`` may change them.
    The provider is fixed once created."""

    required = {"GET": VIEW, "POST": EDIT}

    def _provider(self, obj: AuthenticationObject) -> Provider:
        provider = PROVIDERS.get(obj.provider)
        if provider is None:  # a provider no longer registered: nothing here can edit it
            raise Http404(f'Unknown provider "{obj.provider}".')
        return provider

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        obj = get_object_or_404(AuthenticationObject, pk=pk)
        form = CredentialForm(provider=self._provider(obj), instance=obj)
        return _form_page(request, form, obj=obj)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        obj = get_object_or_404(AuthenticationObject, pk=pk)
        form = CredentialForm(request.POST, provider=self._provider(obj), instance=obj)
        saved = submit(
            form,
            lambda: services.authentication_object_update(
                obj=obj,
                data={"name": form.cleaned_data["name"], "params": form.params()},
                actor=request.user,
            ),
        )
        if saved is None:
            return _form_page(request, form, obj=obj, status=400)
        messages.success(request, f"Credential {saved} saved.")
        return redirect("console:credential-list")


class CredentialDeleteView(ConfirmDeleteView):
    """Refused, with the service's reason, while an integration or SMTP configuration uses it."""

    required = {"GET": DELETE, "POST": DELETE}
    kind = "credential"

    def get_object(self, **kwargs: Any) -> AuthenticationObject:
        return get_object_or_404(AuthenticationObject, pk=kwargs["pk"])

    def perform_delete(self, request: HttpRequest, obj: AuthenticationObject) -> None:
        services.authentication_object_delete(obj=obj, actor=request.user)

    def cancel_url(self, obj: AuthenticationObject) -> str:
        return reverse("console:credential-list")

    success_url = cancel_url

    def warning(self, request: HttpRequest, obj: AuthenticationObject) -> str:
        users = [
            plural(obj.integrations.count(), "integration"),
            plural(obj.smtp_configs.count(), "SMTP configuration"),
        ]
        used = " and ".join(u for u in users if u)
        return f"It is used by {used}: deleting it will be refused." if used else ""


urlpatterns = [
    path("", CredentialListView.as_view(), name="credential-list"),
    path("new/", CredentialCreateView.as_view(), name="credential-create"),
    path("<int:pk>/", CredentialEditView.as_view(), name="credential-edit"),
    path("<int:pk>/delete/", CredentialDeleteView.as_view(), name="credential-delete"),
]
