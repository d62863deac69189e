"""What a review found, each against a real receiver on 127.0.0.1 and the real database:
an attempt is recorded through database errors and a delivery whose task was lost is queued
again; a URL with non-ASCII characters is sent percent-encoded; an unexpected failure while
posting is a failed (retried) attempt; events are written with the change they report (both
or neither) under ids assigned once; a change racing a delete is a 404; answers that carry a
secret are not cached; several silent addresses share one timeout."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.core import egress, http, publish
from outbound.mail import task_runner
from outbound.mail.models import Message, SmtpConfig
from outbound.mail.task_runner import TaskRunner
from outbound.webhooks import services
from outbound.webhooks.api.views import WebhookViewSet
from outbound.webhooks.models import Webhook, WebhookDelivery
from tests.mail.test_sender import (
    _fresh_sender_state,  # noqa: F401  (autouse: no pooled connection between tests)
    configure,
    run_worker,
    submit,
)
from tests.support.smtp import Scripted, smtp_server
from tests.webhooks.conftest import Receiver

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/webhooks/"
SETTINGS = "/api/administration/smtp-settings/"


@pytest.fixture(autouse=True)
def _quick(settings: Any) -> None:
    settings.OUTBOUND_WEBHOOK_BACKOFF = (0.3, 0.6)
    settings.OUTBOUND_WEBHOOK_TIMEOUT = 2


@contextlib.contextmanager
def failing(match: Callable[[str], bool], times: int, error: BaseException) -> Iterator[list[str]]:
    """The database connection fails the first ``times`` statements ``match`` picks (as a
    database going away under them would); answers the statements it failed."""
    failed: list[str] = []

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if match(sql) and len(failed) < times:
            failed.append(sql)
            raise error
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield failed


def recording(sql: str) -> bool:
    return sql.startswith('UPDATE "webhooks_webhookdelivery"')


def delivery_insert(sql: str) -> bool:
    return sql.startswith('INSERT INTO "webhooks_webhookdelivery"')


# --- 1. an attempt made is recorded; a delivery without a task gets one -------------------------


def test_recording_an_attempt_rides_out_database_errors(
    receiver: Receiver, admin_user: User, due_tasks: Callable[[], int]
) -> None:
    _, secret = services.create_webhook(actor=admin_user, url=receiver.url, events=["message.sent"])
    services.emit("message.sent", {"id": 1})
    gone = OperationalError("server closed the connection unexpectedly")
    with failing(recording, 2, gone) as failed:
        due_tasks()
    assert len(failed) == 2
    assert len(receiver.verified(secret)) == 1
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["delivered"]
    assert DBTaskResult.objects.get().status == TaskResultStatus.SUCCESSFUL


def test_the_sweep_queues_again_a_pending_delivery_whose_task_is_gone(
    receiver: Receiver, admin_user: User
) -> None:
    _, secret = services.create_webhook(actor=admin_user, url=receiver.url, events=["message.sent"])
    services.emit("message.sent", {"id": 1})
    # What an older worker left: the task FAILED, the row pending long past due.
    DBTaskResult.objects.update(status=TaskResultStatus.FAILED)
    long_ago = timezone.now() - timedelta(seconds=task_runner.STALE_AFTER + 1)
    WebhookDelivery.objects.update(next_attempt_at=long_ago)
    runner = TaskRunner(once=True)
    runner.start()
    runner.join(15)
    assert len(receiver.verified(secret)) == 1
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["delivered"]


def test_the_sweep_leaves_a_pending_delivery_whose_task_is_running(
    receiver: Receiver, admin_user: User
) -> None:
    services.create_webhook(actor=admin_user, url=receiver.url, events=["message.sent"])
    services.emit("message.sent", {"id": 1})
    DBTaskResult.objects.update(status=TaskResultStatus.RUNNING, started_at=timezone.now())
    long_ago = timezone.now() - timedelta(seconds=task_runner.STALE_AFTER + 1)
    WebhookDelivery.objects.update(next_attempt_at=long_ago)
    runner = TaskRunner(once=True)
    runner.start()
    runner.join(15)
    assert receiver.posts() == []
    assert DBTaskResult.objects.count() == 1


# --- 2. non-ASCII URLs; an unexpected failure while posting -----------------------------------


def test_a_url_with_non_ascii_characters_is_sent_percent_encoded(
    admin_client: APIClient, receiver: Receiver
) -> None:
    url = receiver.url.replace("/hooks/outbound", "/hooks/café?to=Zoë&ok=%C3%A9")
    r = admin_client.post(URL, {"url": url, "events": ["message.sent"]}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["url"] == url  # kept as given
    r = admin_client.post(f"{URL}{r.json()['id']}/test/")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "delivered", r.json()
    [post] = receiver.received
    assert post.path == "/hooks/caf%C3%A9?to=Zo%C3%AB&ok=%C3%A9"


def test_an_unexpected_failure_while_posting_is_a_failed_attempt_retried(
    receiver: Receiver,
    admin_user: User,
    due_tasks: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hook, secret = services.create_webhook(
        actor=admin_user, url=receiver.url, events=["message.sent"]
    )

    def broken(url: str, body: bytes, *, headers: dict[str, str], timeout: float) -> Any:
        raise RuntimeError(f"a bug that quotes what it had: {headers} {body!r}")

    monkeypatch.setattr(http, "post_json", broken)
    services.emit("message.sent", {"id": 1})
    with caplog.at_level(logging.INFO):
        due_tasks()
    row = WebhookDelivery.objects.get(attempt=1)
    assert row.status == "retrying"
    assert row.error == "The delivery failed inside Outbound (RuntimeError); it is tried again."
    assert DBTaskResult.objects.filter(status=TaskResultStatus.SUCCESSFUL).count() == 1
    assert "RuntimeError" in caplog.text
    assert "webhook-signature" not in caplog.text and secret not in caplog.text
    monkeypatch.undo()
    deadline = time.monotonic() + 10
    while not receiver.posts():
        assert time.monotonic() < deadline
        due_tasks()
        time.sleep(0.05)
    assert len(receiver.verified(secret)) == 1
    assert hook.pk == row.webhook_id


# --- 3. events written with what they report -------------------------------------------------


class WorkerDied(BaseException):
    """The process ends here (as a killed worker would): nothing after it runs."""


def test_a_worker_dying_while_recording_leaves_results_and_events_both_or_neither(
    admin_client: APIClient, admin_user: User, receiver: Receiver
) -> None:
    with smtp_server(recorder=Scripted(pipelining=True)) as srv:
        configure(admin_client, srv)
        services.create_webhook(actor=admin_user, url=receiver.url, events=["message.sent"])
        for _ in range(3):
            submit(admin_client)
        with (
            failing(delivery_insert, 1000, WorkerDied()) as failed,
            contextlib.suppress(WorkerDied),
        ):
            run_worker()
    assert failed  # it died where the events are written
    sent = Message.objects.filter(status="sent").count()
    assert WebhookDelivery.objects.count() == sent  # pre-fix: 3 sent, no event
    assert sent == 0


def test_subscriptions_never_read_are_read_again_not_taken_for_none(
    admin_client: APIClient,
    admin_user: User,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with smtp_server(recorder=Scripted(pipelining=True)) as srv:
        configure(admin_client, srv)
        services.create_webhook(actor=admin_user, url=receiver.url, events=["message.sent"])
        for _ in range(3):
            submit(admin_client)
        # A worker that has not read them yet, and the database failing when it first asks.
        fresh = services.Subscriptions()
        monkeypatch.setattr(services, "SUBSCRIPTIONS", fresh)
        monkeypatch.setattr(publish, "_SUBSCRIBERS", [fresh])
        reading = lambda sql: '"webhooks_webhook"."events"' in sql  # noqa: E731
        gone = OperationalError("server closed the connection unexpectedly")
        with failing(reading, 2, gone) as failed:
            run_worker()
    assert len(failed) == 2
    assert Message.objects.filter(status="sent").count() == 3
    assert WebhookDelivery.objects.filter(event_type="message.sent").count() == 3


def test_a_configuration_change_and_its_event_are_written_together(
    admin_client: APIClient, admin_user: User, receiver: Receiver
) -> None:
    services.create_webhook(actor=admin_user, url=receiver.url, events=["smtp_config.changed"])
    body = {"host": "smtp.example.com", "port": 587, "tls": True, "from_email": "a@example.com"}
    gone = OperationalError("server closed the connection unexpectedly")
    with failing(delivery_insert, 1, gone):
        r = admin_client.patch(SETTINGS, body, format="json")
    changed = SmtpConfig.objects.filter(host="smtp.example.com").exists()
    events = WebhookDelivery.objects.filter(event_type="smtp_config.changed").count()
    if r.status_code == 200:
        assert changed and events == 1
    else:  # the database failed the change: neither is written
        assert r.status_code == 503, r.content
        assert not changed and events == 0
    r = admin_client.patch(SETTINGS, body, format="json")
    assert r.status_code == 200, r.content
    assert WebhookDelivery.objects.filter(event_type="smtp_config.changed").count() >= 1


# --- 4. event ids assigned once ------------------------------------------------------------------


def test_an_event_written_again_keeps_its_ids(
    receiver: Receiver, admin_user: User, due_tasks: Callable[[], int]
) -> None:
    hook, secret = services.create_webhook(
        actor=admin_user, url=receiver.url, events=["message.sent"]
    )
    events = [publish.event("message.sent", {"id": 1})]
    # A first try the database rolled back, then the retry, then one more (a commit whose
    # answer was lost): the receiver sees one id, as it would for the event every time.
    with contextlib.suppress(RuntimeError), transaction.atomic():
        publish.publish(events)
        raise RuntimeError("the transaction is lost")
    publish.publish(events)
    with contextlib.suppress(IntegrityError), transaction.atomic():
        publish.publish(events)
    assert due_tasks() == 1
    [body] = receiver.verified(secret)
    [post] = receiver.posts()
    assert post.headers["webhook-id"] == services.delivery_event_id(events[0].id, hook.pk)
    assert body["type"] == "message.sent"


# --- 5, 6. racing a delete; no caching of secrets ------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("patch", "", {"description": "x"}),
        ("put", "", {"url": "", "events": ["message.sent"]}),
        ("post", "rotate-secret/", None),
        ("post", "test/", None),
    ],
)
def test_a_change_racing_a_delete_is_a_404(
    admin_client: APIClient,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    r = admin_client.post(URL, {"url": receiver.url, "events": ["message.sent"]}, format="json")
    pk = r.json()["id"]
    found = WebhookViewSet.get_object

    def then_deleted(self: WebhookViewSet) -> Webhook:
        webhook = found(self)
        Webhook.objects.filter(pk=webhook.pk).delete()  # another request, meanwhile
        return webhook

    monkeypatch.setattr(WebhookViewSet, "get_object", then_deleted)
    if body is not None and "url" in body:
        body = {**body, "url": receiver.url}
    r = getattr(admin_client, method)(f"{URL}{pk}/{path}", body, format="json")
    assert r.status_code == 404, r.content
    assert receiver.posts() == []


def test_answers_carrying_the_secret_are_not_cached(
    admin_client: APIClient, receiver: Receiver
) -> None:
    r = admin_client.post(URL, {"url": receiver.url, "events": ["message.sent"]}, format="json")
    assert r.status_code == 201
    assert r["Cache-Control"] == "no-store"
    r = admin_client.post(f"{URL}{r.json()['id']}/rotate-secret/")
    assert r.status_code == 200
    assert r["Cache-Control"] == "no-store"


# --- 7. one deadline for every address ---------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 whose accept queue is full: connections to it are never answered."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    waiting = []
    for _ in range(3):
        client = socket.socket()
        client.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            client.connect(("127.0.0.1", port))
        waiting.append(client)
    time.sleep(0.05)
    try:
        yield port
    finally:
        for client in waiting:
            client.close()
        server.close()


def test_addresses_that_never_answer_share_one_timeout(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The host resolves to three addresses, none of them answering.
    silent = [ipaddress.ip_address("127.0.0.1")] * 3
    monkeypatch.setattr(egress, "resolve", lambda host, port, timeout: silent)
    started = time.monotonic()
    with pytest.raises(http.HttpCallFailed, match="did not answer in time"):
        http.post_json(f"http://receiver.test:{silent_port}/hooks", b"{}", headers={}, timeout=0.6)
    assert time.monotonic() - started < 1.2  # not 3 x 0.6


# --- another Tasks backend: told once the rows are committed ------------------------------------


def test_another_tasks_backend_gets_the_tasks_once_the_event_is_committed(
    receiver: Receiver, admin_user: User, settings: Any
) -> None:
    _, secret = services.create_webhook(actor=admin_user, url=receiver.url, events=["message.sent"])
    # The immediate backend runs a task as it is enqueued (as a fast worker elsewhere would).
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    with contextlib.suppress(RuntimeError), transaction.atomic():
        publish.publish([("message.sent", {"id": 1})])
        raise RuntimeError("the change is rolled back: its event never happened")
    assert receiver.posts() == []
    with transaction.atomic():
        publish.publish([("message.sent", {"id": 2})])
        assert receiver.posts() == []  # not before the commit
    [body] = receiver.verified(secret)
    assert body["data"] == {"id": 2}
