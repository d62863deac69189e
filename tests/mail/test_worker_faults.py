"""Workers against a database that goes away, turns read-only, and workers that are killed:
real ``outbound worker`` processes reach PostgreSQL through a TCP proxy the test cuts (as a
PostgreSQL restart does: connections dropped, new ones refused), the test database is made
read-only for a while, and a worker is SIGKILLed mid-stream. Every accepted message arrives;
at most the message the killed worker had in hand arrives twice; the workers carry on
without anyone restarting them, and a killed worker's messages move on within 20 s.

PostgreSQL only (CI runs it): the proxy stands in for the database server's restarts.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.db import connection

from outbound.mail.models import Attempt, Message, MessageStatus
from tests.conftest import client_for
from tests.mail.test_worker_process import (
    SMTP_PASSWORD,
    SMTP_USER,
    Workers,
    activate_config,
    database_url,
    key,  # noqa: F401  (fixture)
    message_id_of,
    pid_of,
    submit_batches,
    wait_for,
    workers,  # noqa: F401  (fixture)
)
from tests.support.dbproxy import DbProxy
from tests.support.smtp import Recorder, smtp_server

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        "connection.vendor != 'postgresql'",
        reason="database faults are played on PostgreSQL (run with DATABASE_URL=postgres://…)",
    ),
]

UNAVAILABLE = re.compile(r"the database is unavailable")
BACK = re.compile(r"the database is available again")


@dataclass
class SlowCountingSink(Recorder):
    """Takes ``delay`` seconds per message (so a run lasts long enough to break things in
    the middle of it) and keeps only how often each Message-ID arrived."""

    delay: float = 0.01
    arrivals: Counter[str] = field(default_factory=Counter)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.delay)
        self.arrivals[message_id_of(envelope.original_content or b"")] += 1
        return "250 Message accepted"

    @property
    def count(self) -> int:
        return sum(self.arrivals.values())


@pytest.fixture
def proxy() -> Iterator[DbProxy]:
    host, port = connection.settings_dict.get("HOST") or "127.0.0.1", 5432
    if connection.settings_dict.get("PORT"):
        port = int(connection.settings_dict["PORT"])
    with DbProxy((host if host != "localhost" else "127.0.0.1", port)) as running:
        yield running


def through(proxy: DbProxy) -> str:
    """The test database's URL, by way of the proxy."""
    parts = urlsplit(database_url())
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth}@" if auth else ""
    return urlunsplit(parts._replace(netloc=f"{netloc}{proxy.host}:{proxy.port}"))


def read_only(on: bool) -> None:
    """The test database refuses writes (or takes them again) for every new session; the
    workers' sessions are ended so they reconnect and see it."""
    name = connection.ops.quote_name(connection.settings_dict["NAME"])
    with connection.cursor() as cursor:
        if on:
            cursor.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
        else:
            cursor.execute(f"ALTER DATABASE {name} RESET default_transaction_read_only")
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def until(predicate: Callable[[], bool], timeout: float, what: str, pool: Workers) -> None:
    wait_for(predicate, timeout, f"{what}:\n{pool.output()}")


def test_workers_ride_out_a_restart_a_read_only_spell_and_a_killed_worker(
    workers: Workers,  # noqa: F811
    proxy: DbProxy,
    admin_user: Any,
    make_user: Callable[..., Any],
) -> None:
    n = 1500
    workers.env.update(DATABASE_URL=through(proxy), OUTBOUND_SEND_LEASE="6")
    sink = SlowCountingSink(delay=0.008)
    try:
        with smtp_server(
            users={SMTP_USER: SMTP_PASSWORD}, auth_require_tls=False, recorder=sink
        ) as server:
            activate_config(server, admin_user)
            procs = [workers.start("--batch-size", "20") for _ in range(2)]
            for proc in procs:
                workers.wait_ready(proc)
            ids = submit_batches(client_for(make_user("messages.send")), n)

            # 1. The database "restarts": every connection dropped, none taken for 5 s.
            until(lambda: sink.count >= 200, 60, "no progress before the restart", workers)
            proxy.stop()
            time.sleep(5)
            proxy.resume()

            # 2. Then it refuses writes for 4 s.
            at = sink.count
            until(lambda: sink.count >= at + 200, 60, "no progress after the restart", workers)
            read_only(True)
            try:
                time.sleep(4)
            finally:
                read_only(False)

            # 3. Then a worker is killed mid-stream; the other carries on, its messages too.
            at = sink.count
            until(lambda: sink.count >= at + 200, 60, "no progress after read-only", workers)
            # Frozen first, at a moment it holds a batch (between two it holds nothing to
            # hand over), then killed.
            victim = procs[0]
            held: list[int] = []
            for _ in range(200):
                os.kill(victim.pid, signal.SIGSTOP)
                held = list(
                    Message.objects.filter(
                        status=MessageStatus.SENDING, lease_owner__contains=f":{victim.pid}:"
                    ).values_list("pk", flat=True)
                )
                if held:
                    break
                os.kill(victim.pid, signal.SIGCONT)
                time.sleep(0.02)
            workers.kill(victim)
            killed_at = time.monotonic()
            assert held, f"the victim never held a batch: {victim.pid} {workers.output()}"
            until(
                lambda: (
                    Message.objects.filter(pk__in=held, status=MessageStatus.SENT).count()
                    == len(held)
                ),
                30,
                "the killed worker's messages were not handed over",
                workers,
            )
            handed_over = time.monotonic() - killed_at
            until(
                lambda: Message.objects.filter(pk__in=ids, status=MessageStatus.SENT).count() == n,
                120,
                "not every message was sent",
                workers,
            )
            assert workers.terminate(procs[1]) == 0
    finally:
        read_only(False)

    expected = set(Message.objects.filter(pk__in=ids).values_list("message_id", flat=True))
    assert set(sink.arrivals) == expected  # none lost
    twice = [mid for mid, copies in sink.arrivals.items() if copies > 1]
    assert len(twice) <= 1, twice  # at most the message the killed worker had in hand
    assert handed_over < 20, handed_over
    # Nothing stranded: no message left in "sending", no attempt left under way.
    assert not Message.objects.filter(pk__in=ids).exclude(status=MessageStatus.SENT).exists()
    assert not Attempt.objects.filter(message__in=ids, outcome="sending").exists()
    interrupted = Attempt.objects.filter(message__in=ids, outcome="interrupted")
    assert {pid_of(a.worker) for a in interrupted} <= {victim.pid}, [
        (a.worker, a.started_at.time(), a.finished_at and a.finished_at.time(), a.message_id)
        for a in interrupted
    ] + [workers.output()]
    # The survivor said once per outage that the database was away, and that it was back.
    log = workers.log_of(procs[1])
    assert 2 <= len(UNAVAILABLE.findall(log)) <= 3, log[-3000:]
    assert len(BACK.findall(log)) == len(UNAVAILABLE.findall(log)), log[-3000:]
    assert "Traceback" not in log, log[-3000:]
