"""Submitting mail: the outbox row and its recipients are written in the caller's transaction
and the delivery task is enqueued on commit (a rolled-back request sends nothing)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status

from outbound.core.errors import Conflict, ServiceError
from outbound.mail import compose
from outbound.mail.models import Message, Recipient, RecipientKind
from outbound.mail.selectors import active_smtp_config

MAX_RECIPIENTS = 100
MAX_BODY_BYTES = 10 * 1024 * 1024
NO_ACTIVE_CONFIG = "No SMTP configuration is active; nothing was queued."
IDEMPOTENCY_KEY_REUSED = (
    "This idempotency_key was already used with a different message. An idempotency_key "
    "can only be reused with the same request body it was first sent with; use a new key "
    "for a new message."
)
# What a submission says, with the value an omitted field means: the fingerprint's input.
MESSAGE_FIELDS: dict[str, Any] = {
    "to": [], "cc": [], "bcc": [], "subject": "", "text": "", "html": "", "reply_to": "",
    "headers": {},
}  # fmt: skip


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for kind in ("to", "cc", "bcc"):
        mailboxes = []
        for i, value in enumerate(data.get(kind) or []):
            try:
                mailboxes.append(compose.clean_mailbox(str(value)))
            except ValidationError as exc:
                errors.setdefault(kind, []).append(f"Item {i + 1}: {exc.messages[0]}")
        clean[kind] = mailboxes
    total = sum(len(data.get(k) or []) for k in ("to", "cc", "bcc"))
    if total == 0:
        errors.setdefault("to", []).append("At least one recipient is required.")
    if total > MAX_RECIPIENTS:
        errors.setdefault("to", []).append(
            f"At most {MAX_RECIPIENTS} recipients (to, cc and bcc together) are allowed."
        )
    for field in ("subject",):
        try:
            clean[field] = compose.clean_header_value(data.get(field) or "")
        except ValidationError as exc:
            errors[field] = exc.messages
    if data.get("reply_to"):
        try:
            clean["reply_to"] = compose.clean_mailbox(data["reply_to"])
        except ValidationError as exc:
            errors["reply_to"] = exc.messages
    else:
        clean["reply_to"] = ""
    headers: dict[str, str] = {}
    for name, value in (data.get("headers") or {}).items():
        try:
            headers[compose.clean_header_name(str(name))] = compose.clean_header_value(str(value))
        except ValidationError as exc:
            errors.setdefault("headers", []).extend(exc.messages)
    clean["headers"] = headers
    clean["text"], clean["html"] = data.get("text") or "", data.get("html") or ""
    if not (clean["text"] or clean["html"]):
        errors.setdefault("text", []).append("Give a text or an html body.")
    sizes = {field: len(clean[field].encode()) for field in ("text", "html")}
    if sum(sizes.values()) > MAX_BODY_BYTES:
        # Name the part that carries most of the weight (an html-only message has no "text").
        field = max(sizes, key=lambda name: sizes[name])
        errors.setdefault(field, []).append("The body may not exceed 10 MiB (text and html).")
    if errors:
        raise ValidationError(errors)
    return clean


def message_submit(
    *, data: dict[str, Any], actor: Any, idempotency_key: str | None = None
) -> tuple[Message, bool]:
    """Queue a message; ``(message, created)``. The same key from the same caller with the
    same message returns the first message instead of queueing a second one; with a different
    message it is refused (422), as a key names one request."""
    owner = actor if getattr(actor, "pk", None) else None
    fingerprint = request_fingerprint(data) if idempotency_key else ""
    if idempotency_key:
        existing = Message.objects.filter(
            submitted_by=owner, idempotency_key=idempotency_key
        ).first()
        if existing is not None:
            return _replay(existing, fingerprint), False
    clean = _clean(data)
    try:
        with transaction.atomic():
            message = _queue(
                clean,
                owner=owner,
                idempotency_key=idempotency_key or None,
                request_fingerprint=fingerprint,
            )
    except IntegrityError:
        # The same key raced in from a concurrent request: that one is the key's message.
        existing = Message.objects.filter(
            submitted_by=owner, idempotency_key=idempotency_key
        ).first()
        if existing is None:
            raise
        return _replay(existing, fingerprint), False
    return message, True


def request_fingerprint(data: dict[str, Any]) -> str:
    """SHA-256 of the submission in a canonical form (sorted keys, omitted fields as their
    empty value), so the same message written differently is the same request."""
    canonical = {name: data.get(name) or empty for name, empty in MESSAGE_FIELDS.items()}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _replay(existing: Message, fingerprint: str) -> Message:
    # Messages queued before fingerprints were kept have none: they replay as before.
    if existing.request_fingerprint and existing.request_fingerprint != fingerprint:
        raise ServiceError(
            IDEMPOTENCY_KEY_REUSED,
            code="idempotency_key_reused",
            status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    return existing


def _queue(
    clean: dict[str, Any],
    *,
    owner: Any,
    idempotency_key: str | None,
    request_fingerprint: str = "",
    is_failure_notice: bool = False,
) -> Message:
    config = active_smtp_config()
    if config is None:
        raise Conflict(NO_ACTIVE_CONFIG, code="no_active_configuration")
    message = Message.objects.create(
        submitted_by=owner,
        idempotency_key=idempotency_key,
        request_fingerprint=request_fingerprint,
        subject=clean["subject"],
        text=clean["text"],
        html=clean["html"],
        reply_to=clean["reply_to"],
        headers=clean["headers"],
        # In the domain of the address it will go out from (retries keep it).
        message_id=compose.new_message_id(
            compose.envelope_sender(config.sender_address, config.username)
        ),
        is_failure_notice=is_failure_notice,
        next_attempt_at=timezone.now(),
    )
    Recipient.objects.bulk_create(
        Recipient(message=message, kind=kind, address=address)
        for kind in RecipientKind.values
        for address in clean[kind]
    )
    enqueue_on_commit(message.pk)
    return message


def queue_failure_notice(*, failed: Message, addresses: list[str], summary: str) -> Message | None:
    """One notice to the configuration's failure addresses; never about a notice."""
    if failed.is_failure_notice or not addresses:
        return None
    clean = {
        "to": addresses, "cc": [], "bcc": [], "reply_to": "", "headers": {}, "html": "",
        "subject": f"Undelivered mail: {failed.subject[:150]}".strip(),
        "text": summary,
    }  # fmt: skip
    try:
        return _queue(clean, owner=None, idempotency_key=None, is_failure_notice=True)
    except Conflict:
        return None


def enqueue_on_commit(message_id: int, *, run_after: Any = None) -> None:
    from outbound.mail.tasks import deliver_message

    def enqueue() -> None:
        task = deliver_message.using(run_after=run_after) if run_after else deliver_message
        task.enqueue(message_id)

    transaction.on_commit(enqueue)
