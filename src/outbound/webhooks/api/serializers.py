"""Input and output of ``/api/webhooks/``: field types here, every rule in the services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from outbound.webhooks.models import URL_MAX_LENGTH, Webhook, WebhookDelivery
from outbound.webhooks.services import EVENTS


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "enum": list(EVENTS)},
        "description": "The events this webhook receives (at least one).",
    }
)
class EventsField(serializers.ListField):
    """A list of event names; which names are known is the services' rule."""

    child = serializers.CharField(allow_blank=True, max_length=64)


class WebhookSerializer(serializers.ModelSerializer[Webhook]):
    url = serializers.CharField(
        max_length=URL_MAX_LENGTH,
        help_text="Where events are POSTed: https:// on port 443, or what OUTBOUND_EGRESS_ALLOW "
        "opens (other ports, other addresses, plain http:// to its networks).",
    )
    events = EventsField()
    description = serializers.CharField(
        max_length=200, required=False, allow_blank=True, trim_whitespace=False
    )

    class Meta:
        model = Webhook
        fields = [
            "id",
            "url",
            "events",
            "is_enabled",
            "description",
            "created_at",
            "modified_at",
        ]
        read_only_fields = ["id", "created_at", "modified_at"]


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The signing secret (`whsec_…`): shown in this answer only. Keep it to "
        "verify deliveries.",
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class SecretSerializer(serializers.Serializer[Any]):
    secret = serializers.CharField(
        read_only=True,
        help_text="The new signing secret (`whsec_…`), shown in this answer only; the old "
        "one signs nothing from now on.",
    )


class WebhookDeliverySerializer(serializers.ModelSerializer[WebhookDelivery]):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_type",
            "event_id",
            "attempt",
            "status",
            "http_status",
            "duration_ms",
            "error",
            "created_at",
            "finished_at",
            "next_attempt_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "event_id": {"help_text": "The `webhook-id` header: the same on every attempt."},
            "status": {
                "help_text": "`pending` (not made yet), `delivered` (2xx), `retrying` (failed; "
                "the next attempt is at `next_attempt_at`), `failed` (failed, the last one)."
            },
            "http_status": {"help_text": "The receiver's HTTP status; null if none came."},
            "error": {"help_text": "Why the attempt failed (empty when delivered)."},
        }
