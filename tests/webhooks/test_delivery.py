"""Delivering events: Standard Webhooks signatures (checked by the library and by hand), at
least once with backoff until the event is too old, redirects and timeouts are failures, the
egress policy at every attempt, the metrics counter. The Tasks API's database backend runs
the tasks (its own worker loop, in this process)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest
from django_tasks_db.models import DBTaskResult

from outbound.accounts.models import User
from outbound.core.publish import publish
from outbound.webhooks import services
from outbound.webhooks.models import Webhook, WebhookDelivery
from tests.core.test_metrics import TOKEN, moved, scrape
from tests.webhooks.conftest import Receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _quick(settings: Any) -> None:
    settings.OUTBOUND_WEBHOOK_BACKOFF = (0.3, 0.6)
    settings.OUTBOUND_WEBHOOK_TIMEOUT = 2
    settings.OUTBOUND_METRICS_TOKEN = TOKEN


def hook_for(receiver: Receiver, user: User, *events: str) -> tuple[Webhook, str]:
    return services.create_webhook(
        actor=user, url=receiver.url, events=list(events or ["message.sent"])
    )


def attempts(event_type: str = "message.sent") -> list[tuple[int, str, int | None, str]]:
    """Every attempt at events of this type, in order."""
    rows = WebhookDelivery.objects.filter(event_type=event_type).order_by("event_id", "attempt")
    return [(d.attempt, d.status, d.http_status, d.error) for d in rows]


def run_until(due_tasks: Callable[[], int], done: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, attempts()
        due_tasks()
        time.sleep(0.05)


def test_a_delivery_is_signed_as_standard_webhooks_says(
    receiver: Receiver, admin_user: User, due_tasks: Callable[[], int]
) -> None:
    _, secret = hook_for(receiver, admin_user)
    [queued] = services.emit("message.sent", {"id": 7, "status": "sent"})
    [task] = DBTaskResult.objects.all()
    assert task.args_kwargs == {"args": [queued.pk], "kwargs": {}}  # the row's id, nothing else
    assert due_tasks() == 1
    [body] = receiver.verified(secret)  # standardwebhooks.Webhook(secret).verify(body, headers)
    assert body["type"] == "message.sent"
    assert body["data"] == {"id": 7, "status": "sent"}
    assert body["timestamp"].endswith("Z")
    [post] = receiver.posts()
    # The signature by hand: HMAC-SHA256 keyed with the secret's base64 after "whsec_".
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{post.headers['webhook-id']}.{post.headers['webhook-timestamp']}.".encode()
    digest = hmac.new(key, signed + post.body, hashlib.sha256).digest()
    assert post.headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()
    assert post.headers["webhook-id"] == queued.event_id
    assert abs(int(post.headers["webhook-timestamp"]) - time.time()) < 10
    assert attempts() == [(1, "delivered", 204, "")]


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(
    receiver: Receiver, admin_user: User, due_tasks: Callable[[], int]
) -> None:
    _, secret = hook_for(receiver, admin_user)
    receiver.script = [500, 502, 200]
    before = scrape()
    [first] = services.emit("message.sent", {"id": 1})
    assert due_tasks() == 1
    assert attempts() == [
        (1, "retrying", 500, "The receiver answered HTTP 500."),
        (2, "pending", None, ""),
    ]
    assert due_tasks() == 0  # the next attempt waits its backoff
    run_until(due_tasks, lambda: len(receiver.posts()) == 3)
    run_until(due_tasks, lambda: attempts()[-1][1] == "delivered")
    assert attempts() == [
        (1, "retrying", 500, "The receiver answered HTTP 500."),
        (2, "retrying", 502, "The receiver answered HTTP 502."),
        (3, "delivered", 200, ""),
    ]
    rows = list(WebhookDelivery.objects.order_by("attempt"))
    assert {r.event_id for r in rows} == {first.event_id}
    # Each failed attempt scheduled the next after its delay (0.3 s, then 0.6 s), and the
    # next one did not run before.
    for row, delay in ((rows[0], 0.3), (rows[1], 0.6)):
        assert row.finished_at is not None and row.next_attempt_at is not None
        waited = (row.next_attempt_at - row.finished_at).total_seconds()
        assert waited == pytest.approx(delay, abs=0.01)
    for earlier, later in itertools.pairwise(rows):
        assert later.finished_at is not None and earlier.next_attempt_at is not None
        assert later.finished_at >= earlier.next_attempt_at
    # Every copy is the same event, each verified; the receiver may dedupe on webhook-id.
    bodies = receiver.verified(secret)
    assert len(bodies) == 3 and all(b == bodies[0] for b in bodies)
    assert len({p.headers["webhook-id"] for p in receiver.posts()}) == 1
    after = scrape()
    assert moved(before, after, "outbound_webhook_deliveries_total", result="failed") == 2
    assert moved(before, after, "outbound_webhook_deliveries_total", result="delivered") == 1


def test_retries_stop_when_the_event_is_too_old(
    receiver: Receiver, admin_user: User, due_tasks: Callable[[], int], settings: Any
) -> None:
    settings.OUTBOUND_WEBHOOK_MAX_AGE = 1.0
    hook_for(receiver, admin_user)
    receiver.script = [500]
    services.emit("message.sent", {"id": 1})
    run_until(due_tasks, lambda: attempts()[-1][1] == "failed")
    statuses = [a[1] for a in attempts()]
    assert statuses[-1] == "failed" and set(statuses[:-1]) <= {"retrying"}
    assert 2 <= len(statuses) <= 5
    last = WebhookDelivery.objects.order_by("-attempt").first()
    assert last is not None and last.next_attempt_at is None and last.finished_at is not None
    assert (last.finished_at - last.event_at).total_seconds() >= 1.0
    time.sleep(0.7)
    assert due_tasks() == 0  # nothing more is scheduled


def test_a_redirect_is_a_failure_and_is_not_followed(
    receiver: Receiver, admin_user: User, due_tasks: Callable[[], int]
) -> None:
    hook, _ = hook_for(receiver, admin_user)
    receiver.script = [302, 204]
    delivery = services.send_test(hook, actor=admin_user)
    assert delivery.status == "failed"
    assert delivery.http_status == 302
    assert "redirect" in delivery.error
    assert receiver.posts("/elsewhere") == []  # never followed
    services.emit("message.sent", {"id": 1})
    receiver.script = [307, 204]
    run_until(due_tasks, lambda: attempts()[-1][1] == "delivered")
    assert [a[:3] for a in attempts()] == [(1, "retrying", 307), (2, "delivered", 204)]
    assert receiver.posts("/elsewhere") == []


def test_a_receiver_that_does_not_answer_in_time_is_retried(
    receiver: Receiver, admin_user: User, due_tasks: Callable[[], int], settings: Any
) -> None:
    settings.OUTBOUND_WEBHOOK_TIMEOUT = 0.5
    hook_for(receiver, admin_user)
    receiver.delay = 2.0
    started = time.monotonic()
    services.emit("message.sent", {"id": 1})
    assert due_tasks() == 1
    assert time.monotonic() - started < 1.9  # bounded by the timeout, not the receiver
    [(attempt, status, code, error), _] = attempts()
    assert (attempt, status, code) == (1, "retrying", None)
    assert error == "The receiver did not answer in time."
    receiver.delay = 0
    run_until(due_tasks, lambda: attempts()[-1][1] == "delivered")


def test_an_unreachable_receiver_is_retried(
    receiver: Receiver, admin_user: User, due_tasks: Callable[[], int]
) -> None:
    hook, _ = hook_for(receiver, admin_user)
    assert receiver.server is not None
    port = receiver.server.server_address[1]
    Webhook.objects.filter(pk=hook.pk).update(
        url=f"http://127.0.0.1:{port + 1 if port < 65535 else 1025}/x"
    )
    services.emit("message.sent", {"id": 1})
    assert due_tasks() == 1
    [(_, status, code, error), _] = attempts()
    assert (status, code) == ("retrying", None)
    assert error.startswith("The receiver could not be reached")


def test_every_attempt_passes_the_egress_policy(
    receiver: Receiver, admin_user: User, due_tasks: Callable[[], int], settings: Any
) -> None:
    hook, _ = hook_for(receiver, admin_user)
    settings.OUTBOUND_EGRESS_ALLOW = ""  # the operator closes loopback after the URL was saved
    delivery = services.send_test(hook, actor=admin_user)
    assert delivery.status == "failed" and delivery.http_status is None
    assert "egress policy" in delivery.error
    assert receiver.posts() == []


def test_a_disabled_webhook_gets_no_events_and_stops_retrying(
    receiver: Receiver, admin_user: User, due_tasks: Callable[[], int]
) -> None:
    hook, _ = hook_for(receiver, admin_user)
    receiver.script = [500]
    services.emit("message.sent", {"id": 1})
    assert due_tasks() == 1
    services.update_webhook(hook, actor=admin_user, is_enabled=False)
    run_until(due_tasks, lambda: attempts()[-1][1] == "failed")
    assert attempts()[-1][3] == services.DISABLED
    assert len(receiver.posts()) == 1
    assert services.emit("message.sent", {"id": 2}) == []
    assert len(WebhookDelivery.objects.all()) == 2


def test_events_go_to_the_webhooks_that_subscribe_to_them(
    receiver: Receiver, admin_user: User, due_tasks: Callable[[], int]
) -> None:
    sent, _ = hook_for(receiver, admin_user, "message.sent")
    both, _ = hook_for(receiver, admin_user, "message.sent", "message.failed")
    publish([("message.sent", {"id": 1}), ("message.failed", {"id": 2}), ("message.deferred", {})])
    assert sorted(WebhookDelivery.objects.values_list("webhook_id", "event_type")) == sorted(
        [(sent.pk, "message.sent"), (both.pk, "message.sent"), (both.pk, "message.failed")]
    )
    assert due_tasks() == 3
    assert len(receiver.posts()) == 3
    ids = [p.headers["webhook-id"] for p in receiver.posts()]
    assert len(set(ids)) == 3  # one id per event and webhook


def test_the_secret_is_in_no_delivery_record_or_log(
    receiver: Receiver,
    admin_user: User,
    due_tasks: Callable[[], int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    _, secret = hook_for(receiver, admin_user)
    receiver.script = [500, 204]
    services.emit("message.sent", {"id": 1})
    run_until(due_tasks, lambda: attempts()[-1][1] == "delivered")
    raw = secret.removeprefix("whsec_")
    assert raw not in caplog.text
    assert raw not in str(list(WebhookDelivery.objects.values()))
    assert raw not in str(list(DBTaskResult.objects.values()))


def test_a_webhook_deleted_elsewhere_within_the_cache_second_loses_no_other_event(
    receiver: Receiver, admin_user: User, due_tasks: Callable[[], int]
) -> None:
    gone, _ = hook_for(receiver, admin_user)
    kept, secret = hook_for(receiver, admin_user)
    services.SUBSCRIPTIONS.current()
    Webhook.objects.filter(pk=gone.pk).delete()  # as another process would: no invalidation
    [queued] = services.emit("message.sent", {"id": 1})
    assert queued.webhook_id == kept.pk
    assert due_tasks() == 1
    assert len(receiver.verified(secret)) == 1


def test_https_receivers_are_verified_against_the_host_name(
    https_receiver: Receiver,
    admin_user: User,
    trust_test_ca: str,
    settings: Any,
) -> None:
    hook, secret = hook_for(https_receiver, admin_user)
    assert services.send_test(hook, actor=admin_user).status == "delivered"
    # By name: localhost resolves (perhaps to ::1 as well), every address is checked,
    # and the receiver, on 127.0.0.1 only, is reached through the one that answers.
    https_receiver.host = "localhost"
    services.update_webhook(hook, actor=admin_user, url=https_receiver.url)
    assert services.send_test(hook, actor=admin_user).status == "delivered"
    assert len(https_receiver.verified(secret)) == 2
    settings.OUTBOUND_SMTP_CA_FILE = ""  # the tests' CA no longer trusted
    refused = services.send_test(hook, actor=admin_user)
    assert refused.status == "failed" and refused.http_status is None
    assert "SSLCertVerificationError" in refused.error
    assert len(https_receiver.posts()) == 2
