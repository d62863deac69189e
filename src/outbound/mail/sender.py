"""Delivery: claim a message with a lease, send it with the configuration active *now*,
record per-recipient results, retry temporary failures with backoff, give up with one
failure notice.

Connections come from the same transport builder as the connection test; they are kept open
per thread and reused for consecutive messages to the same configuration until they idle
out or the configuration changes. Every one of them ends with QUIT while the server is in
step: a reaper says goodbye to those idle for ``OUTBOUND_SMTP_IDLE`` seconds (no next
message needed), and the worker to the rest when it stops. Microsoft tokens are cached per
authentication object until shortly before expiry, with one fetch in flight, and refreshed
once when the server refuses them.
"""

from __future__ import annotations

import logging
import os
import random
import smtplib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, prefetch_related_objects
from django.utils import timezone
from django.utils.crypto import get_random_string

from outbound.core.secrets import SecretDecryptionError
from outbound.integrations.microsoft import AccessToken, fetch_token
from outbound.integrations.models import AuthenticationObject
from outbound.mail import attachments, compose, outbox
from outbound.mail.models import (
    Attempt,
    Message,
    MessageStatus,
    Recipient,
    RecipientKind,
    RecipientStatus,
    SmtpConfig,
)
from outbound.mail.selectors import active_smtp_config
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


class Unsendable(Exception):
    """The message cannot be built as it was meant: failed at once, never sent, not retried."""


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
            raise TemporaryFailure(f"{failure.step}: {failure.message}") from None
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


# --- one attempt ---------------------------------------------------------------------------


def claim(message_id: int) -> Message | None:
    """Take the message for this worker, if it is due and nobody holds it (a lease).

    Every claim has its own owner token (not just the worker's id), so two threads of one
    process can tell their leases apart.
    """
    now = timezone.now()
    owner = f"{WORKER_ID[:51]}/{get_random_string(12)}"
    taken = (
        Message.objects.filter(pk=message_id)
        .filter(
            Q(
                status__in=[MessageStatus.QUEUED, MessageStatus.DEFERRED],
                next_attempt_at__lte=now,
            )
            | Q(status=MessageStatus.SENDING, lease_until__lt=now)
        )
        .update(
            status=MessageStatus.SENDING,
            lease_owner=owner,
            lease_until=now + timedelta(seconds=settings.OUTBOUND_SEND_LEASE),
            attempt_count=F("attempt_count") + 1,
        )
    )
    return Message.objects.filter(pk=message_id, lease_owner=owner).first() if taken else None


def _renew_lease(message: Message) -> bool:
    """Extend our lease; False when it ran out and another worker took the message over."""
    return bool(
        Message.objects.filter(
            pk=message.pk, status=MessageStatus.SENDING, lease_owner=message.lease_owner
        ).update(lease_until=timezone.now() + timedelta(seconds=settings.OUTBOUND_SEND_LEASE))
    )


class _Heartbeat:
    """Renews the lease every third of its length while a slow send is under way, so a long
    DATA is not mistaken for a dead worker (and sent a second time by another)."""

    def __init__(self, message: Message) -> None:
        self._stop = threading.Event()
        self._message = message
        self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from django.db import connection

        try:
            while not self._stop.wait(settings.OUTBOUND_SEND_LEASE / 3):
                if not _renew_lease(self._message):
                    return
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def deliver(message_id: int) -> str:
    """Run one delivery attempt of a message; returns the message's status afterwards."""
    message = claim(message_id)
    if message is None:
        return "skipped"
    started = timezone.now()
    config = active_smtp_config()
    # Every recipient in one query, kept on the message for the headers and the results:
    # while we hold the lease nobody else writes them.
    prefetch_related_objects([message], "recipients")
    waiting = (RecipientStatus.PENDING, RecipientStatus.DEFERRED)
    pending = [r for r in message.recipients.all() if r.status in waiting]
    outcome, detail = "error", ""
    heartbeat = _Heartbeat(message)
    try:
        if config is None:
            raise TemporaryFailure("No SMTP configuration is active.")
        _send(message, config, pending)
        outcome = "done"
    except Unsendable as exc:
        detail = str(exc)[:1000]
        for r in pending:
            r.status, r.smtp_code, r.smtp_reply = RecipientStatus.FAILED, None, detail
        outcome = "done"
    except TemporaryFailure as exc:
        detail = str(exc)[:1000]
        for r in pending:
            if r.status not in (RecipientStatus.SENT, RecipientStatus.FAILED):
                r.status, r.smtp_code, r.smtp_reply = RecipientStatus.DEFERRED, None, detail
        outcome = "deferred"
    except Exception as exc:  # a bug must not strand the message in "sending"
        logger.exception("delivery of message %s failed unexpectedly", message_id)
        detail = f"Internal error: {type(exc).__name__}"
        for r in pending:
            if r.status not in (RecipientStatus.SENT, RecipientStatus.FAILED):
                r.status, r.smtp_reply = RecipientStatus.DEFERRED, detail
        outcome = "deferred"
    finally:
        heartbeat.stop()
    return _finish(message, config, pending, started=started, outcome=outcome, detail=detail)


def _send(message: Message, config: SmtpConfig, pending: list[Recipient]) -> None:
    sender = compose.envelope_sender(config.sender_address, config.username)
    if not sender:  # a configuration problem an admin can fix: wait for it, do not fail
        raise TemporaryFailure("The active SMTP configuration has no sender address.")
    visible = {
        kind: [r.address for r in message.recipients.all() if r.kind == kind]
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
    try:
        if smtp.has_extn("pipelining"):
            _transact_pipelined(smtp, message, sender, raw, pending)
        else:
            _transact(smtp, message, sender, raw, pending)
    except (OSError, smtplib.SMTPException) as exc:
        # Dropped, timed out or a 421: nothing is known to be delivered; retry (with the
        # same Message-ID, so a copy that did arrive is recognisable as the same message).
        # A server that answered is told QUIT; a stream cut or stalled mid-command is not
        # (nor one with pipelined replies still unread: it is out of step).
        answered = isinstance(exc, smtplib.SMTPResponseException)
        POOL.discard(broken=not answered)
        raise TemporaryFailure(_describe(exc)) from None


LEASE_LOST = "The lease ran out before the message was sent."


def _transact(
    smtp: smtplib.SMTP, message: Message, sender: str, raw: bytes, pending: list[Recipient]
) -> None:
    """One command, one reply: for servers that do not offer PIPELINING."""
    code, reply = smtp.mail(sender)
    if code >= 400:
        smtp.rset()
        POOL.release()
        _all(pending, code, reply)
        return
    accepted = []
    for r in pending:
        code, reply = smtp.rcpt(compose.envelope_address(r.address))
        if 200 <= code < 300:
            accepted.append(r)
        else:
            _set(r, code, reply)
    if not accepted:
        smtp.rset()
        POOL.release()
        return
    if not _renew_lease(message):
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


def _transact_pipelined(
    smtp: smtplib.SMTP, message: Message, sender: str, raw: bytes, pending: list[Recipient]
) -> None:
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
    accepted = []
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
        return
    if code != 354:  # DATA itself refused
        _all(accepted, code, final)
        POOL.release()
        return
    if not _renew_lease(message):
        # We stalled past our lease and another worker has the message now. The server
        # waits for the message: a dot would send an empty one, so the session is cut.
        POOL.discard(broken=True)
        raise TemporaryFailure(LEASE_LOST)
    code, final = send_data(smtp, raw)
    _all(accepted, code, final)
    POOL.release()


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


@transaction.atomic
def _finish(
    message: Message,
    config: SmtpConfig | None,
    pending: list[Recipient],
    *,
    started: Any,
    outcome: str,
    detail: str,
) -> str:
    now = timezone.now()
    # While the lease is ours nobody else writes the recipients: they are as loaded at the
    # claim, plus this attempt's results.
    recipients = list(message.recipients.all())
    deferred = [r for r in recipients if r.status == RecipientStatus.DEFERRED]
    age = (now - message.created_at).total_seconds()
    give_up = bool(deferred) and age >= settings.OUTBOUND_MAX_MESSAGE_AGE

    def reply(r: Recipient) -> str:  # as it will be saved
        if give_up and r.status == RecipientStatus.DEFERRED:
            return f"Gave up after {message.attempt_count} attempts: {r.smtp_reply}"[:1000]
        return r.smtp_reply

    last_error = detail or next(
        (
            f"{r.smtp_code or ''} {reply(r)}".strip()[:1000]
            for r in recipients
            if r.status != RecipientStatus.SENT
        ),
        "",
    )
    final: dict[str, Any] = {
        "config": config,
        "lease_owner": "",
        "lease_until": None,
        "last_error": last_error,
    }
    sent = [r for r in recipients if r.status == RecipientStatus.SENT]
    if deferred and not give_up:
        final["status"] = MessageStatus.DEFERRED
        final["next_attempt_at"] = now + timedelta(seconds=backoff(message.attempt_count))
    else:
        final["status"] = MessageStatus.SENT if sent else MessageStatus.FAILED
        final["finished_at"] = now
        if sent and message.sent_at is None:
            final["sent_at"] = now
    # One conditional UPDATE checks the lease is still ours and records the outcome (only the
    # columns that change; never the body again).
    held = Message.objects.filter(
        pk=message.pk, status=MessageStatus.SENDING, lease_owner=message.lease_owner
    ).update(**final)
    if not held:  # our lease ran out and another worker took over: it decides
        _log_attempt(message, config, pending, outcome="lease-lost", started=started, now=now)
        return "lease-lost"
    for name, value in final.items():
        setattr(message, name, value)
    for r in recipients:
        r.smtp_reply = reply(r)
        if give_up and r.status == RecipientStatus.DEFERRED:
            r.status = RecipientStatus.FAILED
            if r not in pending:
                r.save(update_fields=["status", "smtp_reply", "updated_at"])
    for r in pending:
        r.save(update_fields=["status", "smtp_code", "smtp_reply", "updated_at"])
    if message.status == MessageStatus.DEFERRED:
        outbox.enqueue_on_commit(message.pk, run_after=message.next_attempt_at)
    else:
        failed = [r for r in recipients if r.status == RecipientStatus.FAILED]
        if failed and config is not None:
            outbox.queue_failure_notice(
                failed=message,
                addresses=list(config.failure_emails or []),
                summary=_failure_summary(message, failed),
            )
    Attempt.objects.create(
        message=message,
        number=message.attempt_count,
        config=config,
        server=str(config) if config is not None else "",
        worker=WORKER_ID[:64],  # the column is 64 wide; host names can be longer
        started_at=started,
        finished_at=now,
        outcome=message.status if outcome == "done" else outcome,
        detail=(detail or message.last_error)[:1000],
    )
    tried = {r.pk for r in pending}
    _log_attempt(
        message,
        config,
        [r for r in recipients if r.pk in tried],  # as saved (a give-up included)
        outcome=str(message.status if outcome == "done" else outcome),
        started=started,
        now=now,
    )
    return str(message.status)


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
    delivery_log.info(
        "delivery message=%(message)s message_id=%(message_id)s attempt=%(attempt)s "
        "config=%(config)s server=%(server)s outcome=%(outcome)s duration_ms=%(duration_ms)s "
        "recipients=[%(recipients)s]",
        fields,
        extra={"delivery": fields},  # for structured (JSON) log handlers
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


# --- recovery ------------------------------------------------------------------------------


def sweep(*, grace: float | None = None) -> int:
    """Enqueue due messages whose task was lost (a killed worker, a lost enqueue). A second
    task for the same message is harmless: only one worker can claim it."""
    from outbound.mail.tasks import deliver_message

    grace = settings.OUTBOUND_SWEEP_INTERVAL if grace is None else grace
    now = timezone.now()
    due = Message.objects.filter(
        Q(
            status__in=[MessageStatus.QUEUED, MessageStatus.DEFERRED],
            next_attempt_at__lte=now - timedelta(seconds=grace),
        )
        | Q(status=MessageStatus.SENDING, lease_until__lt=now)
    ).values_list("pk", flat=True)[:1000]
    waiting = _messages_with_waiting_tasks()
    count = 0
    for pk in due:
        if pk in waiting:  # a backlog, not a lost task
            continue
        deliver_message.enqueue(pk)
        count += 1
    return count


def _messages_with_waiting_tasks() -> set[int]:
    """Messages that already have a task waiting, when the backend lets us see (the database
    backend does); otherwise the empty set, and a duplicate task is merely a no-op."""
    if "django_tasks_db" not in str(settings.TASKS["default"]["BACKEND"]):
        return set()
    from django_tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from outbound.mail.tasks import deliver_message

    rows = DBTaskResult.objects.filter(
        status=TaskResultStatus.READY, task_path=deliver_message.module_path
    ).values_list("args_kwargs", flat=True)
    return {int(r["args"][0]) for r in rows if r.get("args")}
