"""SMTP sessions as a server sees them, and what the connection test reports about them.

Real aiosmtpd servers on loopback record the EHLO names, the QUITs and the messages they get:
every session Outbound ends while the server is still in step ends with QUIT (a failed test, a
pooled connection dropped for a changed configuration or left idle); Outbound EHLOs with a
fully qualified name or an address literal, and its Message-IDs are in the sender's domain.
The report names the mechanism and the reply of a failed AUTH, suggests TLS when AUTH is
offered only after STARTTLS, gives no addresses for a refused destination, and reads the same
whether or not a test recipient happens to contain the saved password.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.core import tls
from outbound.mail import sender, services, transport
from outbound.mail.models import Message, SmtpConfig
from outbound.mail.tester import run_test
from outbound.mail.transport import SmtpTarget, Step
from tests.support.smtp import Recorder, RunningServer, Scripted, smtp_server

URL = "/api/administration/smtp-settings/test/"
SETTINGS = "/api/administration/smtp-settings/"
MESSAGES = "/api/messages/"
PASSWORD = "Sentinel-" + secrets.token_hex(6)  # a valid local part, too


@pytest.fixture(autouse=True)
def _no_pooled_connection() -> Iterator[None]:
    sender.POOL.discard()
    yield
    sender.POOL.discard()


def wait_for(predicate: Callable[[], Any], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} within {timeout} s")
        time.sleep(0.02)


def failed_step(body: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in body["steps"] if not s["ok"])


def step(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in body["steps"] if s["name"] == name)


def configure(client: APIClient, srv: RunningServer, **changes: Any) -> SmtpConfig:
    body = {"host": srv.host, "port": srv.port, "tls": False, "from_email": "app@example.com"}
    r = client.patch(SETTINGS, {**body, **changes}, format="json")
    assert r.status_code == 200, r.data
    return SmtpConfig.objects.get(is_active=True)


def submit(client: APIClient, subject: str = "Hello") -> Message:
    body = {"to": ["someone@example.com"], "subject": subject, "text": "Hi.\n"}
    r = client.post(MESSAGES, body, format="json")
    assert r.status_code == 202, r.data
    return Message.objects.get(pk=r.data["id"])


# --- QUIT on every close path --------------------------------------------------------------


@pytest.mark.django_db
def test_a_test_refused_at_auth_ends_with_quit(
    admin_client: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": "right"}) as srv:
        r = admin_client.post(
            URL,
            {"host": srv.host, "port": srv.port, "tls": True, "username": "mailer",
             "password": PASSWORD},
            format="json",
        )  # fmt: skip
        assert r.status_code == 400 and failed_step(r.data)["name"] == "auth"
        assert srv.recorder.quits == 1


@pytest.mark.django_db
def test_a_test_stopped_for_lack_of_starttls_ends_with_quit(admin_client: APIClient) -> None:
    with smtp_server(users={"mailer": PASSWORD}, auth_require_tls=False) as srv:
        r = admin_client.post(
            URL,
            {"host": srv.host, "port": srv.port, "tls": True, "username": "mailer",
             "password": PASSWORD},
            format="json",
        )  # fmt: skip
        assert r.status_code == 400 and failed_step(r.data)["name"] == "starttls"
        assert srv.recorder.logins == []
        assert srv.recorder.quits == 1


@pytest.mark.django_db
def test_a_test_whose_recipient_is_refused_ends_with_quit(admin_client: APIClient) -> None:
    with smtp_server(recorder=Recorder(rcpt_reply="550 5.1.1 No such user")) as srv:
        r = admin_client.post(
            URL,
            {"host": srv.host, "port": srv.port, "tls": False,
             "from_email": "app@example.com", "receiver_address": "nobody@example.com"},
            format="json",
        )  # fmt: skip
        assert r.status_code == 400 and failed_step(r.data)["name"] == "send"
        assert srv.recorder.quits == 1


@pytest.mark.django_db(transaction=True)
def test_a_pooled_connection_dropped_for_a_changed_configuration_ends_with_quit(
    admin_client: APIClient,
) -> None:
    first, second = Scripted(), Scripted()
    with smtp_server(recorder=first) as old, smtp_server(recorder=second) as new:
        configure(admin_client, old)
        assert sender.deliver(submit(admin_client).pk) == "sent"
        assert first.quits == 0  # pooled for the next message

        configure(admin_client, new)
        assert sender.deliver(submit(admin_client).pk) == "sent"
        assert first.quits == 1
        wait_for(lambda: first.disconnects == 1, 5, "the old connection stayed open")
        assert second.quits == 0


@pytest.mark.django_db(transaction=True)
def test_an_idle_pooled_connection_is_closed_with_quit_without_a_next_message(
    admin_client: APIClient, settings: Any
) -> None:
    settings.OUTBOUND_SMTP_IDLE = 0.3
    recorder = Scripted()
    with smtp_server(recorder=recorder) as srv:
        configure(admin_client, srv)
        assert sender.deliver(submit(admin_client).pk) == "sent"
        wait_for(lambda: recorder.quits == 1, 10, "the idle connection got no QUIT")
        wait_for(lambda: recorder.disconnects == 1, 5, "the idle connection stayed open")
        assert recorder.connections == 1

        # The next message opens a new connection (and the old one is not said goodbye twice).
        assert sender.deliver(submit(admin_client).pk) == "sent"
        assert recorder.connections == 2
        wait_for(lambda: recorder.quits == 2, 10, "the second idle connection got no QUIT")


# --- EHLO name and Message-ID --------------------------------------------------------------


@pytest.fixture
def host_names(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Pretend the machine's fully qualified name is ``fqdn`` (and its short name ``vm``)."""

    def pretend(fqdn: str) -> None:
        monkeypatch.setattr(socket, "getfqdn", lambda name="": fqdn)
        monkeypatch.setattr(socket, "gethostname", lambda: "vm")
        transport.local_fqdn.cache_clear()  # looked up once per process

    yield pretend
    transport.local_fqdn.cache_clear()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setting", "fqdn", "host", "expected"),
    [
        ("relay.example.org", "mx1.example.net", "127.0.0.1", "relay.example.org"),
        ("", "mx1.example.net", "127.0.0.1", "mx1.example.net"),
        ("", "vm", "127.0.0.1", "[127.0.0.1]"),  # a short name: the address literal
        ("", "localhost", "127.0.0.1", "[127.0.0.1]"),
        ("", "localhost.localdomain", "127.0.0.1", "[127.0.0.1]"),
        ("", "vm", "::1", "[IPv6:::1]"),
    ],
)
def test_ehlo_names_a_fully_qualified_domain_or_an_address_literal(
    admin_client: APIClient,
    settings: Any,
    host_names: Callable[[str], None],
    setting: str,
    fqdn: str,
    host: str,
    expected: str,
) -> None:
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 loopback")
    settings.OUTBOUND_SMTP_HELO_NAME = setting
    host_names(fqdn)
    with smtp_server(host=host) as srv:
        r = admin_client.post(
            URL, {"host": srv.host, "port": srv.port, "tls": False}, format="json"
        )
    assert r.status_code == 200, r.data
    assert srv.recorder.ehlo_names == [expected]


@pytest.mark.django_db
def test_a_test_message_id_is_in_the_sender_domain(
    admin_client: APIClient, host_names: Callable[[str], None]
) -> None:
    host_names("vm")
    with smtp_server() as srv:
        r = admin_client.post(
            URL,
            {"host": srv.host, "port": srv.port, "tls": False,
             "from_email": "app@mail.example.org", "receiver_address": "ann@example.com"},
            format="json",
        )  # fmt: skip
    assert r.status_code == 200, r.data
    [envelope] = srv.recorder.messages
    header = message_from_bytes(envelope.original_content or b"", policy=default_policy)
    assert re.fullmatch(r"<[^@<>\s]+@mail\.example\.org>", str(header["Message-ID"]))
    assert step(r.data, "send")["message_id"] == str(header["Message-ID"])


@pytest.mark.django_db(transaction=True)
def test_a_queued_message_id_is_in_the_sender_domain(
    admin_client: APIClient, host_names: Callable[[str], None]
) -> None:
    host_names("vm")
    with smtp_server(recorder=Scripted()) as srv:
        configure(admin_client, srv, from_email="noreply@notify.example.com")
        message = submit(admin_client)
        assert re.fullmatch(r"<[^@<>\s]+@notify\.example\.com>", message.message_id)
        assert sender.deliver(message.pk) == "sent"
    [envelope] = srv.recorder.messages
    header = message_from_bytes(envelope.original_content or b"", policy=default_policy)
    assert header["Message-ID"] == message.message_id


# --- the report ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_capabilities_are_single_spaced(admin_client: APIClient) -> None:
    with smtp_server(users={"mailer": PASSWORD}, auth_require_tls=False) as srv:
        r = admin_client.post(
            URL,
            {"host": srv.host, "port": srv.port, "tls": False, "username": "mailer",
             "password": PASSWORD},
            format="json",
        )  # fmt: skip
    assert r.status_code == 200, r.data
    capabilities = step(r.data, "ehlo")["capabilities"]
    assert "AUTH LOGIN PLAIN XOAUTH2" in capabilities
    assert all(c == " ".join(c.split()) for c in capabilities), capabilities


@pytest.mark.django_db
def test_a_refused_auth_step_carries_the_reply_and_the_mechanism(
    admin_client: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": "right"}) as srv:
        r = admin_client.post(
            URL,
            {"host": srv.host, "port": srv.port, "tls": True, "username": "mailer",
             "password": PASSWORD},
            format="json",
        )  # fmt: skip
    assert r.status_code == 400
    auth = failed_step(r.data)
    assert auth["name"] == "auth"
    assert auth["mechanism"] == "PLAIN"
    assert auth["reply"].startswith("535 ")
    assert PASSWORD not in json.dumps(r.data)


@pytest.mark.django_db
def test_a_password_a_server_echoes_at_auth_is_scrubbed_even_around_the_user_name(
    admin_client: APIClient,
) -> None:
    password = f"mailer-{PASSWORD}"  # holds the user name
    recorder = Recorder(refused_login_reply="535 5.7.8 Wrong password {password} for {login}")
    with smtp_server(users={"mailer": "right"}, auth_require_tls=False, recorder=recorder) as srv:
        r = admin_client.post(
            URL,
            {"host": srv.host, "port": srv.port, "tls": False, "username": "mailer",
             "password": password},
            format="json",
        )  # fmt: skip
        assert recorder.logins == [("mailer", password)]
    assert r.status_code == 400
    assert failed_step(r.data)["reply"] == "535 5.7.8 Wrong password *** for mailer"
    assert PASSWORD not in json.dumps(r.data)


@pytest.mark.django_db
def test_auth_offered_only_after_starttls_suggests_tls(
    admin_client: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": PASSWORD}) as srv:
        r = admin_client.post(
            URL,
            {"host": srv.host, "port": srv.port, "tls": False, "username": "mailer",
             "password": PASSWORD},
            format="json",
        )  # fmt: skip
        assert srv.recorder.logins == []
    assert r.status_code == 400
    assert failed_step(r.data)["name"] == "auth"
    assert r.data["msg"] == "The server offers AUTH only after STARTTLS: turn TLS on."
    assert failed_step(r.data)["detail"] == r.data["msg"]


@pytest.mark.django_db
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_the_tls_context_is_ready_before_the_first_step_starts(
    monkeypatch: pytest.MonkeyPatch, server_tls: ssl.SSLContext, ca_file: str, settings: Any,
    security: str,
) -> None:  # fmt: skip
    settings.OUTBOUND_SMTP_CA_FILE = ca_file
    tls._context_for.cache_clear()  # as in a fresh process
    events: list[str] = []
    real = ssl.create_default_context

    def recorded(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        events.append("context built")
        return real(*args, **kwargs)

    def finished(finished_step: Step) -> None:
        events.append(finished_step.name)

    tls_kind = {"starttls": {"starttls": server_tls}, "ssl": {"implicit_tls": server_tls}}
    with smtp_server(**tls_kind[security]) as srv:  # type: ignore[arg-type]
        monkeypatch.setattr(ssl, "create_default_context", recorded)
        report = run_test(
            SmtpTarget(host=srv.host, port=srv.port, security=security, timeout=5),
            on_step=finished,
        )
    tls._context_for.cache_clear()
    assert report.ok, report.message
    # Built once, before the clock of the first step (and so of "connect") started.
    assert events[:2] == ["context built", "resolve"], events
    assert events.count("context built") == 1


@pytest.mark.django_db
def test_a_refused_destination_reports_no_addresses(admin_client: APIClient, settings: Any) -> None:
    settings.OUTBOUND_EGRESS_ALLOW = ""
    r = admin_client.post(URL, {"host": "localhost", "port": 25, "tls": False}, format="json")
    assert r.status_code == 400
    assert r.data["msg"] == (
        "The destination is not allowed by the egress policy (OUTBOUND_EGRESS_ALLOW opens more)."
    )
    [resolve] = r.data["steps"]
    assert resolve["name"] == "resolve" and not resolve["ok"]
    assert "addresses" not in resolve
    assert "127.0.0.1" not in json.dumps(r.data) and "::1" not in json.dumps(r.data)


def _normalised(response: Any, receiver: str) -> str:
    """The report with the address the caller typed, timings and the Message-ID taken out."""
    body = json.loads(json.dumps(response.data))
    for s in body["steps"]:
        s.pop("duration_ms")
        s.pop("message_id", None)
    return json.dumps([response.status_code, body]).replace(receiver, "<receiver>")


@pytest.mark.django_db
@pytest.mark.parametrize("refused", [False, True], ids=["accepted", "refused-and-echoed"])
def test_a_report_tells_nothing_about_the_saved_password(
    admin_client: APIClient, admin_user: Any, refused: bool
) -> None:
    guesses = [f"{PASSWORD}@example.com", "other-guess@example.com"]
    recorder = Scripted(refuse=set(guesses) if refused else set())
    with smtp_server(users={"mailer": PASSWORD}, auth_require_tls=False, recorder=recorder) as srv:
        services.smtp_config_create(
            data={"host": srv.host, "port": srv.port, "security": "none", "username": "mailer",
                  "password": PASSWORD, "sender_address": "app@example.com"},
            actor=admin_user,
            activate=True,
        )  # fmt: skip
        reports = [
            _normalised(admin_client.post(URL, {"receiver_address": guess}, format="json"), guess)
            for guess in guesses
        ]
        assert srv.recorder.logins == [("mailer", PASSWORD)] * 2
    assert reports[0] == reports[1], reports
    assert "***" not in reports[0]
