"""Writes to webhooks, the events they receive and every delivery attempt.

The API and the console call these; each change records its event. Deliveries follow the
Standard Webhooks specification (:mod:`outbound.webhooks.signing`) and go out under the
egress policy (:func:`outbound.core.http.post_json`, the same rule that checks a URL when it
is saved). At least once: each attempt is a Tasks API task that gets the delivery row's id;
a failed attempt schedules the next with backoff (``OUTBOUND_WEBHOOK_BACKOFF``) until
``OUTBOUND_WEBHOOK_MAX_AGE`` after the event, then the last attempt is ``failed``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.http import Http404
from django.utils import timezone

from outbound.core import egress, http, metrics
from outbound.core.events import record_event
from outbound.core.models import stamp_actor
from outbound.core.publish import Event, as_event, new_event_id
from outbound.core.secrets import SecretDecryptionError
from outbound.webhooks import signing
from outbound.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery

logger = logging.getLogger(__name__)

RESOURCE = "webhook"
EVENTS = (
    "message.sent",
    "message.deferred",
    "message.failed",
    "message.recipient_failed",
    "smtp_config.activated",
    "smtp_config.changed",
    "smtp_config.failed_over",
    "smtp_config.failed_back",
    "webhook.test",
)
FIELDS = ("url", "events", "is_enabled", "description")
URL_CHECK_TIMEOUT = 3.0  # seconds a save may spend resolving the URL's host
SECRET_UNREADABLE = (
    "The signing secret cannot be read (was the encryption key changed?); rotate it."
)
DISABLED = "The webhook was disabled; no further attempts."
INTERNAL_ERROR = "The delivery failed inside Outbound ({name}); it is tried again."
ERROR_MAX = 1000
TEST_PATIENCE = 10.0  # seconds a test request waits for the database to record its attempt


# --- validation ------------------------------------------------------------------------------


def url_errors(url: Any) -> list[str]:
    """Why ``url`` cannot be a webhook's URL (``[]`` when it can). The egress rule is
    :func:`outbound.core.http.check_web_target`, the one every delivery passes too. A host
    that does not resolve now is accepted (each delivery resolves and checks it again)."""
    try:
        target = http.parse_web_url(url)
    except http.InvalidUrl as exc:
        return [str(exc)]
    try:
        addresses = egress.resolve(target.host, target.port, timeout=URL_CHECK_TIMEOUT)
    except egress.ResolutionFailed:
        if not http.web_policy().port_allowed(target.port):
            return [egress.DENIED_MESSAGE]
        if target.scheme == "http":
            return [http.URL_PLAIN_HTTP]
        return []
    try:
        http.check_web_target(target, addresses)
    except (egress.EgressDenied, http.InvalidUrl) as exc:
        return [str(exc)]
    return []


def event_errors(events: Any) -> list[str]:
    if not isinstance(events, list | tuple) or not all(isinstance(e, str) for e in events):
        return ["Enter a list of event names."]
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        return [f'"{e}" is not a valid choice.' for e in unknown]
    if not events:
        return ["Choose at least one event."]
    return []


def _apply(webhook: Webhook, fields: dict[str, Any]) -> list[str]:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown webhook fields: {sorted(unknown)}")
    errors: dict[str, list[str]] = {}
    changed: list[str] = []
    if "url" in fields:
        url = fields["url"]
        if url != webhook.url:
            found = url_errors(url)
            if found:
                errors["url"] = found
    if "events" in fields:
        found = event_errors(fields["events"])
        if found:
            errors["events"] = found
        else:
            # Known names, once each, in the catalogue's order.
            fields = {**fields, "events": [e for e in EVENTS if e in fields["events"]]}
    if "is_enabled" in fields and not isinstance(fields["is_enabled"], bool):
        errors["is_enabled"] = ["Must be a valid boolean."]
    for name in FIELDS:
        if name in fields and name not in errors and getattr(webhook, name) != fields[name]:
            setattr(webhook, name, fields[name])
            changed.append(name)
    try:
        webhook.full_clean(exclude=["url", "events"], validate_constraints=False)
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            errors.setdefault(name, []).extend(messages)
    if not webhook.url and "url" not in errors:
        errors["url"] = ["This field is required."]
    if not webhook.events and "events" not in errors:
        errors["events"] = ["Choose at least one event."]
    if errors:
        raise ValidationError(errors)
    return changed


# --- writes -----------------------------------------------------------------------------------


def _locked(pk: int) -> Webhook:
    """The webhook, locked for this transaction; 404 when it was deleted meanwhile."""
    webhook = Webhook.objects.select_for_update().filter(pk=pk).first()
    if webhook is None:
        raise Http404("No such webhook.")
    return webhook


def create_webhook(*, actor: Any, **fields: Any) -> tuple[Webhook, str]:
    """A new webhook and its signing secret (``whsec_…``): the only time the secret is shown."""
    webhook = Webhook()
    fields = {"is_enabled": True, **fields}
    changed = _apply(webhook, fields)
    secret = signing.new_secret()
    webhook.set_secret(Webhook.SECRET_SIGNING, secret)
    stamp_actor(webhook, actor, creating=True)
    with transaction.atomic():
        webhook.save()
        record_event(
            resource_type=RESOURCE,
            resource_id=webhook.pk,
            action="created",
            actor=actor,
            changed_fields=changed,
        )
        transaction.on_commit(SUBSCRIPTIONS.invalidate)
    return webhook, secret


def update_webhook(webhook: Webhook, *, actor: Any, **fields: Any) -> Webhook:
    with transaction.atomic():
        webhook = _locked(webhook.pk)
        changed = _apply(webhook, fields)
        if not changed:
            return webhook
        stamp_actor(webhook, actor, creating=False)
        webhook.save()
        record_event(
            resource_type=RESOURCE,
            resource_id=webhook.pk,
            action="updated",
            actor=actor,
            changed_fields=changed,
        )
        transaction.on_commit(SUBSCRIPTIONS.invalidate)
    return webhook


def delete_webhook(webhook: Webhook, *, actor: Any) -> None:
    """The webhook and its delivery record; its pending attempts are not made."""
    with transaction.atomic():
        pk = webhook.pk
        webhook.delete()
        record_event(resource_type=RESOURCE, resource_id=pk, action="deleted", actor=actor)
        transaction.on_commit(SUBSCRIPTIONS.invalidate)


def rotate_secret(webhook: Webhook, *, actor: Any) -> str:
    """A new signing secret (answered once); the old one signs nothing from now on."""
    secret = signing.new_secret()
    with transaction.atomic():
        webhook = _locked(webhook.pk)
        webhook.set_secret(Webhook.SECRET_SIGNING, secret)
        stamp_actor(webhook, actor, creating=False)
        webhook.save(update_fields=["sealed_secrets", "modified_at", "modified_by"])
        record_event(
            resource_type=RESOURCE,
            resource_id=webhook.pk,
            action="secret_rotated",
            actor=actor,
            changed_fields=["secret"],
        )
    return secret


def send_test(webhook: Webhook, *, actor: Any) -> WebhookDelivery:
    """Send a ``webhook.test`` event now (even to a disabled webhook) and answer how it went.
    A test is one attempt: it is not retried."""
    now = timezone.now()
    actor_name = getattr(actor, "username", "") or ""
    with transaction.atomic():
        # Under the webhook's lock: a delete racing the test is a 404, never a lost insert.
        webhook = _locked(webhook.pk)
        delivery = WebhookDelivery.objects.create(
            webhook=webhook,
            event_id=new_event_id(),
            event_type="webhook.test",
            attempt=1,
            payload=_payload("webhook.test", {"webhook": webhook.pk, "actor": actor_name}, now),
            event_at=now,
            next_attempt_at=now,
        )
        record_event(resource_type=RESOURCE, resource_id=webhook.pk, action="tested", actor=actor)
    answer = _post(webhook, delivery)
    # The attempt is made: record it through a short database outage (a request waits a
    # little; should it give up, the task thread's sweep makes the attempt again).
    _recorded(lambda: _finish(delivery, answer, retry=False), patience=TEST_PATIENCE)
    return delivery


# --- events -----------------------------------------------------------------------------------


class Subscriptions:
    """Which enabled webhook wants which event, read at most once a second per process (and
    at once after a change made here): deciding that nobody wants an event costs no query."""

    TTL = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0
        self._hooks: list[tuple[int, frozenset[str]]] = []
        self._loaded = False

    def invalidate(self) -> None:
        self._until = 0.0

    def current(self) -> list[tuple[int, frozenset[str]]]:
        now = time.monotonic()
        if now < self._until:
            return self._hooks
        with self._lock:
            if time.monotonic() >= self._until:
                # Inside a transaction, a savepoint: a failed read does not undo the caller's.
                within = (
                    transaction.atomic if connection.in_atomic_block else contextlib.nullcontext
                )
                try:
                    with within():
                        rows = list(
                            Webhook.objects.filter(is_enabled=True).values_list("pk", "events")
                        )
                    self._hooks = [(pk, frozenset(events or ())) for pk, events in rows]
                    self._loaded = True
                except DatabaseError:
                    if not self._loaded:  # never read: "nobody subscribes" would lose events
                        raise
                    # Keep what we knew; the next second asks again.
                    logger.debug("webhook subscriptions not refreshed", exc_info=True)
                self._until = time.monotonic() + self.TTL
        return self._hooks

    def wants(self, event_type: str) -> bool:
        return any(event_type in events for _, events in self.current())

    def receive(self, events: list[Event]) -> None:
        emit_many(events)


SUBSCRIPTIONS = Subscriptions()


def _payload(event_type: str, data: dict[str, Any], at: datetime) -> dict[str, Any]:
    stamp = at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"type": event_type, "timestamp": stamp, "data": data}


def delivery_event_id(event_id: str, webhook_id: int) -> str:
    """The ``webhook-id`` of one event at one webhook: derived from the event's id (assigned
    once, when the event was made), so writing the event again gives the same ids; one per
    event and webhook."""
    return f"msg_{uuid.uuid5(uuid.NAMESPACE_URL, f'{event_id}/{webhook_id}').hex}"


def emit(event_type: str, data: dict[str, Any]) -> list[WebhookDelivery]:
    """Deliver one event to every enabled webhook that subscribes to it."""
    return emit_many([(event_type, data)])


def emit_many(events: Iterable[Event | tuple[str, dict[str, Any]]]) -> list[WebhookDelivery]:
    """Queue each event for every enabled webhook that subscribes to it: the delivery rows in
    one INSERT, their tasks (one per row) in another, in one transaction — the caller's, when
    it calls inside one (the events are then written with its change, or not at all). With
    the database backend a row never lacks its task. Without a subscriber it runs no query.

    The INSERT takes the webhooks from the table (enabled, and still there), not from the
    cache alone: a webhook deleted or disabled since the cache was read gets no row, and
    cannot fail the caller's transaction."""
    batch = [as_event(e) for e in events]
    hooks = SUBSCRIPTIONS.current()
    if not hooks:
        return []
    now = timezone.now()
    rows = [
        WebhookDelivery(
            webhook_id=pk,
            event_id=delivery_event_id(e.id, pk),
            event_type=e.type,
            attempt=1,
            status=DeliveryStatus.PENDING,
            payload=_payload(e.type, e.data, now),
            event_at=now,
            created_at=now,
            next_attempt_at=now,
        )
        for e in batch
        for pk, wanted in hooks
        if e.type in wanted
    ]
    if not rows:
        return []
    from outbound.webhooks.tasks import enqueue_deliveries

    with transaction.atomic():
        created: list[WebhookDelivery] = []
        for start in range(0, len(rows), INSERT_CHUNK):
            created.extend(_insert_for_enabled(rows[start : start + INSERT_CHUNK]))
        enqueue_deliveries([row.pk for row in created])
    return created


_COPIED = ("webhook_id", "event_id", "event_type", "payload", "event_at")
INSERT_CHUNK = 1000  # rows per INSERT (6 parameters each: well within SQLite's limit)


def _insert_for_enabled(rows: list[WebhookDelivery]) -> list[WebhookDelivery]:
    """``INSERT … SELECT … FROM (VALUES …) JOIN webhooks_webhook … WHERE is_enabled``: one
    statement; answers the rows written (their ids set), those of missing or disabled
    webhooks left out."""
    fields = {f.attname: f for f in WebhookDelivery._meta.concrete_fields if f.attname in _COPIED}
    params: list[Any] = []
    for row in rows:
        for name in _COPIED:
            value = getattr(row, name)
            params.append(fields[name].get_db_prep_save(value, connection))
        params.append(DeliveryStatus.PENDING.value)
    q = connection.ops.quote_name
    one = "(" + ", ".join(["%s"] * (len(_COPIED) + 1)) + ")"
    values = ", ".join([one] * len(rows))
    # (VALUES names its columns column1, column2, … on PostgreSQL and SQLite alike.) Only
    # the model's own table names and placeholders are formatted in; the values are params.
    sql = (
        f"INSERT INTO {q(WebhookDelivery._meta.db_table)} "  # noqa: S608
        "(webhook_id, event_id, event_type, payload, event_at, attempt, status, error, "
        "created_at, next_attempt_at) "
        "SELECT w.id, v.column2, v.column3, v.column4, v.column5, 1, v.column6, '', "
        "v.column5, v.column5 "
        f"FROM (VALUES {values}) v "
        f"INNER JOIN {q(Webhook._meta.db_table)} w ON w.id = v.column1 "
        "WHERE w.is_enabled RETURNING id, webhook_id, event_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        written = {(webhook_id, event_id): pk for pk, webhook_id, event_id in cursor.fetchall()}
    created = []
    for row in rows:
        pk = written.get((row.webhook_id, row.event_id))
        if pk is not None:
            row.pk = pk
            row._state.adding = False
            row._state.db = connection.alias
            created.append(row)
    return created


# --- delivery ---------------------------------------------------------------------------------


class _Answer:
    """What one POST came to: ``ok`` is a 2xx."""

    def __init__(self, *, status: int | None, error: str, started: float) -> None:
        self.status = status
        self.error = error[:ERROR_MAX]
        self.duration_ms = round((time.monotonic() - started) * 1000)
        self.ok = status is not None and 200 <= status < 300


def _post(webhook: Webhook, delivery: WebhookDelivery) -> _Answer:
    started = time.monotonic()
    try:
        secret = webhook.get_secret(Webhook.SECRET_SIGNING)
    except SecretDecryptionError:
        secret = None
    if not secret:
        return _Answer(status=None, error=SECRET_UNREADABLE, started=started)
    body = signing.body_of(delivery.payload)
    timestamp = int(time.time())
    try:
        answer = http.post_json(
            webhook.url,
            body,
            headers=signing.headers(secret, delivery.event_id, timestamp, body),
            timeout=settings.OUTBOUND_WEBHOOK_TIMEOUT,
        )
    except egress.EgressDenied as exc:
        return _Answer(status=None, error=str(exc), started=started)
    except egress.ResolutionFailed as exc:
        return _Answer(
            status=None, error=f"The receiver could not be reached: {exc}", started=started
        )
    except (http.InvalidUrl, http.HttpCallFailed) as exc:
        return _Answer(status=None, error=str(exc), started=started)
    except Exception as exc:  # a bug of ours: a failed attempt (retried), never a lost one
        # Logged by type and place only: an exception's text may quote what was sent.
        frame = traceback.extract_tb(exc.__traceback__)[-1:]
        where = f"{frame[0].filename}:{frame[0].lineno}" if frame else "?"
        logger.error(
            "webhook delivery webhook=%s event=%s failed inside Outbound: %s at %s",
            webhook.pk,
            delivery.event_id,
            type(exc).__name__,
            where,
        )
        return _Answer(
            status=None, error=INTERNAL_ERROR.format(name=type(exc).__name__), started=started
        )
    if 300 <= answer.status < 400:
        error = f"The receiver answered HTTP {answer.status}, a redirect (not followed)."
    elif not 200 <= answer.status < 300:
        error = f"The receiver answered HTTP {answer.status}."
    else:
        error = ""
    return _Answer(status=answer.status, error=error, started=started)


def next_delay(attempt: int) -> float:
    """Seconds between attempt ``attempt`` and the next (the last delay repeats)."""
    delays = settings.OUTBOUND_WEBHOOK_BACKOFF or (10.0,)
    return float(delays[min(max(attempt, 1), len(delays)) - 1])


def _finish(delivery: WebhookDelivery, answer: _Answer, *, retry: bool) -> WebhookDelivery | None:
    """Record an attempt's result on its row (only if it is still pending: another run of the
    same task may have decided it) and, when it failed and there is time left, the next
    attempt; answers that next attempt's row."""
    now = timezone.now()
    following: WebhookDelivery | None = None
    give_up_at = delivery.event_at + timedelta(seconds=settings.OUTBOUND_WEBHOOK_MAX_AGE)
    if answer.ok:
        status = DeliveryStatus.DELIVERED
    elif retry and now < give_up_at:
        status = DeliveryStatus.RETRYING
    else:
        status = DeliveryStatus.FAILED
    next_at = None
    if status == DeliveryStatus.RETRYING:
        next_at = min(now + timedelta(seconds=next_delay(delivery.attempt)), give_up_at)
    with transaction.atomic():
        updated = WebhookDelivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.PENDING
        ).update(
            status=status,
            http_status=answer.status,
            duration_ms=answer.duration_ms,
            error=answer.error,
            finished_at=now,
            next_attempt_at=next_at,
        )
        if not updated:
            return None
        if next_at is not None:
            following = WebhookDelivery.objects.create(
                webhook_id=delivery.webhook_id,
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                attempt=delivery.attempt + 1,
                payload=delivery.payload,
                event_at=delivery.event_at,
                next_attempt_at=next_at,
            )
            from outbound.webhooks.tasks import enqueue_delivery

            enqueue_delivery(following.pk, run_after=next_at)
    delivery.status = status
    delivery.http_status = answer.status
    delivery.duration_ms = answer.duration_ms
    delivery.error = answer.error
    delivery.finished_at = now
    delivery.next_attempt_at = next_at
    metrics.WEBHOOK_DELIVERIES.labels(
        "delivered" if status == DeliveryStatus.DELIVERED else "failed"
    ).inc()
    return following


def _recorded(action: Any, *, patience: float | None = None) -> Any:
    """``action()`` through database outages (logged once per outage, like the sender's
    writes); with ``patience``, gives up after that many seconds of failing."""
    from outbound.mail.sender import until_database_answers  # (mail imports this app's events)

    if patience is None:
        return until_database_answers(action, ends_outage=False)
    give_up = threading.Event()
    give_up.set()
    return until_database_answers(action, stop=give_up, patience=patience, ends_outage=False)


def attempt_delivery(delivery_id: int) -> str:
    """The task's body: make the attempt ``delivery_id`` stands for, if it is still pending.
    Answers the row's status after it (or ``gone`` when there is nothing to do). Reading the
    row and recording the attempt ride out database outages: an attempt made is recorded,
    and its next one scheduled, once the database answers again."""
    delivery = _recorded(
        lambda: (
            WebhookDelivery.objects.select_related("webhook")
            .filter(pk=delivery_id, status=DeliveryStatus.PENDING)
            .first()
        )
    )
    if delivery is None:
        return "gone"
    webhook = delivery.webhook
    if not webhook.is_enabled:
        answer = _Answer(status=None, error=DISABLED, started=time.monotonic())
        _recorded(lambda: _finish(delivery, answer, retry=False))
        return str(delivery.status)
    answer = _post(webhook, delivery)
    # A test made again (the sweep's, after its request gave up) is still never retried.
    retry = delivery.event_type != "webhook.test"
    _recorded(lambda: _finish(delivery, answer, retry=retry))
    fields = {
        "webhook": webhook.pk,
        "event": delivery.event_id,
        "type": delivery.event_type,
        "attempt": delivery.attempt,
        "status": str(delivery.status),
        "http_status": answer.status if answer.status is not None else "-",
        "duration_ms": answer.duration_ms,
    }
    logger.info(
        "webhook delivery webhook=%(webhook)s event=%(event)s type=%(type)s "
        "attempt=%(attempt)s status=%(status)s http_status=%(http_status)s "
        "duration_ms=%(duration_ms)s",
        fields,
        extra={"webhook_delivery": fields},  # for structured (JSON) log handlers
    )
    return str(delivery.status)
