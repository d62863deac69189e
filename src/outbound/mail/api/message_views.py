"""``/api/messages/``: services send mail through Outbound; admins follow its delivery."""

from __future__ import annotations

from typing import IO, Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from outbound.core import parsers
from outbound.core.api.schema import NATIVE_ERRORS
from outbound.core.api.viewsets import ListFiltersOnlyMixin
from outbound.mail import outbox
from outbound.mail.api.message_serializers import MessageAccepted, MessageInput, MessageOutput
from outbound.mail.models import Message

# A message may carry up to 10 MiB of body; its JSON (escapes included) may be larger.
MAX_REQUEST_BYTES = 4 * outbox.MAX_BODY_BYTES + 1024 * 1024


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request is too large: a message body may not exceed 10 MiB."
    default_code = "request_too_large"


class MessageJSONParser(BaseParser):
    """JSON with the message size limit instead of Django's 2.5 MiB request limit (which
    would refuse a message well inside the documented 10 MiB with a bare 400 page).

    Not a ``JSONParser`` subclass on purpose: DRF hands those ``request.body``, which is
    where Django applies ``DATA_UPLOAD_MAX_MEMORY_SIZE``; this one reads the stream itself,
    never more than :data:`MAX_REQUEST_BYTES`, and decodes it as every API does
    (:func:`outbound.core.parsers.decode`: bounded depth, no NaN).
    """

    media_type = "application/json"

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Any = None
    ) -> Any:
        request = (parser_context or {}).get("request")
        length = int((request.META.get("CONTENT_LENGTH") if request else None) or 0)
        if length > MAX_REQUEST_BYTES:
            raise RequestTooLarge
        raw = stream.read(MAX_REQUEST_BYTES + 1)
        if len(raw) > MAX_REQUEST_BYTES:
            raise RequestTooLarge
        return parsers.decode(raw, parser_context)


class MessageViewSet(
    ListFiltersOnlyMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Message],
):
    serializer_class = MessageOutput
    parser_classes = [MessageJSONParser]
    permission_actions = {
        "create": "messages.send",
        "list": "messages.view",
        "retrieve": "messages.view",
    }
    filterset_fields = {"status": ["exact", "in"], "is_failure_notice": ["exact"]}

    def get_queryset(self) -> QuerySet[Message]:
        return Message.objects.prefetch_related("recipients", "attempts").order_by("-id")

    @extend_schema(
        request=MessageInput,
        responses={
            202: OpenApiResponse(MessageAccepted, description="Queued."),
            200: OpenApiResponse(
                MessageAccepted, description="This idempotency key's message, queued before."
            ),
            **NATIVE_ERRORS.responses(413),
            409: NATIVE_ERRORS.response(409, "No configuration is active: nothing was queued."),
            422: NATIVE_ERRORS.response(
                422, "This idempotency key was used for a different message."
            ),
        },
    )
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
