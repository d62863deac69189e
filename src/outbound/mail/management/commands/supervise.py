"""``outbound supervise``: run ``outbound worker`` processes and start again any that exits.

One machine, several workers, no other supervisor (``make run`` uses it): ``--workers N``
children (``OUTBOUND_WORKERS``, 1), each ``python -m outbound worker`` with this process's
interpreter, environment, working directory, stdout and stderr. A child that exits, whatever
its exit code or signal, is started again after a delay that doubles per slot
(``OUTBOUND_SUPERVISE_MIN_BACKOFF``, 1 s, up to ``OUTBOUND_SUPERVISE_MAX_BACKOFF``, 60 s) and
starts from the minimum again once a child has run for at least the maximum. Every exit and
restart is logged on ``outbound.supervisor``.

On SIGTERM or SIGINT it sends SIGTERM to the children (each finishes the message in hand and
gives the rest of its batch back), waits up to ``OUTBOUND_WORKER_STOP_TIMEOUT`` (30 s) for
them, SIGKILLs those still running and exits 0. On Linux a child gets SIGTERM when the
supervisor dies, so none outlives it.

The supervisor itself opens no database connection and runs no system checks: a worker that
cannot start (a configuration error it reports on stderr) is restarted with the backoff.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

logger = logging.getLogger("outbound.supervisor")

TICK = 0.1  # seconds between looks at the children
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _env_number(name: str, default: float, *, minimum: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise CommandError(f"{name} must be a number, not {text!r}.") from None
    if not value >= minimum:  # also refuses nan
        raise CommandError(f"{name} must be at least {minimum:g}.")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def describe(returncode: int) -> str:
    """``exit code 3`` or ``signal SIGKILL`` (Popen's negative return code)."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux send the child SIGTERM when the supervisor dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(1)

    return preexec


@dataclass
class Slot:
    number: int
    delay: float  # the wait before the next restart
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None  # set while the slot waits to be started again
    waited: float = 0.0  # the delay of the pending restart, for its log line


class Command(BaseCommand):
    help = "Run --workers `outbound worker` processes; restart any that exits, with backoff."

    requires_system_checks: list[str] = []  # the workers run them; see the module docstring
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--workers",
            type=_positive_int,
            default=None,
            help="Worker processes to keep running (default OUTBOUND_WORKERS, else 1).",
        )
        parser.add_argument(
            "--interval", type=float, default=None, help="Passed to each `outbound worker`."
        )
        parser.add_argument(
            "--batch-size", type=int, default=None, help="Passed to each `outbound worker`."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        workers = options["workers"]
        if workers is None:
            text = os.environ.get("OUTBOUND_WORKERS", "").strip() or "1"
            try:
                workers = _positive_int(text)
            except ValueError:
                raise CommandError(f"OUTBOUND_WORKERS must be 1 or more, not {text!r}.") from None
        self.min_backoff = _env_number("OUTBOUND_SUPERVISE_MIN_BACKOFF", 1.0, minimum=0.01)
        self.max_backoff = max(
            self.min_backoff, _env_number("OUTBOUND_SUPERVISE_MAX_BACKOFF", 60.0, minimum=0)
        )
        self.stop_timeout = _env_number("OUTBOUND_WORKER_STOP_TIMEOUT", 30.0, minimum=0)
        self.argv = [sys.executable, "-m", "outbound", "worker"]
        if options["interval"] is not None:
            self.argv += ["--interval", repr(options["interval"])]
        if options["batch_size"] is not None:
            self.argv += ["--batch-size", str(options["batch_size"])]
        self.preexec = _die_with_parent()

        stop = threading.Event()
        received: list[str] = []

        def on_signal(signum: int, frame: Any) -> None:
            received.append(signal.Signals(signum).name)
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)

        slots = [Slot(number, self.min_backoff) for number in range(1, workers + 1)]
        logger.info(
            "supervisor %d: keeping %d worker(s) running (restart backoff %g-%g s)",
            os.getpid(),
            workers,
            self.min_backoff,
            self.max_backoff,
        )
        try:
            for slot in slots:
                self._start(slot, "started")
            while not stop.is_set():
                self._look(slots)
                stop.wait(self._next_wait(slots))
            logger.info(
                "supervisor %d: %s received, stopping %d worker(s)",
                os.getpid(),
                received[0] if received else "stop",
                sum(1 for s in slots if s.proc is not None and s.proc.poll() is None),
            )
        finally:
            self._stop_all(slots)  # also when the loop itself failed: no child left behind
        logger.info("supervisor %d: stopped", os.getpid())

    # --- the children --------------------------------------------------------------------

    def _start(self, slot: Slot, how: str) -> None:
        """Start the slot's worker; one that cannot even be started waits its backoff."""
        try:
            slot.proc = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed command
                self.argv, stdin=subprocess.DEVNULL, preexec_fn=self.preexec
            )
        except (OSError, subprocess.SubprocessError) as exc:
            self._schedule(slot, ran=0.0)
            logger.warning(
                "worker %d could not be started (%s); trying again in %.2f s",
                slot.number,
                exc.__class__.__name__,
                slot.waited,
            )
            return
        slot.started_at = time.monotonic()
        slot.restart_at = None
        backoff = f" (after a {slot.waited:.2f} s backoff)" if how == "restarted" else ""
        logger.info("worker %d %s: pid %d%s", slot.number, how, slot.proc.pid, backoff)

    def _schedule(self, slot: Slot, *, ran: float) -> None:
        """The slot's next start: after its delay, which doubles unless the worker ran long."""
        if ran >= self.max_backoff:
            slot.delay = self.min_backoff  # it ran long enough: start over
        slot.waited = slot.delay
        slot.restart_at = time.monotonic() + slot.delay
        slot.delay = min(slot.delay * 2, self.max_backoff)

    def _look(self, slots: list[Slot]) -> None:
        for slot in slots:
            if slot.proc is not None:
                code = slot.proc.poll()
                if code is None:
                    continue
                ran = time.monotonic() - slot.started_at
                self._schedule(slot, ran=ran)
                logger.warning(
                    "worker %d (pid %d) exited with %s after %.1f s; restarting in %.2f s",
                    slot.number,
                    slot.proc.pid,
                    describe(code),
                    ran,
                    slot.waited,
                )
                slot.proc = None
            elif slot.restart_at is not None and time.monotonic() >= slot.restart_at:
                self._start(slot, "restarted")

    def _next_wait(self, slots: list[Slot]) -> float:
        now = time.monotonic()
        pending = [s.restart_at - now for s in slots if s.restart_at is not None]
        return max(0.0, min([TICK, *pending]))

    def _stop_all(self, slots: list[Slot]) -> None:
        children = [s.proc for s in slots if s.proc is not None]
        for proc in children:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for proc in children:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning(
                    "worker pid %d still running %g s after SIGTERM: SIGKILL",
                    proc.pid,
                    self.stop_timeout,
                )
                proc.kill()
                proc.wait()
        for proc in children:  # also one that exited (Ctrl-C reaches it too) before the stop
            logger.info("worker pid %d stopped with %s", proc.pid, describe(proc.returncode))
