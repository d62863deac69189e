"""``/api/messages/``: services send mail through Outbound; admins follow its delivery."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from outbound.core.api.viewsets import ListFiltersOnlyMixin
from outbound.mail import outbox
from outbound.mail.api.message_serializers import MessageAccepted, MessageInput, MessageOutput
from outbound.mail.models import Message


class MessageViewSet(
    ListFiltersOnlyMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Message],
):
    serializer_class = MessageOutput
    permission_actions = {
        "create": "messages.send",
        "list": "messages.view",
        "retrieve": "messages.view",
    }
    filterset_fields = {"status": ["exact", "in"], "is_failure_notice": ["exact"]}

    def get_queryset(self) -> QuerySet[Message]:
        return Message.objects.prefetch_related("recipients", "attempts").order_by("-id")

    @extend_schema(request=MessageInput, responses={202: MessageAccepted, 200: MessageAccepted})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = MessageInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        message, created = outbox.message_submit(
            data=data, actor=request.user, idempotency_key=data.pop("idempotency_key", None)
        )
        return Response(
            {"id": message.pk, "status": str(message.status)},
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        )
