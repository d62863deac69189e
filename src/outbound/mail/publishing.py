"""The mail events the outside world may subscribe to (through :mod:`outbound.core.publish`):
a message's outcome after each recorded attempt, and SMTP configuration changes.

What an event carries: ids, statuses, the recipients' SMTP results, the configuration's id and
server, the idempotency key — never a subject, a body, a header or a secret. Nothing is built
(and no query run) when nobody subscribes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

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
OUTAGE_PATIENCE = 30.0  # seconds the worker keeps trying to queue events while the database is away
_GIVE_UP = threading.Event()
_GIVE_UP.set()  # (until_database_answers gives up after the patience only once told to stop)


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


def publish_outcomes(
    outcomes: Iterable[tuple[Message, SmtpConfig | None, list[Recipient], list[Recipient]]],
) -> None:
    """One event per recorded attempt (``message.sent``, ``.deferred`` or ``.failed``) and
    ``message.recipient_failed`` when recipients tried in it failed (those recipients alone);
    each tuple is (message, configuration used, all its recipients, those tried now). Called
    once the results are committed; all of a batch's events go out as one write."""
    try:
        wanted = {t for t in (*OUTCOME_EVENTS.values(), RECIPIENT_FAILED) if publish.wanted(t)}
        if not wanted:
            return
        events: list[publish.Event] = []
        for message, config, recipients, tried in outcomes:
            kind = OUTCOME_EVENTS.get(str(message.status))
            if kind in wanted:
                events.append((kind, message_data(message, config, recipients)))
            failed = [r for r in tried if r.status == RecipientStatus.FAILED]
            if failed and RECIPIENT_FAILED in wanted:
                events.append((RECIPIENT_FAILED, message_data(message, config, failed)))
    except Exception:  # an event lost must never stop the mail
        logger.exception("message events could not be built")
        return
    _publish(events)


def config_event(
    event_type: str, config: SmtpConfig, *, action: str, changed: Sequence[str] = ()
) -> tuple[str, dict[str, Any]]:
    """``smtp_config.activated`` / ``smtp_config.changed`` as it is now (field names, never
    values): built when the change is made, published once it is committed."""
    return (
        event_type,
        {
            "configuration": configuration_data(config),
            "action": action,
            "is_active": config.is_active,
            "changed_fields": sorted(set(changed)),
        },
    )


def publish_config_event(event: tuple[str, dict[str, Any]]) -> None:
    if publish.wanted(event[0]):
        _publish([event], patient=False)


def _publish(events: list[publish.Event], *, patient: bool = True) -> None:
    """``patient``: the worker waits out a database outage of up to
    :data:`OUTAGE_PATIENCE` seconds to queue its events (it has nothing else to do until the
    database is back); a web request tries once."""
    if not events:
        return
    from outbound.mail.sender import until_database_answers  # (the sender imports this module)

    try:
        if patient:
            until_database_answers(
                lambda: publish.publish(events), stop=_GIVE_UP, patience=OUTAGE_PATIENCE
            )
        else:
            publish.publish(events)
    except Exception:  # an event lost must never stop the mail
        logger.exception("%d webhook event(s) could not be queued", len(events))
