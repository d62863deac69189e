"""The worker's task thread (``outbound.mail.task_runner``): it runs due deliveries, rides out a
database that fails under it (one log line per outage, then on), and runs again a task that
a dead worker left ``RUNNING``."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from outbound.accounts.models import User
from outbound.mail import task_runner
from outbound.mail.task_runner import TaskRunner
from outbound.webhooks import services
from outbound.webhooks.models import WebhookDelivery
from tests.webhooks.conftest import Receiver

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_the_thread_delivers_and_rides_out_a_database_outage(
    receiver: Receiver,
    admin_user: User,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, secret = services.create_webhook(actor=admin_user, url=receiver.url, events=["message.sent"])
    services.emit("message.sent", {"id": 1})
    failures = iter([OperationalError("server closed the connection unexpectedly")] * 3)
    real_pass = TaskRunner._pass

    def flaky_pass(self: TaskRunner) -> None:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        real_pass(self)

    monkeypatch.setattr(TaskRunner, "_pass", flaky_pass)
    runner = TaskRunner(interval=0.05)
    runner.start()
    try:
        wait_for(lambda: WebhookDelivery.objects.filter(status="delivered").exists())
    finally:
        runner.stop()
    assert len(receiver.verified(secret)) == 1
    assert caplog.text.count("the database is unavailable") == 1
    # The delivery loop's next write says the database is back, not this thread: its reads
    # succeed while a read-only database still refuses the worker's writes.
    assert caplog.text.count("available again") == 0
    assert "Traceback" not in caplog.text


def test_a_task_a_dead_worker_left_running_is_run_again(
    receiver: Receiver, admin_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, secret = services.create_webhook(actor=admin_user, url=receiver.url, events=["message.sent"])
    services.emit("message.sent", {"id": 1})
    # A worker claimed it and died: RUNNING, started long ago, never finished.
    DBTaskResult.objects.update(
        status=TaskResultStatus.RUNNING,
        started_at=timezone.now() - timedelta(seconds=task_runner.STALE_AFTER + 1),
        worker_ids=["dead:1:abc"],
    )
    runner = TaskRunner(once=True)
    runner.start()
    runner.join(15)
    assert len(receiver.verified(secret)) == 1
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["delivered"]
    assert DBTaskResult.objects.get().status == TaskResultStatus.SUCCESSFUL


def test_a_task_running_now_is_left_alone(receiver: Receiver, admin_user: User) -> None:
    services.create_webhook(actor=admin_user, url=receiver.url, events=["message.sent"])
    services.emit("message.sent", {"id": 1})
    DBTaskResult.objects.update(status=TaskResultStatus.RUNNING, started_at=timezone.now())
    runner = TaskRunner(once=True)
    runner.start()
    runner.join(15)
    assert receiver.posts() == []
    assert DBTaskResult.objects.get().status == TaskResultStatus.RUNNING
