"""Shapes of ``/api/messages/``."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from outbound.mail.models import Attempt, Message, Recipient


class MessageInput(serializers.Serializer[dict[str, Any]]):
    to = serializers.ListField(child=serializers.CharField(trim_whitespace=False), required=False)
    cc = serializers.ListField(child=serializers.CharField(trim_whitespace=False), required=False)
    bcc = serializers.ListField(child=serializers.CharField(trim_whitespace=False), required=False)
    subject = serializers.CharField(
        max_length=998, required=False, allow_blank=True, trim_whitespace=False
    )
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    html = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    reply_to = serializers.CharField(
        max_length=254, required=False, allow_blank=True, trim_whitespace=False
    )
    headers = serializers.DictField(
        child=serializers.CharField(trim_whitespace=False, allow_blank=True), required=False
    )
    idempotency_key = serializers.CharField(max_length=200, required=False)


class MessageAccepted(serializers.Serializer[Message]):
    id = serializers.IntegerField()
    status = serializers.CharField()


class RecipientOutput(serializers.ModelSerializer[Recipient]):
    class Meta:
        model = Recipient
        fields = ["address", "kind", "status", "smtp_code", "smtp_reply", "updated_at"]


class AttemptOutput(serializers.ModelSerializer[Attempt]):
    class Meta:
        model = Attempt
        # ``server``: the host:port this attempt went to (the configuration may change later).
        fields = ["number", "started_at", "finished_at", "outcome", "detail", "config", "server"]


class MessageOutput(serializers.ModelSerializer[Message]):
    recipients = RecipientOutput(many=True, read_only=True)
    attempts = AttemptOutput(many=True, read_only=True)

    class Meta:
        model = Message
        fields = [
            "id", "status", "subject", "message_id", "config", "recipients", "attempts",
            "attempt_count", "next_attempt_at", "last_error", "is_failure_notice",
            "idempotency_key", "created_at", "sent_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields
