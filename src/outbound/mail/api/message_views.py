"""``/api/messages/``: services send mail through Outbound; admins follow its delivery."""

from __future__ import annotations

from typing import IO, Any

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from outbound.core import parsers
from outbound.core.api.schema import (
    NATIVE_ERRORS,
    ErrorDetailSerializer,
    ValidationErrorsSerializer,
)
from outbound.core.api.viewsets import ListFiltersOnlyMixin
from outbound.core.permissions import has_permission
from outbound.mail import message_actions, outbox
from outbound.mail.api.message_serializers import (
    MessageAccepted,
    MessageBatchInput,
    MessageBatchInputSchema,
    MessageBatchOutput,
    MessageInput,
    MessageOutput,
    message_input,
    plain_message_input,
)
from outbound.mail.models import Message

# A message may carry OUTBOUND_MAX_MESSAGE_BYTES (25 MiB by default) of text, html and
# attachments; its JSON is larger: base64 makes attachments 4/3 as large, escapes make text
# up to 3 times as large. None: derived from the setting (a number pins it).
MAX_REQUEST_BYTES: int | None = None


def max_request_bytes() -> int:
    return MAX_REQUEST_BYTES or 3 * int(settings.OUTBOUND_MAX_MESSAGE_BYTES) + 1024 * 1024


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request is too large for a message."
    default_code = "request_too_large"


class MessageJSONParser(BaseParser):
    """JSON with the message size limit instead of Django's 2.5 MiB request limit (which
    would refuse a message well inside the documented 25 MiB with a bare 400 page).

    Not a ``JSONParser`` subclass on purpose: DRF hands those ``request.body``, which is
    where Django applies ``DATA_UPLOAD_MAX_MEMORY_SIZE``; this one reads the stream itself,
    never more than :func:`max_request_bytes`, and decodes it as every API does
    (:func:`outbound.core.parsers.decode`: bounded depth, no NaN).
    """

    media_type = "application/json"

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Any = None
    ) -> Any:
        request = (parser_context or {}).get("request")
        length = int((request.META.get("CONTENT_LENGTH") if request else None) or 0)
        limit = self.limit()
        if length > limit:
            raise self.too_large()
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise self.too_large()
        return parsers.decode(raw, parser_context)

    def limit(self) -> int:
        return max_request_bytes()

    def too_large(self) -> exceptions.APIException:
        mib = int(settings.OUTBOUND_MAX_MESSAGE_BYTES) / (1024 * 1024)
        return RequestTooLarge(
            f"The request is too large: a message (text, html and attachments) may not "
            f"exceed {mib:g} MiB."
        )


class BatchJSONParser(MessageJSONParser):
    """The same, with the batch's own cap (``OUTBOUND_MAX_BATCH_BYTES``, 50 MiB by default):
    500 messages at the single message's limit would be gigabytes held in memory."""

    def limit(self) -> int:
        return int(settings.OUTBOUND_MAX_BATCH_BYTES)

    def too_large(self) -> exceptions.APIException:
        mib = self.limit() / (1024 * 1024)
        return RequestTooLarge(f"The request is too large: a batch may not exceed {mib:g} MiB.")


# What cancel and retry answer: the message, or (without ``messages.view``) its id and status.
ACTED_ON = PolymorphicProxySerializer(
    component_name="MessageActedOn",
    serializers=[MessageOutput, MessageAccepted],
    resource_type_field_name=None,
)


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
        "batch": "messages.send",
        "list": "messages.view",
        "retrieve": "messages.view",
        # Cancel and retry now are the sender's, not the viewer's: whoever may put mail in
        # the outbox may also hold it back or hurry it (see outbound.mail.message_actions).
        "cancel": "messages.send",
        "retry": "messages.send",
    }
    filterset_fields = {"status": ["exact", "in"], "is_failure_notice": ["exact"]}

    def get_queryset(self) -> QuerySet[Message]:
        return Message.objects.prefetch_related("recipients", "attempts", "attachments").order_by(
            "-id"
        )

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
        data = message_input(request.data)
        message, created = outbox.message_submit(
            data=data, actor=request.user, idempotency_key=data.pop("idempotency_key", None)
        )
        return Response(
            {"id": message.pk, "status": str(message.status)},
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        request=MessageBatchInputSchema,
        responses={
            202: OpenApiResponse(
                MessageBatchOutput,
                description="One result per message, in input order: the queued ones with "
                "their id, the refused ones with their errors.",
            ),
            200: OpenApiResponse(
                MessageBatchOutput,
                description="Nothing new was queued: every valid message is an idempotency "
                "key's message, queued before.",
            ),
            400: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="MessageBatchRefused",
                    serializers=[
                        MessageBatchOutput,
                        ValidationErrorsSerializer,
                        ErrorDetailSerializer,
                    ],
                    resource_type_field_name=None,
                ),
                description="No message is valid (each result names its errors), or the "
                "envelope is malformed (`messages` missing, not a list, empty, over 500).",
            ),
            **NATIVE_ERRORS.responses(413),
            409: NATIVE_ERRORS.response(409, "No configuration is active: nothing was queued."),
        },
    )
    @action(detail=False, methods=["post"], parser_classes=[BatchJSONParser])
    def batch(self, request: Request) -> Response:
        """Queue up to 500 messages in one request (one transaction). Each message is
        validated as a single POST would validate it and may carry its own
        `idempotency_key`; invalid ones are reported in their result and not queued."""
        envelope = MessageBatchInput(data=request.data)
        envelope.is_valid(raise_exception=True)
        items: list[dict[str, Any] | outbox.Refused] = []
        for raw in envelope.validated_data["messages"]:
            plain = plain_message_input(raw)  # as MessageInput would take it, if plainly so
            if plain is not None:
                items.append(plain)
                continue
            body = MessageInput(data=raw)
            items.append(
                dict(body.validated_data) if body.is_valid() else outbox.Refused(body.errors)
            )
        outcome = outbox.messages_submit_batch(items=items, actor=request.user)
        code: int
        if not outcome.accepted:
            code = status.HTTP_400_BAD_REQUEST
        else:
            code = status.HTTP_202_ACCEPTED if outcome.queued else status.HTTP_200_OK
        return Response({"results": outcome.results}, status=code)

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(ACTED_ON, description="Cancelled: it will not be sent."),
            409: NATIVE_ERRORS.response(
                409,
                "Only a queued or deferred message can be cancelled: this one is being "
                "delivered now (`sending`), or is already sent, failed or cancelled.",
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel a queued or deferred message: it is never sent, its status is `cancelled`
        and its recipients keep the status they had. A message a worker is delivering right
        now cannot be cancelled."""
        message_actions.message_cancel(message=self.get_object(), actor=request.user)
        return self.acted_on(request)

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(
                ACTED_ON,
                description="Due now: the next worker run tries it (it stays `deferred` "
                "until then).",
            ),
            409: NATIVE_ERRORS.response(
                409, "Only a deferred message can be retried now: this one is not deferred."
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        """Try a deferred message now instead of at its next scheduled attempt."""
        message_actions.message_retry(message=self.get_object(), actor=request.user)
        return self.acted_on(request)

    def acted_on(self, request: Request) -> Response:
        """The message as ``GET`` shows it; to a sender who may not view messages (whose
        ``messages.send`` lets it cancel, not read, other callers' mail) its id and status."""
        message = self.get_object()
        if has_permission(request.user, "messages.view"):
            return Response(self.get_serializer(message).data)
        return Response({"id": message.pk, "status": str(message.status)})
