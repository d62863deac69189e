"""Webhooks: where Outbound POSTs delivery events, signed per the Standard Webhooks spec.

The same services as ``/api/webhooks/``: they check the URL against the egress policy and the
events against the known ones, seal the signing secret, record History, and send the test
event. The pages only parse input and show what the services answer.

The signing secret is shown once, on the page that answers the create or the rotation —
rendered, not redirected to, and marked ``no-store`` — and nowhere else: not in the list, the
detail page, a message, the session or History.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables

from outbound.console.forms.webhooks import WebhookForm
from outbound.console.views.base import (
    REFUSALS,
    ConfirmDeleteView,
    ConsoleView,
    apply_errors,
    call_out_refusal,
    collect_errors,
    paginate,
    submit,
)
from outbound.webhooks import selectors, services
from outbound.webhooks.models import Webhook, WebhookDelivery

LIST = "webhooks.list"
VIEW = "webhooks.view"
CREATE = "webhooks.create"
EDIT = "webhooks.edit"
DELETE = "webhooks.delete"
PER_PAGE = 50
RECENT = 50  # deliveries on the detail page
# Nonces of the create forms already used in this session (see WebhookCreateView.post).
USED_NONCES = "console_webhook_nonces"
KEEP_NONCES = 20
ALREADY_CREATED = (
    "That webhook was already created, and its signing secret is shown only once. If it was "
    "not copied, rotate the secret on the webhook's page."
)
STATUS_BADGES = {"delivered": "ok", "failed": "bad", "retrying": "", "pending": ""}


def _webhooks() -> QuerySet[Webhook]:
    """Every webhook with its latest delivery's status (one query)."""
    latest = WebhookDelivery.objects.filter(webhook=OuterRef("pk")).order_by("-created_at", "-id")
    return selectors.webhooks().annotate(
        last_status=Subquery(latest.values("status")[:1]),
        last_at=Subquery(latest.values("created_at")[:1]),
    )


def _secret_page(
    request: HttpRequest, webhook: Webhook, secret: str, *, rotated: bool
) -> HttpResponse:
    response = render(
        request,
        "console/webhooks/secret.html",
        {"webhook": webhook, "secret": secret, "rotated": rotated},
    )
    # The secret is in this page only: keep it out of every cache and the back button.
    add_never_cache_headers(response)
    return response


class WebhookListView(ConsoleView):
    required = {"GET": LIST}

    def get(self, request: HttpRequest) -> HttpResponse:
        page = paginate(request, _webhooks().order_by("url", "pk"), PER_PAGE)
        rows = [
            {"webhook": w, "badge": STATUS_BADGES.get(w.last_status or "", "")}
            for w in page.object_list
        ]
        return render(request, "console/webhooks/list.html", {"page": page, "rows": rows})


def _form_page(
    request: HttpRequest, form: WebhookForm, *, webhook: Webhook | None, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "console/webhooks/form.html",
        {"form": form, "webhook": webhook, "boxes": form.event_boxes()},
        status=status,
    )


class WebhookCreateView(ConsoleView):
    required = {"GET": CREATE, "POST": CREATE}

    def get(self, request: HttpRequest) -> HttpResponse:
        return _form_page(request, WebhookForm(), webhook=None)

    @method_decorator(sensitive_variables("secret"))
    def post(self, request: HttpRequest) -> HttpResponse:
        form = WebhookForm(request.POST)

        def create() -> tuple[Webhook, str]:
            return services.create_webhook(actor=request.user, **form.core_data())

        if not form.is_valid():
            collect_errors(form, create)
            return _form_page(request, form, webhook=None, status=400)
        nonce = form.cleaned_data["nonce"]
        used: list[str] = request.session.get(USED_NONCES, [])
        if nonce and nonce in used:
            # The browser re-sent a form that already made a webhook (reload, back and resend).
            messages.warning(request, ALREADY_CREATED)
            return redirect("console:webhook-list")
        try:
            webhook, secret = create()
        except PermissionDenied as exc:
            form.add_error(None, str(exc) or "You cannot create webhooks.")
            return _form_page(request, form, webhook=None, status=403)
        except REFUSALS as exc:
            apply_errors(form, exc)
            collect_errors(form, create)
            return _form_page(request, form, webhook=None, status=400)
        if nonce:
            request.session[USED_NONCES] = [*used, nonce][-KEEP_NONCES:]
        return _secret_page(request, webhook, secret, rotated=False)


class WebhookDetailView(ConsoleView):
    """The webhook's settings and its recent deliveries, newest first."""

    required = {"GET": VIEW}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        webhook = get_object_or_404(selectors.webhooks(), pk=pk)
        deliveries = [
            {"delivery": d, "badge": STATUS_BADGES.get(d.status, "")}
            for d in selectors.deliveries_of(webhook)[:RECENT]
        ]
        return render(
            request,
            "console/webhooks/detail.html",
            {
                "webhook": webhook,
                "deliveries": deliveries,
                "recent": RECENT,
            },
        )


class WebhookEditView(ConsoleView):
    required = {"GET": EDIT, "POST": EDIT}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        webhook = get_object_or_404(selectors.webhooks(), pk=pk)
        return _form_page(request, WebhookForm(instance=webhook), webhook=webhook)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        webhook = get_object_or_404(selectors.webhooks(), pk=pk)
        form = WebhookForm(request.POST, instance=webhook)
        saved = submit(
            form,
            lambda: services.update_webhook(webhook, actor=request.user, **form.core_data()),
        )
        if saved is None:
            return _form_page(request, form, webhook=webhook, status=400)
        messages.success(request, f"Webhook {webhook.url} saved.")
        return redirect("console:webhook-detail", pk=webhook.pk)


class WebhookRotateView(ConsoleView):
    """GET asks; POST makes a new secret (the old one stops signing at once) and shows it once."""

    required = {"GET": EDIT, "POST": EDIT}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        webhook = get_object_or_404(selectors.webhooks(), pk=pk)
        return render(request, "console/webhooks/rotate.html", {"webhook": webhook})

    @method_decorator(sensitive_variables("secret"))
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        webhook = get_object_or_404(selectors.webhooks(), pk=pk)
        secret = services.rotate_secret(webhook, actor=request.user)
        return _secret_page(request, webhook, secret, rotated=True)


class WebhookTestView(ConsoleView):
    """POST sends a ``webhook.test`` event now, then shows its result on the webhook's page
    (and the attempt in its deliveries). A call out of the building: it spends the same
    per-user budget as the API's tests (``OUTBOUND_TEST_RATE``)."""

    required = {"POST": EDIT}

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        webhook = get_object_or_404(selectors.webhooks(), pk=pk)
        too_many = call_out_refusal(request, "webhook_test")
        if too_many:
            messages.error(request, too_many)
            return redirect("console:webhook-detail", pk=webhook.pk)
        delivery = services.send_test(webhook, actor=request.user)
        messages.add_message(request, *_test_result(delivery))
        return redirect("console:webhook-detail", pk=webhook.pk)


def _test_result(delivery: WebhookDelivery) -> tuple[int, str]:
    """The flash message saying how the test went, at the level it deserves."""
    got = f"HTTP {delivery.http_status}" if delivery.http_status else "no HTTP answer"
    took = f" in {delivery.duration_ms} ms" if delivery.duration_ms is not None else ""
    if delivery.status == "delivered":
        return messages.SUCCESS, f"Test event delivered: {got}{took}."
    detail = f": {delivery.error}" if delivery.error else ""
    return messages.ERROR, f"Test event {delivery.status} ({got}{took}){detail}."


class WebhookDeleteView(ConfirmDeleteView):
    required = {"GET": DELETE, "POST": DELETE}
    kind = "webhook"

    def get_object(self, **kwargs: Any) -> Webhook:
        return get_object_or_404(selectors.webhooks(), pk=kwargs["pk"])

    def perform_delete(self, request: HttpRequest, obj: Webhook) -> None:
        services.delete_webhook(obj, actor=request.user)

    def label(self, obj: Webhook) -> str:
        return obj.url

    def cancel_url(self, obj: Webhook) -> str:
        return reverse("console:webhook-detail", args=[obj.pk])

    def success_url(self, obj: Webhook) -> str:
        return reverse("console:webhook-list")

    def warning(self, request: HttpRequest, obj: Webhook) -> str:
        return "No further events are sent to it, and its delivery records go with it."


urlpatterns = [
    path("", WebhookListView.as_view(), name="webhook-list"),
    path("new/", WebhookCreateView.as_view(), name="webhook-create"),
    path("<int:pk>/", WebhookDetailView.as_view(), name="webhook-detail"),
    path("<int:pk>/edit/", WebhookEditView.as_view(), name="webhook-edit"),
    path("<int:pk>/rotate-secret/", WebhookRotateView.as_view(), name="webhook-rotate"),
    path("<int:pk>/test/", WebhookTestView.as_view(), name="webhook-test"),
    path("<int:pk>/delete/", WebhookDeleteView.as_view(), name="webhook-delete"),
]
