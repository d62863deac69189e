"""Events from real work: messages sent through aiosmtpd by the worker (``outbound worker
--batch`` in this process) and SMTP configuration changes through the API, each delivered to
a real receiver and verified with standardwebhooks. What it costs the sender: no query when
nobody subscribes, and a batch's events are two INSERTs whatever its size."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.mail.models import Message
from outbound.webhooks import services
from outbound.webhooks.models import WebhookDelivery
from tests.mail.test_sender import (
    _fresh_sender_state,  # noqa: F401  (autouse: no pooled connection between tests)
    configure,
    quick_retries,  # noqa: F401
    run_worker,
    settle,
    submit,
)
from tests.support.smtp import Scripted, smtp_server
from tests.webhooks.conftest import Receiver

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGE_EVENTS = ["message.sent", "message.deferred", "message.failed", "message.recipient_failed"]
SETTINGS = "/api/administration/smtp-settings/"
SUBJECT, TEXT = "Quarterly numbers", "The body nobody else may read.\n"


def deliver_all(due_tasks: Callable[[], int], receiver: Receiver, count: int) -> None:
    deadline = time.monotonic() + 15
    while len(receiver.posts()) < count:
        assert time.monotonic() < deadline, f"{len(receiver.posts())} of {count} arrived"
        due_tasks()
        time.sleep(0.05)


@pytest.mark.usefixtures("quick_retries")
def test_message_events_after_real_sends(
    admin_client: APIClient,
    admin_user: User,
    receiver: Receiver,
    due_tasks: Callable[[], int],
) -> None:
    refuse = {"nobody@example.com", "gone@example.com"}
    with smtp_server(recorder=Scripted(refuse=refuse, defer={"slow@example.com": 1})) as srv:
        config = configure(admin_client, srv, failure_email="")
        _, secret = services.create_webhook(
            actor=admin_user, url=receiver.url, events=MESSAGE_EVENTS
        )
        sent = submit(
            admin_client,
            to=["ann@example.com"],
            cc=["bob@example.com"],
            subject=SUBJECT,
            text=TEXT,
            idempotency_key="order-1234",
        )
        partly = submit(admin_client, to=["cat@example.com", "nobody@example.com"])
        failed = submit(admin_client, to=["gone@example.com"])
        deferred = submit(admin_client, to=["slow@example.com"])
        settle()
    # sent; sent + recipient_failed; failed + recipient_failed; deferred, then sent.
    deliver_all(due_tasks, receiver, 7)
    time.sleep(0.3)
    due_tasks()
    bodies = receiver.verified(secret)  # every one verified with standardwebhooks
    assert len(bodies) == 7
    seen = sorted((b["data"]["id"], b["type"]) for b in bodies)
    assert seen == sorted(
        [
            (sent.pk, "message.sent"),
            (partly.pk, "message.sent"),
            (partly.pk, "message.recipient_failed"),
            (failed.pk, "message.failed"),
            (failed.pk, "message.recipient_failed"),
            (deferred.pk, "message.deferred"),
            (deferred.pk, "message.sent"),
        ]
    )
    by = {(b["data"]["id"], b["type"]): b["data"] for b in bodies}
    first = by[(sent.pk, "message.sent")]
    assert first["status"] == "sent"
    assert first["idempotency_key"] == "order-1234"
    assert first["message_id"] == Message.objects.get(pk=sent.pk).message_id
    assert first["configuration"] == {"id": config.pk, "host": srv.host, "port": srv.port}
    assert first["attempt"] == 1
    assert [
        (r["address"], r["kind"], r["status"], r["smtp_code"]) for r in first["recipients"]
    ] == [
        ("ann@example.com", "to", "sent", 250),
        ("bob@example.com", "cc", "sent", 250),
    ]
    refused = by[(partly.pk, "message.recipient_failed")]
    assert [(r["address"], r["status"], r["smtp_code"]) for r in refused["recipients"]] == [
        ("nobody@example.com", "failed", 550)
    ]
    assert "User unknown" in refused["recipients"][0]["smtp_reply"]
    assert by[(failed.pk, "message.failed")]["status"] == "failed"
    later = by[(deferred.pk, "message.deferred")]
    assert later["status"] == "deferred" and later["next_attempt_at"]
    assert later["recipients"][0]["smtp_code"] == 451
    assert by[(deferred.pk, "message.sent")]["attempt"] == 2
    # Never a subject, a body or a secret.
    for post in receiver.posts():
        text = post.body.decode()
        assert SUBJECT not in text and "nobody else may read" not in text
        assert "password" not in text.lower()
        assert secret.removeprefix("whsec_") not in text


def test_configuration_events_from_every_change(
    admin_client: APIClient, admin_user: User, receiver: Receiver, due_tasks: Callable[[], int]
) -> None:
    _, secret = services.create_webhook(
        actor=admin_user,
        url=receiver.url,
        events=["smtp_config.activated", "smtp_config.changed"],
    )
    body = {
        "host": "smtp.example.com",
        "port": 587,
        "tls": True,
        "username": "u",
        "password": "p" * 12,
    }
    r = admin_client.patch(SETTINGS, {**body, "from_email": "app@example.com"}, format="json")
    assert r.status_code == 200, r.content
    r = admin_client.patch(SETTINGS, {"port": 2525, "password": "p" * 12}, format="json")
    assert r.status_code == 200, r.content
    deliver_all(due_tasks, receiver, 3)
    bodies = receiver.verified(secret)
    assert [(b["type"], b["data"]["action"]) for b in bodies] == [
        ("smtp_config.changed", "created"),
        ("smtp_config.activated", "activated"),
        ("smtp_config.changed", "updated"),
    ]
    assert bodies[1]["data"]["is_active"] is True
    # Names, never values (the password is sealed again for the new port).
    assert bodies[2]["data"]["changed_fields"] == ["password", "port"]
    assert bodies[2]["data"]["configuration"]["port"] == 2525
    for post in receiver.posts():
        assert "p" * 12 not in post.body.decode()


@pytest.mark.parametrize("subscribed", [[], ["smtp_config.changed"]])
def test_nobody_subscribed_costs_the_sender_no_query(
    admin_client: APIClient,
    admin_user: User,
    receiver: Receiver,
    subscribed: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The subscriptions are read once a second: here once before, for the whole run.
    monkeypatch.setattr(services.SUBSCRIPTIONS, "TTL", 60.0)
    with smtp_server(recorder=Scripted(pipelining=True)) as srv:
        configure(admin_client, srv)
        if subscribed:  # an enabled webhook, but for other events
            services.create_webhook(actor=admin_user, url=receiver.url, events=subscribed)
        for _ in range(30):
            submit(admin_client)
        services.SUBSCRIPTIONS.invalidate()
        services.SUBSCRIPTIONS.current()  # as it is in a running worker: read this second
        with CaptureQueriesContext(connection) as ctx:
            run_worker()
    assert Message.objects.filter(status="sent").count() == 30
    webhook_queries = [q["sql"] for q in ctx.captured_queries if "webhooks_" in q["sql"]]
    assert webhook_queries == []
    assert not WebhookDelivery.objects.exists()


def test_a_batchs_events_are_two_inserts(
    admin_client: APIClient,
    admin_user: User,
    receiver: Receiver,
    due_tasks: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services.SUBSCRIPTIONS, "TTL", 60.0)
    with smtp_server(recorder=Scripted(pipelining=True)) as srv:
        configure(admin_client, srv)
        _, secret = services.create_webhook(
            actor=admin_user, url=receiver.url, events=["message.sent"]
        )
        for _ in range(30):
            submit(admin_client)
        services.SUBSCRIPTIONS.invalidate()
        services.SUBSCRIPTIONS.current()
        with CaptureQueriesContext(connection) as ctx:
            run_worker()
    inserts = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("INSERT")]
    assert len([s for s in inserts if "webhooks_webhookdelivery" in s]) == 1
    assert len([s for s in inserts if "django_tasks_database_dbtaskresult" in s]) == 1
    assert WebhookDelivery.objects.count() == 30
    deliver_all(due_tasks, receiver, 30)
    assert len(receiver.verified(secret)) == 30
