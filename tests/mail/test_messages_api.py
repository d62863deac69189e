"""``/api/messages/``: submitting mail (202, idempotency, limits, 409 without a configuration)
and following its delivery (status, per-recipient results, attempts, Message-ID), with the
usual 401/403."""

from __future__ import annotations

import email
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.mail import sender, services
from outbound.mail.api import message_views
from outbound.mail.models import Message, SmtpConfig
from tests.support.smtp import Scripted, smtp_server

SETTINGS = "/api/administration/smtp-settings/"
URL = "/api/messages/"
MIB = 1024 * 1024
MESSAGE = {"to": ["ann@example.com"], "subject": "Hello", "text": "Hi Ann.\n"}


@pytest.fixture(autouse=True)
def _no_pooled_connection() -> Any:
    yield
    sender.POOL.discard()


def configure(client: APIClient, host: str = "smtp.example.com", port: int = 25) -> SmtpConfig:
    r = client.patch(
        SETTINGS,
        {
            "host": host,
            "port": port,
            "tls": False,
            "from_email": "app@example.com",
            "failure_email": "ops@example.com",
        },
        format="json",
    )
    assert r.status_code == 200, r.data
    return SmtpConfig.objects.get(is_active=True)


@pytest.fixture
def configured(admin_client: APIClient) -> SmtpConfig:
    return configure(admin_client)


def parsed(envelope: Any) -> EmailMessage:
    content = envelope.original_content
    assert isinstance(content, bytes)
    message = email.message_from_bytes(content, policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


def settle(timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while Message.objects.filter(status__in=["queued", "deferred", "sending"]).exists():
        if time.monotonic() > deadline:
            raise AssertionError("messages still waiting")
        call_command("worker", batch=True)
        time.sleep(0.02)


# --- submitting ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_message_is_accepted_and_queued_in_the_outbox_alone(
    admin_client: APIClient,
    configured: SmtpConfig,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        r = admin_client.post(
            URL,
            {
                "to": ["Ann <ann@example.com>"],
                "cc": ["carl@example.com"],
                "bcc": ["audit@example.com"],
                "subject": "Hello",
                "text": "Hi Ann.\n",
                "html": "<p>Hi Ann.</p>",
                "reply_to": "help@example.com",
                "headers": {"X-Ticket": "42"},
            },
            format="json",
        )
    assert r.status_code == 202, r.data
    message = Message.objects.get()
    assert r.data == {"id": message.pk, "status": "queued"}
    assert callbacks == []  # the outbox row is the queue: nothing to enqueue after the commit
    assert message.status == "queued" and message.next_attempt_at <= timezone.now()
    assert message.headers == {"X-Ticket": "42"} and message.reply_to == "help@example.com"
    assert list(message.recipients.values_list("kind", "address", "status")) == [
        ("to", "Ann <ann@example.com>", "pending"),
        ("cc", "carl@example.com", "pending"),
        ("bcc", "audit@example.com", "pending"),
    ]
    assert not DBTaskResult.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_same_idempotency_key_from_the_same_caller_sends_once(
    admin_client: APIClient, make_user: Callable[..., User], api_client_for: Any
) -> None:
    other = api_client_for(make_user("messages.send"))
    with smtp_server(recorder=Scripted()) as srv:
        configure(admin_client, srv.host, srv.port)
        body = {**MESSAGE, "idempotency_key": "order-42"}
        first = admin_client.post(URL, body, format="json")
        again = admin_client.post(URL, body, format="json")  # a retry (another body: 422)
        theirs = other.post(URL, body, format="json")
        settle()
        replay_after_sending = admin_client.post(URL, body, format="json")
    assert first.status_code == 202
    assert again.status_code == 200 and again.data["id"] == first.data["id"]
    assert theirs.status_code == 202 and theirs.data["id"] != first.data["id"]
    assert replay_after_sending.status_code == 200
    assert replay_after_sending.data == {"id": first.data["id"], "status": "sent"}
    assert Message.objects.count() == 2
    # One copy per caller: the replay was not sent again.
    assert [e.rcpt_tos for e in srv.recorder.messages] == [["ann@example.com"]] * 2
    assert [parsed(e)["Subject"] for e in srv.recorder.messages] == ["Hello", "Hello"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_queue_one_message(
    admin_client: APIClient, admin_user: User, api_client_for: Any
) -> None:
    configure(admin_client)
    ids: list[int] = []
    codes: list[int] = []
    start = threading.Barrier(6)

    def post() -> None:
        client = api_client_for(admin_user)
        try:
            start.wait(5)
            r = client.post(URL, {**MESSAGE, "idempotency_key": "same"}, format="json")
            codes.append(r.status_code)
            ids.append(r.data["id"])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(codes) == [200] * 5 + [202]
    assert len(set(ids)) == 1
    assert Message.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to": []}, "to"),
        ({"to": ["not-an-address"]}, "to"),
        ({"cc": ["carl@example.com\r\nBcc: evil@example.com"]}, "cc"),
        ({"bcc": ["audit@example.com\u2028"]}, "bcc"),
        ({"subject": "Hi\r\nBcc: evil@example.com"}, "subject"),
        ({"subject": "Hi\u2028there"}, "subject"),
        ({"subject": "=?utf-8?q?Hi=0D=0ABcc:_evil@example.com?="}, "subject"),
        ({"reply_to": "help@example.com\nX-Injected: yes"}, "reply_to"),
        ({"headers": {"X-Note": "a\r\nBcc: evil@example.com"}}, "headers"),
        ({"headers": {"X-Note": "a\nb"}}, "headers"),
        ({"headers": {"X-Note": "nul\x00"}}, "headers"),
        ({"headers": {"X-Note": "tab\tthere"}}, "headers"),
        ({"headers": {"X-Note": "line\u2028separator"}}, "headers"),
        ({"headers": {"X Note": "space in the name"}}, "headers"),
        ({"headers": {"X-Note:": "colon in the name"}}, "headers"),
        ({"headers": {"X-Nöte": "non-ASCII name"}}, "headers"),
        ({"headers": {"Bcc": "evil@example.com"}}, "headers"),
        ({"headers": {"from": "ceo@example.com"}}, "headers"),
        ({"text": "", "html": ""}, "text"),
    ],
)
def test_each_invalid_field_is_a_400_naming_it_and_queues_nothing(
    admin_client: APIClient, configured: SmtpConfig, change: dict[str, Any], field: str
) -> None:
    r = admin_client.post(URL, {**MESSAGE, **change}, format="json")
    assert r.status_code == 400, r.data
    assert field in r.data, r.data
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_at_most_100_recipients_counting_to_cc_and_bcc(
    admin_client: APIClient, configured: SmtpConfig
) -> None:
    def addresses(kind: str, n: int) -> list[str]:
        return [f"{kind}{i}@example.com" for i in range(n)]

    body = {**MESSAGE, "to": addresses("to", 40), "cc": addresses("cc", 30)}
    r = admin_client.post(URL, {**body, "bcc": addresses("bcc", 31)}, format="json")
    assert r.status_code == 400
    assert "100 recipients" in r.data["to"][0]
    assert not Message.objects.exists()
    r = admin_client.post(URL, {**body, "bcc": addresses("bcc", 30)}, format="json")
    assert r.status_code == 202
    assert Message.objects.get().recipients.count() == 100


@pytest.mark.django_db
def test_a_body_of_10_mib_is_accepted_and_a_larger_one_refused(
    admin_client: APIClient, configured: SmtpConfig
) -> None:
    # Non-ASCII text: 10 MiB of UTF-8, far beyond Django's default 2.5 MiB request limit.
    text = "é" * (5 * MIB)
    r = admin_client.post(URL, {**MESSAGE, "text": text}, format="json")
    assert r.status_code == 202, r.content[:300]
    assert Message.objects.get().text == text

    r = admin_client.post(URL, {**MESSAGE, "text": text + "x"}, format="json")
    assert r.status_code == 400
    assert r.data == {"text": ["The body may not exceed 10 MiB (text and html)."]}
    # An html-only message names the field it sent.
    r = admin_client.post(URL, {**MESSAGE, "text": "", "html": "x" * (10 * MIB + 1)}, format="json")
    assert r.status_code == 400
    assert list(r.data) == ["html"]
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_a_request_beyond_any_valid_message_is_refused_unread(
    admin_client: APIClient, configured: SmtpConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(message_views, "MAX_REQUEST_BYTES", 4096)
    r = admin_client.post(URL, {**MESSAGE, "text": "x" * 5000}, format="json")
    assert r.status_code == 413
    assert "25 MiB" in r.data["detail"]
    r = admin_client.post(URL, "{not json", content_type="application/json")
    assert r.status_code == 400 and "JSON parse error" in r.data["detail"]
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_without_an_active_configuration_nothing_is_queued(
    admin_client: APIClient,
    admin_user: User,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        r = admin_client.post(URL, MESSAGE, format="json")
    assert r.status_code == 409
    assert r.data["detail"] == "No SMTP configuration is active; nothing was queued."
    assert r.data["error_code"] == "no_active_configuration"

    config = configure(admin_client)
    services.smtp_config_deactivate(config=config, actor=admin_user)
    with django_capture_on_commit_callbacks(execute=True) as more:
        r = admin_client.post(URL, {**MESSAGE, "idempotency_key": "k"}, format="json")
    assert r.status_code == 409
    assert callbacks == [] and more == []
    assert not Message.objects.exists()
    assert not DBTaskResult.objects.exists()


# --- following delivery ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_message_shows_its_status_recipients_attempts_configuration_and_message_id(
    admin_client: APIClient,
) -> None:
    with smtp_server(recorder=Scripted(refuse={"nobody@example.com"})) as srv:
        config = configure(admin_client, srv.host, srv.port)
        r = admin_client.post(
            URL,
            {**MESSAGE, "to": ["ann@example.com", "nobody@example.com"], "idempotency_key": "k1"},
            format="json",
        )
        pk = r.data["id"]
        queued = admin_client.get(f"{URL}{pk}/")
        assert queued.status_code == 200
        assert queued.data["status"] == "queued" and queued.data["attempts"] == []
        assert queued.data["config"] is None
        settle()
    delivered = next(
        e for e in srv.recorder.messages if e.rcpt_tos == ["ann@example.com"]
    )  # the other one is the failure notice
    message_id = parsed(delivered)["Message-ID"]

    r = admin_client.get(f"{URL}{pk}/")
    assert r.status_code == 200
    data = r.data
    assert data["status"] == "sent"
    assert data["message_id"] == message_id
    assert data["config"] == config.pk
    assert data["idempotency_key"] == "k1" and data["attempt_count"] == 1
    assert data["sent_at"] is not None and data["finished_at"] is not None
    results = {x["address"]: x for x in data["recipients"]}
    assert results["ann@example.com"]["status"] == "sent"
    assert results["ann@example.com"]["smtp_code"] == 250
    assert results["nobody@example.com"]["status"] == "failed"
    assert results["nobody@example.com"]["smtp_code"] == 550
    assert "User unknown" in results["nobody@example.com"]["smtp_reply"]
    [attempt] = data["attempts"]
    assert attempt["number"] == 1 and attempt["outcome"] == "sent"
    assert attempt["config"] == config.pk
    assert attempt["started_at"] <= attempt["finished_at"]
    assert "text" not in data and "headers" not in data  # content stays in the outbox

    sent = admin_client.get(URL, {"status": "sent", "is_failure_notice": "false"})
    assert [m["id"] for m in sent.data["results"]] == [pk]
    notices = admin_client.get(URL, {"is_failure_notice": "true"})
    assert [m["status"] for m in notices.data["results"]] == ["sent"]
    assert admin_client.get(URL, {"status": "queued"}).data["results"] == []
    assert admin_client.get(URL, {"status": "bogus"}).status_code == 400


@pytest.mark.django_db
def test_sending_and_viewing_need_their_permissions(
    make_user: Callable[..., User], api_client_for: Any, configured: SmtpConfig
) -> None:
    senders = api_client_for(make_user("messages.send"))
    viewers = api_client_for(make_user("messages.view"))
    nobody = api_client_for(make_user("outbound_mail_setup.view"))
    anonymous = APIClient()

    r = senders.post(URL, MESSAGE, format="json")
    assert r.status_code == 202
    pk = r.data["id"]
    assert senders.get(URL).status_code == 403
    assert senders.get(f"{URL}{pk}/").status_code == 403

    assert viewers.post(URL, MESSAGE, format="json").status_code == 403
    assert viewers.get(URL).data["total_count"] == 1
    assert viewers.get(f"{URL}{pk}/").data["id"] == pk
    assert viewers.get(f"{URL}{pk + 1000}/").status_code == 404

    for client, code in ((nobody, 403), (anonymous, 401)):
        assert client.post(URL, MESSAGE, format="json").status_code == code
        assert client.get(URL).status_code == code
        assert client.get(f"{URL}{pk}/").status_code == code
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_a_service_sends_with_an_api_key_limited_to_sending(
    make_user: Callable[..., User], api_client_for: Any, configured: SmtpConfig
) -> None:
    owner = api_client_for(make_user("messages.send", "messages.view"))
    r = owner.post(
        "/api/auth/api-keys/", {"name": "app", "permissions": ["messages.send"]}, format="json"
    )
    assert r.status_code == 201, r.data
    service = APIClient()
    service.credentials(HTTP_AUTHORIZATION=f"Api-Key {r.data['key']}")

    r = service.post(URL, {**MESSAGE, "idempotency_key": "signup-7"}, format="json")
    assert r.status_code == 202, r.data
    assert service.post(URL, {**MESSAGE, "idempotency_key": "signup-7"}, format="json").data == {
        "id": r.data["id"],
        "status": "queued",
    }
    assert service.get(URL).status_code == 403  # the key carries sending only
    assert owner.get(f"{URL}{r.data['id']}/").data["status"] == "queued"
    assert Message.objects.count() == 1
