"""``POST /api/messages/batch/``: many messages in one request and one transaction — results in
input order, each message validated as a single POST validates it, per-item idempotency keys,
the envelope's limits, 409 without a configuration, nothing written when the transaction
fails, a number of statements independent of the batch's size, and delivery to a real SMTP
server on loopback."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import DatabaseError, connection, connections
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.mail import outbox, services
from outbound.mail.models import Message, Recipient, SmtpConfig
from tests.mail.test_messages_api import MESSAGE, URL, configure
from tests.mail.test_sender import configure as configure_server
from tests.mail.test_sender import parsed, settle
from tests.support.smtp import Scripted, smtp_server

BATCH = "/api/messages/batch/"
REUSED = outbox.IDEMPOTENCY_KEY_REUSED


def message(n: int, **changes: Any) -> dict[str, Any]:
    return {"to": [f"user{n}@example.com"], "subject": f"Hello {n}", "text": "Hi.\n", **changes}


@pytest.fixture
def configured(admin_client: APIClient) -> SmtpConfig:
    return configure(admin_client)


def single_post_errors(client: APIClient, body: Any) -> Any:
    """What ``POST /api/messages/`` answers for this body (it must refuse it)."""
    r = client.post(URL, body, format="json")
    assert r.status_code == 400, r.data
    return r.json()


# --- results -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_results_come_in_input_order_with_each_invalid_message_s_own_errors(
    admin_client: APIClient, configured: SmtpConfig
) -> None:
    invalid = [
        {"subject": "No recipient", "text": "x"},
        message(3, to=["not an address"]),
        message(5, headers={"From": "boss@example.com"}),
        message(6, subject=42, text=None),
        "not an object",
    ]
    body = [message(0), invalid[0], message(2), invalid[1], message(4), *invalid[2:]]
    expected = {i: single_post_errors(admin_client, b) for i, b in enumerate(body) if b in invalid}

    r = admin_client.post(BATCH, {"messages": body}, format="json")

    assert r.status_code == 202, r.data
    results = r.json()["results"]
    assert len(results) == len(body)
    for i, result in enumerate(results):
        if i in expected:
            assert result == {"errors": expected[i]}, i
        else:
            assert result["status"] == "queued" and set(result) == {"id", "status"}
            queued = Message.objects.get(pk=result["id"])
            assert queued.subject == f"Hello {i}"
            assert [r.address for r in queued.recipients.all()] == [f"user{i}@example.com"]
    assert Message.objects.count() == 3


@pytest.mark.django_db
def test_a_batch_without_a_valid_message_is_a_400_listing_every_message_s_errors(
    admin_client: APIClient, configured: SmtpConfig
) -> None:
    body = [message(0, to=[]), message(1, reply_to="nope")]
    r = admin_client.post(BATCH, {"messages": body}, format="json")
    assert r.status_code == 400, r.data
    assert r.json() == {"results": [{"errors": single_post_errors(admin_client, b)} for b in body]}
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        ({}, "messages", "This field is required."),
        ({"messages": []}, "messages", "This list may not be empty."),
        ({"messages": {"to": ["a@example.com"]}}, "messages", "Expected a list of items"),
        ({"messages": [MESSAGE] * 501}, "messages", "no more than 500 elements"),
        ([MESSAGE], "non_field_errors", "Expected a dictionary"),
    ],
    ids=["missing", "empty", "not-a-list", "over-500", "not-an-object"],
)
def test_a_malformed_envelope_is_a_400_naming_it(
    admin_client: APIClient, configured: SmtpConfig, body: Any, field: str, text: str
) -> None:
    r = admin_client.post(BATCH, body, format="json")
    assert r.status_code == 400, r.data
    [message] = r.json()[field]
    assert text in message
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_500_messages_are_queued_in_one_request(
    admin_client: APIClient, configured: SmtpConfig
) -> None:
    r = admin_client.post(BATCH, {"messages": [message(n) for n in range(500)]}, format="json")
    assert r.status_code == 202
    ids = [result["id"] for result in r.json()["results"]]
    assert len(set(ids)) == 500
    subjects = dict(Message.objects.values_list("pk", "subject"))
    assert [subjects[pk] for pk in ids] == [f"Hello {n}" for n in range(500)]
    assert Recipient.objects.count() == 500
    # Each message its own Message-ID, in the configuration's sender domain.
    message_ids = set(Message.objects.values_list("message_id", flat=True))
    assert len(message_ids) == 500 and all(m.endswith("@example.com>") for m in message_ids)


@pytest.mark.django_db
def test_a_batch_beyond_its_byte_limit_is_a_413(
    admin_client: APIClient, configured: SmtpConfig, settings: Any
) -> None:
    settings.OUTBOUND_MAX_BATCH_BYTES = 1024 * 1024
    r = admin_client.post(BATCH, {"messages": [message(0, text="x" * 1024 * 1024)]}, format="json")
    assert r.status_code == 413
    assert r.json()["detail"] == "The request is too large: a batch may not exceed 1 MiB."
    assert not Message.objects.exists()
    r = admin_client.post(BATCH, {"messages": [message(0, text="x" * 1000)]}, format="json")
    assert r.status_code == 202


@pytest.mark.django_db
def test_sending_a_batch_needs_the_send_permission(
    make_user: Callable[..., User], api_client_for: Any, configured: SmtpConfig
) -> None:
    viewer = api_client_for(make_user("messages.view"))
    sender = api_client_for(make_user("messages.send"))
    assert viewer.post(BATCH, {"messages": [MESSAGE]}, format="json").status_code == 403
    assert APIClient().post(BATCH, {"messages": [MESSAGE]}, format="json").status_code == 401
    assert sender.post(BATCH, {"messages": [MESSAGE]}, format="json").status_code == 202
    assert Message.objects.count() == 1


# --- no configuration, idempotency, rollback -----------------------------------------------


@pytest.mark.django_db
def test_without_an_active_configuration_nothing_is_queued(
    admin_client: APIClient,
    admin_user: User,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    config = configure(admin_client)
    services.smtp_config_deactivate(config=config, actor=admin_user)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        r = admin_client.post(BATCH, {"messages": [message(0), message(1)]}, format="json")
    assert r.status_code == 409
    assert r.json() == {
        "detail": "No SMTP configuration is active; nothing was queued.",
        "error_code": "no_active_configuration",
    }
    assert callbacks == []
    assert not Message.objects.exists()
    assert not DBTaskResult.objects.exists()


@pytest.mark.django_db
def test_each_message_has_its_own_idempotency_key(
    admin_client: APIClient, configured: SmtpConfig
) -> None:
    first = admin_client.post(URL, {**message(0), "idempotency_key": "k0"}, format="json")
    assert first.status_code == 202
    body = [
        {**message(0), "idempotency_key": "k0"},  # the single POST's message again
        {**message(0, subject="Other"), "idempotency_key": "k0"},  # k0 for another message
        {**message(1), "idempotency_key": "k1"},  # new
        {**message(1), "idempotency_key": "k1"},  # the same again, in the same batch
        {**message(2), "idempotency_key": "k1"},  # k1 for another message
        {**message(3, to=[]), "idempotency_key": "k3"},  # invalid: does not take the key
        {**message(3), "idempotency_key": "k3"},
        message(4),  # no key: always a new message
        message(4),
    ]
    r = admin_client.post(BATCH, {"messages": body}, format="json")
    assert r.status_code == 202, r.data
    results = r.json()["results"]
    k1, k3 = results[2]["id"], results[6]["id"]
    assert results[0] == {"id": first.data["id"], "status": "queued"}
    assert results[1] == {"errors": {"idempotency_key": [REUSED]}}
    assert results[2] == results[3] == {"id": k1, "status": "queued"}
    assert results[4] == {"errors": {"idempotency_key": [REUSED]}}
    assert "to" in results[5]["errors"]
    assert results[6] == {"id": k3, "status": "queued"}
    assert results[7]["id"] != results[8]["id"]
    assert Message.objects.count() == 5
    assert Message.objects.get(idempotency_key="k1").subject == "Hello 1"

    # The whole batch again: every keyed message is its first one, nothing new is queued but
    # the keyless ones; a batch of replays only is a 200, as a single replay is.
    again = admin_client.post(BATCH, {"messages": body[:4]}, format="json")
    assert again.status_code == 200, again.data
    assert again.json()["results"] == results[:4]
    # A single POST sees the keys a batch used.
    single = admin_client.post(URL, {**message(1), "idempotency_key": "k1"}, format="json")
    assert single.status_code == 200 and single.data["id"] == k1
    assert Message.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_sharing_a_key_queue_its_message_once(
    admin_client: APIClient, admin_user: User, api_client_for: Any
) -> None:
    configure(admin_client)
    results: list[list[dict[str, Any]]] = []
    codes: list[int] = []
    start = threading.Barrier(4)

    def post(n: int) -> None:
        client = api_client_for(admin_user)
        body = [
            {**message(0), "idempotency_key": "shared"},
            {**message(n + 1), "idempotency_key": f"own-{n}"},
        ]
        try:
            start.wait(5)
            r = client.post(BATCH, {"messages": body}, format="json")
            codes.append(r.status_code)
            results.append(r.json()["results"])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert codes == [202] * 4
    assert len({result[0]["id"] for result in results}) == 1
    assert len({result[1]["id"] for result in results}) == 4
    assert Message.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_nothing_is_written_or_enqueued_when_the_transaction_fails(
    admin_client: APIClient, admin_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(admin_client)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("disk full")

    monkeypatch.setattr(Recipient.objects, "bulk_create", broken)
    with pytest.raises(DatabaseError):
        outbox.messages_submit_batch(items=[message(0), message(1)], actor=admin_user)
    assert not Message.objects.exists()
    assert not DBTaskResult.objects.exists()


# --- cost and delivery ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_number_of_statements_does_not_grow_with_the_batch(
    admin_client: APIClient,
    configured: SmtpConfig,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    def statements(n: int, key: str) -> int:
        body = [{**message(i), "idempotency_key": f"{key}-{i}"} for i in range(n)]
        with (
            django_capture_on_commit_callbacks(execute=False),
            CaptureQueriesContext(connection) as queries,
        ):
            r = admin_client.post(BATCH, {"messages": body}, format="json")
        assert r.status_code == 202
        return len(queries)

    # SQLite takes at most 999 parameters a statement, so Django splits an INSERT of more
    # than ~45 messages; below that (and always on PostgreSQL) the count is fixed.
    assert statements(4, "a") == statements(40, "b")


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_delivered_by_the_worker(admin_client: APIClient) -> None:
    with smtp_server(recorder=Scripted()) as srv:
        configure_server(admin_client, srv)
        body = [message(n, cc=[f"copy{n}@example.com"]) for n in range(5)]
        r = admin_client.post(BATCH, {"messages": [*body, {"to": []}]}, format="json")
        assert r.status_code == 202, r.data
        settle()
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}
    by_subject = {parsed(e)["Subject"]: e for e in srv.recorder.messages}
    assert sorted(by_subject) == [f"Hello {n}" for n in range(5)]
    for n in range(5):
        envelope = by_subject[f"Hello {n}"]
        assert envelope.rcpt_tos == [f"user{n}@example.com", f"copy{n}@example.com"]
        got = parsed(envelope)
        assert got["Message-ID"] == Message.objects.get(subject=f"Hello {n}").message_id
        body_part = got.get_body(("plain",))
        assert body_part is not None and body_part.get_content().rstrip() == "Hi."
