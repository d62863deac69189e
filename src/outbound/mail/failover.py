"""Automatic failover of the SMTP configuration that serves delivery (issue 14).

The admin's *active* configuration is the primary; configurations with a ``standby`` rank
(lower preferred) are kept ready. Which one serves now lives in one database row
(:class:`~outbound.mail.models.FailoverState`), so every worker sees the same, and it is only
ever changed by conditional UPDATEs (compare-and-set on its ``version``): two workers never
both switch, and a count never goes up for a primary that is no longer the one.

- A *server-level* failure of the primary (connect, TLS, AUTH, or a 4xx/timeout before any
  recipient was accepted; never a recipient refusal) adds one to the shared count; a success
  (the server took the envelope) sets it back to 0. Successes cost nothing while the count
  is 0: the worker remembers it and writes only when it changes.
- After ``OUTBOUND_FAILOVER_AFTER`` consecutive failures the worker that counted the last one
  probes the standbys in rank order, in a background thread (its delivery goes on meanwhile;
  a connection test: connect, TLS, AUTH, QUIT) and switches to the first that passes: event
  ``smtp_config.failed_over`` (and the webhook event), one notice to the primary's
  ``failure_emails``, and the messages the primary's failures deferred are due at once.
  No standby passing: no switch (messages are deferred as before);
  the standbys are probed again at most every ``OUTBOUND_FAILBACK_PROBE`` seconds per worker.
- While a standby serves, one worker at a time (the one that claims the probe slot) probes the
  primary every ``OUTBOUND_FAILBACK_PROBE`` seconds in the background and fails back when it
  passes (event ``smtp_config.failed_back``).
- The state holds for the configuration that was active when it was written: once the admin
  activates another one it no longer applies (the new active configuration serves, its count
  starts at 0).
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.utils import timezone

from outbound.core import publish
from outbound.core.events import record_event
from outbound.mail import compose, outbox, publishing
from outbound.mail.models import Attempt, FailoverState, Message, MessageStatus, SmtpConfig
from outbound.mail.transport import (
    Session,
    StepFailed,
    close_quietly,
    open_connection,
    say_goodbye,
)

logger = logging.getLogger(__name__)

RESOURCE = "smtp_config"
FAILED_OVER = "smtp_config.failed_over"
FAILED_BACK = "smtp_config.failed_back"
STATE_ID = 1


@dataclass(frozen=True)
class Serving:
    """What one read of the state says."""

    config: SmtpConfig | None  # delivers now: the primary, or the standby serving for it
    primary: SmtpConfig | None  # the admin's active configuration
    version: int
    failures: int  # the primary's consecutive server-level failures
    failing_since: datetime | None
    since: datetime | None = None  # when the configuration serving last changed

    @property
    def failed_over(self) -> bool:
        return self.config is not None and self.primary is not None and self.config != self.primary


def read() -> Serving:
    """The active configuration and the one serving for it, in one statement (the sender
    reads this where it read the active configuration: no statement more per batch)."""
    state = FailoverState.objects.filter(pk=STATE_ID)

    def column(name: str) -> Subquery:
        return Subquery(state.values(name)[:1])

    # The state is annotated on every row; the standby serving is a row only while it still
    # is a standby (an admin who takes it off the list sends delivery back to the primary).
    rows = list(
        SmtpConfig.objects.filter(
            Q(is_active=True) | Q(pk=column("serving_id"), standby__isnull=False)
        )
        .annotate(
            fo_primary=column("primary_id"),
            fo_serving=column("serving_id"),
            fo_version=column("version"),
            fo_failures=column("failures"),
            fo_failing_since=column("failing_since"),
            fo_since=column("since"),
        )
        .order_by("id")
    )
    active = next((c for c in rows if c.is_active), None)
    if active is None:
        return Serving(None, None, 0, 0, None)
    a: Any = active
    version = a.fo_version or 0
    if a.fo_primary != active.pk:  # written for another primary: it does not apply
        return Serving(active, active, version, 0, None)
    serving = next((c for c in rows if a.fo_serving and c.pk == a.fo_serving), None)
    if a.fo_serving and serving is None:  # it left the standby list: as if reset (see reset)
        return Serving(active, active, version, 0, None)
    serving = serving or active
    return Serving(serving, active, version, a.fo_failures or 0, a.fo_failing_since, a.fo_since)


def serving_config_id() -> int | None:
    """The id of the configuration delivering mail now: the active one, or the standby it
    failed over to. ``None`` when no configuration is active."""
    config = read().config
    return config.pk if config is not None else None


def _reset_values(primary_id: int | None) -> dict[str, Any]:
    return {
        "primary_id": primary_id, "serving": None, "failures": 0, "failing_since": None,
        "since": timezone.now(), "probe_at": None, "probe_ok": None, "probe_detail": "",
        "version": F("version") + 1,
    }  # fmt: skip


def reset(active_id: int | None) -> bool:
    """The admin activated ``active_id`` (or deactivated the active one: ``None``): the state
    starts again for it — it serves, its failures count from 0, nothing is probed. One
    conditional UPDATE, in the caller's transaction (the activation and the reset: both or
    neither); nothing is written when the state is that already. True when it changed."""
    return bool(
        FailoverState.objects.filter(pk=STATE_ID)
        .filter(
            (~Q(primary_id=active_id) if active_id else Q(primary__isnull=False))
            | Q(serving__isnull=False)
            | Q(failures__gt=0)
        )
        .update(**_reset_values(active_id))
    )


def standby_gone(config: SmtpConfig, actor: Any = None) -> bool:
    """``config`` stops being a standby (``standby: null``) or is deleted: if it serves, the
    primary serves again (its failures count from 0), recorded as ``smtp_config.failed_back``
    on the primary with the admin as actor (and the webhook event). Call it in the change's
    transaction, before a delete. True when it was serving."""
    state = FailoverState.objects.filter(pk=STATE_ID, serving_id=config.pk)
    row = state.values_list("primary_id", flat=True).first()
    if row is None or not state.update(**_reset_values(row)):
        return False
    primary = SmtpConfig.objects.filter(pk=row).first()
    if primary is not None:
        at = timezone.now()
        record_event(resource_type=RESOURCE, resource_id=primary.pk, action="failed_back",
                     actor=actor)  # fmt: skip
        data = publishing.configuration_data
        _publish(
            FAILED_BACK,
            {"configuration": data(primary), "serving": data(primary),
             "previous": data(config), "at": _stamp(at)},
        )  # fmt: skip
    return True


# --- probes --------------------------------------------------------------------------------


def probe(config: SmtpConfig) -> tuple[bool, str]:
    """A connection test of ``config``: connect, TLS, AUTH, then ``MAIL FROM`` with its sender
    and ``RSET`` (a server that refuses every envelope with a 4xx fails it too, as it fails
    delivery), QUIT; no message is sent. Passed, and what failed when it did not."""
    from outbound.mail.sender import TemporaryFailure, target_for

    try:
        target = target_for(config)
        session = Session(target)
        try:
            smtp = open_connection(target, session)
        finally:
            session.close()
        if smtp.sock is not None:
            smtp.sock.settimeout(target.timeout)  # per operation from here on
        broken = False
        try:
            sender = compose.envelope_sender(config.sender_address, config.username)
            code, reply = smtp.mail(sender or "")
            if 400 <= code < 500:
                text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
                return False, f"mail: {code} {text}"[:1000]
            smtp.rset()
        except (OSError, smtplib.SMTPException) as exc:
            broken = True
            return False, f"mail: {type(exc).__name__}: {exc}"[:1000]
        finally:
            (close_quietly if broken else say_goodbye)(smtp)
    except StepFailed as failure:  # (open_connection closed what it had opened)
        return False, f"{failure.step}: {failure.message}"[:1000]
    except TemporaryFailure as exc:  # the password cannot be read
        return False, str(exc)[:1000]
    except Exception as exc:  # a probe never stops delivery
        logger.exception("probing SMTP configuration %s failed", config.pk)
        return False, f"Internal error: {type(exc).__name__}"
    return True, ""


def _stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _publish(event_type: str, data: dict[str, Any]) -> None:
    """The webhook event, written in the caller's transaction (with the switch it reports:
    both or neither); nothing is built when nobody subscribes."""
    publishing.publish_config_event(publish.event(event_type, data))


# --- the state, as one worker process sees and changes it -----------------------------------


class Failover:
    """The state as this process last read it, the count of failures it has seen, and the
    conditional writes that change the shared row. Thread-safe (a worker's delivery threads
    share it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.known: Serving | None = None
        self._failures_known = 0  # the shared count as last read or written by us
        self._stale = False  # failures recorded since the last read: read again soon
        self._read_at = 0.0
        self._standbys_probed_at = -1e9  # monotonic: the last round of standby probes here
        self._probe_check_at = 0.0  # monotonic: when to look whether a primary probe is due
        self._probing: threading.Thread | None = None
        self._switching: threading.Thread | None = None

    # reading

    def serving(self) -> SmtpConfig | None:
        """Read the state (one statement) and answer the configuration serving now. The
        first read that sees a switch to a standby makes the primary's deferred messages due."""
        seen = read()
        with self._lock:
            before, self.known = self.known, seen
            self._failures_known = seen.failures
            if before is not None and before.version != seen.version:
                self._standbys_probed_at = -1e9  # switched or reset: a new round may probe
            self._stale = False
            self._read_at = time.monotonic()
        switched = seen.failed_over and (before is None or before.version != seen.version)
        if switched and seen.primary is not None:
            _make_due(seen.primary, seen.failing_since)
        return seen.config

    def tick(self) -> None:
        """From the worker's loop (busy or idle): read again after failures were recorded
        (so a switch another worker made is seen and its deferred messages made due), and
        start the background probe of the primary when one is due. No statement otherwise."""
        from outbound.mail.sender import CONFIG_RECHECK

        now = time.monotonic()
        with self._lock:
            stale = self._stale and now - self._read_at >= CONFIG_RECHECK
            known = self.known
        # Nothing read yet (a worker just started, its queue idle): read, so that a standby
        # serving since before the restart gets its primary probed.
        stale = stale or known is None
        if stale:
            self.serving()
            known = self.known
        if known is not None and known.failed_over and now >= self._probe_check_at:
            self._probe_check_at = now + min(settings.OUTBOUND_FAILBACK_PROBE, 5.0)
            self._start_probe(known)

    # observing attempts

    def observe(self, config: SmtpConfig | None, server: str, started: datetime) -> bool:
        """After an attempt through ``config`` that began at ``started``: ``server`` is
        ``"failed"`` (server-level failure), ``"ok"`` (the server took the envelope) or ``""``
        (it says nothing about the server). True when the configuration serving changed (read
        it again now). Never raises: the bookkeeping must not stop delivery."""
        try:
            return self._observe(config, server, started)
        except Exception:
            logger.exception("failover bookkeeping failed; delivery goes on")
            return False

    def _observe(self, config: SmtpConfig | None, server: str, started: datetime) -> bool:
        known = self.known
        if config is None or known is None or known.primary is None or not server:
            return False
        primary = known.primary
        if known.failed_over:  # a standby's failures do not count (see the README)
            return config.pk == primary.pk  # still the primary in hand: read again now
        if config.pk != primary.pk:
            return False
        if server == "ok":
            # The shared count (any worker's failures) as our last read or write of it showed
            # it: written back to 0 when that was not 0 (a read is at most CONFIG_RECHECK old).
            with self._lock:
                reset, self._failures_known = self._failures_known > 0, 0
            if reset:
                with _quietly():
                    FailoverState.objects.filter(
                        pk=STATE_ID, primary_id=primary.pk, serving__isnull=True, failures__gt=0
                    ).update(failures=0, failing_since=None)
            return False
        with self._lock:
            self._stale = True
        count = 0
        with _quietly():
            count = _count_failure(primary, started)
        with self._lock:
            self._failures_known = count
        if count == 0:  # another worker switched meanwhile (or the database is away)
            return self._reread()
        if count < settings.OUTBOUND_FAILOVER_AFTER:
            return False
        with self._lock:
            now = time.monotonic()
            if now - self._standbys_probed_at < settings.OUTBOUND_FAILBACK_PROBE:
                return False
            self._standbys_probed_at = now
        self._start_switch(primary)  # in the background: delivery does not wait for it
        return False

    def _reread(self) -> bool:
        """Read the state again; True when a standby serves now."""
        with _quietly():
            self.serving()
        known = self.known
        return known is not None and known.failed_over

    def due_now(self, config: SmtpConfig | None) -> bool:
        """Whether a message that just failed at the server level through ``config`` should be
        due at once (another configuration serves now) instead of after its backoff."""
        known = self.known
        return (
            config is not None
            and known is not None
            and known.failed_over
            and known.config is not None
            and config.pk != known.config.pk
        )

    # probing the standbys (a switch), in the background

    def _start_switch(self, primary: SmtpConfig) -> None:
        with self._lock:
            if self._switching is not None and self._switching.is_alive():
                return
            self._switching = threading.Thread(
                target=self._switch, args=(primary,), name="failover-switch", daemon=True
            )
            self._switching.start()

    def _switch(self, primary: SmtpConfig) -> None:
        """Probe the standbys and switch; the delivery loop's next tick reads the state (it
        makes the deferred messages due there, after it recorded the attempts in hand)."""
        try:
            with _quietly():
                _switch(primary)
        finally:
            with self._lock:
                self._stale, self._read_at = True, -1e9
            connection.close()  # this thread's own

    def wait(self, timeout: float = 30) -> None:
        """Until the background probes of this process are done (tests)."""
        for thread in (self._switching, self._probing):
            if thread is not None:
                thread.join(timeout)

    # probing the primary

    def _start_probe(self, known: Serving) -> None:
        with self._lock:
            if self._probing is not None and self._probing.is_alive():
                return
            self._probing = threading.Thread(
                target=self._probe_primary, args=(known,), name="failover-probe", daemon=True
            )
            self._probing.start()

    def _probe_primary(self, known: Serving) -> None:
        try:
            with _quietly():
                _probe_primary(known)
                self.serving()  # failed back, by us or another worker, or still over
        finally:
            connection.close()  # this thread's own


@contextlib.contextmanager
def _quietly() -> Any:
    """Failover bookkeeping never stops delivery: a database error is the outage's (logged
    once by the sender), and the state is written again at the next chance."""
    from outbound.mail.sender import OUTAGE

    try:
        yield
    except DatabaseError as exc:
        OUTAGE.failed(exc)


def _ensure_row() -> None:
    with contextlib.suppress(IntegrityError), transaction.atomic():
        FailoverState.objects.bulk_create([FailoverState(pk=STATE_ID)], ignore_conflicts=True)


def _count_failure(primary: SmtpConfig, now: datetime) -> int:
    """One more consecutive failure of ``primary`` (in an attempt that began at ``now``) while
    it serves; the count now (0 when a standby serves already). A state written for another
    primary starts again from 1."""
    state = FailoverState.objects.filter(pk=STATE_ID)
    for _ in range(2):
        if state.filter(primary_id=primary.pk, serving__isnull=True).update(
            failures=F("failures") + 1
        ):
            break
        # The admin activated another configuration (or there is no row yet): reset.
        if state.exclude(primary_id=primary.pk).update(
            primary_id=primary.pk, serving=None, failures=1, failing_since=now, since=now,
            probe_at=None, probe_ok=None, probe_detail="", version=F("version") + 1,
        ):  # fmt: skip
            return 1
        # The standby serving left the list (or became active): as if reset, from 1.
        if state.filter(primary_id=primary.pk, serving__isnull=False).filter(
            Q(serving__standby__isnull=True) | Q(serving__is_active=True)
        ).update(
            serving=None, failures=1, failing_since=now, since=now, probe_at=None,
            probe_ok=None, probe_detail="", version=F("version") + 1,
        ):  # fmt: skip
            return 1
        if state.filter(primary_id=primary.pk).exists():
            return 0  # a standby serves already
        _ensure_row()
    row = state.values_list("failures", "failing_since").first()
    if row is None:
        return 0
    if row[1] is None:
        state.filter(primary_id=primary.pk, failing_since__isnull=True).update(failing_since=now)
    return int(row[0])


def _switch(primary: SmtpConfig) -> bool:
    """Probe the standbys in rank order and switch to the first that passes, if the state is
    still the primary's with enough failures; True when this worker switched."""
    standbys = (
        SmtpConfig.objects.filter(standby__isnull=False, is_active=False)
        .exclude(pk=primary.pk)
        .order_by("standby", "id")
    )
    probes: dict[str, dict[str, Any]] = {}
    chosen: SmtpConfig | None = None
    for standby in standbys:
        ok, detail = probe(standby)
        probes[str(standby.pk)] = {"at": _stamp(timezone.now()), "ok": ok, "detail": detail}
        if ok:
            chosen = standby
            break
    now = timezone.now()
    state = FailoverState.objects.filter(
        pk=STATE_ID,
        primary_id=primary.pk,
        serving__isnull=True,
        failures__gte=settings.OUTBOUND_FAILOVER_AFTER,
    )
    if chosen is None:
        state.update(standby_probes=probes)
        if probes:
            logger.warning(
                "SMTP configuration %s failed %d times in a row; no standby passed its probe",
                primary.pk,
                settings.OUTBOUND_FAILOVER_AFTER,
            )
        return False
    with transaction.atomic():
        if not state.update(
            serving=chosen, since=now, failures=0, probe_at=now, probe_ok=None,
            probe_detail="", standby_probes=probes, version=F("version") + 1,
        ):  # fmt: skip
            return False  # another worker switched first (or a success came in between)
        record_event(resource_type=RESOURCE, resource_id=primary.pk, action="failed_over")
        outbox.queue_notice(
            addresses=list(primary.failure_emails or []),
            subject=f"Outbound failed over from {primary} to {chosen}",
            text=_notice(primary, chosen, now),
        )
        data = publishing.configuration_data
        _publish(
            FAILED_OVER,
            {"configuration": data(primary), "serving": data(chosen),
             "failures": settings.OUTBOUND_FAILOVER_AFTER, "at": _stamp(now)},
        )  # fmt: skip
    logger.warning(
        "SMTP configuration %s (%s) failed %d times in a row: failed over to standby %s (%s)",
        primary.pk, primary, settings.OUTBOUND_FAILOVER_AFTER, chosen.pk, chosen,
    )  # fmt: skip
    return True


def _notice(primary: SmtpConfig, standby: SmtpConfig, at: datetime) -> str:
    return (
        f"Outbound could not deliver through the active SMTP configuration {primary.pk} "
        f"({primary}) {settings.OUTBOUND_FAILOVER_AFTER} times in a row (connection, TLS, "
        f"authentication or a temporary refusal of the server).\n\n"
        f"Since {_stamp(at)} mail is delivered through the standby configuration "
        f"{standby.pk} ({standby}). The active configuration is unchanged; Outbound probes it "
        f"every {settings.OUTBOUND_FAILBACK_PROBE:g} seconds and goes back to it as soon as "
        f"the probe passes.\n"
    )


def _probe_primary(known: Serving) -> bool:
    """Claim the probe slot (one worker per ``OUTBOUND_FAILBACK_PROBE`` seconds), probe the
    primary and fail back when it passes; True when this worker failed back."""
    primary = known.primary
    if primary is None or not known.failed_over:
        return False
    now = timezone.now()
    due = now - timedelta(seconds=settings.OUTBOUND_FAILBACK_PROBE)
    state = FailoverState.objects.filter(
        pk=STATE_ID, version=known.version, primary_id=primary.pk, serving__isnull=False
    )
    if not state.filter(Q(probe_at__isnull=True) | Q(probe_at__lte=due)).update(probe_at=now):
        return False
    fresh = SmtpConfig.objects.filter(pk=primary.pk, is_active=True).first()
    if fresh is None:
        return False
    ok, detail = probe(fresh)
    if not ok:
        state.update(probe_ok=False, probe_detail=detail)
        logger.info("SMTP configuration %s still fails its probe: %s", fresh.pk, detail)
        return False
    at = timezone.now()
    with transaction.atomic():
        if not state.update(
            serving=None, failures=0, failing_since=None, since=at, probe_at=at, probe_ok=True,
            probe_detail="", version=F("version") + 1,
        ):  # fmt: skip
            return False
        record_event(resource_type=RESOURCE, resource_id=fresh.pk, action="failed_back")
        data = publishing.configuration_data
        _publish(
            FAILED_BACK,
            {"configuration": data(fresh), "serving": data(fresh),
             "previous": data(known.config), "at": _stamp(at)},
        )  # fmt: skip
    logger.warning("SMTP configuration %s (%s) passed its probe: failed back", fresh.pk, fresh)
    return True


def _make_due(primary: SmtpConfig, failing_since: datetime | None) -> int:
    """The messages the primary's failures deferred are due at once (the standby delivers
    them now): deferred through the primary, their last attempt ended since its failures
    began — or a little before (its timeout and a second), so that a message cut off in the
    middle when the server went away is one of them."""
    now = timezone.now()
    deferred = Message.objects.filter(
        status=MessageStatus.DEFERRED, config_id=primary.pk, next_attempt_at__gt=now
    )
    if failing_since is not None:
        since = failing_since - timedelta(seconds=primary.effective_timeout + 1)
        deferred = deferred.filter(
            Exists(
                Attempt.objects.filter(
                    message_id=OuterRef("pk"), config_id=primary.pk, finished_at__gte=since
                )
            )
        )
    with _quietly():
        return deferred.update(next_attempt_at=now)
    return 0


FAILOVER = Failover()
