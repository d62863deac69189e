"""Reads of webhooks and their deliveries."""

from __future__ import annotations

from django.db.models import QuerySet

from outbound.webhooks.models import Webhook, WebhookDelivery


def webhooks() -> QuerySet[Webhook]:
    return Webhook.objects.order_by("id")


def deliveries_of(webhook: Webhook) -> QuerySet[WebhookDelivery]:
    """Every attempt to deliver to ``webhook``, newest first."""
    return WebhookDelivery.objects.filter(webhook=webhook).order_by("-created_at", "-id")
