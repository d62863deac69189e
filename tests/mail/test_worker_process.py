"""Real ``outbound worker`` processes against the test database and a loopback aiosmtpd server.

The outbox is the queue: workers claim batches of due messages straight from it, no task row
per message. Each test starts ``.venv/bin/outbound worker`` subprocesses, hands them the test
database through ``DATABASE_URL`` and the encryption key the SMTP password was sealed under
through ``OUTBOUND_SECRET_KEY``, and checks what reaches the server:

- a worker killed (SIGKILL) in the middle of DATA loses nothing and duplicates nothing: another
  worker sends the message once its lease has run out;
- two workers claiming from the same outbox deliver every message exactly once, and both work;
- a stranded message (``sending``, its lease run out, nobody left to finish it) and rows
  written straight into the outbox are sent without any task;
- a worker stopped (SIGTERM) mid-batch finishes the message in hand, gives the rest back as
  they were and logs what it did; another worker then sends them, once each;
- scale-out on PostgreSQL: 4 workers share 2,000 messages, none lost, none sent twice.

Child processes are always killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from outbound.core.secrets import KeyRing, new_key, reset_keyring
from outbound.mail import services
from outbound.mail.choices import Security
from outbound.mail.models import Attempt, Message, MessageStatus, Recipient, RecipientStatus
from tests.conftest import client_for
from tests.support.smtp import Recorder, RunningServer, Scripted, smtp_server

WORKER = Path(sys.executable).with_name("outbound")
SMTP_USER, SMTP_PASSWORD = "svc", secrets.token_urlsafe(12)
READY = re.compile(r"worker \S+ starting")
STOPPED = re.compile(
    r"worker (?P<id>\S+) stopped: messages=(?P<messages>\d+) "
    r"sql_statements=(?P<sql>\d+) cpu_seconds=(?P<cpu>[0-9.]+)"
)
LEASE = 3.0  # OUTBOUND_SEND_LEASE for the children, seconds (the kill test waits it out)

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the children see only committed rows
    pytest.mark.skipif(not WORKER.exists(), reason="the outbound script is not installed"),
]


# --- servers -------------------------------------------------------------------------------


@dataclass
class HoldingRecorder(Recorder):
    """Holds the first DATA until released; the held copy is never counted as delivered
    (its client is gone by then: the server never got to answer 250)."""

    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    held: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.held == 0:
            self.held += 1
            self.entered.set()
            while not self.release.is_set():  # cancelled when the client's connection drops
                await asyncio.sleep(0.02)
            return "451 4.3.0 Held message discarded"
        return await super().handle_DATA(server, session, envelope)


@dataclass
class GatheringRecorder(Recorder):
    """Holds the first DATA of every connection until ``parties`` connections are in DATA at
    once (or ``patience`` seconds have passed): then every worker has claimed a batch of its
    own before any of them delivers a message, so "all of them worked" does not depend on
    how the machine schedules them. After that it serves as fast as it can.

    With ``keep`` false it keeps no envelopes, only how often each Message-ID arrived."""

    parties: int = 2
    patience: float = 20.0
    keep: bool = True
    first_data: threading.Event = field(default_factory=threading.Event)
    gathered: threading.Event = field(default_factory=threading.Event)
    arrivals: Counter[str] = field(default_factory=Counter)  # Message-ID -> copies accepted
    _waiting: set[Any] = field(default_factory=set)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.first_data.set()
        if not self.gathered.is_set() and session.peer not in self._waiting:
            self._waiting.add(session.peer)
            deadline = time.monotonic() + self.patience
            while len(self._waiting) < self.parties and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            self.gathered.set()
        self.arrivals[message_id_of(envelope.original_content or b"")] += 1
        if self.keep:
            return await super().handle_DATA(server, session, envelope)
        return "250 Message accepted"


@dataclass
class PausingSink(Scripted):
    """A :class:`Scripted` server that says when the first message has come in and answers
    its final dot only once told to ``proceed`` (the others at once)."""

    data_started: threading.Event = field(default_factory=threading.Event)
    proceed: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.data_started.is_set():
            self.data_started.set()
            deadline = time.monotonic() + 20
            while not self.proceed.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        return await super().handle_DATA(server, session, envelope)


HEADER_END = re.compile(rb"\r?\n\r?\n")
MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


def message_id_of(content: bytes) -> str:
    end = HEADER_END.search(content)
    found = MESSAGE_ID.search(content, 0, end.start() if end else len(content))
    return found.group(1).decode() if found else ""


# --- workers -------------------------------------------------------------------------------


def database_url() -> str:
    """The test database as a ``DATABASE_URL`` the children can open."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    assert connection.vendor == "postgresql", connection.vendor
    auth = quote(str(s.get("USER") or ""), safe="")
    if s.get("PASSWORD"):
        auth += ":" + quote(str(s["PASSWORD"]), safe="")
    host = s.get("HOST") or "localhost"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}{'@' if auth else ''}{host}{port}/{quote(str(s['NAME']), safe='')}"


class Workers:
    """``outbound worker`` children; every one of them is killed by :meth:`kill_all`."""

    def __init__(self, tmp_path: Path, key: str) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
        self.env.update(
            DATABASE_URL=database_url(),
            DJANGO_SETTINGS_MODULE="outbound.settings",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(32),
            DJANGO_DEBUG="0",
            OUTBOUND_SECRET_KEY=key,
            OUTBOUND_VAR_DIR=str(tmp_path),
            OUTBOUND_EGRESS_ALLOW="127.0.0.0/8,::1/128,:1024-65535",
            OUTBOUND_SEND_LEASE=str(LEASE),
            OUTBOUND_RETRY_MIN_BACKOFF="0.5",
            OUTBOUND_RETRY_MAX_BACKOFF="2",
            OUTBOUND_MAX_MESSAGE_AGE="120",
            OUTBOUND_SMTP_TIMEOUT="5",
            OUTBOUND_SMTP_HELO_NAME="worker.test",
            OUTBOUND_LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"worker-{len(self.procs) + 1}.log"
        with log.open("wb") as out:  # a file, not a pipe: a full pipe would stall the child
            proc = subprocess.Popen(
                [str(WORKER), "worker", "--interval", "0.05", *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def log_of(self, proc: subprocess.Popen[bytes]) -> str:
        return self.logs[self.procs.index(proc)].read_text()

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
        """Until the worker runs its loop: it logs "worker <id> starting" just before."""
        wait_for(
            lambda: proc.poll() is not None or READY.search(self.log_of(proc)) is not None,
            timeout,
            f"worker {proc.pid} did not start",
        )
        assert proc.poll() is None, f"worker exited ({proc.returncode}):\n{self.output()}"

    def stopped(self, proc: subprocess.Popen[bytes]) -> re.Match[str]:
        """The worker's stop line (it has exited)."""
        found = STOPPED.search(self.log_of(proc))
        assert found is not None, f"no stop line:\n{self.output()}"
        return found

    def terminate(self, proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:  # what it was doing is in its log
            raise AssertionError(
                f"worker {proc.pid} did not stop within {timeout} s:\n{self.output()}"
            ) from None

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: the worker alone
        proc.wait(10)

    def kill_all(self) -> None:
        for proc in self.procs:
            self.kill(proc)

    def output(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in self.logs)


@pytest.fixture
def key() -> str:
    """A known key ring, shared with the children, for the SMTP password."""
    text = new_key()
    reset_keyring(KeyRing.from_texts([text]))
    return text


@pytest.fixture
def workers(tmp_path: Path, key: str) -> Iterator[Workers]:
    pool = Workers(tmp_path, key)
    try:
        yield pool
    finally:
        pool.kill_all()


# --- helpers -------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], Any], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} within {timeout} s")
        time.sleep(0.05)


def activate_config(server: RunningServer, actor: Any) -> None:
    services.smtp_config_create(
        data={
            "host": server.host,
            "port": server.port,
            "security": Security.NONE,
            "username": SMTP_USER,
            "password": SMTP_PASSWORD,
            "sender_address": "app@example.com",
        },
        actor=actor,
        activate=True,
    )


def submit(client: Any, n: int, recipients: int = 1) -> list[int]:
    ids = []
    for i in range(n):
        body = {
            "to": [f"user{i}-{r}@example.com" for r in range(recipients)],
            "subject": f"message {i}",
            "text": f"body {i}\n",
        }
        response = client.post("/api/messages/", body, format="json")
        assert response.status_code == 202, response.content
        ids.append(response.json()["id"])
    return ids


def submit_batches(client: Any, n: int, chunk: int = 500) -> list[int]:
    """``n`` messages through ``POST /api/messages/batch/``, ``chunk`` per request (each
    request is its own transaction: the workers start on the first while the next comes)."""
    ids: list[int] = []
    for start in range(0, n, chunk):
        bodies = [
            {"to": [f"user{i}@example.com"], "subject": f"message {i}", "text": f"body {i}\n"}
            for i in range(start, min(n, start + chunk))
        ]
        response = client.post("/api/messages/batch/", {"messages": bodies}, format="json")
        assert response.status_code == 202, response.content[:500]
        ids.extend(result["id"] for result in response.json()["results"])
    return ids


def delivered_ids(server: RunningServer) -> list[str]:
    """The Message-IDs of the copies the server accepted, in order, duplicates kept."""
    return [
        str(message_from_bytes(e.original_content or b"", policy=SMTP_POLICY)["Message-ID"])
        for e in list(server.recorder.messages)
    ]


def sent_count(ids: list[int]) -> int:
    return Message.objects.filter(pk__in=ids, status=MessageStatus.SENT).count()


def all_sent(ids: list[int]) -> bool:
    return sent_count(ids) == len(ids)


def claims() -> dict[str, int]:
    """The messages each lease owner (one per claimed batch) holds now."""
    rows = (
        Message.objects.filter(status=MessageStatus.SENDING)
        .values("lease_owner")
        .annotate(held=Count("id"))
        .values_list("lease_owner", "held")
    )
    return dict(rows)


def pid_of(worker: str) -> int:
    """The process id in a worker id or lease owner (``host:pid:random[/batch]``)."""
    return int(worker.split(":")[1])


def make_message(subject: str, to: str) -> Message:
    """An outbox row written straight into the table, as another program might."""
    message = Message.objects.create(
        subject=subject,
        text="body\n",
        message_id=f"<{secrets.token_hex(8)}@worker.test>",
        next_attempt_at=timezone.now(),
    )
    Recipient.objects.create(message=message, kind="to", address=to)
    return message


# --- the tests -----------------------------------------------------------------------------


def test_killed_mid_send_the_message_is_delivered_once_after_the_lease(
    workers: Workers, admin_user: Any, make_user: Callable[..., Any]
) -> None:
    recorder = HoldingRecorder()
    with smtp_server(
        users={SMTP_USER: SMTP_PASSWORD}, auth_require_tls=False, recorder=recorder
    ) as server:
        try:
            activate_config(server, admin_user)
            first = workers.start()
            workers.wait_ready(first)
            [pk] = submit(client_for(make_user("messages.send")), 1)

            assert recorder.entered.wait(15), workers.output()
            held = Message.objects.get(pk=pk)
            assert held.status == MessageStatus.SENDING
            assert pid_of(held.lease_owner) == first.pid
            assert held.lease_until is not None
            workers.kill(first)  # SIGKILL while the server holds the DATA

            second = workers.start()  # at once: the lease has not run out yet
            wait_for(lambda: all_sent([pk]), LEASE + 12, "not delivered after the kill")
            time.sleep(1)  # nothing sends it again

            message = Message.objects.get(pk=pk)
            assert delivered_ids(server) == [message.message_id], workers.output()
            assert message.attempt_count == 2
            assert message.sent_at is not None and message.sent_at >= held.lease_until
            # The killed worker's attempt stays in the list, closed as interrupted.
            interrupted, attempt = Attempt.objects.filter(message=message)
            assert (interrupted.number, interrupted.outcome) == (1, "interrupted")
            assert pid_of(interrupted.worker) == first.pid
            assert interrupted.finished_at is not None and "handed over" in interrupted.detail
            assert (attempt.number, attempt.outcome) == (2, MessageStatus.SENT)
            assert pid_of(attempt.worker) == second.pid
            [recipient] = message.recipients.all()
            assert (recipient.status, recipient.smtp_code) == (RecipientStatus.SENT, 250)
            assert [login for login, _ in recorder.logins] == [SMTP_USER, SMTP_USER]
        finally:
            recorder.release.set()


def test_two_workers_claiming_from_one_outbox_deliver_every_message_exactly_once(
    workers: Workers, admin_user: Any, make_user: Callable[..., Any]
) -> None:
    n, batch = 40, 5
    workers.env.update(OUTBOUND_SEND_LEASE="60", OUTBOUND_SMTP_TIMEOUT="30")
    recorder = GatheringRecorder(parties=2)
    with smtp_server(
        users={SMTP_USER: SMTP_PASSWORD}, auth_require_tls=False, recorder=recorder
    ) as server:
        activate_config(server, admin_user)
        procs = [workers.start("--batch-size", str(batch)) for _ in range(2)]
        for proc in procs:
            workers.wait_ready(proc)
        client = client_for(make_user("messages.send"))
        with transaction.atomic():  # all at once, while both workers poll the outbox
            ids = submit(client, n, recipients=2)
        # While the server holds the first worker's first message: a claim takes a batch.
        assert recorder.first_data.wait(15), workers.output()
        held = claims()
        assert held and max(held.values()) <= batch, f"claimed more than --batch-size: {held}"
        wait_for(lambda: all_sent(ids), 60, f"not all sent:\n{workers.output()}")
        for proc in procs:
            assert workers.terminate(proc) == 0, workers.output()

        assert recorder.gathered.is_set()
        messages = Message.objects.filter(pk__in=ids)
        delivered = delivered_ids(server)
        assert sorted(delivered) == sorted(m.message_id for m in messages), workers.output()
        assert len(set(delivered)) == n
        assert all(len(e.rcpt_tos) == 2 for e in server.recorder.messages)
        assert all(m.attempt_count == 1 for m in messages)
        attempts = list(Attempt.objects.filter(message__in=messages))
        assert sorted(a.message_id for a in attempts) == sorted(ids)  # one each
        by_worker = Counter(pid_of(a.worker) for a in attempts)
        assert set(by_worker) == {p.pid for p in procs}, f"not both worked: {by_worker}"
        stops = [int(workers.stopped(p)["messages"]) for p in procs]
        assert stops == [by_worker[p.pid] for p in procs]
        assert not DBTaskResult.objects.exists()  # the outbox is the queue


def test_stranded_and_directly_written_messages_are_sent_without_a_task(
    workers: Workers, admin_user: Any
) -> None:
    with smtp_server(users={SMTP_USER: SMTP_PASSWORD}, auth_require_tls=False) as server:
        activate_config(server, admin_user)
        before = make_message("written before the worker started", "a@example.com")
        # One a killed worker held: its lease ran out, and nobody is left to finish it ...
        stranded = make_message("stranded", "b@example.com")
        Message.objects.filter(pk=stranded.pk).update(
            status=MessageStatus.SENDING,
            lease_owner="elsewhere:1:dead/batch",
            lease_until=timezone.now(),
            attempt_count=1,
        )
        # ... and one another worker still holds for two more seconds: not before then.
        held_until = timezone.now() + timedelta(seconds=2)
        held = make_message("held elsewhere", "c@example.com")
        Message.objects.filter(pk=held.pk).update(
            status=MessageStatus.SENDING,
            lease_owner="elsewhere:2:slow/batch",
            lease_until=held_until,
            attempt_count=1,
        )
        proc = workers.start()
        workers.wait_ready(proc)
        after = make_message("written while it runs", "d@example.com")

        ids = [before.pk, stranded.pk, held.pk, after.pk]
        wait_for(lambda: all_sent(ids), 15, f"not all sent:\n{workers.output()}")
        messages = {m.pk: m for m in Message.objects.filter(pk__in=ids)}
        assert sorted(delivered_ids(server)) == sorted(m.message_id for m in messages.values())
        assert [messages[pk].attempt_count for pk in ids] == [1, 2, 2, 1]
        sent_at = messages[held.pk].sent_at
        assert sent_at is not None and sent_at >= held_until
        assert Attempt.objects.filter(message__in=ids).count() == 4
        assert not DBTaskResult.objects.exists()  # no task was needed, none was made


def test_a_stopped_worker_finishes_the_message_in_hand_and_gives_the_rest_back(
    workers: Workers, admin_user: Any, make_user: Callable[..., Any]
) -> None:
    n, batch = 12, 10
    recorder = PausingSink()
    with smtp_server(
        users={SMTP_USER: SMTP_PASSWORD}, auth_require_tls=False, recorder=recorder
    ) as server:
        activate_config(server, admin_user)
        ids = submit(client_for(make_user("messages.send")), n)
        first = workers.start("--batch-size", str(batch))
        assert recorder.data_started.wait(15), workers.output()
        [(owner, held)] = claims().items()  # one batch under one lease, the oldest first
        assert (pid_of(owner), held) == (first.pid, batch)
        sending = Message.objects.filter(pk__in=ids, status=MessageStatus.SENDING)
        assert sorted(sending.values_list("pk", flat=True)) == ids[:batch]
        first.send_signal(signal.SIGTERM)  # while the server holds the first message
        time.sleep(0.2)  # the signal is in before the reply
        recorder.proceed.set()
        assert first.wait(15) == 0, workers.output()

        # The message in hand was finished; nothing after it was started.
        stop = workers.stopped(first)
        assert stop["messages"] == "1", stop.group(0)
        assert recorder.quits == 1  # its connection ended with QUIT
        [done] = Message.objects.filter(pk__in=ids, status=MessageStatus.SENT)
        assert done.pk == ids[0]  # oldest first
        assert delivered_ids(server) == [done.message_id]
        rest = Message.objects.filter(pk__in=ids).exclude(pk=done.pk)  # given back, or unclaimed
        assert [(m.status, m.attempt_count, m.lease_owner, m.lease_until) for m in rest] == [
            (MessageStatus.QUEUED, 0, "", None)
        ] * (n - 1)
        assert (
            not Recipient.objects.filter(message__in=rest)
            .exclude(status=RecipientStatus.PENDING)
            .exists()
        )
        assert list(Attempt.objects.filter(message__in=ids).values_list("message", flat=True)) == [
            done.pk
        ]

        # Another worker sends the rest, each once.
        second = workers.start("--batch")  # exits when nothing is due
        assert second.wait(30) == 0, workers.output()
        assert all_sent(ids)
        delivered = delivered_ids(server)
        assert sorted(delivered) == sorted(
            Message.objects.filter(pk__in=ids).values_list("message_id", flat=True)
        )
        assert len(set(delivered)) == n
        assert all(m.attempt_count == 1 for m in Message.objects.filter(pk__in=ids))
        assert Attempt.objects.filter(message__in=ids).count() == n
        assert workers.stopped(second)["messages"] == str(n - 1)


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="scale-out is for PostgreSQL (SQLite is one machine's database; "
    "run with DATABASE_URL=postgres://…)",
)
def test_four_workers_share_two_thousand_messages_none_lost_none_twice(
    workers: Workers, admin_user: Any, make_user: Callable[..., Any]
) -> None:
    n, parties = 2000, 4
    workers.env.update(OUTBOUND_SEND_LEASE="60", OUTBOUND_SMTP_TIMEOUT="30")
    recorder = GatheringRecorder(parties=parties, keep=False)  # counts, keeps no bodies
    with smtp_server(
        users={SMTP_USER: SMTP_PASSWORD}, auth_require_tls=False, recorder=recorder
    ) as server:
        activate_config(server, admin_user)
        procs = [workers.start() for _ in range(parties)]  # OUTBOUND_WORKER_BATCH: 50
        for proc in procs:
            workers.wait_ready(proc)
        ids = submit_batches(client_for(make_user("messages.send")), n)
        assert len(ids) == n
        largest = 0  # the most messages one claim held, as seen while they are sent

        def done() -> bool:
            nonlocal largest
            largest = max([largest, *claims().values()])
            return sent_count(ids) == n

        wait_for(done, 120, f"{n - sent_count(ids)} of {n} not sent:\n{workers.output()}")
        assert largest <= 50, f"a claim took {largest} messages (OUTBOUND_WORKER_BATCH is 50)"
        for proc in procs:
            # (a stop finishes the message in hand: up to OUTBOUND_SMTP_TIMEOUT here)
            assert workers.terminate(proc, timeout=90) == 0, workers.output()

        arrivals = recorder.arrivals
        expected = set(Message.objects.filter(pk__in=ids).values_list("message_id", flat=True))
        assert len(expected) == n
        assert set(arrivals) == expected  # none lost (and nothing else)
        assert [mid for mid, copies in arrivals.items() if copies > 1] == []  # none twice
        assert sum(arrivals.values()) == n
        assert server.recorder.messages == []  # the counting sink kept no bodies
        attempts = Counter(
            pid_of(w)
            for w in Attempt.objects.filter(message__in=ids).values_list("worker", flat=True)
        )
        assert sum(attempts.values()) == n
        assert set(attempts) == {p.pid for p in procs}, f"not all worked: {attempts}"
        stops = {p.pid: int(workers.stopped(p)["messages"]) for p in procs}
        assert stops == dict(attempts), (stops, attempts)
