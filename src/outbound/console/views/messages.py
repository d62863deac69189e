"""Messages: what the sender did with each message services submitted (status, recipients'
replies, attempts, attachments by name, type and size); bodies and attachment contents are
not shown. A holder of ``messages.send`` may cancel a queued or deferred message (asked
first, as deletions are) and retry a deferred one now — the rule is
:mod:`outbound.mail.message_actions`."""

from __future__ import annotations

from typing import Any

from django.contrib import messages as flash
from django.db.models import Count, Prefetch
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path

from outbound.console.views.base import ConsoleView, forbidden, paginate
from outbound.core.errors import ServiceError
from outbound.core.permissions import has_permission
from outbound.mail import message_actions
from outbound.mail.models import Attempt, Message, MessageStatus

VIEW = "messages.view"
SEND = "messages.send"


class MessageListView(ConsoleView):
    required = {"GET": VIEW}

    def get(self, request: HttpRequest) -> HttpResponse:
        rows = (
            Message.objects.annotate(recipient_count=Count("recipients"))
            # The servers the attempts used, as they were then (not the configuration now).
            .prefetch_related(
                Prefetch("attempts", queryset=Attempt.objects.only("message_id", "server"))
            )
            .only(
                "id",
                "status",
                "subject",
                "is_failure_notice",
                "attempt_count",
                "next_attempt_at",
                "last_error",
                "created_at",
                "finished_at",
            )
            .order_by("-id")
        )
        status = request.GET.get("status", "")
        if status in MessageStatus.values:
            rows = rows.filter(status=status)
        page = paginate(request, rows, per_page=50)
        for message in page.object_list:
            message.servers = list(
                dict.fromkeys(a.server for a in message.attempts.all() if a.server)
            )
        return render(
            request,
            "console/messages/list.html",
            {"page": page, "statuses": MessageStatus.choices, "status": status},
        )


class MessageDetailView(ConsoleView):
    required = {"GET": VIEW}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        message = get_object_or_404(
            Message.objects.select_related("config", "submitted_by").prefetch_related(
                "recipients", "attempts", "attachments"
            ),
            pk=pk,
        )
        return render(
            request,
            "console/messages/detail.html",
            {
                "message": message,
                "can_cancel": message_actions.can_cancel(message),
                "can_retry": message_actions.can_retry(message),
            },
        )


class _MessageActionView(ConsoleView):
    """Needs ``messages.send`` for the action and ``messages.view`` for the page it is on."""

    required = {"POST": SEND}

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        user = request.user
        if user.is_authenticated and user.is_active and not has_permission(user, VIEW):
            return forbidden(request, VIEW)
        return super().dispatch(request, *args, **kwargs)


class MessageCancelView(_MessageActionView):
    """GET asks, POST cancels; a refusal (a worker has it now, it is finished) is flashed."""

    required = {"GET": SEND, "POST": SEND}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        message = get_object_or_404(Message, pk=pk)
        if not message_actions.can_cancel(message):
            flash.info(request, message_actions.NOT_CANCELLABLE.get(message.status, ""))
            return redirect("console:message-detail", pk=pk)
        return render(request, "console/messages/cancel.html", {"message": message})

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        message = get_object_or_404(Message, pk=pk)
        try:
            message_actions.message_cancel(message=message, actor=request.user)
        except ServiceError as exc:
            flash.error(request, exc.detail)
        else:
            flash.success(request, f"Message {pk} cancelled: it will not be sent.")
        return redirect("console:message-detail", pk=pk)


class MessageRetryView(_MessageActionView):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        message = get_object_or_404(Message, pk=pk)
        try:
            message_actions.message_retry(message=message, actor=request.user)
        except ServiceError as exc:
            flash.error(request, exc.detail)
        else:
            flash.success(request, f"Message {pk} is due now: the next worker run tries it.")
        return redirect("console:message-detail", pk=pk)


urlpatterns = [
    path("", MessageListView.as_view(), name="message-list"),
    path("<int:pk>/", MessageDetailView.as_view(), name="message-detail"),
    path("<int:pk>/cancel/", MessageCancelView.as_view(), name="message-cancel"),
    path("<int:pk>/retry/", MessageRetryView.as_view(), name="message-retry"),
]
