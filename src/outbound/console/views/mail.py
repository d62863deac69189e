"""Outbound mail: the SMTP configurations, their activation, and the live connection test."""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse

from outbound.console.forms.mail import SmtpConfigForm, TestAddressForm, initial_from
from outbound.console.views.base import (
    ConfirmDeleteView,
    ConsoleView,
    apply_errors,
    call_out_refusal,
    submit,
)
from outbound.core.errors import ServiceError
from outbound.core.permissions import has_permission
from outbound.mail import failover, selectors, services
from outbound.mail.models import SmtpConfig
from outbound.mail.tester import TestReport
from outbound.mail.transport import Step

logger = logging.getLogger(__name__)

VIEW = "outbound_mail_setup.view"
EDIT = "outbound_mail_setup.edit"
NDJSON = "application/x-ndjson"
STEP_LABELS = {
    "resolve": "Resolve the host",
    "connect": "Connect",
    "tls": "TLS handshake",
    "banner": "Server greeting",
    "ehlo": "EHLO",
    "starttls": "STARTTLS",
    "ehlo_after_starttls": "EHLO after STARTTLS",
    "token": "Fetch the access token",
    "auth": "Sign in (AUTH)",
    "send": "Send the test mail",
    "quit": "QUIT",
}


def step_view(step: Step) -> dict[str, Any]:
    """A step as the console shows it: the API's fields plus a readable label."""
    return {**step.as_dict(), "label": STEP_LABELS.get(step.name, step.name)}


class SmtpListView(ConsoleView):
    required = {"GET": VIEW}

    def get(self, request: HttpRequest) -> HttpResponse:
        configs = selectors.smtp_config_list().select_related("authentication_object")
        # Which configuration delivers now: the active one, or a standby while it fails.
        now = failover.read()
        context = {
            "configs": configs,
            "active": now.primary,
            "serving": now.config,
            "failed_over": now.failed_over,
            "since": now.since,  # when the standby took over
        }
        return render(request, "console/mail/list.html", context)


def _form_page(
    request: HttpRequest,
    form: SmtpConfigForm,
    *,
    config: SmtpConfig | None,
    status: int = 200,
    report: TestReport | None = None,
    address: TestAddressForm | None = None,
    duplicate_of: SmtpConfig | None = None,
) -> HttpResponse:
    can_edit = has_permission(request.user, EDIT)
    test_url = (
        reverse("console:smtp-test", args=[config.pk])
        if config
        else reverse("console:smtp-test-new")
    )
    return render(
        request,
        "console/mail/form.html",
        {
            "form": form,
            "config": config,
            "can_edit": can_edit,
            "test_url": test_url,
            "address": address or TestAddressForm(),
            "report": report,
            "steps": [step_view(s) for s in report.steps] if report else [],
            "duplicate_of": duplicate_of,
            # Whether it delivers now (a standby does while the active one fails).
            "serving": config is not None and failover.serving_config_id() == config.pk,
        },
        status=status,
    )


class SmtpCreateView(ConsoleView):
    """A new configuration; ``?from=<id>`` starts from a copy of another (not its password)."""

    required = {"GET": EDIT, "POST": EDIT}

    def get(self, request: HttpRequest) -> HttpResponse:
        source = None
        initial: dict[str, Any] = {"port": 587, "security": "starttls"}
        if request.GET.get("from", "").isdigit():
            source = SmtpConfig.objects.filter(pk=int(request.GET["from"])).first()
            if source is not None:
                initial = initial_from(source)
                initial["description"] = f"Copy of {source.description or source}"[:200]
        return _form_page(
            request, SmtpConfigForm(initial=initial), config=None, duplicate_of=source
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        form = SmtpConfigForm(request.POST)
        activate = "activate" in request.POST
        config = submit(
            form,
            lambda: services.smtp_config_create(
                data=form.core_data(), actor=request.user, activate=activate
            ),
        )
        if config is None:
            return _form_page(request, form, config=None, status=400)
        note = " and activated" if activate else ""
        messages.success(request, f"SMTP configuration {config} created{note}.")
        return redirect("console:smtp-list")


class SmtpEditView(ConsoleView):
    """Shows every user with ``view`` the settings; only ``edit`` gets a form to change them."""

    required = {"GET": VIEW, "POST": EDIT}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        config = get_object_or_404(SmtpConfig, pk=pk)
        return _form_page(request, SmtpConfigForm(instance=config), config=config)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        config = get_object_or_404(SmtpConfig, pk=pk)
        form = SmtpConfigForm(request.POST, instance=config)
        saved = submit(
            form,
            lambda: services.smtp_config_update(
                config=config,
                data=form.core_data(),
                actor=request.user,
                activate="activate" in request.POST,
            ),
        )
        if saved is None:
            return _form_page(request, form, config=config, status=400)
        messages.success(request, f"SMTP configuration {saved} saved.")
        return redirect("console:smtp-list")


class SmtpActivateView(ConsoleView):
    """POST ``state=on`` activates (and deactivates the one active before), ``off`` stops."""

    required = {"POST": EDIT}

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        config = get_object_or_404(SmtpConfig, pk=pk)
        turn_on = request.POST.get("state") != "off"
        try:
            if turn_on:
                services.smtp_config_activate(config=config, actor=request.user)
                messages.success(request, f"{config} is now the active configuration.")
            else:
                services.smtp_config_deactivate(config=config, actor=request.user)
                messages.warning(request, f"{config} is inactive: no mail is sent now.")
        except ServiceError as exc:
            messages.error(request, exc.detail)
        return redirect("console:smtp-list")


class SmtpDeleteView(ConfirmDeleteView):
    required = {"GET": EDIT, "POST": EDIT}
    kind = "SMTP configuration"

    def get_object(self, **kwargs: Any) -> SmtpConfig:
        return get_object_or_404(SmtpConfig, pk=kwargs["pk"])

    def perform_delete(self, request: HttpRequest, obj: SmtpConfig) -> None:
        services.smtp_config_delete(config=obj, actor=request.user)

    def cancel_url(self, obj: SmtpConfig) -> str:
        return reverse("console:smtp-list")

    success_url = cancel_url

    def warning(self, request: HttpRequest, obj: SmtpConfig) -> str:
        if obj.is_active:
            return (
                "It is the active configuration: mail stops going out until another is activated."
            )
        return ""


class SmtpTestView(ConsoleView):
    """Tests the form's values (over the saved configuration, if any) without saving them.

    Asked for ``application/x-ndjson`` (the console's script), it streams each step as a JSON
    line as soon as it finishes, then the result; otherwise it renders the report on the form.
    """

    required = {"POST": EDIT}

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponseBase:
        stored = get_object_or_404(SmtpConfig, pk=pk) if pk is not None else None
        form = SmtpConfigForm(request.POST, instance=stored)
        address = TestAddressForm(request.POST)
        live = NDJSON in request.headers.get("Accept", "")
        plan = None
        if form.is_valid() and address.is_valid():
            try:
                plan = services.smtp_test_plan(
                    stored=stored,
                    data=form.core_data(),
                    receiver=address.cleaned_data["receiver"] or None,
                )
            except ValidationError as exc:
                apply_errors(form, exc)
        refusal = call_out_refusal(request, "smtp_test") if plan is not None else None
        if refusal:
            plan = None
            form.add_error(None, refusal)
        if plan is None:
            status = 429 if refusal else 400
            if live:
                errors = {**form.errors.get_json_data(), **address.errors.get_json_data()}
                body = {k: [e["message"] for e in v] for k, v in errors.items()}
                return JsonResponse({"errors": body}, status=status)
            return _form_page(request, form, config=stored, status=status, address=address)
        if live:
            response = StreamingHttpResponse(_stream(plan), content_type=NDJSON)
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"  # proxies: pass each line on at once
            return response
        return _form_page(request, form, config=stored, report=plan.run(), address=address)


def _stream(plan: services.SmtpTestPlan) -> Iterator[str]:
    """Run the test in a thread and yield its steps as JSON lines while it runs.

    The plan is fully resolved before the thread starts, so the thread touches the network
    only, never the database; the report is recorded (``plan.record``) from this thread.
    """
    lines: queue.Queue[dict[str, Any] | TestReport | None] = queue.Queue()

    def work() -> None:
        try:
            report = plan.talk(on_step=lambda step: lines.put({"step": step_view(step)}))
            lines.put(report)
        except Exception:
            logger.exception("SMTP test failed unexpectedly")
            lines.put({"result": {"ok": False, "message": "The test could not be run."}})
        finally:
            lines.put(None)

    threading.Thread(target=work, name="console-smtp-test", daemon=True).start()
    while (item := lines.get()) is not None:
        if isinstance(item, TestReport):
            plan.record(item)
            item = {"result": {"ok": item.ok, "message": item.message}}
        yield json.dumps(item) + "\n"


urlpatterns = [
    path("", SmtpListView.as_view(), name="smtp-list"),
    path("new/", SmtpCreateView.as_view(), name="smtp-create"),
    path("test/", SmtpTestView.as_view(), name="smtp-test-new"),
    path("<int:pk>/", SmtpEditView.as_view(), name="smtp-edit"),
    path("<int:pk>/activation/", SmtpActivateView.as_view(), name="smtp-activate"),
    path("<int:pk>/delete/", SmtpDeleteView.as_view(), name="smtp-delete"),
    path("<int:pk>/test/", SmtpTestView.as_view(), name="smtp-test"),
]
