"""Integrations: the filtered list, registry-generated create/edit forms, delete, the test.

Reads filter through the API's own ``IntegrationFilterSet`` and writes go through the same
services as ``/api/integrations/``, so a rule (the 100-integration limit, unique names, the
scope of an object class field) is enforced and worded the same on both.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse

from outbound.console.forms.integrations import IntegrationFilterForm, IntegrationForm, type_label
from outbound.console.views.base import (
    ConfirmDeleteView,
    ConsoleView,
    call_out_refusal,
    forbidden,
    paginate,
    submit,
)
from outbound.core.permissions import has_permission
from outbound.integrations import selectors, services
from outbound.integrations.filtersets import IntegrationFilterSet
from outbound.integrations.models import Integration
from outbound.integrations.types import REGISTRY, IntegrationType, TestOutcome

logger = logging.getLogger(__name__)

LIST = "integrations.list"
VIEW = "integrations.view"
CREATE = "integrations.create"
EDIT = "integrations.edit"
DELETE = "integrations.delete"
TEST = "integrations.create"  # as the API's test action: it calls out with stored credentials
PER_PAGE = 20
# The FilterSet's ordering keys, with the column labels the sort links show.
SORTS = (
    ("Name", "name"),
    ("Authentication object", "authentication_object"),
    ("Object class", "object_class"),
    ("Created", "created_at"),
    ("Modified", "modified_at"),
)
TEST_FAILED = "The test could not be run."


class IntegrationListView(ConsoleView):
    required = {"GET": LIST}

    def get(self, request: HttpRequest) -> HttpResponse:
        form = IntegrationFilterForm(request.GET)
        rows = selectors.integration_list()
        problems: list[str] = []
        if form.is_valid():
            params = QueryDict(mutable=True)
            params.update(form.filter_params())
            if request.GET.get("ordering"):
                params["ordering"] = request.GET["ordering"]
            filterset = IntegrationFilterSet(params, queryset=rows, request=request)
            if filterset.is_valid():
                rows = filterset.qs
            else:
                # Only what the form does not carry can fail here (a hand-edited ordering).
                problems = [
                    f"{'Sort' if name == 'ordering' else name}: {message}"
                    for name, errors in filterset.errors.items()
                    for message in errors
                ]
        else:
            problems = ["Some filters are not valid: correct them to see the list."]
        if problems:
            rows = rows.none()
        page = paginate(request, rows, PER_PAGE)
        total = Integration.objects.count()
        return render(
            request,
            "console/integrations/list.html",
            {
                "form": form,
                "problems": problems,
                "page": page,
                "items": [(i, type_label(i.type)) for i in page],
                "filtered": any(form.data.get(k) for k in form.fields),
                "total": total,
                "limit": services.INTEGRATION_LIMIT,
                "at_limit": total >= services.INTEGRATION_LIMIT,
                "sorts": SORTS,
                "ordering": request.GET.get("ordering", ""),
            },
            status=400 if problems else 200,
        )


def _form_page(
    request: HttpRequest,
    form: IntegrationForm,
    *,
    integration: Integration | None,
    status: int = 200,
    outcome: TestOutcome | None = None,
    outcome_messages: list[str] | None = None,
) -> HttpResponse:
    can_save = has_permission(request.user, EDIT if integration else CREATE)
    return render(
        request,
        "console/integrations/form.html",
        {
            "form": form,
            "itype": form.itype,
            "integration": integration,
            "can_save": can_save,
            "can_test": integration is not None and has_permission(request.user, TEST),
            "can_delete": integration is not None and has_permission(request.user, DELETE),
            "multiple_types": len(REGISTRY) > 1,
            "outcome": outcome,
            "outcome_messages": outcome_messages or [],
        },
        status=status,
    )


def _requested_type(request: HttpRequest) -> type[IntegrationType] | None:
    """The type named by ``type`` (form, then query string), or the only one registered."""
    raw = request.POST.get("type") or request.GET.get("type")
    if raw is None and len(REGISTRY) == 1:
        return next(iter(REGISTRY.values()))
    if raw is not None and raw.isdigit():
        return REGISTRY.get(int(raw))
    return None


# A type's secret fields arrive in the POST: keep them out of error reports.
class IntegrationCreateView(ConsoleView):
    """``?type=<id>`` gives that type's form; without it, a type picker (when there is a choice)."""

    required = {"GET": CREATE, "POST": CREATE}

    def picker(self, request: HttpRequest, *, status: int = 200) -> HttpResponse:
        types = [
            {
                "id": t.id,
                "label": t.label,
                "fields": [f.label or f.alias for f in t.fields],
                "url": f"{reverse('console:integration-create')}?type={t.id}",
            }
            for t in REGISTRY.values()
        ]
        unknown = "type" in request.GET or "type" in request.POST
        return render(
            request,
            "console/integrations/pick_type.html",
            {"types": types, "unknown": unknown},
            status=400 if unknown else status,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        itype = _requested_type(request)
        if itype is None:
            return self.picker(request)
        form = IntegrationForm(itype=itype)
        return _form_page(request, form, integration=None)

    def post(self, request: HttpRequest) -> HttpResponse:
        itype = _requested_type(request)
        if itype is None:
            return self.picker(request)
        form = IntegrationForm(request.POST, itype=itype)
        integration = submit(
            form,
            lambda: services.integration_create(
                type_id=itype.id, data=form.core_data(), actor=request.user
            ),
        )
        if integration is None:
            return _form_page(request, form, integration=None, status=400)
        messages.success(request, f"Integration {integration} created.")
        return redirect("console:integration-list")


def _get_integration(pk: Any) -> tuple[Integration, type[IntegrationType]]:
    integration = get_object_or_404(selectors.integration_list(), pk=pk)
    itype = REGISTRY.get(integration.type)
    if itype is None:  # its type is no longer registered: nothing can present or edit it
        raise Http404("unknown integration type")
    return integration, itype


class IntegrationEditView(ConsoleView):
    """Every user with ``view`` sees the settings; only ``edit`` gets a form to change them."""

    required = {"GET": VIEW, "POST": EDIT}

    def get(self, request: HttpRequest, pk: Any) -> HttpResponse:
        integration, itype = _get_integration(pk)
        form = IntegrationForm(itype=itype, instance=integration)
        return _form_page(request, form, integration=integration)

    def post(self, request: HttpRequest, pk: Any) -> HttpResponse:
        integration, itype = _get_integration(pk)
        form = IntegrationForm(request.POST, itype=itype, instance=integration)
        saved = submit(
            form,
            lambda: services.integration_update(
                integration=integration, data=form.core_data(), actor=request.user
            ),
        )
        if saved is None:
            return _form_page(request, form, integration=integration, status=400)
        messages.success(request, f"Integration {saved} saved.")
        return redirect("console:integration-list")


class IntegrationDeleteView(ConfirmDeleteView):
    required = {"GET": DELETE, "POST": DELETE}
    kind = "integration"

    def get_object(self, **kwargs: Any) -> Integration:
        return get_object_or_404(Integration, pk=kwargs["pk"])

    def perform_delete(self, request: HttpRequest, obj: Integration) -> None:
        services.integration_delete(integration=obj, actor=request.user)

    def cancel_url(self, obj: Integration) -> str:
        return reverse("console:integration-edit", args=[obj.pk])

    def success_url(self, obj: Integration) -> str:
        return reverse("console:integration-list")

    def warning(self, request: HttpRequest, obj: Integration) -> str:
        return "It is enabled: documents stop being filed through it." if obj.is_enabled else ""


class IntegrationTestView(ConsoleView):
    """Authenticates with the integration's *saved* authentication object; writes nothing.

    The outcome is shown on the integration's page, which needs ``view`` as well.
    """

    required = {"POST": TEST}

    def post(self, request: HttpRequest, pk: Any) -> HttpResponse:
        if not has_permission(request.user, VIEW):
            return forbidden(request, VIEW)
        integration, itype = _get_integration(pk)
        form = IntegrationForm(itype=itype, instance=integration)
        refusal = call_out_refusal(request, "integration_test")  # the API's budget
        if refusal:
            outcome, lines = (
                TestOutcome(ok=False, errors={"non_field_errors": [refusal]}),
                [refusal],
            )
        else:
            outcome, lines = run_test(integration)
        return _form_page(
            request,
            form,
            integration=integration,
            outcome=outcome,
            outcome_messages=lines,
            status=429 if refusal else 200,
        )


def run_test(integration: Integration) -> tuple[TestOutcome, list[str]]:
    """The service's outcome and its messages, one line each. Never raises."""
    auth = integration.authentication_object
    if auth is None:
        message = "Choose an authentication object and save before testing."
        return TestOutcome(ok=False, errors={"authentication_object": [message]}), [message]
    try:
        outcome = services.integration_test(type_id=integration.type, authentication_object=auth)
    except ValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
        outcome = TestOutcome(ok=False, errors=errors)
    except Exception:
        # A network library's surprise must not become a 500: the page says it failed.
        logger.exception("integration test failed unexpectedly")
        outcome = TestOutcome(ok=False, errors={"non_field_errors": [TEST_FAILED]})
    lines = [m for errors in outcome.errors.values() for m in errors]
    return outcome, lines


urlpatterns = [
    path("", IntegrationListView.as_view(), name="integration-list"),
    path("new/", IntegrationCreateView.as_view(), name="integration-create"),
    path("<uuid:pk>/", IntegrationEditView.as_view(), name="integration-edit"),
    path("<uuid:pk>/delete/", IntegrationDeleteView.as_view(), name="integration-delete"),
    path("<uuid:pk>/test/", IntegrationTestView.as_view(), name="integration-test"),
]
