"""Webhooks (where events are POSTed, with a sealed signing secret) and their deliveries
(one row per attempt)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from outbound.core.models import SecretHolder
from outbound.core.validators import validate_multiline_text

REQUIRED = {"blank": "This field is required.", "null": "This field is required."}
URL_MAX_LENGTH = 2000


class Webhook(SecretHolder):
    """One receiver of events. The signing secret (``whsec_…``) is a sealed secret, shown
    once when it is made (at creation and on rotation)."""

    SECRET_SIGNING = "signing_secret"

    url = models.CharField(max_length=URL_MAX_LENGTH, error_messages=REQUIRED)
    events = models.JSONField(default=list, blank=True)
    is_enabled = models.BooleanField(default=True)
    description = models.CharField(
        max_length=200, blank=True, default="", validators=[validate_multiline_text]
    )
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    modified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    @property
    def has_signing_secret(self) -> bool:
        return self.has_secret(self.SECRET_SIGNING)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # not attempted yet (or under way)
    DELIVERED = "delivered", "Delivered"  # the receiver answered 2xx
    RETRYING = "retrying", "Retrying"  # this attempt failed; the next one is scheduled
    FAILED = "failed", "Failed"  # this attempt failed and was the last (24 h after the event)


class WebhookDelivery(models.Model):
    """One attempt to deliver one event to one webhook. Every retry of an event is a new row
    with the same ``event_id`` (the Standard Webhooks ``webhook-id``) and the next
    ``attempt``. ``payload`` is the event's body as signed: it never holds a message body or
    a secret."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=64)
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    payload = models.JSONField(default=dict)
    # When the event happened: retries stop 24 h after it.
    event_at = models.DateTimeField()
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # When this attempt is due (pending) or when the next one is (retrying).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["webhook", "-created_at", "-id"]),
            models.Index(fields=["event_id", "attempt"]),
            # The task thread's sweep: pending deliveries long past due.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhooks_pending_due",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["webhook", "event_id", "attempt"], name="webhooks_one_row_per_attempt"
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in DeliveryStatus]),
                name="webhooks_delivery_status_valid",
            ),
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} attempt {self.attempt} ({self.status})"
