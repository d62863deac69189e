"""What a single ``POST /api/messages/`` asks of the database (counted, not timed), and why its
shortcuts change nothing a caller sees: the configuration is checked by the INSERT itself (a
deactivation or a new sender is seen by the very next submission), and the serializer's fast
path accepts exactly what ``MessageInput`` accepts, with the same values."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.core.errors import Conflict
from outbound.mail import outbox, services
from outbound.mail.api.message_serializers import MessageInput, message_input
from outbound.mail.models import Message, Recipient, SmtpConfig
from tests.mail.test_messages_api import MESSAGE, URL, configure

SETTINGS = "/api/administration/smtp-settings/"


def statements(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("recipients", [1, 3, 100])
def test_a_submission_spends_a_fixed_number_of_statements(
    admin_client: APIClient, recipients: int
) -> None:
    configure(admin_client)
    # The first submission of a process (or after a configuration change) also reads the
    # configuration; the ones after it do not.
    assert admin_client.post(URL, MESSAGE, format="json").status_code == 202
    body = {
        **MESSAGE,
        "to": [f"to{i}@example.com" for i in range(recipients - recipients // 3 * 2)],
        "cc": [f"cc{i}@example.com" for i in range(recipients // 3)],
        "bcc": [f"bcc{i}@example.com" for i in range(recipients // 3)],
    }
    with CaptureQueriesContext(connection) as ctx:
        r = admin_client.post(URL, body, format="json")
    assert r.status_code == 202, r.data
    sql = statements(ctx)
    # The JWT's user, BEGIN, one INSERT for the message (which checks the active
    # configuration in the same statement), one for all its recipients, COMMIT. Each
    # statement is a round trip and, on SQLite, part of the time every writer of every
    # process waits for the one writer: a cap, so that a new per-request read or a
    # per-recipient INSERT shows up here rather than as a slower bench.
    assert len(sql) <= 5, sql
    assert sum(s.startswith('INSERT INTO "mail_message"') for s in sql) == 1
    assert sum(s.startswith('INSERT INTO "mail_recipient"') for s in sql) == 1
    assert not [s for s in sql if "mail_smtpconfig" in s and not s.startswith("INSERT")]
    message = Message.objects.get(pk=r.data["id"])
    assert message.recipients.count() == recipients


@pytest.mark.django_db(transaction=True)
def test_the_row_is_the_one_the_orm_would_write(admin_client: APIClient, admin_user: User) -> None:
    configure(admin_client)
    body = {
        "to": ["Ann Example <ann@example.com>"],
        "cc": ["carl@example.com"],
        "bcc": ["dora@example.com"],
        "subject": "Grüße",
        "text": "Hi\n",
        "html": "<p>Hi</p>",
        "reply_to": "help@example.com",
        "headers": {"X-Ticket": "42"},
        "idempotency_key": "k-1",
    }
    r = admin_client.post(URL, body, format="json")
    assert r.status_code == 202, r.data
    message = Message.objects.get(pk=r.data["id"])
    assert (message.submitted_by, message.idempotency_key) == (admin_user, "k-1")
    assert message.request_fingerprint == outbox.request_fingerprint(
        {k: v for k, v in body.items() if k != "idempotency_key"}
    )
    assert (message.status, message.subject, message.text, message.html) == (
        "queued",
        "Grüße",
        "Hi\n",
        "<p>Hi</p>",
    )
    assert (message.reply_to, message.headers) == ("help@example.com", {"X-Ticket": "42"})
    assert message.message_id.endswith("@example.com>")  # the configuration's from_email
    assert message.config is None and message.attempt_count == 0
    assert message.created_at is not None and message.next_attempt_at is not None
    assert not message.is_failure_notice and message.lease_until is None
    assert [(x.kind, x.address, x.status) for x in message.recipients.order_by("id")] == [
        ("to", "Ann Example <ann@example.com>", "pending"),
        ("cc", "carl@example.com", "pending"),
        ("bcc", "dora@example.com", "pending"),
    ]
    assert all(x.updated_at is not None for x in Recipient.objects.all())
    # The same key and body: the first message again, nothing new written.
    again = admin_client.post(URL, body, format="json")
    assert (again.status_code, again.data["id"]) == (200, message.pk)
    assert Message.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_every_column_is_what_model_save_writes(admin_client: APIClient, admin_user: User) -> None:
    """Column by column (whatever fields the models gain), the submitted rows against rows
    the ORM saves from the same values."""
    configure(admin_client)
    body = {**MESSAGE, "cc": ["carl@example.com"], "headers": {"X-A": "1"}}
    r = admin_client.post(URL, body, format="json")
    ours = Message.objects.get(pk=r.data["id"])
    orm = outbox._new_message(
        outbox._clean(body),
        sender="app@example.com",
        owner=admin_user,
        idempotency_key=None,
        request_fingerprint="",
    )
    orm.save(force_insert=True)
    Recipient.objects.bulk_create(outbox._recipients_of(orm, outbox._clean(body)))
    varying = {"id", "message_id", "created_at", "next_attempt_at"}
    rows = {
        m.pk: {
            k: v for k, v in Message.objects.filter(pk=m.pk).values()[0].items() if k not in varying
        }
        for m in (ours, orm)
    }
    assert rows[ours.pk] == rows[orm.pk]
    recipients = {
        m.pk: [
            {k: v for k, v in row.items() if k not in {"id", "message_id", "updated_at"}}
            for row in Recipient.objects.filter(message=m).order_by("id").values()
        ]
        for m in (ours, orm)
    }
    assert recipients[ours.pk] == recipients[orm.pk] and len(recipients[ours.pk]) == 2


@pytest.mark.django_db(transaction=True)
def test_a_deactivation_is_seen_by_the_next_submission(
    admin_client: APIClient, admin_user: User
) -> None:
    config = configure(admin_client)
    assert admin_client.post(URL, MESSAGE, format="json").status_code == 202
    # As if in another process: nothing here tells this one's submissions about it.
    services.smtp_config_deactivate(config=config, actor=admin_user)
    r = admin_client.post(URL, MESSAGE, format="json")
    assert r.status_code == 409
    assert r.data["error_code"] == "no_active_configuration"
    assert Message.objects.count() == 1 and Recipient.objects.count() == 1
    services.smtp_config_activate(config=config, actor=admin_user)
    assert admin_client.post(URL, MESSAGE, format="json").status_code == 202


@pytest.mark.django_db(transaction=True)
def test_a_new_sender_gives_the_next_message_its_domain(admin_client: APIClient) -> None:
    configure(admin_client)
    first = admin_client.post(URL, MESSAGE, format="json")
    body = {"host": "smtp.example.com", "port": 25, "from_email": "app@mail.example.org"}
    assert admin_client.patch(SETTINGS, body, format="json").status_code == 200
    second = admin_client.post(URL, MESSAGE, format="json")
    ids = [Message.objects.get(pk=r.data["id"]).message_id for r in (first, second)]
    assert ids[0].endswith("@example.com>") and ids[1].endswith("@mail.example.org>")


@pytest.mark.django_db(transaction=True)
def test_a_stale_sender_never_queues_without_an_active_configuration(
    admin_client: APIClient, admin_user: User
) -> None:
    config = configure(admin_client)
    assert admin_client.post(URL, MESSAGE, format="json").status_code == 202
    guess = outbox._last_sender
    assert guess is not None
    # The process still believes in the configuration; the database no longer has it.
    SmtpConfig.objects.filter(pk=config.pk).update(is_active=False)
    pending = outbox._prepare(
        outbox._clean(MESSAGE), owner=admin_user, idempotency_key=None, request_fingerprint=""
    )
    with transaction.atomic():
        assert outbox._insert_message(pending, guess) is None  # the INSERT checks itself
    with pytest.raises(Conflict):
        outbox.message_submit(data=MESSAGE, actor=admin_user)
    assert Message.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_failure_notice_is_queued_inside_the_callers_transaction(
    admin_client: APIClient, admin_user: User
) -> None:
    configure(admin_client)
    failed, _ = outbox.message_submit(data=MESSAGE, actor=admin_user)
    outbox._last_sender = None  # the worker's process may not have queued anything yet
    with transaction.atomic():
        notice = outbox.queue_failure_notice(
            failed=failed, addresses=["ops@example.com"], summary="gone"
        )
    assert notice is not None and notice.is_failure_notice
    stored = Message.objects.get(pk=notice.pk)
    assert [r.address for r in stored.recipients.all()] == ["ops@example.com"]
    assert stored.message_id.endswith("@example.com>")


# --- the serializer's fast path --------------------------------------------------------------

BODIES: list[Any] = [
    MESSAGE,
    {"to": ["a@example.com"], "text": "x"},
    {"to": [], "cc": ["c@example.com"], "html": "<p>x</p>", "subject": ""},
    {"to": ["a@example.com"], "text": "x", "headers": {"X-A": "1", "X-B": ""}},
    {"to": ["a@example.com"], "text": "x", "headers": {}},
    {"to": ["a@example.com"], "text": "x", "reply_to": "r@example.com", "unknown": [1]},
    {"to": ["a@example.com"], "text": "x", "idempotency_key": "  key  "},
    {"to": ["a@example.com"], "text": "x", "idempotency_key": "k" * 200},
    {"to": ["a@example.com"], "text": "x", "subject": "s" * 998},
    {"to": ["  "], "text": " "},
    # Refused (or coerced) by DRF: the fast path must leave each one to the serializer.
    {"to": ["a@example.com"], "text": "x", "idempotency_key": "k" * 201},
    {"to": ["a@example.com"], "text": "x", "idempotency_key": "   "},
    {"to": ["a@example.com"], "text": "x", "idempotency_key": ""},
    {"to": ["a@example.com"], "text": "x", "idempotency_key": 42},
    {"to": ["a@example.com"], "text": "x", "subject": "s" * 999},
    {"to": ["a@example.com"], "text": "x", "reply_to": "r" * 255},
    {"to": ["a@example.com"], "text": "x\x00"},
    {"to": ["a@example.com"], "text": "x\ud800"},
    {"to": ["a@example.com\x00"], "text": "x"},
    {"to": [""], "text": "x"},
    {"to": [None], "text": "x"},
    {"to": [7], "text": "x"},
    {"to": "a@example.com", "text": "x"},
    {"to": {"a": "b"}, "text": "x"},
    {"to": ["a@example.com"], "text": None},
    {"to": ["a@example.com"], "text": 1.5},
    {"to": ["a@example.com"], "text": True},
    {"to": ["a@example.com"], "text": ["x"]},
    {"to": ["a@example.com"], "text": "x", "headers": {"X-A": 1}},
    {"to": ["a@example.com"], "text": "x", "headers": {"X-A": None}},
    {"to": ["a@example.com"], "text": "x", "headers": ["X-A"]},
    {"to": ["a@example.com"], "text": "x", "attachments": []},
    [MESSAGE],
    "text",
    None,
]


@pytest.mark.django_db  # the shared autouse fixture clears the database cache
@pytest.mark.parametrize("body", BODIES)
def test_the_fast_path_answers_as_message_input_does(body: Any) -> None:
    serializer = MessageInput(data=body)
    if serializer.is_valid():
        assert message_input(body) == dict(serializer.validated_data)
    else:
        with pytest.raises(Exception) as raised:
            message_input(body)
        assert raised.value.detail == serializer.errors  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_the_fast_path_takes_plain_bodies_without_a_serializer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("MessageInput was built")

    monkeypatch.setattr(MessageInput, "__init__", refuse)
    for body in BODIES[:10]:
        assert isinstance(message_input(body), dict)
