"""Real ``outbound worker`` processes against the test database and a loopback aiosmtpd server.

Each test starts ``.venv/bin/outbound worker`` subprocesses with short leases, sweep intervals
and retry delays, hands them the test database through ``DATABASE_URL`` and the encryption key
the SMTP password was sealed under through ``OUTBOUND_SECRET_KEY``, and checks what reaches
the server: a worker killed (SIGKILL) in the middle of DATA loses nothing and duplicates
nothing; two workers racing over the same messages deliver each exactly once; a message
whose task row is missing is found by the sweeper. Child processes are always killed.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.db import connection, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from outbound.core.secrets import KeyRing, new_key, reset_keyring
from outbound.mail import services
from outbound.mail.choices import Security
from outbound.mail.models import Attempt, Message, MessageStatus, Recipient, RecipientStatus
from outbound.mail.tasks import deliver_message
from tests.conftest import client_for
from tests.support.smtp import Recorder, RunningServer, smtp_server

WORKER = Path(sys.executable).with_name("outbound")
SMTP_USER, SMTP_PASSWORD = "svc", secrets.token_urlsafe(12)
READY = re.compile(r"Starting worker|worker \S+ starting")
LEASE = 3.0  # OUTBOUND_SEND_LEASE for the children, seconds
SWEEP = 0.5  # OUTBOUND_SWEEP_INTERVAL

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the children see only committed rows
    pytest.mark.skipif(not WORKER.exists(), reason="the outbound script is not installed"),
]


# --- helpers -------------------------------------------------------------------------------


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
            OUTBOUND_SWEEP_INTERVAL=str(SWEEP),
            OUTBOUND_RETRY_MIN_BACKOFF="0.5",
            OUTBOUND_RETRY_MAX_BACKOFF="2",
            OUTBOUND_MAX_MESSAGE_AGE="120",
            OUTBOUND_SMTP_TIMEOUT="5",
            OUTBOUND_SMTP_HELO_NAME="worker.test",
            OUTBOUND_LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )

    def start(self) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"worker-{len(self.procs) + 1}.log"
        with log.open("wb") as out:  # a file, not a pipe: a full pipe would stall the child
            proc = subprocess.Popen(
                [str(WORKER), "worker", "--interval", "0.05"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
        """Until the task worker runs: ``outbound worker`` logs "worker <id> starting" just
        before django-tasks' loop, which logs "Starting worker" (at its own verbosity)."""
        log = self.logs[self.procs.index(proc)]
        wait_for(
            lambda: proc.poll() is not None or READY.search(log.read_text()) is not None,
            timeout,
            f"worker {proc.pid} did not start",
        )
        assert proc.poll() is None, f"worker exited ({proc.returncode}):\n{self.output()}"

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


def delivered_ids(server: RunningServer) -> list[str]:
    """The Message-IDs of the copies the server accepted, in order, duplicates kept."""
    return [
        str(message_from_bytes(e.original_content or b"", policy=SMTP_POLICY)["Message-ID"])
        for e in list(server.recorder.messages)
    ]


def all_sent(ids: list[int]) -> bool:
    return Message.objects.filter(pk__in=ids, status=MessageStatus.SENT).count() == len(ids)


def make_message(subject: str, to: str) -> Message:
    """An outbox row written without its task, as if the enqueue had been lost."""
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
            assert held.lease_owner.split(":")[1] == str(first.pid)
            assert held.lease_until is not None
            workers.kill(first)  # SIGKILL while the server holds the DATA

            second = workers.start()  # at once: the lease has not run out yet
            wait_for(lambda: all_sent([pk]), LEASE + 12, "not delivered after the kill")
            time.sleep(3 * SWEEP)  # a later sweep must not send it again

            message = Message.objects.get(pk=pk)
            assert delivered_ids(server) == [message.message_id], workers.output()
            assert message.attempt_count == 2
            assert message.sent_at is not None and message.sent_at >= held.lease_until
            [attempt] = Attempt.objects.filter(message=message)  # the killed one left none
            assert attempt.outcome == MessageStatus.SENT
            assert attempt.worker.split(":")[1] == str(second.pid)
            [recipient] = message.recipients.all()
            assert (recipient.status, recipient.smtp_code) == (RecipientStatus.SENT, 250)
            assert [login for login, _ in recorder.logins] == [SMTP_USER, SMTP_USER]
        finally:
            recorder.release.set()


def test_two_workers_deliver_every_message_exactly_once(
    workers: Workers, admin_user: Any, make_user: Callable[..., Any]
) -> None:
    n = 30
    with smtp_server(users={SMTP_USER: SMTP_PASSWORD}, auth_require_tls=False) as server:
        activate_config(server, admin_user)
        procs = [workers.start(), workers.start()]
        for proc in procs:
            workers.wait_ready(proc)
        client = client_for(make_user("messages.send"))
        with transaction.atomic():  # all at once, when both workers are polling
            ids = submit(client, n, recipients=2)
            for pk in ids:  # more tasks per message: the workers race for the same rows
                deliver_message.enqueue(pk)
                deliver_message.enqueue(pk)
        wait_for(lambda: all_sent(ids), 20, f"not all sent:\n{workers.output()}")
        wait_for(
            lambda: not DBTaskResult.objects.exclude(status="SUCCESSFUL").exists(),
            5,
            "tasks still pending",
        )

        messages = Message.objects.filter(pk__in=ids)
        delivered = delivered_ids(server)
        assert sorted(delivered) == sorted(m.message_id for m in messages), workers.output()
        assert len(set(delivered)) == n
        assert all(len(e.rcpt_tos) == 2 for e in server.recorder.messages)
        assert all(m.attempt_count == 1 for m in messages)
        assert Attempt.objects.filter(message__in=messages).count() == n
        # Every task ran; one per message sent it, the others (the duplicates, and any the
        # sweeper added for a backlog) found it taken or done.
        results = list(DBTaskResult.objects.values_list("return_value", flat=True))
        assert results.count("sent") == n
        assert set(results) == {"sent", "skipped"}
        assert len(results) >= 3 * n
        ran_on = {
            worker.split(":")[1]
            for worker_ids in DBTaskResult.objects.values_list("worker_ids", flat=True)
            for worker in worker_ids
        }
        assert ran_on == {str(p.pid) for p in procs}, "both workers should have taken tasks"


def test_the_sweeper_enqueues_messages_whose_task_is_missing(
    workers: Workers, admin_user: Any
) -> None:
    with smtp_server(users={SMTP_USER: SMTP_PASSWORD}, auth_require_tls=False) as server:
        activate_config(server, admin_user)
        before = make_message("left behind", "a@example.com")  # found by the start-up sweep
        # ... and one a killed worker held: its lease ran out, its task row is gone
        stranded = make_message("stranded", "b@example.com")
        Message.objects.filter(pk=stranded.pk).update(
            status=MessageStatus.SENDING,
            lease_owner="elsewhere:1:dead",
            lease_until=timezone.now(),
            attempt_count=1,
        )
        assert not DBTaskResult.objects.exists()
        workers.wait_ready(workers.start())
        after = make_message("lost enqueue", "c@example.com")  # found by the periodic sweep

        ids = [before.pk, stranded.pk, after.pk]
        wait_for(lambda: all_sent(ids), 10, f"not all sent:\n{workers.output()}")
        messages = Message.objects.filter(pk__in=ids)
        assert sorted(delivered_ids(server)) == sorted(m.message_id for m in messages)
        enqueued = DBTaskResult.objects.values_list("args_kwargs", flat=True)
        assert {a["args"][0] for a in enqueued} == set(ids)  # the sweeper's tasks, no others
        assert Message.objects.get(pk=stranded.pk).attempt_count == 2
