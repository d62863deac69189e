"""One shared watchdog thread per process that calls each armed callback at its deadline.

A ``threading.Timer`` per connection attempt starts (and later leaves behind) a thread each
time, and ``Thread.start`` waits for the new thread to run: a fixed cost on every connection
test. Here one daemon thread sleeps until the earliest deadline; arming and cancelling are a
heap push and a flag under a lock.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


def _noop() -> None:
    pass


class Alarm:
    """A callback armed for a deadline; :meth:`cancel` before it fires and it never will."""

    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], None]):
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        with _cond:
            self.cancelled = True
            # Drop the callback now: it holds its session (and the secrets in it) until the
            # deadline would have come, while the alarm waits in the heap.
            self.callback = _noop


_cond = threading.Condition()
_heap: list[tuple[float, int, Alarm]] = []
_order = itertools.count()
_owner_pid: int | None = None  # the process whose thread serves the heap (none after a fork)


def arm(seconds: float, callback: Callable[[], None]) -> Alarm:
    """Call ``callback`` (on the watchdog thread) ``seconds`` from now, unless cancelled."""
    global _owner_pid
    alarm = Alarm(time.monotonic() + seconds, callback)
    with _cond:
        if _owner_pid != os.getpid():  # first use in this process, or a forked child
            _heap.clear()
            _owner_pid = os.getpid()
            threading.Thread(target=_serve, name="watchdog", daemon=True).start()
        heapq.heappush(_heap, (alarm.deadline, next(_order), alarm))
        if _heap[0][2] is alarm:  # the thread may be sleeping until a later deadline
            _cond.notify()
    return alarm


def _serve() -> None:
    pid = os.getpid()
    while True:
        with _cond:
            if _owner_pid != pid:
                return
            while _heap and _heap[0][2].cancelled:
                heapq.heappop(_heap)  # cancelled alarms are dropped when they reach the top
            if not _heap:
                _cond.wait()
                continue
            delay = _heap[0][0] - time.monotonic()
            if delay > 0:
                _cond.wait(delay)
                continue
            alarm = heapq.heappop(_heap)[2]
        try:
            # Cancelled in the meantime: the owner closed before the deadline, nothing to do.
            if not alarm.cancelled:
                alarm.callback()
        except Exception:  # a failing callback must not stop every other alarm
            logger.exception("A watchdog callback failed.")
