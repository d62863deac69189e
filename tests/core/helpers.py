"""Secret holders for the core tests, created through their services as the API would."""

from __future__ import annotations

from typing import Any

from outbound.integrations.models import AuthenticationObject
from outbound.integrations.services import authentication_object_create
from outbound.mail.models import SmtpConfig
from outbound.mail.services import smtp_config_create

SMTP_PASSWORD = "smtp-Pa55word-plaintext"
CLIENT_SECRET = "ms-client-secret-plaintext"


def make_smtp_config(actor: Any, password: str = SMTP_PASSWORD, **data: Any) -> SmtpConfig:
    body = {"host": "smtp.example.com", "port": 587, "username": "mailer", "password": password}
    return smtp_config_create(data={**body, **data}, actor=actor)


def make_auth_object(
    actor: Any, name: str = "Contoso", client_secret: str = CLIENT_SECRET
) -> AuthenticationObject:
    return authentication_object_create(
        name=name,
        provider="microsoft_client_credentials",
        params={"tenant_id": "tenant-1", "client_id": "client-1", "client_secret": client_secret},
        actor=actor,
    )
