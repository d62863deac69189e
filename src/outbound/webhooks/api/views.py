"""``/api/webhooks/``: thin views over :mod:`outbound.webhooks.services`."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from outbound.core.api.schema import NATIVE_ERRORS
from outbound.core.api.throttling import CallOutThrottle
from outbound.core.api.viewsets import ListFiltersOnlyMixin
from outbound.webhooks import selectors, services
from outbound.webhooks.api.serializers import (
    SecretSerializer,
    WebhookCreatedSerializer,
    WebhookDeliverySerializer,
    WebhookSerializer,
)
from outbound.webhooks.models import Webhook

# An answer that carries a secret is kept by no cache (browser, proxy).
NO_STORE = {"Cache-Control": "no-store"}
GONE = "No such webhook (it may have been deleted meanwhile)."
REFUSED = (
    "The webhook is refused: each problem is named (an unknown event, a URL that is not "
    "http(s) or that the egress policy does not allow, …)."
)


@extend_schema_view(
    create=extend_schema(
        request=WebhookSerializer,
        responses={
            201: OpenApiResponse(
                WebhookCreatedSerializer,
                description="Created; `secret` is the signing secret, shown this once.",
            ),
            400: NATIVE_ERRORS.response(400, REFUSED),
        },
    ),
    update=extend_schema(
        responses={200: WebhookSerializer, 400: NATIVE_ERRORS.response(400, REFUSED)}
    ),
    partial_update=extend_schema(
        responses={200: WebhookSerializer, 400: NATIVE_ERRORS.response(400, REFUSED)}
    ),
    destroy=extend_schema(
        responses={204: OpenApiResponse(description="Deleted, with its delivery record.")}
    ),
)
class WebhookViewSet(ListFiltersOnlyMixin, viewsets.ModelViewSet[Webhook]):
    """Webhooks: where Outbound POSTs events (Standard Webhooks, signed with the webhook's
    secret)."""

    serializer_class = WebhookSerializer
    permission_resource = "webhooks"
    permission_actions = {
        "rotate_secret": "webhooks.edit",
        "test": "webhooks.edit",
        "deliveries": "webhooks.view",
    }
    filterset_fields = ["is_enabled"]
    throttle_scope = "webhook_test"  # only the test action is throttled

    def get_queryset(self) -> QuerySet[Webhook]:
        return selectors.webhooks()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        webhook, secret = services.create_webhook(actor=request.user, **body.validated_data)
        answer = WebhookCreatedSerializer(webhook).data
        answer["secret"] = secret
        return Response(answer, status=status.HTTP_201_CREATED, headers=NO_STORE)

    def perform_update(self, serializer: BaseSerializer[Webhook]) -> None:
        assert serializer.instance is not None
        serializer.instance = services.update_webhook(
            serializer.instance, actor=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance: Webhook) -> None:
        services.delete_webhook(instance, actor=self.request.user)

    @extend_schema(
        request=None,
        responses={200: OpenApiResponse(SecretSerializer, description="The new secret.")},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret", filter_backends=[])
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        """Replace the signing secret; the new one is answered once."""
        secret = services.rotate_secret(self.get_object(), actor=request.user)
        return Response({"secret": secret}, headers=NO_STORE)

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(
                WebhookDeliverySerializer,
                description="The test delivery as it went: `delivered` (the receiver answered "
                "2xx) or `failed` with the HTTP status and the reason. A test is not retried.",
            ),
            404: NATIVE_ERRORS.response(404, GONE),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        filter_backends=[],
        throttle_classes=[CallOutThrottle],
    )
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Send a `webhook.test` event now (also to a disabled webhook) and answer its
        result. Spends the caller's connection-test budget (`OUTBOUND_TEST_RATE`)."""
        delivery = services.send_test(self.get_object(), actor=request.user)
        return Response(WebhookDeliverySerializer(delivery).data)

    @extend_schema(request=None, responses={200: WebhookDeliverySerializer(many=True)})
    @action(detail=True, methods=["get"], filter_backends=[])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """Every delivery attempt to this webhook, newest first (each retry is a row of its
        own with the same `event_id` and the next `attempt`)."""
        rows = selectors.deliveries_of(self.get_object())
        paginator = self.paginator
        assert paginator is not None
        # No view: total_count counts this webhook's deliveries, not the webhooks.
        page = paginator.paginate_queryset(rows, request)
        assert page is not None
        return paginator.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)
