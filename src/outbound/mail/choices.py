"""Enumerations of the SMTP core and the one place the dialects' TLS flag is translated."""

from __future__ import annotations

from django.db import models


class Security(models.TextChoices):
    NONE = "none", "None"
    STARTTLS = "starttls", "STARTTLS"
    SSL = "ssl", "Implicit TLS"


class AuthorizationMethod(models.TextChoices):
    USERNAME_AND_PASSWORD = "username_and_password", "Username and Password"
    MICROSOFT_CLIENT_CREDENTIALS = "microsoft_client_credentials", "Microsoft Client Credentials"


# The native API's names of the modes (``/api/smtp-configurations/``): implicit TLS is ``tls``.
NATIVE_SECURITY: dict[str, str] = {
    "none": Security.NONE,
    "starttls": Security.STARTTLS,
    "tls": Security.SSL,
}
SECURITY_NATIVE: dict[str, str] = {core: native for native, core in NATIVE_SECURITY.items()}
# The OpenAPI enum of these names (PrivX's smtp_server_protocol has the same three).
SECURITY_NAMES: list[str] = list(NATIVE_SECURITY)

IMPLICIT_TLS_PORT = 465
MAX_FAILURE_EMAILS = 10


def security_from_tls(tls: bool, port: int | None) -> str:
    """``tls: true`` means implicit TLS on 465 and STARTTLS elsewhere; ``false`` means none."""
    if not tls:
        return Security.NONE
    return Security.SSL if port == IMPLICIT_TLS_PORT else Security.STARTTLS


def tls_from_security(security: str) -> bool:
    return security != Security.NONE
