"""Delivery. The outbox is the queue: a worker claims a batch of due messages in one
statement under one lease (renewed by a heartbeat while it works), sends them one after the
other over one pooled connection with the configuration active *now* (read again at least
every second), records per-recipient results, attempts and retries in a few bulk statements,
retries temporary failures with backoff and gives up with one failure notice.

Connections come from the same transport builder as the connection test; they are kept open
per thread and reused for consecutive messages to the same configuration until they idle
out or the configuration changes. Every one of them ends with QUIT while the server is in
step: a reaper says goodbye to those idle for ``OUTBOUND_SMTP_IDLE`` seconds (no next
message needed), and the worker to the rest when it stops. Microsoft tokens are cached per
authentication object until shortly before expiry, with one fetch in flight, and refreshed
once when the server refuses them.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import random
import smtplib
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import Case, F, Value, When, prefetch_related_objects
from django.utils import timezone
from django.utils.crypto import get_random_string

from outbound.core import bulk, metrics
from outbound.core.errors import database_error_reason
from outbound.core.secrets import SecretDecryptionError
from outbound.integrations.microsoft import AccessToken, fetch_token
from outbound.integrations.models import AuthenticationObject
from outbound.mail import attachments, compose, outbox, publishing
from outbound.mail.failover import FAILOVER
from outbound.mail.models import (
    Attempt,
    Message,
    MessageStatus,
    Recipient,
    RecipientKind,
    RecipientStatus,
    SmtpConfig,
    Worker,
)
from outbound.mail.transport import (
    Session,
    SmtpTarget,
    StepFailed,
    close_quietly,
    end_empty_data,
    open_connection,
    say_goodbye,
    send_commands,
    send_data,
)

logger = logging.getLogger(__name__)
delivery_log = logging.getLogger("outbound.delivery")  # one line per delivery attempt

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{get_random_string(6)}"
TOKEN_MARGIN = 120  # seconds before expiry a cached token is renewed


class TemporaryFailure(Exception):
    """The whole attempt failed in a way worth retrying (connection, 4xx, timeout)."""


class ServerFailure(TemporaryFailure):
    """The server itself failed the attempt: connect, TLS, AUTH, or a 4xx/timeout before any
    recipient was accepted (what counts towards a failover, see :mod:`.failover`)."""


class Unsendable(Exception):
    """The message cannot be built as it was meant: failed at once, never sent, not retried."""


class DatabaseUnavailable(Exception):
    """The database did not answer while a message was in hand: it is not sent now (nor
    counted as an attempt) but given back once the database is back."""


class Outage:
    """Database trouble seen by this worker process, logged once per outage (WARNING when it
    starts, INFO when the database answers again), not once per failed statement."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            first, self.since = self.since is None, self.since or time.monotonic()
        if first:
            logger.warning(
                "worker %s: the database is unavailable (%s); delivery waits and retries",
                WORKER_ID,
                database_error_reason(exc),
            )
        # A broken connection is not reused: the next statement opens a new one.
        for conn in connections.all(initialized_only=True):
            with contextlib.suppress(Exception):
                conn.close()

    def recovered(self) -> None:
        with self._lock:
            since, self.since = self.since, None
        if since is not None:
            logger.info(
                "worker %s: the database is available again after %.1f s",
                WORKER_ID,
                time.monotonic() - since,
            )


OUTAGE = Outage()
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)  # seconds between tries while the database is away


def until_database_answers(
    action: Callable[[], Any],
    *,
    stop: threading.Event | None = None,
    patience: float = 0,
    ends_outage: bool = True,
) -> Any:
    """``action()``, tried again with backoff for as long as the database fails it (logged
    once per outage). With ``stop`` set, gives up after ``patience`` seconds of failing and
    raises the last error (a stopping worker does not wait for ever).

    The delivery loop's writes (claim, record, give back, register) end an outage when they
    succeed; other threads' actions pass ``ends_outage=False``: a read that succeeds while
    the database refuses writes (read-only) says nothing about the worker's outage."""
    failing_since: float | None = None
    for attempt in itertools.count():
        try:
            result = action()
        except DatabaseError as exc:
            OUTAGE.failed(exc)
            now = time.monotonic()
            failing_since = failing_since or now
            if stop is not None and stop.is_set() and now - failing_since >= patience:
                raise
            delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)
            continue
        # Only a statement that reached the database ends an outage: an action that had
        # nothing left to write (and so ran none) says nothing about it.
        if ends_outage and connection.connection is not None:
            OUTAGE.recovered()
        return result
    raise AssertionError("unreachable")


# --- tokens --------------------------------------------------------------------------------


class TokenCache:
    """Access tokens per authentication object (and client secret), one fetch in flight."""

    def __init__(self, fetch: Callable[..., AccessToken] = fetch_token) -> None:
        self._fetch = fetch
        self._tokens: dict[tuple[Any, ...], AccessToken] = {}
        self._locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._guard = threading.Lock()

    @staticmethod
    def _key(obj: AuthenticationObject) -> tuple[Any, ...]:
        # A changed secret or endpoint is a different key: never reuse a token across them.
        sealed = (obj.sealed_secrets or {}).get("client_secret", "")
        return (obj.pk, sealed, tuple(sorted((obj.parameters or {}).items())))

    def get(self, obj: AuthenticationObject, *, timeout: float) -> AccessToken:
        key = self._key(obj)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            token = self._tokens.get(key)
            if token is None or token.expires_at - TOKEN_MARGIN <= time.time():
                token = self._fetch(obj, timeout=timeout)
                self._tokens[key] = token
            return token

    def invalidate(self, obj: AuthenticationObject, stale: AccessToken | None = None) -> None:
        """Forget the cached token; with ``stale``, only if that is still the cached one, so
        sends that failed together with the same old token cause a single new fetch."""
        key = self._key(obj)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if stale is None or self._tokens.get(key) == stale:
                self._tokens.pop(key, None)


TOKENS = TokenCache()


# --- connections ---------------------------------------------------------------------------


def target_for(
    config: SmtpConfig, token_provider: Callable[..., AccessToken] | None = None
) -> SmtpTarget:
    try:
        password = config.get_secret(SmtpConfig.SECRET_PASSWORD)
    except SecretDecryptionError as exc:
        raise TemporaryFailure("The saved SMTP password cannot be read.") from exc
    return SmtpTarget(
        host=config.host,
        port=config.port,
        security=config.security,
        username=config.username,
        password=password,
        authorization_method=config.authorization_method,
        authentication_object=config.authentication_object,
        timeout=config.effective_timeout,
        token_provider=token_provider or TOKENS.get,
    )


@dataclass
class _Pooled:
    key: tuple[Any, ...]
    smtp: smtplib.SMTP
    last_used: float
    busy: bool = True  # handed out for a message; only idle ones are reaped


class ConnectionPool:
    """One open connection per thread, reused while the configuration is unchanged.

    A reaper thread closes connections idle for ``OUTBOUND_SMTP_IDLE`` seconds with QUIT,
    so a server is not left holding a session until its own timeout when no next message
    comes. A connection is owned by its thread while in use; the reaper only takes idle ones.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pooled: dict[int, _Pooled] = {}  # by thread
        self._wake = threading.Event()
        self._reaper: threading.Thread | None = None

    @staticmethod
    def key(config: SmtpConfig) -> tuple[Any, ...]:
        return (config.pk, config.modified_at, config.authentication_object_id)

    def get(self, config: SmtpConfig) -> smtplib.SMTP:
        with self._lock:  # taken out: the reaper cannot close it while we look at it
            pooled = self._pooled.pop(threading.get_ident(), None)
        if pooled is not None:
            idle = time.monotonic() - pooled.last_used
            if pooled.key == self.key(config) and idle < HOT_REUSE:
                # Used a moment ago and left between transactions (after a DATA's reply or
                # an RSET): in step, and a server rarely drops a session within a second.
                self._keep(pooled)
                return pooled.smtp
            if pooled.key == self.key(config) and idle < settings.OUTBOUND_SMTP_IDLE:
                try:
                    pooled.smtp.sock.settimeout(config.effective_timeout)  # type: ignore[union-attr]
                    code = pooled.smtp.rset()[0]
                except (OSError, smtplib.SMTPException, AttributeError):
                    close_quietly(pooled.smtp)  # gone or broken: nobody to say goodbye to
                else:
                    if code == 250:
                        self._keep(pooled)
                        return pooled.smtp
                    say_goodbye(pooled.smtp)
            else:  # another configuration now, or idle too long: a polite end
                say_goodbye(pooled.smtp)
        smtp = self._open(config)
        self._keep(_Pooled(self.key(config), smtp, time.monotonic()))
        return smtp

    def _keep(self, pooled: _Pooled) -> None:
        pooled.busy = True
        with self._lock:
            self._pooled[threading.get_ident()] = pooled
            if self._reaper is None or not self._reaper.is_alive():
                self._reaper = threading.Thread(target=self._reap, name="smtp-reaper", daemon=True)
                self._reaper.start()

    def _open(self, config: SmtpConfig, *, retry_auth: bool = True) -> smtplib.SMTP:
        used: list[AccessToken] = []

        def token_provider(obj: AuthenticationObject, *, timeout: float) -> AccessToken:
            token = TOKENS.get(obj, timeout=timeout)
            used.append(token)
            return token

        target = target_for(config, token_provider)
        session = Session(target)
        try:
            smtp = open_connection(target, session)
        except StepFailed as failure:  # open_connection closed what it had opened
            obj = config.authentication_object
            if retry_auth and failure.step == "auth" and target.uses_microsoft and obj:
                # A revoked or rotated token: fetch a new one, once (and only one fetch
                # however many sends were refused the same old token).
                TOKENS.invalidate(obj, used[-1] if used else None)
                return self._open(config, retry_auth=False)
            raise ServerFailure(f"{failure.step}: {failure.message}") from None
        finally:
            session.close()
        assert smtp.sock is not None
        smtp.sock.settimeout(target.timeout)  # per operation from here on
        return smtp

    def release(self) -> None:
        """This thread's connection is idle from now on (and may be reaped)."""
        with self._lock:
            pooled = self._pooled.get(threading.get_ident())
            if pooled is not None:
                pooled.last_used, pooled.busy = time.monotonic(), False
        self._wake.set()  # the reaper recomputes when the next connection idles out

    def discard(self, *, broken: bool = False) -> None:
        """Close this thread's connection: with QUIT, unless it is ``broken`` (dropped,
        timed out, or in the middle of a command)."""
        with self._lock:
            pooled = self._pooled.pop(threading.get_ident(), None)
        if pooled is not None:
            (close_quietly if broken else say_goodbye)(pooled.smtp)

    def close_all(self) -> None:
        """QUIT every idle connection and this thread's own one (a worker that stops)."""
        me = threading.get_ident()
        with self._lock:
            ending = [t for t, p in self._pooled.items() if t == me or not p.busy]
            goodbyes = [self._pooled.pop(t) for t in ending]
        for pooled in goodbyes:
            say_goodbye(pooled.smtp)

    def _reap(self) -> None:
        while True:
            limit = settings.OUTBOUND_SMTP_IDLE
            now = time.monotonic()
            with self._lock:
                idle = {t: p.last_used + limit - now for t, p in self._pooled.items() if not p.busy}
                goodbyes = [self._pooled.pop(t) for t, left in idle.items() if left <= 0]
                due = [left for left in idle.values() if left > 0]
            for pooled in goodbyes:
                say_goodbye(pooled.smtp)
            # Sleep until the next connection idles out, or until a release changes that.
            self._wake.wait(min(due, default=max(limit, 1.0)))
            self._wake.clear()


POOL = ConnectionPool()
HOT_REUSE = 1.0  # seconds: a connection released less long ago is reused without an RSET


# --- claiming: the outbox is the queue ------------------------------------------------------

# What "due" means: waiting and its time has come, or held by a worker whose lease ran out.
_DUE = (
    "(({status} IN (%s, %s) AND {next_attempt_at} <= %s) OR ({status} = %s AND {lease_until} < %s))"
)


class Lease:
    """The lease on a claimed batch: one owner token for all its messages (so two threads of
    one process, or two batches, never mistake each other's), one ``lease_until`` they share,
    renewed together by the batch's heartbeat.

    :meth:`confirm` answers before each DATA whether the messages are still ours, from the
    time of the last successful renewal (no database round trip while the heartbeat keeps
    up); close to the end it renews at once, and a renewal that finds fewer of our messages
    than we hold means another worker took them over: the lease is lost."""

    def __init__(self, owner: str, granted_at: float) -> None:
        self.owner = owner
        self.held: set[int] = set()
        self.attempts: dict[int, Attempt] = {}  # by message: the attempt under way
        self.lost = False
        self.lock = threading.Lock()  # a renewal and the recording of results take turns
        self._valid_until = granted_at + settings.OUTBOUND_SEND_LEASE

    @staticmethod
    def new_owner() -> str:
        return f"{WORKER_ID[:51]}/{get_random_string(12)}"

    def renew(self) -> bool:
        with self.lock:
            if self.lost:
                return False
            if not self.held:
                return True
            asked = time.monotonic()
            renewed = Message.objects.filter(
                lease_owner=self.owner, status=MessageStatus.SENDING
            ).update(lease_until=timezone.now() + timedelta(seconds=settings.OUTBOUND_SEND_LEASE))
            if renewed < len(self.held):
                self.lost = True
                return False
            self._valid_until = asked + settings.OUTBOUND_SEND_LEASE
            return True

    @property
    def renew_at(self) -> float:
        """When the heartbeat renews it: a third of the lease after it was last granted."""
        return self._valid_until - settings.OUTBOUND_SEND_LEASE * 2 / 3

    def confirm(self) -> bool:
        """True while the lease certainly holds; renews it first when little is left. Called
        right before a message's content goes out: the previous message's note is put on
        record first (:class:`NoteWriter`)."""
        try:
            NOTES.flush()
        except DatabaseError as exc:
            raise DatabaseUnavailable(database_error_reason(exc)) from None
        if self.lost:
            return False
        margin = min(5.0, settings.OUTBOUND_SEND_LEASE / 3)
        if time.monotonic() < self._valid_until - margin:
            return True
        try:
            return self.renew()
        except DatabaseError as exc:  # cannot tell: the message is not sent now
            OUTAGE.failed(exc)
            raise DatabaseUnavailable(database_error_reason(exc)) from None


def claim(*, limit: int, ids: Sequence[int] | None = None) -> tuple[Lease, list[Message]]:
    """Take up to ``limit`` due messages (only among ``ids`` when given) for this worker in
    one statement: ``WITH picked AS (SELECT … FOR UPDATE SKIP LOCKED) UPDATE … RETURNING *``
    on PostgreSQL, so concurrent workers skip each other's rows instead of waiting; the same
    without the lock clause on SQLite, whose writes are serialised anyway. Oldest due first;
    each claimed message's attempt count goes up by one."""
    table = Message._meta.db_table
    qn = connection.ops.quote_name
    column = {f.name: qn(f.column or f.name) for f in Message._meta.concrete_fields}
    now = timezone.now()
    owner = Lease.new_owner()
    lease = Lease(owner, time.monotonic())
    adapt = connection.ops.adapt_datetimefield_value
    due = _DUE.format(**column)
    # A lease is taken over a little after it ran out: a live worker cut off from the
    # database for a while renews it the moment it is back (its heartbeat keeps trying),
    # before anyone else may send its messages again.
    expired = now - timedelta(seconds=settings.OUTBOUND_SEND_LEASE / 3)
    due_params = [
        MessageStatus.QUEUED, MessageStatus.DEFERRED, adapt(now), MessageStatus.SENDING,
        adapt(expired),
    ]  # fmt: skip
    among, among_params = "", []
    if ids is not None:
        among = f" AND {column['id']} IN ({', '.join(['%s'] * len(ids))})"
        among_params = list(ids)
    skip_locked = connection.features.has_select_for_update_skip_locked
    lock = " FOR UPDATE SKIP LOCKED" if skip_locked else ""
    # Only names from the model's metadata and placeholders go into the text.
    # The pick is a materialised CTE, evaluated once: as a plain ``IN (subquery)`` PostgreSQL
    # may run a LIMIT … SKIP LOCKED subquery more than once and claim more than ``limit``.
    sql = (
        f"WITH picked AS MATERIALIZED (SELECT {column['id']} FROM {qn(table)} "  # noqa: S608
        f"WHERE {due}{among} ORDER BY {column['next_attempt_at']}, {column['id']} "
        f"LIMIT %s{lock}) "
        f"UPDATE {qn(table)} SET {column['status']} = %s, {column['lease_owner']} = %s, "
        f"{column['lease_until']} = %s, {column['attempt_count']} = {column['attempt_count']} + 1 "
        f"WHERE {column['id']} IN (SELECT {column['id']} FROM picked) AND {due} "
        f"RETURNING {', '.join(column.values())}"
    )
    params = [
        *due_params, *among_params, limit,
        MessageStatus.SENDING, owner,
        adapt(now + timedelta(seconds=settings.OUTBOUND_SEND_LEASE)),
        *due_params,
    ]  # fmt: skip
    if ids is not None and not ids:
        return lease, []
    messages = sorted(Message.objects.raw(sql, params), key=lambda m: (m.next_attempt_at, m.pk))
    if messages:  # (an idle poll stays one statement)
        _open_attempts(lease, messages, now)
    lease.held = {m.pk for m in messages}
    return lease, messages


INTERRUPTED = (
    "The worker sending it stopped renewing its lease (killed, frozen or cut off from the "
    "database): the message may or may not have reached the server; it was handed over."
)


def _open_attempts(lease: Lease, messages: list[Message], now: Any) -> None:
    """Record the claimed messages' attempts as under way (outcome ``sending``), so that a
    worker dying mid-send leaves its attempt in the list; an attempt still under way from a
    worker whose lease ran out is closed as ``interrupted`` first."""
    messages = [m for m in messages if m.outcome_note is None]  # completed, not tried again
    if not messages:
        return
    ids = [m.pk for m in messages]
    Attempt.objects.filter(message_id__in=ids, outcome=MessageStatus.SENDING).update(
        outcome="interrupted", finished_at=now, detail=INTERRUPTED
    )
    opened = Attempt.objects.bulk_create(
        Attempt(
            message=m,
            number=m.attempt_count,
            worker=WORKER_ID[:64],  # the column is 64 wide; host names can be longer
            started_at=now,
            outcome=MessageStatus.SENDING,
        )
        for m in messages
    )
    lease.attempts.update({a.message_id: a for a in opened})


def release(lease: Lease, messages: Sequence[Message]) -> int:
    """Give claimed messages we did not try back to the outbox as they were (a worker that
    stops mid-batch, or a lost lease): due at once for the next worker, the attempt count it
    had, its attempt under way removed."""
    with lease.lock:
        ids = [m.pk for m in messages if m.pk in lease.held]
        if not ids:
            return 0
        # Never tried: no attempt to show (the next worker's is the same number).
        with transaction.atomic():
            Attempt.objects.filter(
                pk__in=[lease.attempts[pk].pk for pk in ids if pk in lease.attempts],
                outcome=MessageStatus.SENDING,
            ).delete()
            released = Message.objects.filter(
                pk__in=ids, lease_owner=lease.owner, status=MessageStatus.SENDING
            ).update(
                status=Case(
                    When(attempt_count__lte=1, then=Value(MessageStatus.QUEUED)),
                    default=Value(MessageStatus.DEFERRED),
                ),
                attempt_count=F("attempt_count") - 1,
                lease_owner="",
                lease_until=None,
            )
        # Not ours any more only once that is on record: should the database fail it, a
        # retry gives them back again (instead of leaving them "sending" until the lease
        # runs out and another worker calls their attempts interrupted).
        lease.held.difference_update(ids)
        return released


class Heartbeat:
    """One thread per process renews the leases of the batches being delivered once a third
    of their length has passed since they were granted or last renewed, so a slow server is
    not mistaken for a dead worker (and its messages sent twice); a worker that stops
    renewing (killed, frozen) loses its messages to the others within one lease. In an
    ``outbound worker`` process it also reports the worker alive (:class:`Worker`, every
    ``OUTBOUND_WORKER_BEAT`` seconds) for ``/readyz``. Started when first needed."""

    def __init__(self) -> None:
        self._leases: set[Lease] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._worker: Worker | None = None
        self._beat_at = 0.0

    def watch(self, lease: Lease) -> None:
        with self._lock:
            self._leases.add(lease)
        self._start()
        self._wake.set()  # a new lease: the thread works out its next round again

    def forget(self, lease: Lease) -> None:
        with self._lock:
            self._leases.discard(lease)

    def register(self) -> None:
        """Report this process as a worker from now on (the worker command)."""
        now = timezone.now()
        self._worker = Worker(
            name=WORKER_ID[:64], host=socket.gethostname()[:255], pid=os.getpid(),
            started_at=now, seen_at=now,
        )  # fmt: skip
        # Rows of workers gone for a day are history nobody reads.
        Worker.objects.filter(seen_at__lt=now - timedelta(days=1)).delete()
        self._beat()
        self._start()

    def unregister(self) -> None:
        """A worker that stops says so (a killed one just stops beating)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            with contextlib.suppress(DatabaseError):
                Worker.objects.filter(name=worker.name).delete()

    def _beat(self) -> None:
        worker = self._worker
        if worker is None:
            return
        worker.seen_at = timezone.now()
        if not Worker.objects.filter(name=worker.name).update(seen_at=worker.seen_at):
            Worker.objects.bulk_create([worker], ignore_conflicts=True)
        self._beat_at = time.monotonic() + settings.OUTBOUND_WORKER_BEAT

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="lease-heartbeat", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        from django.db import connection

        while True:
            with self._lock:
                leases = list(self._leases)
            now = time.monotonic()
            due = [lease for lease in leases if lease.renew_at <= now]
            beat = self._worker is not None and self._beat_at <= now
            floor = 0.01
            try:
                for lease in due:
                    lease.renew()  # a lost lease stays lost: its batch stops at the next DATA
                if beat:
                    self._beat()
            except DatabaseError as exc:  # the database is away: try again shortly
                OUTAGE.failed(exc)
                floor = HEARTBEAT_RETRY
            except Exception:
                logger.exception("the heartbeat failed; it tries again")
                floor = HEARTBEAT_RETRY
            finally:
                if due or beat:
                    connection.close()  # this thread's own connection, until the next round
            waits = [lease.renew_at - time.monotonic() for lease in leases if not lease.lost]
            if self._worker is not None:
                waits.append(self._beat_at - time.monotonic())
            self._wake.wait(max(min(waits, default=60.0), floor))
            self._wake.clear()


HEARTBEAT = Heartbeat()
HEARTBEAT_RETRY = 0.5  # seconds between renewals while the database does not answer


# --- delivering a batch --------------------------------------------------------------------

CONFIG_RECHECK = 1.0  # seconds: how stale the active configuration may get within a batch


@dataclass
class _Tried:
    """One message's attempt, waiting to be recorded with the rest of its batch."""

    message: Message
    config: SmtpConfig | None
    recipients: list[Recipient]  # all of the message's, as loaded at the claim
    pending: list[Recipient]
    started: Any
    finished: Any
    outcome: str
    detail: str
    # What the attempt says about the server: "failed" (server-level failure), "ok" (it took
    # the envelope) or "" (nothing: never reached it, or a recipient-level result only).
    server: str = ""


def deliver(message_id: int) -> str:
    """Run one delivery attempt of one message; returns the message's status afterwards
    (``skipped`` when it is not due or another worker holds it)."""
    lease, messages = claim(limit=1, ids=[message_id])
    if not messages:
        return "skipped"
    return deliver_claimed(lease, messages)[message_id]


def deliver_due(*, limit: int, stop: threading.Event | None = None) -> dict[int, str]:
    """Claim up to ``limit`` due messages and deliver them: ``{message id: status}``. While
    the database is away it waits and tries again (raising only once ``stop`` is set)."""
    lease, messages = until_database_answers(lambda: claim(limit=limit), stop=stop)
    results = deliver_claimed(lease, messages, stop=stop) if messages else {}
    with contextlib.suppress(DatabaseError):  # (an outage is the next claim's to wait out)
        FAILOVER.tick()  # no statement unless failures were recorded or a probe is due
    return results


def deliver_claimed(
    lease: Lease, messages: list[Message], *, stop: threading.Event | None = None
) -> dict[int, str]:
    """Deliver claimed messages one after the other over the pooled connection, with the
    configuration active now (read again every ``CONFIG_RECHECK`` seconds), and record their
    results in bulk: every ``CONFIG_RECHECK`` seconds and at the end. A ``stop`` (or a lost
    lease) ends the batch after the message in hand; the rest go back to the outbox."""
    # Every recipient and attachment of the batch in two queries: while we hold the lease
    # nobody else writes them.
    results: dict[int, str] = {}
    tried: list[_Tried] = []
    untried = list(messages)
    HEARTBEAT.watch(lease)
    try:
        prefetch_related_objects(messages, "recipients", "attachments")
        for message in [m for m in untried if m.outcome_note is not None]:
            tried.append(_completed(lease, message))  # a dead worker's delivery, recorded
            untried.remove(message)
        # The configuration serving now: the active one, or the standby it failed over to.
        config, read_at = FAILOVER.serving(), time.monotonic()
        FAILOVER.tick()
        while untried and not lease.lost and not (stop is not None and stop.is_set()):
            if time.monotonic() - read_at >= CONFIG_RECHECK:
                NOTES.flush()
                results.update(_record(lease, tried))
                tried = []
                config, read_at = FAILOVER.serving(), time.monotonic()
                FAILOVER.tick()
            attempt = _attempt(untried[0], config, lease)
            if attempt is None:  # the database went away with the message in hand
                break
            untried.pop(0)
            tried.append(attempt)
            _note(lease, attempt)
            if FAILOVER.observe(config, attempt.server, attempt.started):
                read_at = -CONFIG_RECHECK  # switched: record, then read it again at once
    except DatabaseError as exc:  # reading the batch or the configuration: stop here
        OUTAGE.failed(exc)
    finally:
        POOL.release()
        with contextlib.suppress(Exception):  # a note that failed: the record retries below
            NOTES.flush()
        # Whatever was tried is recorded, the rest given back, however long the database
        # takes to return (a stopping worker waits a little, then leaves it to the lease);
        # the heartbeat renews the lease meanwhile, as soon as the database answers.
        try:
            results.update(until_database_answers(lambda: _record(lease, tried), stop=stop,
                                                  patience=10))  # fmt: skip
            until_database_answers(lambda: release(lease, untried), stop=stop, patience=10)
        finally:
            HEARTBEAT.forget(lease)
    return results


def _attempt(message: Message, config: SmtpConfig | None, lease: Lease) -> _Tried | None:
    """One delivery attempt; None when the database went away before the message was sent
    (it is then given back, untried)."""
    started = timezone.now()
    waiting = (RecipientStatus.PENDING, RecipientStatus.DEFERRED)
    recipients = list(message.recipients.all())
    pending = [r for r in recipients if r.status in waiting]
    outcome, detail, server = "error", "", ""
    try:
        if config is None:
            raise TemporaryFailure("No SMTP configuration is active.")
        server = _send(message, config, recipients, pending, lease)
        outcome = "done"
    except Unsendable as exc:
        detail = str(exc)[:1000]
        for r in pending:
            r.status, r.smtp_code, r.smtp_reply = RecipientStatus.FAILED, None, detail
        outcome = "done"
    except TemporaryFailure as exc:
        detail = str(exc)[:1000]
        server = "failed" if isinstance(exc, ServerFailure) else ""
        for r in pending:
            if r.status not in (RecipientStatus.SENT, RecipientStatus.FAILED):
                r.status, r.smtp_code, r.smtp_reply = RecipientStatus.DEFERRED, None, detail
        outcome = "deferred"
    except (DatabaseUnavailable, DatabaseError) as exc:
        if isinstance(exc, DatabaseError):
            OUTAGE.failed(exc)
        return None  # nothing of this attempt is written: the message goes back as it was
    except Exception as exc:  # a bug must not strand the message in "sending"
        logger.exception("delivery of message %s failed unexpectedly", message.pk)
        detail = f"Internal error: {type(exc).__name__}"
        for r in pending:
            if r.status not in (RecipientStatus.SENT, RecipientStatus.FAILED):
                r.status, r.smtp_reply = RecipientStatus.DEFERRED, detail
        outcome = "deferred"
    finished = timezone.now()
    return _Tried(message, config, recipients, pending, started, finished, outcome, detail, server)


def _note(lease: Lease, t: _Tried) -> None:
    """Write-ahead for an attempt that reached recipients: its result goes onto the message
    row at once (one statement), so that should this worker die before the batch's results
    are written out, the worker taking the message over records it instead of sending it a
    second time. Attempts that reached nobody need no note: repeating them duplicates
    nothing."""
    if not any(r.status == RecipientStatus.SENT for r in t.pending):
        return
    attempt = lease.attempts.get(t.message.pk)
    note = {
        "attempt": attempt.pk if attempt is not None else None,
        "config": t.config.pk if t.config is not None else None,
        "started": t.started.isoformat(),
        "finished": t.finished.isoformat(),
        "outcome": t.outcome,
        "detail": t.detail,
        "recipients": {str(r.pk): [r.status, r.smtp_code, r.smtp_reply] for r in t.pending},
    }
    t.message.outcome_note = note
    field = Message._meta.get_field("outcome_note")
    qn = connection.ops.quote_name
    NOTES.submit(
        f"UPDATE {qn(Message._meta.db_table)} SET {qn('outcome_note')} = %s "  # noqa: S608
        f"WHERE {qn('id')} = %s AND {qn('lease_owner')} = %s",
        [field.get_db_prep_save(note, connection), t.message.pk, lease.owner],
    )


class NoteWriter:
    """Writes the notes (:func:`_note`) on a thread of its own while the next message goes
    out: a note must be on record before the *next* message's final dot (:meth:`flush`, from
    :meth:`Lease.confirm`), not before its envelope, so the database write overlaps the
    network's round trips. A worker that dies repeats at most the message in hand: the one
    before it was on record before its dot went out."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[str, list[Any]]] = queue.SimpleQueue()
        self._done = threading.Condition()
        self._pending = 0
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def submit(self, sql: str, params: list[Any]) -> None:
        with self._done:
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="notes", daemon=True)
                self._thread.start()
        self._queue.put((sql, params))

    def flush(self) -> None:
        """Until every note submitted is written; a write that failed raises here."""
        with self._done:
            self._done.wait_for(lambda: self._pending == 0)
            error, self._error = self._error, None
        if error is not None:
            raise error

    def _run(self) -> None:
        from django.db import connection

        while True:
            try:
                sql, params = self._queue.get(timeout=1.0)
            except queue.Empty:  # idle: no connection held open meanwhile
                connection.close()
                continue
            failed: BaseException | None = None
            try:
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
            except DatabaseError as exc:
                OUTAGE.failed(exc)  # (drops this thread's connection too)
                failed = exc
            except Exception as exc:  # reported to the sender at its next flush
                failed = exc
            with self._done:
                self._pending -= 1
                if failed is not None and self._error is None:
                    self._error = failed
                self._done.notify_all()


NOTES = NoteWriter()


def _completed(lease: Lease, message: Message) -> _Tried:
    """The attempt a dead worker made and noted (:func:`_note`), as if this worker had made
    it: the recipients' replies and the attempt's times as noted, its own attempt row (the
    claim's count goes back to its number)."""
    note = message.outcome_note or {}
    recipients = list(message.recipients.all())
    noted = note.get("recipients", {})
    pending = []
    for r in recipients:
        if str(r.pk) in noted:
            r.status, r.smtp_code, r.smtp_reply = noted[str(r.pk)]
            pending.append(r)
    message.attempt_count -= 1
    if note.get("attempt"):
        lease.attempts[message.pk] = Attempt(pk=note["attempt"], message=message)
    config_pk = note.get("config")
    config = SmtpConfig.objects.filter(pk=config_pk).first() if config_pk else None
    return _Tried(
        message,
        config,
        recipients,
        pending,
        datetime.fromisoformat(note["started"]),
        datetime.fromisoformat(note["finished"]),
        note.get("outcome", "done"),
        note.get("detail", ""),
    )


def _send(
    message: Message,
    config: SmtpConfig,
    recipients: list[Recipient],
    pending: list[Recipient],
    lease: Lease,
) -> str:
    """Send one message through ``config``: ``"failed"`` when the server refused the envelope
    with a 4xx (a server-level failure), else ``"ok"``; raises :class:`ServerFailure` for a
    server-level failure before any recipient was accepted, :class:`TemporaryFailure` for
    other temporary ones."""
    sender = compose.envelope_sender(config.sender_address, config.username)
    if not sender:  # a configuration problem an admin can fix: wait for it, do not fail
        raise TemporaryFailure("The active SMTP configuration has no sender address.")
    visible = {
        kind: [r.address for r in recipients if r.kind == kind]
        for kind in (RecipientKind.TO, RecipientKind.CC)
    }
    try:
        raw = compose.render(
            sender=sender,
            sender_name=config.sender_name,
            to=visible[RecipientKind.TO],
            cc=visible[RecipientKind.CC],
            subject=message.subject,
            text=message.text,
            html=message.html,
            reply_to=message.reply_to or config.reply_to_address,
            headers=message.headers,
            message_id=message.message_id,
            auto_submitted=message.is_failure_notice,
            attachments=attachments.load(message),
        )
    except attachments.StorageUnavailable as exc:
        raise TemporaryFailure(f"Not sent yet: {exc}.") from None
    except ValueError as exc:  # UnsafeMessage, or the email package refusing a header
        raise Unsendable(f"Not sent: the message could not be built safely ({exc}).") from None
    smtp = POOL.get(config)
    accepted: list[Recipient] = []  # filled as the server accepts recipients
    try:
        if smtp.has_extn("pipelining"):
            mail_code = _transact_pipelined(smtp, lease, sender, raw, pending, accepted)
        else:
            mail_code = _transact(smtp, lease, sender, raw, pending, accepted)
    except DatabaseUnavailable:
        # The lease could not be confirmed before DATA: the session is cut (a server
        # waiting for the message would take a dot for an empty one) and nothing is sent.
        POOL.discard(broken=True)
        raise
    except (OSError, smtplib.SMTPException) as exc:
        # Dropped, timed out or a 421: nothing is known to be delivered; retry (with the
        # same Message-ID, so a copy that did arrive is recognisable as the same message).
        # A server that answered is told QUIT; a stream cut or stalled mid-command is not
        # (nor one with pipelined replies still unread: it is out of step).
        answered = isinstance(exc, smtplib.SMTPResponseException)
        POOL.discard(broken=not answered)
        # Before any recipient was accepted it is the server's failure, not a recipient's.
        raise (TemporaryFailure if accepted else ServerFailure)(_describe(exc)) from None
    return "failed" if 400 <= mail_code < 500 else "ok"


LEASE_LOST = "The lease ran out before the message was sent."


def _transact(
    smtp: smtplib.SMTP,
    lease: Lease,
    sender: str,
    raw: bytes,
    pending: list[Recipient],
    accepted: list[Recipient],
) -> int:
    """One command, one reply: for servers that do not offer PIPELINING. MAIL's reply code;
    ``accepted`` gets the recipients the server accepted as it does."""
    code, reply = smtp.mail(sender)
    if code >= 400:
        smtp.rset()
        POOL.release()
        _all(pending, code, reply)
        return code
    mail_code = code
    for r in pending:
        code, reply = smtp.rcpt(compose.envelope_address(r.address))
        if 200 <= code < 300:
            accepted.append(r)
        else:
            _set(r, code, reply)
    if not accepted:
        smtp.rset()
        POOL.release()
        return mail_code
    if not lease.confirm():
        # We stalled past our lease and another worker has the message now: sending the
        # data too would deliver it twice.
        smtp.rset()
        POOL.release()
        raise TemporaryFailure(LEASE_LOST)
    final: bytes | str
    try:
        code, final = smtp.data(raw)
    except smtplib.SMTPDataError as exc:  # DATA itself refused
        code, final = exc.smtp_code, exc.smtp_error
    _all(accepted, code, final)
    POOL.release()
    return mail_code


def _transact_pipelined(
    smtp: smtplib.SMTP,
    lease: Lease,
    sender: str,
    raw: bytes,
    pending: list[Recipient],
    accepted: list[Recipient],
) -> int:
    """RFC 2920: MAIL, every RCPT and DATA in one write, then their replies in order — one
    round trip instead of one per command, with the same per-recipient results. Every reply
    is read (and each one looked at) before anything else is sent, so the session stays in
    step whatever was refused; a connection lost before the replies are all in is broken."""
    send_commands(
        smtp,
        [
            f"MAIL FROM:{smtplib.quoteaddr(sender)}",
            *(f"RCPT TO:{smtplib.quoteaddr(compose.envelope_address(r.address))}" for r in pending),
            "DATA",
        ],
    )
    mail_code, mail_reply = smtp.getreply()
    for r in pending:
        code, reply = smtp.getreply()
        if mail_code >= 400:
            continue  # answers within a transaction that never began (503): MAIL's reply counts
        if 200 <= code < 300:
            accepted.append(r)
        else:
            _set(r, code, reply)
    code, final = smtp.getreply()  # DATA's; 503/554 when nobody was accepted
    if mail_code >= 400 or not accepted:
        if code == 354:  # DATA accepted all the same: end it empty, never with the message
            end_empty_data(smtp)
        smtp.rset()
        POOL.release()
        if mail_code >= 400:
            _all(pending, mail_code, mail_reply)
        return mail_code
    if code != 354:  # DATA itself refused
        _all(accepted, code, final)
        POOL.release()
        return mail_code
    if not lease.confirm():
        # We stalled past our lease and another worker has the message now. The server
        # waits for the message: a dot would send an empty one, so the session is cut.
        POOL.discard(broken=True)
        raise TemporaryFailure(LEASE_LOST)
    code, final = send_data(smtp, raw)
    _all(accepted, code, final)
    POOL.release()
    return mail_code


def _text(reply: bytes | str) -> str:
    return (reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply))[:1000]


def _set(r: Recipient, code: int, reply: bytes | str) -> None:
    r.smtp_code, r.smtp_reply = code, _text(reply)
    if 200 <= code < 300:
        r.status = RecipientStatus.SENT
    elif 400 <= code < 500:
        r.status = RecipientStatus.DEFERRED
    else:
        r.status = RecipientStatus.FAILED


def _all(recipients: list[Recipient], code: int, reply: bytes | str) -> None:
    for r in recipients:
        _set(r, code, reply)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError):
        return "The server closed the connection."
    if isinstance(exc, TimeoutError):
        return "The server did not answer in time."
    return f"{type(exc).__name__}: {exc}"[:300]


def backoff(attempt: int) -> float:
    """Exponential, between the configured minimum and maximum, with ±20 % jitter."""
    low, high = settings.OUTBOUND_RETRY_MIN_BACKOFF, settings.OUTBOUND_RETRY_MAX_BACKOFF
    delay = min(high, low * 2 ** max(attempt - 1, 0))
    return delay * random.uniform(0.8, 1.2)


def _record(lease: Lease, tried: list[_Tried]) -> dict[int, str]:
    """Write the results of a batch's attempts with a few bulk statements in one transaction,
    for the messages whose lease is still ours (checked under lock: a worker that took one
    over decides it), then log one line per attempt."""
    if not tried:
        return {}
    results: dict[int, str] = {}
    wanted = publishing.outcomes_wanted()  # (webhooks: cached, no query when nobody subscribes)
    with lease.lock:
        with transaction.atomic():
            ids = [t.message.pk for t in tried]
            held = set(
                Message.objects.select_for_update()
                .filter(pk__in=ids, status=MessageStatus.SENDING, lease_owner=lease.owner)
                .values_list("pk", flat=True)
            )
            # (``lease.held`` drops them once this transaction is on record, below.)
            messages: list[Message] = []
            lost: dict[int, dict[str, Any]] = {}
            recipients: list[Recipient] = []
            attempts: dict[int, dict[str, Any]] = {}
            for t in tried:
                attempt = lease.attempts.get(t.message.pk)
                if t.message.pk not in held:
                    results[t.message.pk] = "lease-lost"
                    if attempt is not None:  # what became of ours (another worker decides)
                        lost[attempt.pk] = {
                            "config": t.config.pk if t.config else None,
                            "server": str(t.config or ""),
                            "started_at": t.started, "finished_at": t.finished,
                            "outcome": "lease-lost", "detail": LEASE_LOST,
                        }  # fmt: skip
                    continue
                changed = _settle(t)
                messages.append(t.message)
                recipients.extend(changed)
                results[t.message.pk] = str(t.message.status)
                if attempt is not None:
                    attempts[attempt.pk] = {
                        "config": t.config.pk if t.config is not None else None,
                        "server": str(t.config) if t.config is not None else "",
                        "started_at": t.started,
                        "finished_at": t.finished,
                        "outcome": t.message.status if t.outcome == "done" else t.outcome,
                        "detail": (t.detail or t.message.last_error)[:1000],
                    }
            bulk.update_rows(Message, {m.pk: bulk.values_of(m, _RESULT_FIELDS) for m in messages})
            bulk.update_rows(
                Recipient, {r.pk: bulk.values_of(r, _RECIPIENT_FIELDS) for r in recipients}
            )
            if lost:  # what we know replaces "interrupted" (from the worker that took it
                # over), but not a result of ours already on record (a commit whose answer
                # the database did not get back to us before the connection broke)
                open_ = (MessageStatus.SENDING, "interrupted")
                still = Attempt.objects.filter(pk__in=lost, outcome__in=open_)
                attempts.update((pk, lost[pk]) for pk in still.values_list("pk", flat=True))
            bulk.update_rows(Attempt, attempts)
            for t in tried:
                failed = [r for r in t.recipients if r.status == RecipientStatus.FAILED]
                final = t.message.pk in held and t.message.status != MessageStatus.DEFERRED
                if final and failed and t.config is not None:
                    outbox.queue_failure_notice(
                        failed=t.message,
                        addresses=list(t.config.failure_emails or []),
                        summary=_failure_summary(t.message, failed),
                    )
            # Their events (webhooks), written with the results: both or neither.
            publishing.queue_outcomes(
                wanted,
                [
                    (t.message, t.config, t.recipients, t.pending)
                    for t in tried
                    if t.message.pk in held
                ],
            )
        lease.held.difference_update(ids)
    for t in tried:
        done = results[t.message.pk]
        outcome = done if t.outcome == "done" or done == "lease-lost" else t.outcome
        tried_ids = {r.pk for r in t.pending}
        saved = [r for r in t.recipients if r.pk in tried_ids]
        _log_attempt(t.message, t.config, saved, outcome=outcome, started=t.started, now=t.finished)
        if done != "lease-lost":
            metrics.delivery_recorded(t.message, [str(r.status) for r in saved])
    return results


_RECIPIENT_FIELDS = ["status", "smtp_code", "smtp_reply", "updated_at"]
_RESULT_FIELDS = [
    "status", "config", "lease_owner", "lease_until", "last_error", "next_attempt_at",
    "finished_at", "sent_at", "attempt_count", "outcome_note",
]  # fmt: skip


def _settle(t: _Tried) -> list[Recipient]:
    """Decide the message's state after an attempt (sent, failed, or deferred with backoff;
    failed once it is too old) and set it on the message and its recipients; the recipients
    to write."""
    message, now = t.message, t.finished
    # While the lease is ours nobody else writes the recipients: they are as loaded at the
    # claim, plus this attempt's results.
    recipients = t.recipients
    deferred = [r for r in recipients if r.status == RecipientStatus.DEFERRED]
    age = (now - message.created_at).total_seconds()
    give_up = bool(deferred) and age >= settings.OUTBOUND_MAX_MESSAGE_AGE

    def reply(r: Recipient) -> str:  # as it will be saved
        if give_up and r.status == RecipientStatus.DEFERRED:
            return f"Gave up after {message.attempt_count} attempts: {r.smtp_reply}"[:1000]
        return r.smtp_reply

    message.last_error = t.detail or next(
        (
            f"{r.smtp_code or ''} {reply(r)}".strip()[:1000]
            for r in recipients
            if r.status != RecipientStatus.SENT
        ),
        "",
    )
    message.config = t.config
    message.lease_owner, message.lease_until = "", None
    message.outcome_note = None  # written out now
    sent = [r for r in recipients if r.status == RecipientStatus.SENT]
    if deferred and not give_up:
        message.status = MessageStatus.DEFERRED
        if (t.server == "failed" or t.outcome == "deferred") and FAILOVER.due_now(t.config):
            # The server failed it (or cut it off) and a standby serves now: it sends it now.
            message.next_attempt_at = now
        else:
            message.next_attempt_at = now + timedelta(seconds=backoff(message.attempt_count))
    else:
        message.status = MessageStatus.SENT if sent else MessageStatus.FAILED
        message.finished_at = now
        if sent and message.sent_at is None:
            message.sent_at = now
    changed = list(t.pending)
    for r in recipients:
        r.smtp_reply = reply(r)
        if give_up and r.status == RecipientStatus.DEFERRED:
            r.status = RecipientStatus.FAILED
            if r not in t.pending:
                changed.append(r)
    for r in changed:
        r.updated_at = now
    return changed


def _log_attempt(
    message: Message,
    config: SmtpConfig | None,
    tried: list[Recipient],
    *,
    outcome: str,
    started: Any,
    now: Any,
) -> None:
    """The one log line of a delivery attempt, at INFO on ``outbound.delivery``: which
    message, which attempt, which configuration and server, each recipient's SMTP reply, the
    outcome and how long it took. Never a subject, a body, a header or a secret: only what the
    attempt record holds (the replies are the server's, the addresses the envelope's)."""
    replies = "; ".join(
        f"{_envelope(r.address)} {r.smtp_code or '-'} {_one_line(r.smtp_reply)}".rstrip()
        for r in tried
    )
    fields = {
        "message": message.pk,
        "message_id": message.message_id,
        "attempt": message.attempt_count,
        "config": config.pk if config is not None else None,
        "server": str(config) if config is not None else "",
        "outcome": outcome,
        "duration_ms": round((now - started).total_seconds() * 1000),
        "recipients": replies,
    }
    # Structured (JSON) handlers get each recipient's reply as its own object.
    structured = fields | {
        "recipients": [
            {
                "address": _envelope(r.address),
                "status": str(r.status),
                "smtp_code": r.smtp_code,
                "smtp_reply": _one_line(r.smtp_reply),
            }
            for r in tried
        ]
    }
    delivery_log.info(
        "delivery message=%(message)s message_id=%(message_id)s attempt=%(attempt)s "
        "config=%(config)s server=%(server)s outcome=%(outcome)s duration_ms=%(duration_ms)s "
        "recipients=[%(recipients)s]",
        fields,
        extra={"delivery": structured},
    )


def _envelope(address: str) -> str:
    try:
        return compose.envelope_address(address)
    except ValueError:  # an address the message could not be built with: as it was given
        return _one_line(address)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:300]


def _failure_summary(message: Message, failed: list[Recipient]) -> str:
    lines = [
        "Outbound could not deliver a message to some or all of its recipients.",
        "",
        f"Message-ID: {message.message_id}",
        f"Subject: {message.subject}",
        f"Queued: {message.created_at.isoformat()}",
        f"Attempts: {message.attempt_count}",
        "",
        "Failed recipients:",
        *(f"  {r.address}: {r.smtp_code or ''} {r.smtp_reply}".rstrip() for r in failed),
    ]
    return "\n".join(lines) + "\n"
