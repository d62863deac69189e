"""Messages: what the sender did with each message services submitted (status, recipients'
replies, attempts, attachments by name, type and size). Read-only; bodies and attachment
contents are not shown."""

from __future__ import annotations

from django.db.models import Count, Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path

from outbound.console.views.base import ConsoleView, paginate
from outbound.mail.models import Attempt, Message, MessageStatus

VIEW = "messages.view"


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
        return render(request, "console/messages/detail.html", {"message": message})


urlpatterns = [
    path("", MessageListView.as_view(), name="message-list"),
    path("<int:pk>/", MessageDetailView.as_view(), name="message-detail"),
]
