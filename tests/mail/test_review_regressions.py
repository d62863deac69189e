"""Regressions from review: secrets echoed by servers, slow token endpoints, bad CA bundles,
implicit TLS on 465, 405 for undeclared methods."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from rest_framework.test import APIClient

from outbound.integrations import services as integration_services
from outbound.mail.models import SmtpConfig
from tests.support.smtp import Recorder, smtp_server

SETTINGS = "/api/administration/smtp-settings/"
URL = SETTINGS + "test/"
SENTINEL = "Echo-me-n0t-password"


class EchoingAuthenticator:
    """Refuses every login and echoes the AUTH PLAIN blob back, as a hostile server could."""

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        blob = base64.b64encode(b"\0" + auth_data.login + b"\0" + auth_data.password).decode()
        return AuthResult(
            success=False, handled=False, message=f"535 rejected AUTH PLAIN {blob} {SENTINEL}"
        )


@pytest.mark.django_db
def test_a_server_echoing_the_auth_blob_does_not_leak_the_password(
    admin_client: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    from aiosmtpd.controller import Controller

    from tests.support.smtp import free_port

    port = free_port()
    controller = Controller(
        Recorder(),
        hostname="127.0.0.1",
        port=port,
        tls_context=server_tls,
        authenticator=EchoingAuthenticator(),
        auth_required=True,
    )
    controller.start()
    try:
        r = admin_client.post(
            URL,
            {
                "host": "127.0.0.1",
                "port": port,
                "tls": True,
                "username": "mailer",
                "password": SENTINEL,
            },
            format="json",
        )
    finally:
        controller.stop()
    assert r.status_code == 400
    body = r.content.decode()
    blob = base64.b64encode(f"\0mailer\0{SENTINEL}".encode()).decode()
    assert SENTINEL not in body
    assert blob not in body
    assert "***" in r.data["msg"]


@contextmanager
def trickling_https(context: ssl.SSLContext) -> Iterator[str]:
    """Accepts a request and answers one byte every 0.3 s, forever."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                continue
            try:
                conn = context.wrap_socket(raw, server_side=True)
                conn.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000:
                    if stop.is_set():
                        break
                    conn.sendall(bytes([byte]))
                    time.sleep(0.3)
            except OSError:
                pass
            finally:
                raw.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        thread.join(3)


@pytest.mark.django_db
def test_a_trickling_token_endpoint_cannot_hold_the_test_past_its_timeout(
    admin_client: APIClient,
    admin_user: Any,
    server_tls: ssl.SSLContext,
    trust_test_ca: str,
    settings: Any,
) -> None:
    settings.OUTBOUND_SMTP_TIMEOUT = 1.5
    with trickling_https(server_tls) as url, smtp_server(starttls=server_tls) as srv:
        obj = integration_services.authentication_object_create(
            name="graph",
            provider="microsoft_client_credentials",
            params={"tenant_id": "t", "client_id": "c", "client_secret": "s", "authority_url": url},
            actor=admin_user,
        )
        r = admin_client.patch(
            SETTINGS,
            {
                "host": srv.host,
                "port": srv.port,
                "tls": True,
                "username": "m@x.io",
                "authorization_method": "microsoft_client_credentials",
                "authentication_object": obj.pk,
            },
            format="json",
        )
        assert r.status_code == 200, r.data
        started = time.monotonic()
        r = admin_client.post(URL, {}, format="json")
        elapsed = time.monotonic() - started
    assert r.status_code == 400
    assert [s["name"] for s in r.data["steps"] if not s["ok"]] == ["token"]
    assert elapsed < 1.5 + 1


@pytest.mark.django_db
def test_an_unreadable_ca_bundle_is_a_failed_step_not_a_500(
    admin_client: APIClient, settings: Any, tmp_path: Any
) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    settings.OUTBOUND_SMTP_CA_FILE = str(bad)
    with smtp_server() as srv:
        r = admin_client.post(URL, {"host": srv.host, "port": srv.port, "tls": True}, format="json")
    assert r.status_code == 400
    assert r.data["status"] == "ERROR"


@pytest.mark.django_db
def test_first_patch_on_465_is_implicit_tls(admin_client: APIClient) -> None:
    r = admin_client.patch(SETTINGS, {"host": "smtp.example.com", "port": 465}, format="json")
    assert r.status_code == 200
    assert r.data["tls"] is True
    assert SmtpConfig.objects.get().security == "ssl"


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["put", "post", "delete"])
def test_undeclared_methods_are_405_not_403(admin_client: APIClient, method: str) -> None:
    r = getattr(admin_client, method)(SETTINGS, {}, format="json")
    assert r.status_code == 405
