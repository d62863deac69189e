"""Shapes of ``/api/messages/``."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from outbound.mail.models import Attachment, Attempt, Message, Recipient


class AttachmentInput(serializers.Serializer[dict[str, Any]]):
    """One attachment; its fields are checked by the outbox (``outbox._clean``), as for every
    path that submits mail."""

    filename = serializers.CharField(max_length=255, trim_whitespace=False)
    content_type = serializers.CharField(
        max_length=255, trim_whitespace=False, help_text='"type/subtype", e.g. application/pdf.'
    )
    content = serializers.CharField(
        allow_blank=True, trim_whitespace=False, help_text="The file's bytes in base64."
    )
    content_id = serializers.CharField(
        max_length=202,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text='Makes the attachment inline: the html refers to it as "cid:<content_id>".',
    )


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
    attachments = serializers.ListField(child=AttachmentInput(), required=False)
    idempotency_key = serializers.CharField(max_length=200, required=False)


# What every CharField refuses (DRF's ProhibitNullCharacters and ProhibitSurrogateCharacters).
_REFUSED_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
_LISTS = ("to", "cc", "bcc")
_STRINGS = {"subject": 998, "text": None, "html": None, "reply_to": 254}  # name: max_length


def _plain(value: Any, max_length: int | None = None) -> bool:
    """A string every ``CharField(trim_whitespace=False)`` of ``MessageInput`` takes as is."""
    return (
        type(value) is str
        and (max_length is None or len(value) <= max_length)
        and _REFUSED_CHARACTERS.search(value) is None
    )


def message_input(data: Any) -> dict[str, Any]:
    """``MessageInput(data=data)``'s ``validated_data``, or its ``ValidationError`` (400).

    A body of plain values (strings, lists of non-empty strings, a dict of strings; no
    attachments) is taken as it is, without building a serializer (DRF deep-copies every
    declared field per instance: about a third of a single POST's own time); anything else,
    including every body with an error, goes through ``MessageInput`` itself, so which
    bodies are accepted and how errors are worded is DRF's alone (the batch checks its items
    the same way). ``tests/mail/test_submit_statements.py`` holds the two to the same
    answers."""
    fast = plain_message_input(data)
    if fast is not None:
        return fast
    body = MessageInput(data=data)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


def plain_message_input(data: Any) -> dict[str, Any] | None:
    """What ``MessageInput`` would validate ``data`` to, when that is plain to see; else
    ``None`` (let the serializer decide)."""
    if type(data) is not dict or "attachments" in data:
        return None
    clean: dict[str, Any] = {}
    for name in _LISTS:
        if name in data:
            items = data[name]
            if type(items) is not list or not all(_plain(i) and i for i in items):
                return None
            clean[name] = list(items)
    for name, max_length in _STRINGS.items():
        if name in data:
            if not _plain(data[name], max_length):
                return None
            clean[name] = data[name]
    if "headers" in data:
        headers = data["headers"]
        if type(headers) is not dict or not all(_plain(v) for v in headers.values()):
            return None
        clean["headers"] = dict(headers)
    if "idempotency_key" in data:
        key = data["idempotency_key"]
        # A CharField that trims: the key as DRF keeps it (stripped), never blank.
        if not _plain(key) or not key.strip() or len(key.strip()) > 200:
            return None
        clean["idempotency_key"] = key.strip()
    return clean


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


class AttachmentOutput(serializers.ModelSerializer[Attachment]):
    class Meta:
        model = Attachment
        fields = ["filename", "content_type", "size", "content_id"]  # never the content


class MessageOutput(serializers.ModelSerializer[Message]):
    recipients = RecipientOutput(many=True, read_only=True)
    attempts = AttemptOutput(many=True, read_only=True)
    attachments = AttachmentOutput(many=True, read_only=True)

    class Meta:
        model = Message
        fields = [
            "id", "status", "subject", "message_id", "config", "recipients", "attempts",
            "attachments",
            "attempt_count", "next_attempt_at", "last_error", "is_failure_notice",
            "idempotency_key", "created_at", "sent_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


MAX_BATCH_MESSAGES = 500


class MessageBatchInput(serializers.Serializer[dict[str, Any]]):
    """The envelope of ``POST /api/messages/batch/``; each item is checked on its own (as a
    ``MessageInput``) so one bad message does not refuse the others."""

    messages = serializers.ListField(
        child=serializers.JSONField(), allow_empty=False, max_length=MAX_BATCH_MESSAGES
    )


class MessageBatchInputSchema(serializers.Serializer[dict[str, Any]]):
    """What the OpenAPI document shows for the batch body (validation is ``MessageBatchInput``)."""

    messages = MessageInput(
        many=True, allow_empty=False, help_text=f"1 to {MAX_BATCH_MESSAGES} messages."
    )


# ``errors`` is a Serializer attribute, hence an inline serializer built from its fields.
RESULT_FIELDS: dict[str, serializers.Field[Any, Any, Any, Any]] = dict(
    id=serializers.IntegerField(required=False, help_text="The message's id."),
    status=serializers.CharField(required=False),
    errors=serializers.DictField(
        required=False,
        help_text="Why this message was not queued: the errors a single POST would give "
        "(per field; `idempotency_key` when the key was used for a different message).",
    ),
)


class MessageBatchOutput(serializers.Serializer[dict[str, Any]]):
    results = inline_serializer(
        name="MessageBatchItemResult",
        fields=RESULT_FIELDS,
        many=True,
        help_text="One per message, in input order.",
    )
