"""Delivery against real SMTP servers on loopback: the outbox, the worker, retries with
backoff, per-recipient results, failure notices, leases, pooled connections, live
reconfiguration, Microsoft XOAUTH2 tokens, and secrets kept out of every record.

Messages go in through ``POST /api/messages/`` (tasks are enqueued on commit, hence
transactional tests) and out through ``outbound worker --batch`` run in-process, or through
``sender.deliver`` where a test needs one process's pooled connection to live across messages.
"""

from __future__ import annotations

import base64
import email
import itertools
import logging
import ssl
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from rest_framework.test import APIClient

from outbound.core.models import Event
from outbound.integrations import services as integration_services
from outbound.integrations.microsoft import AccessToken
from outbound.integrations.models import AuthenticationObject
from outbound.mail import outbox, sender, services
from outbound.mail.models import Attempt, Message, Recipient, SmtpConfig
from outbound.mail.sender import TOKEN_MARGIN, TokenCache
from tests.support.smtp import (
    DROP_AFTER_DOT,
    DROP_BEFORE_DOT,
    RunningServer,
    Scripted,
    smtp_server,
)
from tests.support.tokens import token_endpoint

SETTINGS = "/api/administration/smtp-settings/"
MESSAGES = "/api/messages/"
WAITING = ("queued", "deferred", "sending")
SENTINEL_PASSWORD = "Sentinel-pw-5d1e-never-logged"
SENTINEL_SECRET = "Sentinel-secret-8b42-never-logged"
SENTINEL_TOKEN = "Sentinel-token-c07a-never-logged"


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_sender_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without a pooled connection or a cached token."""
    sender.POOL.discard()
    monkeypatch.setattr(sender, "TOKENS", TokenCache())
    yield
    sender.POOL.discard()


@pytest.fixture
def quick_retries(settings: Any) -> Any:
    settings.OUTBOUND_RETRY_MIN_BACKOFF = 0.2
    settings.OUTBOUND_RETRY_MAX_BACKOFF = 0.4
    return settings


def configure(client: APIClient, srv: RunningServer, **changes: Any) -> SmtpConfig:
    body = {
        "host": srv.host,
        "port": srv.port,
        "tls": False,
        "from_email": "app@example.com",
        "failure_email": "ops@example.com",
        **changes,
    }
    r = client.patch(SETTINGS, body, format="json")
    assert r.status_code == 200, r.data
    return SmtpConfig.objects.get(is_active=True)


def submit(client: APIClient, **body: Any) -> Message:
    payload = {"to": ["someone@example.com"], "subject": "Hello", "text": "Hi there.\n", **body}
    r = client.post(MESSAGES, payload, format="json")
    assert r.status_code == 202, r.data
    assert r.data["status"] == "queued"
    return Message.objects.get(pk=r.data["id"])


def run_worker() -> None:
    """``outbound worker --batch``: every task that is due now, then exit."""
    call_command("worker", batch=True)


def settle(timeout: float = 15.0) -> None:
    """Run the worker until no message waits any more (retries included)."""
    deadline = time.monotonic() + timeout
    while True:
        run_worker()
        waiting = list(Message.objects.filter(status__in=WAITING).values_list("pk", "status"))
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"messages still waiting after {timeout} s: {waiting}")
        time.sleep(0.02)


def script(srv: RunningServer) -> Scripted:
    assert isinstance(srv.recorder, Scripted)
    return srv.recorder


def raw(envelope: Any) -> bytes:
    content = envelope.original_content
    assert isinstance(content, bytes)
    return content


def parsed(envelope: Any) -> EmailMessage:
    message = email.message_from_bytes(raw(envelope), policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


def recipients(message: Message) -> dict[str, tuple[str, int | None, str]]:
    return {r.address: (r.status, r.smtp_code, r.smtp_reply) for r in message.recipients.all()}


def notices() -> list[Message]:
    return list(Message.objects.filter(is_failure_notice=True))


# --- plain delivery ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_message_arrives_with_its_headers_and_without_a_bcc_header(
    admin_client: APIClient,
) -> None:
    with smtp_server(recorder=Scripted()) as srv:
        config = configure(admin_client, srv)
        message = submit(
            admin_client,
            to=["Ann Example <ann@example.com>"],
            cc=["carl@example.com"],
            bcc=["hidden@example.com"],
            subject="Café report ready ✓",
            text="The report is attached in spirit.\n",
            html="<p>The report is attached in spirit.</p>",
            reply_to="Replies <replies@example.com>",
            headers={"X-Campaign": "spring-2026", "List-Id": "<reports.example.com>"},
        )
        settle()
    message.refresh_from_db()
    assert message.status == "sent" and message.sent_at is not None
    assert message.config_id == config.pk
    assert {a: (s, c) for a, (s, c, _) in recipients(message).items()} == {
        "Ann Example <ann@example.com>": ("sent", 250),
        "carl@example.com": ("sent", 250),
        "hidden@example.com": ("sent", 250),
    }
    [envelope] = srv.recorder.messages
    assert envelope.mail_from == "app@example.com"
    assert envelope.rcpt_tos == ["ann@example.com", "carl@example.com", "hidden@example.com"]
    got = parsed(envelope)
    assert got["From"] == "app@example.com"
    assert got["To"] == "Ann Example <ann@example.com>"
    assert got["Cc"] == "carl@example.com"
    assert got["Subject"] == "Café report ready ✓"
    assert got["Reply-To"] == "Replies <replies@example.com>"
    assert got["X-Campaign"] == "spring-2026"
    assert got["List-Id"] == "<reports.example.com>"
    assert got["Message-ID"] == message.message_id
    assert got["Auto-Submitted"] is None
    assert got["Bcc"] is None
    assert b"hidden@example.com" not in raw(envelope)
    body = got.get_body(("plain",))
    html = got.get_body(("html",))
    assert body is not None and body.get_content().rstrip() == "The report is attached in spirit."
    assert html is not None and "<p>The report is attached in spirit.</p>" in html.get_content()


LONG_NAME = "Accounts Payable, Northern Europe Region, Building 7, Floor 3, East Wing"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "to",
    [
        # Python's folder may encode the comma after a non-ASCII name at a line break (and
        # so lose the next address) ...
        [f"00000{chr(0xA0) * 8}\u0800\U00010000 <b.c+tag@example.org>", "ann@example.com"],
        [
            '"Smith, John" <john.smith@example.com>',
            '"Doe, Jane" <jane.doe@example.com>',
            '"Müller, Jörg" <j.mueller@example.com>',
            '"Brown, Bob" <bob.brown@example.com>',
        ],
        # ... and drop the quotes of a name it has to fold, turning one mailbox into two.
        [f'"{LONG_NAME}" <ap@example.com>', "ann@example.com"],
    ],
    ids=["non-ascii-name", "last-first-names", "long-quoted-name"],
)  # fmt: skip
def test_display_names_never_cost_or_add_a_recipient(
    admin_client: APIClient, admin_user: Any, to: list[str]
) -> None:
    with smtp_server(recorder=Scripted()) as srv:
        config = configure(admin_client, srv)
        services.smtp_config_update(
            config=config, data={"sender_name": LONG_NAME}, actor=admin_user
        )
        message = submit(
            admin_client, to=to, cc=[to[0]], reply_to=f'"{LONG_NAME}" <ap@example.com>'
        )
        settle()
    message.refresh_from_db()
    assert message.status == "sent", message.last_error
    [envelope] = srv.recorder.messages
    wanted = [a.split("<")[-1].rstrip(">") for a in to]
    assert envelope.rcpt_tos == [*wanted, wanted[0]]
    got = parsed(envelope)
    assert [(a.display_name, a.addr_spec) for a in got["To"].addresses] == [
        (a.split(" <")[0].strip('"') if "<" in a else "", w)
        for a, w in zip(to, wanted, strict=True)
    ]
    assert [a.addr_spec for a in got["Cc"].addresses] == wanted[:1]
    assert [(a.display_name, a.addr_spec) for a in got["From"].addresses] == [
        (LONG_NAME, "app@example.com")
    ]
    assert [a.addr_spec for a in got["Reply-To"].addresses] == ["ap@example.com"]
    head = raw(envelope).split(b"\r\n\r\n")[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n")), head


@pytest.mark.django_db(transaction=True)
def test_rolling_back_the_submitting_transaction_queues_and_sends_nothing(
    admin_client: APIClient, admin_user: Any
) -> None:
    data = {"to": ["ann@example.com"], "subject": "Never", "text": "Rolled back.\n"}
    with smtp_server(recorder=Scripted()) as srv:
        configure(admin_client, srv)

        def failing_request() -> None:
            with transaction.atomic():
                outbox.message_submit(data=data, actor=admin_user)
                raise RuntimeError("the request failed after queueing")

        with pytest.raises(RuntimeError, match="after queueing"):
            failing_request()
        assert not Message.objects.exists()
        assert not DBTaskResult.objects.exists()
        settle()
        assert srv.recorder.messages == []
        # The same submission, committed, is delivered: the worker did run.
        outbox.message_submit(data={**data, "subject": "Committed"}, actor=admin_user)
        settle()
    assert [parsed(e)["Subject"] for e in srv.recorder.messages] == ["Committed"]


# --- temporary and permanent failures ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_451_at_rcpt_is_retried_with_backoff_until_sent(
    admin_client: APIClient, quick_retries: Any
) -> None:
    with smtp_server(recorder=Scripted(defer={"slow@example.com": 2})) as srv:
        configure(admin_client, srv)
        message = submit(admin_client, to=["slow@example.com"])
        run_worker()
        message.refresh_from_db()
        # Deferred, not lost and not failed: the retry waits for its backoff.
        assert message.status == "deferred"
        assert recipients(message)["slow@example.com"][:2] == ("deferred", 451)
        assert "try again later" in recipients(message)["slow@example.com"][2]
        assert srv.recorder.messages == []
        settle()
    message.refresh_from_db()
    assert message.status == "sent"
    assert recipients(message)["slow@example.com"][:2] == ("sent", 250)
    attempts = list(message.attempts.order_by("number"))
    assert [a.outcome for a in attempts] == ["deferred", "deferred", "sent"]
    assert "451" in attempts[0].detail
    # Exponential backoff (±20 % jitter): ≥ 0.16 s, then ≥ 0.32 s between attempts.
    gaps = [
        (later.started_at - earlier.finished_at).total_seconds()
        for earlier, later in itertools.pairwise(attempts)
        if earlier.finished_at is not None
    ]
    assert len(gaps) == 2 and gaps[0] >= 0.16 and gaps[1] >= 0.32, gaps
    assert script(srv).rcpts == ["slow@example.com"] * 3
    assert len(srv.recorder.messages) == 1
    assert notices() == []


@pytest.mark.django_db(transaction=True)
def test_550_fails_at_once_with_exactly_one_failure_notice(admin_client: APIClient) -> None:
    with smtp_server(recorder=Scripted(refuse={"nobody@example.com"})) as srv:
        configure(admin_client, srv, failure_email="ops@example.com, oncall@example.com")
        message = submit(admin_client, to=["nobody@example.com"], subject="Invoice 42")
        settle()
        settle()  # nothing is left to do: no second notice, no retry
    message.refresh_from_db()
    assert message.status == "failed" and message.attempt_count == 1
    status, code, reply = recipients(message)["nobody@example.com"]
    assert (status, code) == ("failed", 550)
    assert "User unknown" in reply
    [notice] = notices()
    assert notice.status == "sent"
    [envelope] = srv.recorder.messages  # the notice; the message itself went nowhere
    assert envelope.rcpt_tos == ["ops@example.com", "oncall@example.com"]
    got = parsed(envelope)
    assert got["Auto-Submitted"] == "auto-generated"
    assert got["Subject"] == "Undelivered mail: Invoice 42"
    text = got.get_content()
    assert "nobody@example.com: 550" in text and "User unknown" in text
    assert message.message_id in text


@pytest.mark.django_db(transaction=True)
def test_a_failing_failure_notice_never_triggers_another(admin_client: APIClient) -> None:
    refused = {"nobody@example.com", "ops@example.com"}
    with smtp_server(recorder=Scripted(refuse=refused)) as srv:
        configure(admin_client, srv, failure_email="ops@example.com")
        submit(admin_client, to=["nobody@example.com"])
        settle()
        settle()
    assert srv.recorder.messages == []
    assert sorted(Message.objects.values_list("is_failure_notice", "status")) == [
        (False, "failed"),
        (True, "failed"),
    ]
    assert script(srv).rcpts == ["nobody@example.com", "ops@example.com"]


@pytest.mark.django_db(transaction=True)
def test_one_refused_recipient_of_three_is_reported_per_recipient(
    admin_client: APIClient,
) -> None:
    with smtp_server(recorder=Scripted(refuse={"nobody@example.com"})) as srv:
        configure(admin_client, srv)
        message = submit(
            admin_client, to=["ann@example.com", "nobody@example.com", "carl@example.com"]
        )
        settle()
    message.refresh_from_db()
    assert message.status == "sent"  # it reached someone; the refusal is per recipient
    results = recipients(message)
    assert {a: (s, c) for a, (s, c, _) in results.items()} == {
        "ann@example.com": ("sent", 250),
        "nobody@example.com": ("failed", 550),
        "carl@example.com": ("sent", 250),
    }
    assert "User unknown" in results["nobody@example.com"][2]
    delivered, notice_copy = srv.recorder.messages
    assert delivered.rcpt_tos == ["ann@example.com", "carl@example.com"]
    assert parsed(delivered)["Message-ID"] == message.message_id
    assert len(notices()) == 1
    assert notice_copy.rcpt_tos == ["ops@example.com"]
    text = parsed(notice_copy).get_content()
    assert "nobody@example.com" in text
    assert "ann@example.com" not in text and "carl@example.com" not in text


@pytest.mark.django_db(transaction=True)
def test_a_retry_goes_only_to_the_recipients_still_waiting(
    admin_client: APIClient, quick_retries: Any
) -> None:
    with smtp_server(recorder=Scripted(defer={"slow@example.com": 1})) as srv:
        configure(admin_client, srv)
        message = submit(admin_client, to=["ann@example.com", "slow@example.com"])
        run_worker()
        message.refresh_from_db()
        assert message.status == "deferred"
        assert {a: s for a, (s, _, _) in recipients(message).items()} == {
            "ann@example.com": "sent",
            "slow@example.com": "deferred",
        }
        settle()
    message.refresh_from_db()
    assert message.status == "sent" and message.attempt_count == 2
    # Ann got it once; the retry carried the same message to the one still waiting.
    assert [e.rcpt_tos for e in srv.recorder.messages] == [
        ["ann@example.com"],
        ["slow@example.com"],
    ]
    assert {parsed(e)["Message-ID"] for e in srv.recorder.messages} == {message.message_id}
    assert {parsed(e)["To"] for e in srv.recorder.messages} == {"ann@example.com, slow@example.com"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("drop", [DROP_BEFORE_DOT, DROP_AFTER_DOT])
def test_a_connection_dropped_in_data_is_retried_with_the_same_message_id(
    admin_client: APIClient, quick_retries: Any, drop: str
) -> None:
    with smtp_server(recorder=Scripted(drops=[drop])) as srv:
        configure(admin_client, srv)
        message = submit(admin_client, to=["ann@example.com"])
        run_worker()
        message.refresh_from_db()
        assert message.status == "deferred" and message.sent_at is None
        assert recipients(message)["ann@example.com"][0] == "deferred"
        assert srv.recorder.messages == []
        settle()
    message.refresh_from_db()
    assert message.status == "sent" and message.attempt_count == 2
    [first, second] = message.attempts.order_by("number")
    assert first.outcome == "deferred" and "closed the connection" in first.detail
    assert second.outcome == "sent"
    [envelope] = srv.recorder.messages
    assert parsed(envelope)["Message-ID"] == message.message_id
    if drop == DROP_AFTER_DOT:
        # The server had the first copy but never said so: the retry is recognisably the same
        # message, not a new one.
        [unacknowledged] = script(srv).unacknowledged
        assert parsed(unacknowledged)["Message-ID"] == message.message_id
    assert notices() == []


@pytest.mark.django_db(transaction=True)
def test_a_message_past_its_maximum_age_fails_with_a_notice(
    admin_client: APIClient, settings: Any
) -> None:
    settings.OUTBOUND_RETRY_MIN_BACKOFF = 0.05
    settings.OUTBOUND_RETRY_MAX_BACKOFF = 0.1
    settings.OUTBOUND_MAX_MESSAGE_AGE = 0.6
    with smtp_server(recorder=Scripted(defer={"slow@example.com": -1})) as srv:
        configure(admin_client, srv)
        message = submit(admin_client, to=["slow@example.com"], subject="Too late")
        settle()
    message.refresh_from_db()
    assert message.status == "failed" and message.attempt_count >= 2
    n = message.attempt_count
    assert recipients(message)["slow@example.com"] == (
        "failed",
        451,
        f"Gave up after {n} attempts: 4.3.2 Please try again later",
    )
    assert message.last_error == f"451 Gave up after {n} attempts: 4.3.2 Please try again later"
    [notice] = notices()
    assert notice.status == "sent"
    [envelope] = srv.recorder.messages
    assert envelope.rcpt_tos == ["ops@example.com"]
    assert parsed(envelope)["Auto-Submitted"] == "auto-generated"
    assert "slow@example.com" in parsed(envelope).get_content()


@pytest.mark.django_db(transaction=True)
def test_a_refused_login_is_deferred_and_its_connection_closed(
    admin_client: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str, quick_retries: Any
) -> None:
    recorder = Scripted()
    with smtp_server(
        starttls=server_tls, users={"mailer@example.com": "right"}, recorder=recorder
    ) as srv:
        configure(admin_client, srv, tls=True, username="mailer@example.com", password="wrong")
        message = submit(admin_client)
        run_worker()
        # The server is not left holding a half-finished session per retry.
        deadline = time.monotonic() + 2
        while recorder.disconnects < recorder.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (recorder.connections, recorder.disconnects) == (1, 1)
    message.refresh_from_db()
    assert message.status == "deferred"
    assert "rejected the credentials" in message.last_error
    assert "wrong" not in message.last_error
    assert recorder.logins == [("mailer@example.com", "wrong")]


@pytest.mark.django_db(transaction=True)
def test_a_message_that_cannot_be_built_safely_fails_at_once_and_is_never_sent(
    admin_client: APIClient,
) -> None:
    with smtp_server(recorder=Scripted()) as srv:
        config = configure(admin_client, srv)
        # A row the API would never write (it refuses line breaks in headers).
        message = Message.objects.create(
            subject="Smuggler",
            text="x",
            headers={"X-Note": "hi\r\nBcc: victim@example.com"},
            message_id="<smuggler@example.com>",
            next_attempt_at=timezone.now(),
        )
        Recipient.objects.create(message=message, kind="to", address="ann@example.com")
        assert sender.deliver(message.pk) == "failed"
        settle()
    message.refresh_from_db()
    assert message.attempt_count == 1 and message.config_id == config.pk
    status, code, reply = recipients(message)["ann@example.com"]
    assert (status, code) == ("failed", None) and reply.startswith("Not sent:")
    # Only the failure notice went out; nothing reached the recipient or the victim.
    [notice] = srv.recorder.messages
    assert notice.rcpt_tos == ["ops@example.com"]
    assert script(srv).rcpts == ["ops@example.com"]


# --- leases ----------------------------------------------------------------------------------


def _deliver_in_thread(pk: int, results: list[str], start: threading.Barrier | None) -> None:
    try:
        if start is not None:
            start.wait(5)
        results.append(sender.deliver(pk))
    finally:
        sender.POOL.discard()
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_message_send_it_once(admin_client: APIClient) -> None:
    with smtp_server(recorder=Scripted(data_delay=0.3)) as srv:
        configure(admin_client, srv)
        message = submit(admin_client)
        results: list[str] = []
        start = threading.Barrier(2)
        threads = [
            threading.Thread(target=_deliver_in_thread, args=(message.pk, results, start))
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert sorted(results) == ["sent", "skipped"]
    assert len(srv.recorder.messages) == 1
    assert Attempt.objects.filter(message=message).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_lost_its_lease_does_not_send_the_message_too(
    admin_client: APIClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.OUTBOUND_SEND_LEASE = 0.3
    # A worker whose heartbeat cannot renew its lease (say, cut off from the database)
    # stalls at RCPT past its lease; a second one takes the message over.
    monkeypatch.setattr(sender, "HEARTBEAT", _NoHeartbeat())
    with smtp_server(recorder=Scripted(rcpt_delays=[1.0])) as srv:
        configure(admin_client, srv)
        message = submit(admin_client)
        results: list[str] = []
        stalled = threading.Thread(target=_deliver_in_thread, args=(message.pk, results, None))
        stalled.start()
        deadline = time.monotonic() + 5
        while not script(srv).rcpts and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.4)  # the first lease has run out
        assert sender.deliver(message.pk) == "sent"
        stalled.join(10)
    assert results == ["lease-lost"]
    assert len(srv.recorder.messages) == 1
    message.refresh_from_db()
    assert message.status == "sent"


class _NoHeartbeat:
    """A heartbeat that never renews anything."""

    def watch(self, lease: Any) -> None:
        pass

    def forget(self, lease: Any) -> None:
        pass


@pytest.mark.django_db(transaction=True)
def test_a_slow_but_live_worker_keeps_its_lease(admin_client: APIClient, settings: Any) -> None:
    settings.OUTBOUND_SEND_LEASE = 0.3
    # The heartbeat renews the lease while RCPT takes three lease lengths: nobody takes over.
    with smtp_server(recorder=Scripted(rcpt_delays=[1.0])) as srv:
        configure(admin_client, srv)
        message = submit(admin_client)
        results: list[str] = []
        slow = threading.Thread(target=_deliver_in_thread, args=(message.pk, results, None))
        slow.start()
        deadline = time.monotonic() + 5
        while not script(srv).rcpts and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.4)  # past the first lease length
        assert sender.deliver(message.pk) == "skipped"
        slow.join(10)
    assert results == ["sent"]
    assert len(srv.recorder.messages) == 1


# --- connections and live configuration ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_consecutive_messages_share_one_connection_until_the_configuration_changes(
    admin_client: APIClient,
) -> None:
    with smtp_server(recorder=Scripted()) as srv:
        configure(admin_client, srv)
        for n in range(3):
            submit(admin_client, subject=f"batch {n}")
        run_worker()
        assert len(srv.recorder.messages) == 3
        assert script(srv).connections == 1

        first, second = submit(admin_client), submit(admin_client)
        assert sender.deliver(first.pk) == "sent"
        assert sender.deliver(second.pk) == "sent"
        assert script(srv).connections == 2  # one more for this "process", reused

        configure(admin_client, srv, from_email="new-sender@example.com")
        third = submit(admin_client)
        assert sender.deliver(third.pk) == "sent"
    assert script(srv).connections == 3  # the change opened a new connection
    assert [e.mail_from for e in srv.recorder.messages[-3:]] == [
        "app@example.com",
        "app@example.com",
        "new-sender@example.com",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_changed_configuration_is_used_by_the_next_message_without_a_restart(
    admin_client: APIClient, admin_user: Any
) -> None:
    with (
        smtp_server(recorder=Scripted()) as old,
        smtp_server(recorder=Scripted()) as new,
        smtp_server(recorder=Scripted()) as other,
    ):
        config = configure(admin_client, old)
        first = submit(admin_client, subject="first")
        assert sender.deliver(first.pk) == "sent"  # a pooled connection to the old server

        configure(admin_client, new)  # saved a moment ago
        second = submit(admin_client, subject="second")
        assert sender.deliver(second.pk) == "sent"

        # Activating another configuration works the same way.
        activated = services.smtp_config_create(
            data={"host": other.host, "port": other.port, "security": "none",
                  "sender_address": "other@example.com"},
            actor=admin_user,
            activate=True,
        )  # fmt: skip
        third = submit(admin_client, subject="third")
        assert sender.deliver(third.pk) == "sent"
    assert [parsed(e)["Subject"] for e in old.recorder.messages] == ["first"]
    assert [parsed(e)["Subject"] for e in new.recorder.messages] == ["second"]
    assert [parsed(e)["Subject"] for e in other.recorder.messages] == ["third"]
    assert other.recorder.messages[0].mail_from == "other@example.com"
    second.refresh_from_db()
    third.refresh_from_db()
    assert second.config_id == config.pk and third.config_id == activated.pk


# --- Microsoft XOAUTH2 ---------------------------------------------------------------------


def microsoft_config(
    client: APIClient, actor: Any, srv: RunningServer, authority_url: str, secret: str
) -> SmtpConfig:
    obj = integration_services.authentication_object_create(
        name="graph",
        provider="microsoft_client_credentials",
        params={
            "tenant_id": "contoso",
            "client_id": "app-id",
            "client_secret": secret,
            "authority_url": authority_url,
        },
        actor=actor,
    )
    return configure(
        client,
        srv,
        tls=True,
        username="mailer@contoso.com",
        authorization_method="microsoft_client_credentials",
        authentication_object=obj.pk,
    )


@pytest.mark.django_db(transaction=True)
def test_xoauth2_fetches_the_token_once_for_several_messages(
    admin_client: APIClient, admin_user: Any, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    recorder = Scripted(valid_tokens={"tok-1"})
    with (
        token_endpoint(server_tls, client_secret="s3cret", token="tok-1") as tokens,
        smtp_server(starttls=server_tls, recorder=recorder) as srv,
    ):
        microsoft_config(admin_client, admin_user, srv, tokens.url, "s3cret")
        for n in range(3):
            submit(admin_client, subject=f"m{n}")
            run_worker()  # a worker run each: a new connection, a new AUTH each time
    assert Message.objects.filter(status="sent").count() == 3
    assert recorder.connections == 3
    assert recorder.logins == [("XOAUTH2:mailer@contoso.com", "tok-1")] * 3
    assert len(tokens.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_xoauth2_refreshes_a_refused_token_once(
    admin_client: APIClient, admin_user: Any, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    recorder = Scripted(valid_tokens={"tok-1"})
    with (
        token_endpoint(server_tls, client_secret="s3cret", token="tok-1") as tokens,
        smtp_server(starttls=server_tls, recorder=recorder) as srv,
    ):
        microsoft_config(admin_client, admin_user, srv, tokens.url, "s3cret")
        submit(admin_client, subject="before")
        run_worker()
        # The tenant rotates: the cached token is refused from now on.
        tokens.token = "tok-2"
        recorder.valid_tokens = {"tok-2"}
        after = submit(admin_client, subject="after")
        run_worker()
        after.refresh_from_db()
        assert after.status == "sent" and after.attempt_count == 1
        assert [t for _, t in recorder.logins] == ["tok-1", "tok-1", "tok-2"]
        assert len(tokens.requests) == 2

        # A token the server refuses even when fresh: one refresh, then the attempt is
        # deferred (no loop of fetches).
        recorder.valid_tokens = set()
        tokens.token = "tok-3"
        refused = submit(admin_client, subject="refused")
        run_worker()
    refused.refresh_from_db()
    assert refused.status == "deferred"
    assert "auth" in refused.last_error
    assert [t for _, t in recorder.logins][3:] == ["tok-2", "tok-3"]
    assert len(tokens.requests) == 3


class _SlowFetch:
    def __init__(self, delay: float = 0.2) -> None:
        self.calls = 0
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, obj: AuthenticationObject, *, timeout: float) -> AccessToken:
        with self.lock:
            self.calls += 1
            n = self.calls
        time.sleep(self.delay)
        return AccessToken(value=f"tok-{n}", expires_at=time.time() + 3600)


def _authentication_object() -> AuthenticationObject:
    return AuthenticationObject(
        pk=7, parameters={"tenant_id": "t"}, sealed_secrets={"client_secret": "sealed"}
    )


def _in_threads(n: int, fn: Any) -> list[Any]:
    results: list[Any] = []
    start = threading.Barrier(n)

    def run() -> None:
        start.wait(5)
        results.append(fn())

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


@pytest.mark.django_db  # the shared fixtures clear the database cache
def test_concurrent_sends_share_one_token_fetch() -> None:
    fetch = _SlowFetch()
    cache, obj = TokenCache(fetch), _authentication_object()
    tokens = _in_threads(8, lambda: cache.get(obj, timeout=5).value)
    assert tokens == ["tok-1"] * 8
    assert fetch.calls == 1


@pytest.mark.django_db  # the shared fixtures clear the database cache
def test_a_token_close_to_expiry_is_fetched_again() -> None:
    calls: list[float] = []

    def fetch(obj: AuthenticationObject, *, timeout: float) -> AccessToken:
        calls.append(timeout)
        lifetime = TOKEN_MARGIN - 1 if len(calls) == 1 else 3600  # the first nearly expired
        return AccessToken(value=f"tok-{len(calls)}", expires_at=time.time() + lifetime)

    cache, obj = TokenCache(fetch), _authentication_object()
    assert cache.get(obj, timeout=5).value == "tok-1"
    assert cache.get(obj, timeout=5).value == "tok-2"
    assert cache.get(obj, timeout=5).value == "tok-2"
    assert len(calls) == 2


@pytest.mark.django_db  # the shared fixtures clear the database cache
def test_sends_refused_the_same_old_token_refresh_it_once() -> None:
    fetch = _SlowFetch(delay=0.05)
    cache, obj = TokenCache(fetch), _authentication_object()
    stale = cache.get(obj, timeout=5)

    def refused_then_retry() -> str:
        cache.invalidate(obj, stale)
        return cache.get(obj, timeout=5).value

    assert _in_threads(6, refused_then_retry) == ["tok-2"] * 6
    assert fetch.calls == 2
    # A changed client secret is a different key: its token is never reused.
    rotated = AuthenticationObject(
        pk=7, parameters={"tenant_id": "t"}, sealed_secrets={"client_secret": "new"}
    )
    assert cache.get(rotated, timeout=5).value == "tok-3"


# --- secrets -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_passwords_secrets_and_tokens_appear_in_no_record(
    admin_client: APIClient,
    admin_user: Any,
    server_tls: ssl.SSLContext,
    trust_test_ca: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    password_server = Scripted()
    xoauth_server = Scripted(valid_tokens={SENTINEL_TOKEN})
    with (
        smtp_server(
            starttls=server_tls,
            users={"mailer@example.com": SENTINEL_PASSWORD},
            recorder=password_server,
        ) as good,
        smtp_server(
            starttls=server_tls, users={"mailer@example.com": "another"}, recorder=Scripted()
        ) as refusing,
        smtp_server(starttls=server_tls, recorder=xoauth_server) as microsoft,
        token_endpoint(server_tls, client_secret=SENTINEL_SECRET, token=SENTINEL_TOKEN) as tks,
    ):
        password = {"tls": True, "username": "mailer@example.com", "password": SENTINEL_PASSWORD}
        configure(admin_client, good, **password)
        submit(admin_client, subject="password")
        run_worker()
        configure(admin_client, refusing, **password)  # the server refuses the password
        submit(admin_client, subject="refused password")
        run_worker()
        microsoft_config(admin_client, admin_user, microsoft, tks.url, SENTINEL_SECRET)
        submit(admin_client, subject="xoauth2")
        run_worker()
        xoauth_server.valid_tokens = set()  # now the token is refused, even when refreshed
        submit(admin_client, subject="refused token")
        run_worker()
    # The scenario really ran: the secrets were used, and both kinds of refusal happened.
    assert password_server.logins == [("mailer@example.com", SENTINEL_PASSWORD)]
    assert xoauth_server.logins[0] == ("XOAUTH2:mailer@contoso.com", SENTINEL_TOKEN)
    statuses = dict(Message.objects.values_list("subject", "status"))
    assert statuses == {
        "password": "sent",
        "refused password": "deferred",
        "xoauth2": "sent",
        "refused token": "deferred",
    }

    sasl = f"user=mailer@contoso.com\x01auth=Bearer {SENTINEL_TOKEN}\x01\x01"
    forbidden = [
        SENTINEL_PASSWORD,
        SENTINEL_SECRET,
        SENTINEL_TOKEN,
        base64.b64encode(f"\0mailer@example.com\0{SENTINEL_PASSWORD}".encode()).decode(),
        base64.b64encode(sasl.encode()).decode(),
    ]

    def clean(where: str, text: str) -> None:
        for secret in forbidden:
            assert secret not in text, f"a secret appears in {where}: {text[:300]}"

    records = [r for r in caplog.records if r.name != "mail.log"]  # mail.log: the test server
    assert records
    for record in records:
        clean(f"log record {record.name}", record.getMessage())
        clean(f"log record {record.name}", str(record.args))
        if record.exc_info:
            clean(f"log record {record.name}", logging.Formatter().formatException(record.exc_info))
    # The outbox is the queue: no task row carries anything of a message.
    assert not DBTaskResult.objects.exists()
    for model in (Message, Recipient, Attempt, Event):
        for row in model.objects.values():
            clean(model.__name__, repr(row))
    assert "auth" in Message.objects.get(subject="refused password").last_error


@pytest.mark.django_db(transaction=True)
def test_each_attempt_names_the_server_it_went_to_ipv6_bracketed(admin_client: APIClient) -> None:
    """The API shows where each attempt went, as it was then: ``[::1]:port`` for IPv6."""
    with smtp_server(host="::1", recorder=Scripted()) as srv:
        configure(admin_client, srv)
        message = submit(admin_client)
        run_worker()
    attempts = admin_client.get(f"{MESSAGES}{message.pk}/").json()["attempts"]
    assert [a["server"] for a in attempts] == [f"[::1]:{srv.port}"]
