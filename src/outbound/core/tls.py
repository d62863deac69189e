"""The TLS client context used for every outbound connection (SMTP and token endpoints)."""

from __future__ import annotations

import functools
import ssl
from datetime import UTC, datetime
from typing import Any

from django.conf import settings


def client_context() -> ssl.SSLContext:
    """System trust store plus ``OUTBOUND_SMTP_CA_FILE``; certificates and names verified."""
    return _context_for(settings.OUTBOUND_SMTP_CA_FILE)


@functools.lru_cache(maxsize=4)
def _context_for(ca_file: str) -> ssl.SSLContext:
    # Loading the system trust store costs tens of milliseconds; contexts are thread-safe to
    # share, so each distinct CA setting is built once per process.
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
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
