"""One configuration, five API shapes: what one dialect writes, every other reads the same."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.core.models import Event
from outbound.mail.models import SmtpConfig

NATIVE = "/api/administration/smtp-settings/"
HITACHI = "/Analytics/v1/objects/EmailServerSettings/mailServerSetting%230"
ZITADEL = "/admin/v1/smtp"
COMMVAULT = "/commandcenter/api/V4/EmailServer"
PRIVX = "/workflow-engine/api/v1/settings"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def read_all(c: dict[str, APIClient]) -> dict[str, Any]:
    return {
        "native": c["native"].get(NATIVE).json(),
        "hitachi": c["hitachi"].get(HITACHI).json(),
        "zitadel": c["zitadel"].get(ZITADEL).json()["smtpConfig"],
        "commvault": c["commvault"].get(COMMVAULT).json(),
        "privx": c["privx"].get(PRIVX).json(),
    }


@pytest.mark.django_db
def test_written_through_hitachi_read_through_every_dialect(
    clients: dict[str, APIClient],
) -> None:
    r = clients["hitachi"].put(
        HITACHI,
        {
            "hostname": "smtp.example.com", "portNumber": 587, "secureConnection": "STARTTLS",
            "authenticationEnabled": True, "userId": "mailer", "updatePassword": True,
            "password": b64("s3cret"), "senderAddress": "noreply@example.com",
        },
        format="json",
    )  # fmt: skip
    assert r.status_code == 200, r.content
    seen = read_all(clients)
    assert seen["native"]["host"] == "smtp.example.com"
    assert seen["native"]["port"] == 587
    assert seen["native"]["tls"] is True
    assert seen["native"]["username"] == "mailer"
    assert seen["native"]["from_email"] == "noreply@example.com"
    assert seen["zitadel"]["host"] == "smtp.example.com:587"
    assert seen["zitadel"]["tls"] is True
    assert seen["zitadel"]["user"] == "mailer"
    assert seen["zitadel"]["senderAddress"] == "noreply@example.com"
    assert seen["zitadel"]["state"] == "SMTP_CONFIG_ACTIVE"
    assert seen["commvault"]["SMTPServerName"] == "smtp.example.com"
    assert seen["commvault"]["SMTPPort"] == 587
    assert seen["commvault"]["encryptionAlgorithm"] == "TLS"
    assert seen["commvault"]["username"] == "mailer"
    assert seen["privx"]["smtp_server"] == "smtp.example.com"
    assert seen["privx"]["smtp_server_port"] == 587
    assert seen["privx"]["smtp_server_protocol"] == "starttls"
    assert seen["privx"]["smtp_sender_address"] == "noreply@example.com"
    assert seen["hitachi"]["secureConnection"] == "STARTTLS"
    # One row, one password (never shown anywhere), one event stream.
    config = SmtpConfig.objects.get()
    assert config.get_secret("password") == "s3cret"
    for body in seen.values():
        assert "s3cret" not in str(body)
    assert Event.objects.filter(resource_type="smtp_config").exists()


@pytest.mark.django_db
def test_each_dialect_changes_what_the_others_read(clients: dict[str, APIClient]) -> None:
    r = clients["native"].patch(
        NATIVE, {"host": "a.example.com", "port": 465, "tls": True, "username": "u",
                 "password": "p", "from_email": "a@example.com"}, format="json",
    )  # fmt: skip
    assert r.status_code == 200
    assert read_all(clients)["hitachi"]["secureConnection"] == "TLS"  # 465 = implicit TLS
    assert read_all(clients)["commvault"]["encryptionAlgorithm"] == "SSL"

    # Each new destination brings the password again (it never follows a changed server).
    r = clients["commvault"].put(
        COMMVAULT, {"SMTPServerName": "b.example.com", "password": b64("p")}, format="json"
    )
    assert r.status_code == 200, r.content
    assert read_all(clients)["zitadel"]["host"] == "b.example.com:465"

    r = clients["privx"].put(
        PRIVX, {"smtp_server_port": 2525, "smtp_server_password": "p"}, format="json"
    )
    assert r.status_code == 200, r.content
    seen = read_all(clients)
    assert seen["native"]["port"] == 2525
    assert seen["hitachi"]["portNumber"] == 2525

    config_id = read_all(clients)["zitadel"]["id"]
    r = clients["zitadel"].put(
        f"{ZITADEL}/{config_id}",
        {"senderAddress": "z@example.com", "senderName": "Zed", "host": "c.example.com:587",
         "tls": True, "user": "u", "password": "p"},
        format="json",
    )  # fmt: skip
    assert r.status_code == 200, r.content
    seen = read_all(clients)
    assert seen["native"]["host"] == "c.example.com"
    assert seen["native"]["from_email"] == "z@example.com"
    assert seen["privx"]["smtp_sender_address"] == "z@example.com"
    assert SmtpConfig.objects.count() == 1
    assert SmtpConfig.objects.get().get_secret("password") == "p"
