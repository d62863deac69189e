"""The test endpoint's rules: XOAUTH2, the egress policy, stored secrets, throttling, secrecy."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.core.models import Event
from outbound.integrations import services as integration_services
from outbound.mail import services
from outbound.mail.models import SmtpConfig
from tests.support.smtp import Recorder, free_port, smtp_server
from tests.support.tokens import token_endpoint

URL = "/api/administration/smtp-settings/test/"
SENTINEL = "Sentinel-7f3a-password"
CLIENT_SECRET = "Sentinel-client-secret-91c2"
MS_FAILURE = "Error. Please check username, authentication object and MS Graph settings"


def microsoft_object(actor: Any, authority_url: str) -> Any:
    return integration_services.authentication_object_create(
        name="graph",
        provider="microsoft_client_credentials",
        params={
            "tenant_id": "contoso",
            "client_id": "app-id",
            "client_secret": CLIENT_SECRET,
            "authority_url": authority_url,
        },
        actor=actor,
    )


def save_microsoft_config(client: APIClient, host: str, port: int, obj_pk: int) -> None:
    r = client.patch(
        "/api/administration/smtp-settings/",
        {
            "host": host,
            "port": port,
            "tls": True,
            "username": "mailer@contoso.com",
            "authorization_method": "microsoft_client_credentials",
            "authentication_object": obj_pk,
        },
        format="json",
    )
    assert r.status_code == 200, r.data


@pytest.mark.django_db
def test_xoauth2_with_a_token_from_the_token_endpoint(
    admin_client: APIClient, admin_user: Any, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    recorder = Recorder(valid_tokens={"tok-123"})
    with (
        token_endpoint(server_tls, client_secret=CLIENT_SECRET, token="tok-123") as tokens,
        smtp_server(starttls=server_tls, recorder=recorder) as srv,
    ):
        obj = microsoft_object(admin_user, tokens.url)
        save_microsoft_config(admin_client, srv.host, srv.port, obj.pk)
        r = admin_client.post(URL, {}, format="json")
    assert r.status_code == 200, r.data
    assert [s["name"] for s in r.data["steps"]][-3:] == ["token", "auth", "quit"]
    assert recorder.logins == [("XOAUTH2:mailer@contoso.com", "tok-123")]
    assert tokens.requests[0]["path"] == ["/contoso/oauth2/v2.0/token"]
    assert tokens.requests[0]["scope"] == ["https://outlook.office365.com/.default"]
    assert CLIENT_SECRET not in r.content.decode() and "tok-123" not in r.content.decode()


@pytest.mark.django_db
def test_the_client_secret_is_only_used_for_the_saved_server(
    admin_client: APIClient, admin_user: Any, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with (
        token_endpoint(server_tls, client_secret=CLIENT_SECRET) as tokens,
        smtp_server(starttls=server_tls) as saved,
        smtp_server(starttls=server_tls) as elsewhere,
    ):
        obj = microsoft_object(admin_user, tokens.url)
        save_microsoft_config(admin_client, saved.host, saved.port, obj.pk)
        for change in ({"port": elsewhere.port}, {"username": "attacker@example.com"}):
            r = admin_client.post(URL, change, format="json")
            assert r.status_code == 400
            assert "Save the settings before testing" in r.data["authentication_object"][0]
        # Naming the object in a fresh proposal (nothing saved for it) is refused too.
        r = admin_client.post(
            URL,
            {
                "host": elsewhere.host,
                "port": elsewhere.port,
                "tls": True,
                "authorization_method": "microsoft_client_credentials",
                "authentication_object": obj.pk,
            },
            format="json",
        )
        assert r.status_code == 400
    assert tokens.requests == []  # no token was ever fetched
    assert elsewhere.recorder.logins == []


@pytest.mark.django_db
def test_microsoft_requires_tls(admin_client: APIClient, admin_user: Any) -> None:
    obj = microsoft_object(admin_user, "https://login.example.com")
    r = admin_client.patch(
        "/api/administration/smtp-settings/",
        {
            "host": "smtp.example.com",
            "port": 25,
            "tls": False,
            "authorization_method": "microsoft_client_credentials",
            "authentication_object": obj.pk,
        },
        format="json",
    )
    assert r.status_code == 400
    assert r.data == {"tls": ["Microsoft client credentials require TLS."]}


@pytest.mark.django_db
def test_microsoft_failure_uses_the_seed_message(
    admin_client: APIClient, admin_user: Any, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with (
        token_endpoint(server_tls, client_secret="something-else") as tokens,
        smtp_server(starttls=server_tls) as srv,
    ):
        obj = microsoft_object(admin_user, tokens.url)
        save_microsoft_config(admin_client, srv.host, srv.port, obj.pk)
        r = admin_client.post(URL, {}, format="json")
    assert r.status_code == 400
    assert r.data["detail"] == MS_FAILURE
    failed = [s for s in r.data["steps"] if not s["ok"]]
    assert failed[0]["name"] == "token"
    assert "invalid_client" in failed[0]["detail"]
    assert CLIENT_SECRET not in r.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("allow", "host", "port"),
    [
        ("", "127.0.0.1", 587),  # loopback denied by default
        ("", "169.254.169.254", 25),  # cloud metadata
        ("", "::ffff:10.0.0.1", 25),  # IPv4-mapped private
        ("127.0.0.0/8", "127.0.0.1", 8025),  # address opened, port not
    ],
)
def test_egress_policy_denies_before_any_socket(
    admin_client: APIClient,
    settings: Any,
    allow: str,
    host: str,
    port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.OUTBOUND_EGRESS_ALLOW = allow
    opened: list[Any] = []

    def no_socket(*args: Any, **kwargs: Any) -> Any:
        opened.append(args)
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "create_connection", no_socket)
    with smtp_server() as srv:
        r = admin_client.post(URL, {"host": host, "port": port, "tls": False}, format="json")
        assert srv.recorder.messages == []
    assert r.status_code == 400
    assert r.data["msg"] == (
        "The destination is not allowed by the egress policy (OUTBOUND_EGRESS_ALLOW opens more)."
    )
    assert "addresses" not in r.data["steps"][0]  # nothing resolved is told
    assert [s["name"] for s in r.data["steps"]] == ["resolve"]
    assert opened == []


@pytest.mark.django_db
def test_egress_allow_opens_a_port(admin_client: APIClient, settings: Any) -> None:
    with smtp_server() as srv:
        settings.OUTBOUND_EGRESS_ALLOW = f"127.0.0.0/8,:{srv.port}"
        r = admin_client.post(
            URL, {"host": srv.host, "port": srv.port, "tls": False}, format="json"
        )
    assert r.status_code == 200, r.data


@pytest.mark.django_db
def test_stored_password_is_reused_only_for_the_same_server(
    admin_client: APIClient, admin_user: Any, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": SENTINEL, "other": SENTINEL}) as srv:
        services.smtp_config_create(
            data={
                "host": srv.host,
                "port": srv.port,
                "security": "starttls",
                "username": "mailer",
                "password": SENTINEL,
            },
            actor=admin_user,
            activate=True,
        )
        assert admin_client.post(URL, {}, format="json").status_code == 200
        # Another username: the saved password must not be sent to it.
        r = admin_client.post(URL, {"username": "other"}, format="json")
        assert r.status_code == 400
        assert "password" in r.data
        # Another host: same.
        r = admin_client.post(URL, {"host": "localhost"}, format="json")
        assert r.status_code == 400 and "password" in r.data
        assert srv.recorder.logins == [("mailer", SENTINEL)]
        # Given again, it works.
        r = admin_client.post(URL, {"username": "other", "password": SENTINEL}, format="json")
        assert r.status_code == 200


@pytest.mark.django_db
def test_test_sends_a_message_when_asked(
    admin_client: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": SENTINEL}) as srv:
        r = admin_client.post(
            URL,
            {
                "host": srv.host,
                "port": srv.port,
                "tls": True,
                "username": "mailer",
                "password": SENTINEL,
                "from_email": "noreply@example.com",
                "receiver_address": "ops@example.com",
            },
            format="json",
        )
        assert r.status_code == 200, r.data
        [envelope] = srv.recorder.messages
        # Without a sender address (and a username that is no address) there is no From.
        r = admin_client.post(
            URL,
            {
                "host": srv.host,
                "port": srv.port,
                "tls": True,
                "username": "mailer",
                "password": SENTINEL,
                "receiver_address": "ops@example.com",
            },
            format="json",
        )
        assert r.status_code == 400
        assert r.data == {"from_email": ["A sender address is needed to send a test message."]}
    assert envelope.rcpt_tos == ["ops@example.com"]
    assert b"Auto-Submitted: auto-generated" in envelope.original_content
    assert SENTINEL.encode() not in envelope.original_content


@pytest.mark.django_db
def test_test_endpoint_is_throttled_per_user(
    admin_client: APIClient,
    settings: Any,
    make_user: Callable[..., Any],
    api_client_for: Callable[..., APIClient],
) -> None:
    settings.OUTBOUND_TEST_RATE = "3/min"
    body = {"host": "127.0.0.1", "port": free_port(), "tls": False}  # nothing listens
    codes = [admin_client.post(URL, body, format="json").status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    other = api_client_for(make_user("outbound_mail_setup.edit"))
    assert other.post(URL, body, format="json").status_code == 400  # own budget


@pytest.mark.django_db
def test_sentinel_password_never_leaks(
    admin_client: APIClient,
    server_tls: ssl.SSLContext,
    trust_test_ca: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with smtp_server(starttls=server_tls, users={"mailer": "other"}) as srv:
        bodies = [
            admin_client.patch(
                "/api/administration/smtp-settings/",
                {
                    "host": srv.host,
                    "port": srv.port,
                    "tls": True,
                    "username": "mailer",
                    "password": SENTINEL,
                },
                format="json",
            ),
            admin_client.get("/api/administration/smtp-settings/"),
            admin_client.post(URL, {}, format="json"),  # wrong password: 535
            admin_client.post(URL, {"password": SENTINEL + "x" * 200}, format="json"),
        ]
    assert bodies[2].status_code == 400
    for response in bodies:
        assert SENTINEL not in response.content.decode()
    for record in caplog.records:
        assert SENTINEL not in record.getMessage()
    for event in Event.objects.all():
        assert SENTINEL not in str(event.__dict__)
    row = SmtpConfig.objects.get()
    assert SENTINEL not in str(row.sealed_secrets)
