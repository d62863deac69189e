"""The shared watchdog: alarms fire in deadline order, whatever order they were armed in, and a
cancelled alarm never fires."""

from __future__ import annotations

import threading

import pytest

from outbound.core import watchdog

pytestmark = pytest.mark.django_db  # the suite's autouse settings fixture opens the database


def test_an_earlier_deadline_armed_later_still_fires_first() -> None:
    fired: list[str] = []
    early = threading.Event()
    late = watchdog.arm(3600, lambda: fired.append("late"))

    def on_early() -> None:
        fired.append("early")
        early.set()

    watchdog.arm(0.05, on_early)
    # The thread was sleeping until the hour-long deadline; the new one must wake it.
    assert early.wait(10)
    late.cancel()
    assert fired == ["early"]


def test_a_cancelled_alarm_never_fires() -> None:
    fired: list[str] = []
    after = threading.Event()
    cancelled = watchdog.arm(0.05, lambda: fired.append("cancelled"))
    cancelled.cancel()
    watchdog.arm(0.1, after.set)  # due after the cancelled one: by then it would have fired
    assert after.wait(10)
    assert fired == []


def test_a_failing_callback_does_not_stop_later_alarms() -> None:
    after = threading.Event()

    def boom() -> None:
        raise RuntimeError("boom")

    watchdog.arm(0.01, boom)
    watchdog.arm(0.05, after.set)
    assert after.wait(10)
