"""The mail events the outside world may subscribe to (through :mod:`outbound.core.publish`):
a message's outcome after each recorded attempt, and SMTP configuration changes.

What an event carries: ids, statuses, the recipients' SMTP results, the configuration's id and
server, the idempotency key — never a subject, a body, a header or a secret. Nothing is built
(and no query run) when nobody subscribes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction

from outbound.core import publish
from outbound.mail.models import Message, MessageStatus, Recipient, RecipientStatus, SmtpConfig

logger = logging.getLogger(__name__)

OUTCOME_EVENTS: dict[str, str] = {
    MessageStatus.SENT.value: "message.sent",
    MessageStatus.DEFERRED.value: "message.deferred",
    MessageStatus.FAILED.value: "message.failed",
}
RECIPIENT_FAILED = "message.recipient_failed"
CONFIG_ACTIVATED = "smtp_config.activated"
CONFIG_CHANGED = "smtp_config.changed"


def _when(value: datetime | None) -> str | None:
    """ISO 8601 in UTC to the millisecond, as the event's own ``timestamp``."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def configuration_data(config: SmtpConfig | None) -> dict[str, Any] | None:
    if config is None:
        return None
    return {"id": config.pk, "host": config.host, "port": config.port}


def recipient_data(r: Recipient) -> dict[str, Any]:
    return {
        "address": r.address,
        "kind": r.kind,
        "status": r.status,
        "smtp_code": r.smtp_code,
        "smtp_reply": r.smtp_reply,
    }


def message_data(
    message: Message, config: SmtpConfig | None, recipients: Sequence[Recipient]
) -> dict[str, Any]:
    return {
        "id": message.pk,
        "message_id": message.message_id,
        "status": message.status,
        "idempotency_key": message.idempotency_key,
        "attempt": message.attempt_count,
        "error": message.last_error,
        "created_at": _when(message.created_at),
        "sent_at": _when(message.sent_at),
        "finished_at": _when(message.finished_at),
        "next_attempt_at": _when(message.next_attempt_at)
        if message.status == MessageStatus.DEFERRED
        else None,
        "configuration": configuration_data(config),
        "recipients": [recipient_data(r) for r in recipients],
    }


def outcomes_wanted() -> frozenset[str]:
    """The message events somebody wants now. Asked before the results' transaction opens
    (answered from the subscribers' cache: no query, most of the time)."""
    return frozenset(t for t in (*OUTCOME_EVENTS.values(), RECIPIENT_FAILED) if publish.wanted(t))


def queue_outcomes(
    wanted: frozenset[str],
    outcomes: Iterable[tuple[Message, SmtpConfig | None, list[Recipient], list[Recipient]]],
) -> None:
    """One event per recorded attempt (``message.sent``, ``.deferred`` or ``.failed``) and
    ``message.recipient_failed`` when recipients tried in it failed (those recipients alone);
    each tuple is (message, configuration used, all its recipients, those tried now).
    Called inside the transaction that records the results: the events are written with
    them (at least once: a worker dying before the commit leaves neither), all of a batch's
    as one write. ``wanted``: :func:`outcomes_wanted`."""
    if not wanted:
        return
    try:
        events: list[publish.Event] = []
        for message, config, recipients, tried in outcomes:
            kind = OUTCOME_EVENTS.get(str(message.status))
            if kind in wanted:
                events.append(publish.event(kind, message_data(message, config, recipients)))
            failed = [r for r in tried if r.status == RecipientStatus.FAILED]
            if failed and RECIPIENT_FAILED in wanted:
                events.append(
                    publish.event(RECIPIENT_FAILED, message_data(message, config, failed))
                )
    except Exception:  # an event lost must never stop the mail
        logger.exception("message events could not be built")
        return
    _publish(events)


def config_event(
    event_type: str, config: SmtpConfig, *, action: str, changed: Sequence[str] = ()
) -> publish.Event:
    """``smtp_config.activated`` / ``smtp_config.changed`` as it is now (field names, never
    values), its id assigned now."""
    return publish.event(
        event_type,
        {
            "configuration": configuration_data(config),
            "action": action,
            "is_active": config.is_active,
            "changed_fields": sorted(set(changed)),
        },
    )


def publish_config_event(event: publish.Event) -> None:
    """Called inside the change's transaction: the event is written with the change."""
    if publish.wanted(event.type):
        _publish([event])


def _publish(events: list[publish.Event]) -> None:
    """Write ``events`` in the caller's transaction, under a savepoint. The database
    unavailable fails the caller's transaction too (the sender writes both again once it
    answers; a request answers 503 and changes nothing). An event that cannot be written
    for another reason (a bug, a constraint) is logged and never undoes the change it
    reports."""
    if not events:
        return
    try:
        with transaction.atomic():
            publish.publish(events)
    except Exception as exc:
        lost = not connection.in_atomic_block or transaction.get_rollback()
        if isinstance(exc, OperationalError | InterfaceError) or (
            isinstance(exc, DatabaseError) and lost
        ):
            raise  # both or neither: the caller's retry writes the events again
        logger.exception("%d webhook event(s) could not be queued", len(events))
