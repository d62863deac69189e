"""Real ``outbound supervise`` processes, their ``outbound worker`` children, the test database
and a loopback aiosmtpd server (the children get the database and the key the way
``test_worker_process`` hands them to its workers).

- a worker killed with SIGKILL is started again after the minimum backoff (logged with its
  pid, the signal and the delay), and mail submitted afterwards is delivered once;
- SIGTERM to the supervisor reaches every worker: each finishes the message in hand, gives
  the rest back and exits, and the supervisor exits 0 well within its stop timeout;
- a worker still running when the stop timeout is up is SIGKILLed; the supervisor exits 0;
- a worker that cannot start (a configuration error its system checks report) is restarted
  with doubling delays, each logged and actually waited;
- a worker that ran for the maximum delay starts the backoff over;
- a supervisor killed with SIGKILL takes its workers with it (they get SIGTERM).

The backoff is shortened through ``OUTBOUND_SUPERVISE_MIN_BACKOFF`` / ``…_MAX_BACKOFF``. Every
supervisor runs in its own session and its whole process group is killed at the end.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from outbound.core.secrets import KeyRing, new_key, reset_keyring
from outbound.mail.models import Message, MessageStatus
from tests.conftest import client_for
from tests.mail.test_worker_process import (
    SMTP_PASSWORD,
    SMTP_USER,
    WORKER,
    PausingSink,
    Workers,
    activate_config,
    all_sent,
    delivered_ids,
    submit,
    wait_for,
)
from tests.support.smtp import smtp_server

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the children see only committed rows
    pytest.mark.skipif(not WORKER.exists(), reason="the outbound script is not installed"),
]

STAMP = r"(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
STARTED = re.compile(r"supervisor worker (?P<slot>\d+) (?:started|restarted): pid (?P<pid>\d+)")
EXITED = re.compile(
    STAMP + r" WARNING outbound\.supervisor worker (?P<slot>\d+) \(pid (?P<pid>\d+)\) exited "
    r"with (?P<how>.+?) after (?P<ran>[0-9.]+) s; restarting in (?P<delay>[0-9.]+) s"
)
RESTARTED = re.compile(
    STAMP + r" INFO outbound\.supervisor worker (?P<slot>\d+) restarted: pid (?P<pid>\d+) "
    r"\(after a (?P<delay>[0-9.]+) s backoff\)"
)
READY = re.compile(r"worker [^\s:]+:(?P<pid>\d+):\S+ starting")
STOP_LINE = re.compile(r"worker [^\s:]+:(?P<pid>\d+):\S+ stopped: messages=(?P<messages>\d+)")


def at(match: re.Match[str]) -> datetime:
    return datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f")


class Supervisor:
    """One ``outbound supervise`` process (its own session: the children share its process
    group), its output and its children's in one file."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.env = env
        self.log_path = tmp_path / "supervise.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        with self.log_path.open("wb") as out:  # a file, not a pipe: a full pipe would stall
            self.proc = subprocess.Popen(
                [str(WORKER), "supervise", "--interval", "0.05", *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.proc

    def log(self) -> str:
        return self.log_path.read_text()

    def children(self) -> dict[int, int]:
        """The pid each slot was last started with."""
        return {int(m["slot"]): int(m["pid"]) for m in STARTED.finditer(self.log())}

    def ready(self) -> set[int]:
        """The pids of the workers that got to their loop."""
        return {int(m["pid"]) for m in READY.finditer(self.log())}

    def wait_children_ready(self, n: int, timeout: float = 40) -> dict[int, int]:
        def up() -> bool:
            children = self.children()
            return len(children) == n and set(children.values()) <= self.ready()

        wait_for(up, timeout, f"{n} workers not ready:\n{self.log()}")
        return self.children()

    def exits(self) -> list[re.Match[str]]:
        return list(EXITED.finditer(self.log()))

    def restarts(self) -> list[re.Match[str]]:
        return list(RESTARTED.finditer(self.log()))

    def terminate(self, timeout: float) -> tuple[int, float]:
        """SIGTERM; the exit code and how long it took."""
        assert self.proc is not None
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - began

    def kill_all(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the supervisor and its children
        self.proc.wait(10)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """test_worker_process's worker environment, with a known key ring shared with the
    children, and a short backoff."""
    text = new_key()
    reset_keyring(KeyRing.from_texts([text]))
    env = Workers(tmp_path, text).env
    env.update(
        OUTBOUND_SUPERVISE_MIN_BACKOFF="0.5",
        OUTBOUND_SUPERVISE_MAX_BACKOFF="30",
        OUTBOUND_WORKER_STOP_TIMEOUT="20",
    )
    return env


@pytest.fixture
def supervisor(tmp_path: Path, env: dict[str, str]) -> Iterator[Supervisor]:
    running = Supervisor(tmp_path, env)
    try:
        yield running
    finally:
        running.kill_all()


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphan is reaped by whoever adopts it, maybe never)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


# --- the tests -----------------------------------------------------------------------------


def test_a_killed_worker_is_restarted_and_mail_submitted_afterwards_is_delivered(
    supervisor: Supervisor, admin_user: Any, make_user: Callable[..., Any]
) -> None:
    with smtp_server(users={SMTP_USER: SMTP_PASSWORD}, auth_require_tls=False) as server:
        activate_config(server, admin_user)
        proc = supervisor.start("--workers", "2")
        before = supervisor.wait_children_ready(2)
        assert all(parent_of(pid) == proc.pid for pid in before.values())

        os.kill(before[1], signal.SIGKILL)
        wait_for(lambda: supervisor.restarts(), 15, f"not restarted:\n{supervisor.log()}")
        [exited] = supervisor.exits()
        assert (exited["slot"], int(exited["pid"])) == ("1", before[1])
        assert exited["how"] == "signal SIGKILL"
        assert exited["delay"] == "0.50"  # the first restart of the slot: the minimum
        [restarted] = supervisor.restarts()
        new = int(restarted["pid"])
        assert restarted["slot"] == "1" and restarted["delay"] == "0.50"
        assert new not in before.values() and parent_of(new) == proc.pid
        assert (at(restarted) - at(exited)).total_seconds() >= 0.5 - 0.001
        assert not alive(before[1])
        after = supervisor.wait_children_ready(2)
        assert after == {1: new, 2: before[2]}  # the other worker was left alone

        ids = submit(client_for(make_user("messages.send")), 6)
        wait_for(lambda: all_sent(ids), 30, f"not all sent:\n{supervisor.log()}")
        expected = sorted(Message.objects.filter(pk__in=ids).values_list("message_id", flat=True))
        assert sorted(delivered_ids(server)) == expected, supervisor.log()  # each once

        code, _ = supervisor.terminate(25)
        assert code == 0, supervisor.log()
        assert not any(alive(pid) for pid in after.values())


def test_sigterm_stops_every_worker_gracefully_and_the_supervisor_exits_0(
    supervisor: Supervisor, admin_user: Any, make_user: Callable[..., Any]
) -> None:
    n = 8
    recorder = PausingSink()  # holds the first message's final dot until told to proceed
    with smtp_server(
        users={SMTP_USER: SMTP_PASSWORD}, auth_require_tls=False, recorder=recorder
    ) as server:
        activate_config(server, admin_user)
        supervisor.start("--workers", "2", "--batch-size", "4")
        children = supervisor.wait_children_ready(2)
        ids = submit(client_for(make_user("messages.send")), n)
        assert recorder.data_started.wait(20), supervisor.log()

        assert supervisor.proc is not None
        supervisor.proc.send_signal(signal.SIGTERM)  # while a worker is in the middle of DATA
        began = time.monotonic()
        time.sleep(0.3)  # the SIGTERM reached the workers before the server answers
        recorder.proceed.set()
        code = supervisor.proc.wait(25)
        took = time.monotonic() - began
        assert code == 0, supervisor.log()
        assert took < 20, f"{took:.1f} s: not within OUTBOUND_WORKER_STOP_TIMEOUT"

        log = supervisor.log()
        assert "SIGTERM received, stopping 2 worker(s)" in log
        stops = {int(m["pid"]) for m in STOP_LINE.finditer(log)}
        assert stops == set(children.values()), log  # each stopped itself (its stop line)
        for pid in children.values():
            assert f"worker pid {pid} stopped with exit code 0" in log
            assert not alive(pid)
        assert "SIGKILL" not in log and supervisor.exits() == []  # nothing restarted

        # The message in hand was finished, the rest given back: none left in `sending`.
        messages = Message.objects.filter(pk__in=ids)
        statuses = {m.status for m in messages}
        assert statuses <= {MessageStatus.SENT, MessageStatus.QUEUED}, statuses
        sent = sorted(m.message_id for m in messages if m.status == MessageStatus.SENT)
        assert sent and sorted(delivered_ids(server)) == sent


def test_a_worker_that_does_not_stop_in_time_is_killed(
    supervisor: Supervisor, admin_user: Any, make_user: Callable[..., Any]
) -> None:
    supervisor.env.update(OUTBOUND_WORKER_STOP_TIMEOUT="1", OUTBOUND_SMTP_TIMEOUT="30")
    recorder = PausingSink()  # never told to proceed: the worker waits for the reply
    with smtp_server(
        users={SMTP_USER: SMTP_PASSWORD}, auth_require_tls=False, recorder=recorder
    ) as server:
        try:
            activate_config(server, admin_user)
            supervisor.start("--workers", "1")
            [pid] = supervisor.wait_children_ready(1).values()
            submit(client_for(make_user("messages.send")), 1)
            assert recorder.data_started.wait(20), supervisor.log()

            code, took = supervisor.terminate(15)
            assert code == 0, supervisor.log()
            assert 1 <= took < 10, took
            log = supervisor.log()
            assert f"worker pid {pid} still running 1 s after SIGTERM: SIGKILL" in log
            assert f"worker pid {pid} stopped with signal SIGKILL" in log
            assert not alive(pid)
        finally:
            recorder.proceed.set()


def test_a_worker_that_keeps_dying_is_restarted_with_growing_logged_delays(
    supervisor: Supervisor,
) -> None:
    # A malformed egress policy: every worker's system checks fail, it exits 1 at once.
    supervisor.env.update(
        OUTBOUND_EGRESS_ALLOW="not-a-network", OUTBOUND_SUPERVISE_MIN_BACKOFF="0.2"
    )
    supervisor.start("--workers", "1")
    wait_for(lambda: len(supervisor.exits()) >= 4, 60, f"not 4 exits:\n{supervisor.log()}")

    exits, restarts = supervisor.exits()[:4], supervisor.restarts()[:3]
    assert [m["how"] for m in exits] == ["exit code 1"] * 4
    assert [m["delay"] for m in exits] == ["0.20", "0.40", "0.80", "1.60"]
    assert [m["delay"] for m in restarts] == ["0.20", "0.40", "0.80"]
    for exited, restarted in zip(exits[:3], restarts, strict=True):  # each delay was waited
        waited = (at(restarted) - at(exited)).total_seconds()
        assert waited >= float(exited["delay"]) - 0.001, (exited.group(0), restarted.group(0))
    pids = [int(m["pid"]) for m in exits]
    assert len(set(pids)) == 4  # a new process each time
    assert supervisor.log().count("outbound.E001") >= 4  # the children's stderr comes through

    code, _ = supervisor.terminate(15)  # also while a restart is pending
    assert code == 0, supervisor.log()


def test_a_worker_that_ran_for_the_maximum_delay_starts_the_backoff_over(
    supervisor: Supervisor,
) -> None:
    supervisor.env.update(OUTBOUND_SUPERVISE_MIN_BACKOFF="0.2", OUTBOUND_SUPERVISE_MAX_BACKOFF="3")
    proc = supervisor.start("--workers", "1")
    killed: list[int] = []

    def kill_the_next(wait_ready: bool) -> None:
        wait_for(
            lambda: len(supervisor.children()) == 1 and supervisor.children()[1] not in killed,
            30,
            f"no new worker:\n{supervisor.log()}",
        )
        pid = supervisor.children()[1]
        if wait_ready:  # and then some: it has run for more than the maximum, 3 s
            wait_for(lambda: pid in supervisor.ready(), 30, f"not ready:\n{supervisor.log()}")
            time.sleep(3.1)
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        wait_for(lambda: len(supervisor.exits()) == len(killed), 10, supervisor.log())

    for _ in range(3):
        kill_the_next(wait_ready=False)  # killed at once: the delay doubles
    kill_the_next(wait_ready=True)

    exits = supervisor.exits()
    assert [int(m["pid"]) for m in exits] == killed
    assert [m["how"] for m in exits] == ["signal SIGKILL"] * 4
    assert all(float(m["ran"]) < 3 for m in exits[:3]), [m.group(0) for m in exits]
    assert float(exits[3]["ran"]) >= 3
    assert [m["delay"] for m in exits] == ["0.20", "0.40", "0.80", "0.20"]
    wait_for(lambda: len(supervisor.restarts()) == 4, 10, supervisor.log())
    assert parent_of(supervisor.children()[1]) == proc.pid

    code, _ = supervisor.terminate(25)
    assert code == 0, supervisor.log()


def test_a_killed_supervisor_takes_its_workers_with_it(supervisor: Supervisor) -> None:
    proc = supervisor.start("--workers", "2")
    children = supervisor.wait_children_ready(2)
    proc.kill()  # the supervisor alone, not its process group
    proc.wait(10)
    wait_for(
        lambda: not any(alive(pid) for pid in children.values()),
        20,
        f"workers outlived their supervisor:\n{supervisor.log()}",
    )
    stops = {int(m["pid"]) for m in STOP_LINE.finditer(supervisor.log())}
    assert stops == set(children.values())  # each was told (SIGTERM) and stopped itself
