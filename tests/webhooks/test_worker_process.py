"""A real ``outbound worker`` process sends a message through aiosmtpd and delivers its
``message.sent`` event to a receiver on 127.0.0.1 from its task thread: the receiver's first
answer is a 500, the retry after the backoff is delivered; both copies verify with
standardwebhooks and carry the same ``webhook-id``."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.webhooks import services
from outbound.webhooks.models import WebhookDelivery
from tests.mail.test_worker_process import (
    SMTP_PASSWORD,
    SMTP_USER,
    WORKER,
    Workers,
    activate_config,
    key,  # noqa: F401  (the key ring the children share)
    submit,
    wait_for,
    workers,  # noqa: F401  (fixture)
)
from tests.support.smtp import smtp_server
from tests.webhooks.conftest import Receiver

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the children see only committed rows
    pytest.mark.skipif(not WORKER.exists(), reason="the outbound script is not installed"),
]


def test_the_worker_delivers_events_and_retries_after_a_500(
    workers: Workers,  # noqa: F811  (the fixture)
    receiver: Receiver,
    admin_user: User,
    admin_client: APIClient,
) -> None:
    workers.env["OUTBOUND_WEBHOOK_BACKOFF"] = "0.5"
    receiver.script = [500, 204]
    _, secret = services.create_webhook(actor=admin_user, url=receiver.url, events=["message.sent"])
    with smtp_server(users={SMTP_USER: SMTP_PASSWORD}, auth_require_tls=False) as srv:
        activate_config(srv, admin_user)
        [message] = submit(admin_client, 1)
        proc = workers.start()
        workers.wait_ready(proc)
        try:
            wait_for(lambda: len(receiver.posts()) >= 2, 30, "the event and its retry")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{workers.output()}") from None
        wait_for(
            lambda: WebhookDelivery.objects.filter(status="delivered").exists(),
            10,
            "the retry recorded",
        )
        assert len(srv.recorder.messages) == 1
        assert workers.terminate(proc) == 0
    bodies = receiver.verified(secret)
    assert [b["type"] for b in bodies] == ["message.sent", "message.sent"]
    assert bodies[0] == bodies[1] and bodies[0]["data"]["id"] == message
    assert len({p.headers["webhook-id"] for p in receiver.posts()}) == 1
    rows = list(WebhookDelivery.objects.order_by("attempt"))
    assert [(r.attempt, r.status, r.http_status) for r in rows] == [
        (1, "retrying", 500),
        (2, "delivered", 204),
    ]
    first, retry = rows[0].finished_at, rows[1].finished_at
    assert first is not None and retry is not None
    assert rows[1].created_at >= first
    assert (retry - first).total_seconds() >= 0.5  # the backoff
    log = workers.log_of(proc)
    assert "Traceback" not in log
    assert secret.removeprefix("whsec_") not in log
    workers.stopped(proc)
