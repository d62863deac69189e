"""Cancel and retry now: ``POST /api/messages/{id}/cancel/`` and ``…/retry/``, the worker's
view of a cancelled or hurried message (real sends through aiosmtpd), and the console's
buttons on the message page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.mail import outbox, services
from outbound.mail.models import Message, MessageStatus, Recipient, RecipientStatus
from tests.conftest import client_for
from tests.support.smtp import RunningServer, smtp_server

pytestmark = pytest.mark.django_db

STATUSES = ["queued", "deferred", "sending", "sent", "failed", "cancelled"]
CANCEL_REFUSALS = {
    "sending": "The message is being delivered now: it can no longer be cancelled.",
    "sent": "The message was sent: there is nothing to cancel.",
    "failed": "The message failed: there is nothing to cancel.",
    "cancelled": "The message is already cancelled.",
}
RETRY_REFUSALS = {
    "queued": "The message is queued: it goes out as soon as a worker is free. Only a "
    "deferred message can be retried now.",
    "sending": "The message is being delivered now: it cannot be retried.",
    "sent": "The message was sent: only a deferred message can be retried.",
    "failed": "The message failed: only a deferred message can be retried.",
    "cancelled": "The message is cancelled: only a deferred message can be retried.",
}


@pytest.fixture(autouse=True)
def server() -> Iterator[RunningServer]:
    """An active configuration (messages are only queued while one is) on a loopback server."""
    with smtp_server() as running:
        services.smtp_config_create(
            data={
                "host": "127.0.0.1",
                "port": running.port,
                "security": "none",
                "sender_address": "app@example.com",
            },
            actor=None,
            activate=True,
        )
        yield running


def submitted(actor: User, subject: str = "Hello", **fields: Any) -> Message:
    message, _ = outbox.message_submit(
        data={"to": ["ann@example.com", "bob@example.com"], "subject": subject, "text": "Hi.\n"},
        actor=actor,
    )
    if fields:
        Message.objects.filter(pk=message.pk).update(**fields)
        message.refresh_from_db()
    return message


def in_status(actor: User, status: str) -> Message:
    """A message as the worker would leave it in ``status`` (due now when waiting)."""
    now = timezone.now()
    fields: dict[str, Any] = {"status": status, "next_attempt_at": now - timedelta(seconds=1)}
    if status == "sending":
        fields.update(lease_owner="worker-1", lease_until=now + timedelta(minutes=5))
    if status in ("sent", "failed", "cancelled"):
        fields["finished_at"] = now
    if status != "queued":
        fields["attempt_count"] = 1
    return submitted(actor, **fields)


def cancel(client: APIClient, pk: int) -> Any:
    return client.post(f"/api/messages/{pk}/cancel/")


def retry(client: APIClient, pk: int) -> Any:
    return client.post(f"/api/messages/{pk}/retry/")


# --- the API, status by status -------------------------------------------------------------


@pytest.mark.parametrize("status", STATUSES)
def test_cancel_answers_for_each_status(
    status: str, admin_client: APIClient, admin_user: User
) -> None:
    message = in_status(admin_user, status)
    before = Message.objects.values().get(pk=message.pk)
    r = cancel(admin_client, message.pk)
    after = Message.objects.get(pk=message.pk)
    if status in ("queued", "deferred"):
        assert r.status_code == 200, r.data
        assert r.data["id"] == message.pk
        assert r.data["status"] == "cancelled"
        assert [x["address"] for x in r.data["recipients"]] == [
            "ann@example.com",
            "bob@example.com",
        ]
        assert after.status == MessageStatus.CANCELLED
        assert after.finished_at is not None
        assert (after.lease_owner, after.lease_until) == ("", None)
        # The recipients keep the status they had: how far delivery got.
        assert set(after.recipients.values_list("status", flat=True)) == {"pending"}
        events = Event.objects.filter(resource_type="message", resource_id=str(message.pk))
        assert [(e.action, e.actor_username) for e in events] == [("cancelled", "admin")]
    else:
        assert r.status_code == 409
        assert r.data == {"detail": CANCEL_REFUSALS[status], "error_code": "not_cancellable"}
        assert Message.objects.values().get(pk=message.pk) == before
        assert not Event.objects.filter(resource_type="message").exists()


@pytest.mark.parametrize("status", STATUSES)
def test_retry_answers_for_each_status(
    status: str, admin_client: APIClient, admin_user: User
) -> None:
    message = in_status(admin_user, status)
    later = timezone.now() + timedelta(hours=1)
    Message.objects.filter(pk=message.pk).update(next_attempt_at=later)
    before = Message.objects.values().get(pk=message.pk)
    started = timezone.now()
    r = retry(admin_client, message.pk)
    after = Message.objects.get(pk=message.pk)
    if status == "deferred":
        assert r.status_code == 200, r.data
        assert (r.data["id"], r.data["status"]) == (message.pk, "deferred")
        assert after.status == MessageStatus.DEFERRED
        assert started <= after.next_attempt_at <= timezone.now()
        events = Event.objects.filter(resource_type="message", resource_id=str(message.pk))
        assert [e.action for e in events] == ["retried"]
    else:
        assert r.status_code == 409
        assert r.data == {"detail": RETRY_REFUSALS[status], "error_code": "not_retryable"}
        assert Message.objects.values().get(pk=message.pk) == before


def test_unknown_message_is_404(admin_client: APIClient) -> None:
    assert cancel(admin_client, 999999).status_code == 404
    assert retry(admin_client, 999999).status_code == 404


def test_permissions(make_user: Callable[..., User], admin_user: User) -> None:
    message = in_status(admin_user, "deferred")
    assert cancel(APIClient(), message.pk).status_code == 401
    assert retry(APIClient(), message.pk).status_code == 401
    viewer = client_for(make_user("messages.view"))
    assert cancel(viewer, message.pk).status_code == 403
    assert retry(viewer, message.pk).status_code == 403
    assert Message.objects.get(pk=message.pk).status == "deferred"

    # A sender may retry and cancel; without messages.view it learns the id and status only.
    sender_only = client_for(make_user("messages.send"))
    r = retry(sender_only, message.pk)
    assert (r.status_code, r.data) == (200, {"id": message.pk, "status": "deferred"})
    r = cancel(sender_only, message.pk)
    assert (r.status_code, r.data) == (200, {"id": message.pk, "status": "cancelled"})

    both = client_for(make_user("messages.send", "messages.view"))
    other = in_status(admin_user, "queued")
    r = cancel(both, other.pk)
    assert r.status_code == 200 and r.data["status"] == "cancelled" and "recipients" in r.data


def test_the_status_filter_knows_cancelled(admin_client: APIClient, admin_user: User) -> None:
    kept = in_status(admin_user, "queued")
    gone = in_status(admin_user, "queued")
    assert cancel(admin_client, gone.pk).status_code == 200
    r = admin_client.get("/api/messages/?status=cancelled")
    assert r.status_code == 200
    ids = [m["id"] for m in r.data["results"]] if isinstance(r.data, dict) else []
    assert gone.pk in ids and kept.pk not in ids


# --- the worker ----------------------------------------------------------------------------


# The worker writes its notes on a connection of its own: these tests commit.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", ["queued", "deferred"])
def test_a_cancelled_message_is_never_sent(
    status: str, server: RunningServer, admin_client: APIClient, admin_user: User
) -> None:
    message = in_status(admin_user, status)
    control = submitted(admin_user, subject="Control")
    assert cancel(admin_client, message.pk).status_code == 200
    call_command("worker", batch=True)
    call_command("worker", batch=True)
    # The control message went out through the same server: the worker ran and delivered.
    assert [e.rcpt_tos for e in server.recorder.messages] == [
        ["ann@example.com", "bob@example.com"]
    ]
    assert Message.objects.get(pk=control.pk).status == "sent"
    message.refresh_from_db()
    assert message.status == "cancelled"
    assert message.attempts.count() == 0
    assert message.attempt_count == (0 if status == "queued" else 1)


@pytest.mark.django_db(transaction=True)
def test_retry_now_sends_a_deferred_message_on_the_next_run(
    server: RunningServer, admin_client: APIClient, admin_user: User
) -> None:
    message = in_status(admin_user, "deferred")
    Message.objects.filter(pk=message.pk).update(
        next_attempt_at=timezone.now() + timedelta(hours=1)
    )
    Recipient.objects.filter(message=message).update(status=RecipientStatus.DEFERRED)
    call_command("worker", batch=True)
    assert server.recorder.messages == []  # not due yet
    assert retry(admin_client, message.pk).status_code == 200
    call_command("worker", batch=True)
    assert len(server.recorder.messages) == 1
    message.refresh_from_db()
    assert message.status == "sent"
    assert set(message.recipients.values_list("status", flat=True)) == {"sent"}


# --- the console ---------------------------------------------------------------------------


def page(client: Client, pk: int) -> str:
    r = client.get(f"/console/messages/{pk}/")
    assert r.status_code == 200
    return r.content.decode()


@pytest.mark.parametrize("status", STATUSES)
def test_console_shows_the_buttons_a_status_allows(
    status: str, console_client: Client, admin_user: User
) -> None:
    html = page(console_client, in_status(admin_user, status).pk)
    assert ("Retry now" in html) == (status == "deferred")
    assert ("Cancel message" in html) == (status in ("queued", "deferred"))


def test_console_buttons_need_messages_send(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client], admin_user: User
) -> None:
    message = in_status(admin_user, "deferred")
    viewer = console_client_for(make_user("messages.view"))
    html = page(viewer, message.pk)
    assert "Retry now" not in html and "Cancel message" not in html
    assert viewer.post(f"/console/messages/{message.pk}/retry/").status_code == 403
    assert viewer.get(f"/console/messages/{message.pk}/cancel/").status_code == 403
    assert viewer.post(f"/console/messages/{message.pk}/cancel/").status_code == 403
    # messages.send alone does not open the pages the buttons are on.
    sender_only = console_client_for(make_user("messages.send"))
    assert sender_only.post(f"/console/messages/{message.pk}/cancel/").status_code == 403
    assert Message.objects.get(pk=message.pk).status == "deferred"


def test_console_retry_and_cancel(console_client: Client, admin_user: User) -> None:
    message = in_status(admin_user, "deferred")
    r = console_client.post(f"/console/messages/{message.pk}/retry/", follow=True)
    assert r.redirect_chain == [(f"/console/messages/{message.pk}/", 302)]
    assert "is due now: the next worker run tries it" in r.content.decode()

    confirm = console_client.get(f"/console/messages/{message.pk}/cancel/")
    assert confirm.status_code == 200
    assert f"Cancel message {message.pk}?" in confirm.content.decode()
    assert Message.objects.get(pk=message.pk).status == "deferred"  # asking changes nothing

    r = console_client.post(f"/console/messages/{message.pk}/cancel/", follow=True)
    html = r.content.decode()
    assert f"Message {message.pk} cancelled: it will not be sent." in html
    assert "Cancelled" in html and "Cancel message" not in html
    assert Message.objects.get(pk=message.pk).status == "cancelled"


def test_console_says_why_when_a_worker_took_the_message_first(
    console_client: Client, admin_user: User
) -> None:
    message = in_status(admin_user, "sending")
    r = console_client.post(f"/console/messages/{message.pk}/cancel/", follow=True)
    assert CANCEL_REFUSALS["sending"] in r.content.decode()
    r = console_client.get(f"/console/messages/{message.pk}/cancel/", follow=True)
    assert CANCEL_REFUSALS["sending"] in r.content.decode()
    r = console_client.post(f"/console/messages/{message.pk}/retry/", follow=True)
    assert RETRY_REFUSALS["sending"] in r.content.decode()
    assert Message.objects.get(pk=message.pk).status == "sending"
