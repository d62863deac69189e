"""``idempotency_key`` on ``POST /api/messages/``: a retry of the same request returns the
first message (200); the same key with a different message is refused (422, naming the key)
instead of silently answering with a message the caller did not send."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.mail.models import Message
from tests.mail.test_messages_api import MESSAGE, URL, configure

REUSED = (
    "This idempotency_key was already used with a different message. An idempotency_key "
    "can only be reused with the same request body it was first sent with; use a new key "
    "for a new message."
)


@pytest.fixture
def sent(admin_client: APIClient) -> dict[str, Any]:
    configure(admin_client)
    first = admin_client.post(URL, {**MESSAGE, "idempotency_key": "order-42"}, format="json")
    assert first.status_code == 202, first.data
    return {"id": first.data["id"]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        {"subject": "A different subject"},
        {"to": ["bob@example.com"]},
        {"cc": ["carl@example.com"]},
        {"text": "Hi Ann!\n"},
        {"html": "<p>Hi</p>"},
        {"headers": {"X-Ticket": "1"}},
        {"reply_to": "help@example.com"},
    ],
)
def test_the_same_key_with_a_different_message_is_a_422(
    admin_client: APIClient, sent: dict[str, Any], change: dict[str, Any]
) -> None:
    r = admin_client.post(URL, {**MESSAGE, **change, "idempotency_key": "order-42"}, format="json")
    assert r.status_code == 422, r.data
    assert r.json() == {"detail": REUSED, "error_code": "idempotency_key_reused"}
    assert Message.objects.count() == 1
    assert Message.objects.get().subject == "Hello"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {**MESSAGE, "idempotency_key": "order-42"},
        # The same message written differently: other key order, empty fields spelled out.
        {
            "idempotency_key": "order-42",
            "text": "Hi Ann.\n",
            "subject": "Hello",
            "to": ["ann@example.com"],
            "cc": [],
            "bcc": [],
            "html": "",
            "headers": {},
            "reply_to": "",
        },
    ],
    ids=["identical", "equivalent"],
)
def test_the_same_key_with_the_same_message_returns_the_first(
    admin_client: APIClient, sent: dict[str, Any], body: dict[str, Any]
) -> None:
    r = admin_client.post(URL, body, format="json")
    assert r.status_code == 200, r.data
    assert r.data == {"id": sent["id"], "status": "queued"}
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_keys_belong_to_their_caller(
    sent: dict[str, Any], make_user: Callable[..., User], api_client_for: Any
) -> None:
    other = api_client_for(make_user("messages.send"))
    body = {**MESSAGE, "subject": "Theirs", "idempotency_key": "order-42"}
    r = other.post(URL, body, format="json")
    assert r.status_code == 202 and r.data["id"] != sent["id"]


@pytest.mark.django_db(transaction=True)
def test_racing_requests_with_one_key_and_two_messages(
    admin_client: APIClient, admin_user: User, api_client_for: Any
) -> None:
    """Whichever message wins the race is the key's; its twins get it (200), the other
    message is refused (422); exactly one is queued."""
    configure(admin_client)
    bodies = [{**MESSAGE, "subject": s, "idempotency_key": "race"} for s in ("A", "B") * 3]
    results: list[tuple[str, int]] = []
    start = threading.Barrier(len(bodies))

    def post(body: dict[str, Any]) -> None:
        client = api_client_for(admin_user)
        try:
            start.wait(5)
            r = client.post(URL, body, format="json")
            results.append((body["subject"], r.status_code))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    [message] = Message.objects.all()
    winner = message.subject
    assert sorted(code for subject, code in results if subject == winner) == [200, 200, 202]
    assert [code for subject, code in results if subject != winner] == [422] * 3
