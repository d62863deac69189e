"""Reads of webhooks and their deliveries."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, F, Max, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from outbound.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery

FAILING = (DeliveryStatus.FAILED, DeliveryStatus.RETRYING)


def webhooks() -> QuerySet[Webhook]:
    return Webhook.objects.order_by("id")


def deliveries_of(webhook: Webhook) -> QuerySet[WebhookDelivery]:
    """Every attempt to deliver to ``webhook``, newest first."""
    return WebhookDelivery.objects.filter(webhook=webhook).order_by("-created_at", "-id")


def failing_webhooks(*, hours: int = 24, now: datetime | None = None) -> QuerySet[Webhook]:
    """Webhooks whose deliveries of the last ``hours`` failed (or wait for a retry) since the
    last one that got through, worst first: ``failures`` (how many attempts), ``last_failure_at``
    and the last failed attempt's ``last_error`` and ``last_http_status``. One query."""
    since = (now or timezone.now()) - timedelta(hours=hours)
    recent = Q(deliveries__created_at__gte=since)
    failed = recent & Q(deliveries__status__in=FAILING)
    last_failed = WebhookDelivery.objects.filter(
        webhook=OuterRef("pk"), status__in=FAILING, created_at__gte=since
    ).order_by("-created_at", "-id")
    return (
        Webhook.objects.annotate(
            failures=Count("deliveries", filter=failed),
            last_failure_at=Max("deliveries__created_at", filter=failed),
            last_success_at=Max(
                "deliveries__created_at",
                filter=recent & Q(deliveries__status=DeliveryStatus.DELIVERED),
            ),
            last_error=Subquery(last_failed.values("error")[:1]),
            last_http_status=Subquery(last_failed.values("http_status")[:1]),
        )
        .filter(failures__gt=0)
        .filter(Q(last_success_at__isnull=True) | Q(last_success_at__lt=F("last_failure_at")))
        .only("id", "url", "description", "is_enabled")
        .order_by("-failures", "-last_failure_at", "id")
    )
