"""The TLS client context used for every outbound connection (SMTP and token endpoints)."""

from __future__ import annotations

import functools
import os
import ssl
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

# What identifies one version of a CA file on disk: replaced or rewritten, it differs.
FileVersion = tuple[int, int, int, int, int]


def client_context() -> ssl.SSLContext:
    """System trust store plus ``OUTBOUND_SMTP_CA_FILE``; certificates and names verified.

    Contexts are thread-safe to share and loading the trust store costs milliseconds, so each
    distinct CA setting is built once per process — and again whenever the CA file changes on
    disk (it is keyed by the file's identity and modification, one ``stat`` per call), so a
    replaced bundle is trusted from the next connection on, without a restart."""
    ca_file = settings.OUTBOUND_SMTP_CA_FILE
    return _context_for(ca_file, _file_version(ca_file) if ca_file else None)


def _file_version(path: str) -> FileVersion | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # not cached as such: loading it raises, and lru_cache keeps no failures
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@functools.lru_cache(maxsize=4)
def _context_for(ca_file: str, version: FileVersion | None) -> ssl.SSLContext:
    """``version`` is only the cache key (see :func:`client_context`)."""
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
