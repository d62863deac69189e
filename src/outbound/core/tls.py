"""The TLS client context used for every outbound connection (SMTP and token endpoints)."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from typing import Any

from django.conf import settings


def client_context() -> ssl.SSLContext:
    """System trust store plus ``OUTBOUND_SMTP_CA_FILE``; certificates and names verified."""
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.OUTBOUND_SMTP_CA_FILE:
        ctx.load_verify_locations(cafile=settings.OUTBOUND_SMTP_CA_FILE)
    return ctx


def describe_tls(sock: ssl.SSLSocket) -> dict[str, Any]:
    """TLS version, cipher and the peer certificate's subject, issuer and expiry."""
    cipher = sock.cipher()
    cert = sock.getpeercert() or {}
    info: dict[str, Any] = {
        "tls_version": sock.version(),
        "cipher": cipher[0] if cipher else None,
    }
    if cert:
        info["certificate"] = {
            "subject": _name(cert.get("subject", ())),
            "issuer": _name(cert.get("issuer", ())),
            "not_after": _cert_time(str(cert.get("notAfter", ""))),
        }
    return info


def _name(rdns: Any) -> str:
    return ", ".join(f"{k}={v}" for rdn in rdns for (k, v) in rdn)


def _cert_time(value: str) -> str | None:
    if not value:
        return None
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(value), tz=UTC).isoformat()
