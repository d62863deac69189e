"""The connection test against real aiosmtpd servers on loopback."""

from __future__ import annotations

import ssl
import time
from typing import Any

import pytest
import trustme
from rest_framework.test import APIClient

from outbound.mail import services
from tests.support.smtp import silent_server, smtp_server

URL = "/api/administration/smtp-settings/test/"
SENTINEL = "s3ntinel-Pa55-word"


def step_names(body: dict[str, Any]) -> list[str]:
    return [s["name"] for s in body["steps"]]


def failed(body: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in body["steps"] if not s["ok"])


@pytest.mark.django_db
def test_plain_server_without_auth(admin_client: APIClient) -> None:
    with smtp_server() as srv:
        r = admin_client.post(
            URL, {"host": srv.host, "port": srv.port, "tls": False}, format="json"
        )
    assert r.status_code == 200, r.data
    assert r.data["status"] == "OK"
    assert r.data["msg"] == "Connection successfully tested."
    assert step_names(r.data) == ["resolve", "connect", "banner", "ehlo", "quit"]
    assert all(s["ok"] and s["duration_ms"] >= 0 for s in r.data["steps"])


@pytest.mark.django_db
def test_starttls_and_auth_report_tls_and_capabilities(
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
            },
            format="json",
        )
        assert srv.recorder.logins == [("mailer", SENTINEL)]
    assert r.status_code == 200, r.data
    names = step_names(r.data)
    assert names == [
        "resolve",
        "connect",
        "banner",
        "ehlo",
        "starttls",
        "ehlo_after_starttls",
        "auth",
        "quit",
    ]
    tls = r.data["steps"][names.index("starttls")]
    assert tls["tls_version"] in {"TLSv1.2", "TLSv1.3"}
    assert tls["cipher"]
    assert tls["certificate"]["not_after"]
    ehlo = r.data["steps"][names.index("ehlo_after_starttls")]
    assert any(c.startswith("AUTH") for c in ehlo["capabilities"])
    assert SENTINEL not in r.content.decode()


@pytest.mark.django_db
def test_implicit_tls_with_the_stored_password(
    admin_client: APIClient, admin_user: Any, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    # aiosmtpd does not see implicit TLS as TLS, so it must allow AUTH "without" it.
    with smtp_server(
        implicit_tls=server_tls, users={"mailer": SENTINEL}, auth_require_tls=False
    ) as srv:
        services.smtp_config_create(
            data={
                "host": "localhost",
                "port": srv.port,
                "security": "ssl",
                "username": "mailer",
                "password": SENTINEL,
            },
            actor=admin_user,
            activate=True,
        )
        r = admin_client.post(URL, {}, format="json")  # everything from the stored settings
        assert srv.recorder.logins == [("mailer", SENTINEL)]
    assert r.status_code == 200, r.data
    assert step_names(r.data)[:4] == ["resolve", "connect", "tls", "banner"]
    tls = r.data["steps"][2]
    assert "127.0.0.1" in r.data["steps"][0]["addresses"]
    assert tls["tls_version"] in {"TLSv1.2", "TLSv1.3"}
    assert tls["certificate"]["issuer"]


@pytest.mark.django_db
def test_wrong_password_is_a_clear_535(
    admin_client: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": "right"}) as srv:
        r = admin_client.post(
            URL,
            {
                "host": srv.host,
                "port": srv.port,
                "tls": True,
                "username": "mailer",
                "password": SENTINEL,
            },
            format="json",
        )
    assert r.status_code == 400
    assert r.data["status"] == "ERROR"
    assert failed(r.data)["name"] == "auth"
    assert "535" in r.data["msg"] and "rejected the credentials" in r.data["msg"]
    assert SENTINEL not in r.content.decode()


@pytest.mark.django_db
def test_starttls_not_offered_fails_before_auth(admin_client: APIClient) -> None:
    with smtp_server(users={"mailer": SENTINEL}, auth_require_tls=False) as srv:
        r = admin_client.post(
            URL,
            {
                "host": srv.host,
                "port": srv.port,
                "tls": True,
                "username": "mailer",
                "password": SENTINEL,
            },
            format="json",
        )
        assert srv.recorder.logins == []  # credentials never crossed in clear
    assert r.status_code == 400
    assert failed(r.data)["name"] == "starttls"
    assert "auth" not in step_names(r.data)
    assert "does not offer STARTTLS" in r.data["msg"]


@pytest.mark.django_db
def test_untrusted_certificate_is_refused(admin_client: APIClient, trust_test_ca: str) -> None:
    other_ca = trustme.CA()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    other_ca.issue_cert("127.0.0.1").configure_cert(ctx)
    with smtp_server(starttls=ctx, users={"mailer": SENTINEL}) as srv:
        r = admin_client.post(
            URL,
            {
                "host": srv.host,
                "port": srv.port,
                "tls": True,
                "username": "mailer",
                "password": SENTINEL,
            },
            format="json",
        )
        assert srv.recorder.logins == []
    assert r.status_code == 400
    assert failed(r.data)["name"] == "starttls"
    assert "certificate could not be verified" in r.data["msg"]


@pytest.mark.django_db
def test_silent_server_ends_within_timeout(admin_client: APIClient, settings: Any) -> None:
    settings.OUTBOUND_SMTP_TIMEOUT = 1.5
    with silent_server() as srv:
        started = time.monotonic()
        r = admin_client.post(
            URL, {"host": srv.host, "port": srv.port, "tls": False}, format="json"
        )
        elapsed = time.monotonic() - started
    assert r.status_code == 400
    assert failed(r.data)["name"] == "banner"
    assert "within 1.5 seconds" in r.data["msg"]
    assert elapsed < 1.5 + 1


@pytest.mark.django_db
def test_refused_connection(admin_client: APIClient) -> None:
    from tests.support.smtp import free_port

    r = admin_client.post(
        URL, {"host": "127.0.0.1", "port": free_port(), "tls": False}, format="json"
    )
    assert r.status_code == 400
    assert failed(r.data)["name"] == "connect"
    assert "refused the connection" in r.data["msg"]
