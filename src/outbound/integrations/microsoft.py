"""Microsoft identity platform: the client-credentials token for XOAUTH2.

The token endpoint is ``{authority_url}/{tenant_id}/oauth2/v2.0/token``. The connection
follows the egress policy (resolved once, every address checked, the checked address used)
with HTTPS port 443 allowed besides the policy's own ports.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from outbound.core import egress
from outbound.core.tls import client_context
from outbound.integrations.models import AuthenticationObject


class TokenError(Exception):
    """The token endpoint could not be reached or refused the client credentials."""


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_at: float


def token_url(obj: AuthenticationObject) -> str:
    authority = str(obj.param("authority_url") or "https://login.microsoftonline.com").rstrip("/")
    return f"{authority}/{obj.param('tenant_id')}/oauth2/v2.0/token"


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address already checked, verifying the certificate against the host name."""

    def __init__(self, host: str, port: int, address: str, context: ssl.SSLContext, timeout: float):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def fetch_token(obj: AuthenticationObject, *, timeout: float) -> AccessToken:
    url = urlsplit(token_url(obj))
    if url.scheme != "https" or not url.hostname:
        raise TokenError("The authority URL must be an https:// URL.")
    port = url.port or 443
    deadline = time.monotonic() + timeout
    addresses = egress.resolve(url.hostname, port, timeout=timeout)
    policy = egress.current_policy()
    egress.check(
        addresses,
        port,
        policy=egress.EgressPolicy(
            networks=policy.networks, ports=policy.ports | {443}, port_ranges=policy.port_ranges
        ),
    )
    body = urlencode(
        {
            "client_id": obj.param("client_id") or "",
            "client_secret": obj.get_secret("client_secret") or "",
            "scope": obj.param("scope") or "https://outlook.office365.com/.default",
            "grant_type": "client_credentials",
        }
    )
    conn = _PinnedHTTPSConnection(
        url.hostname,
        port,
        str(addresses[0]),
        client_context(),
        max(deadline - time.monotonic(), 0.05),
    )
    try:
        conn.request(
            "POST",
            url.path or "/",
            body=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        response = conn.getresponse()
        raw = response.read(1 << 20)
    except (OSError, http.client.HTTPException) as exc:
        raise TokenError(
            f"The token endpoint could not be reached ({type(exc).__name__})."
        ) from exc
    finally:
        conn.close()
    try:
        payload = json.loads(raw or b"{}")
    except ValueError:
        payload = {}
    if response.status != 200 or not payload.get("access_token"):
        error = payload.get("error") if isinstance(payload, dict) else None
        raise TokenError(
            f"The token endpoint refused the client credentials (HTTP {response.status}"
            + (f", {error}" if isinstance(error, str) else "")
            + ")."
        )
    expires_in = int(payload.get("expires_in") or 3600)
    return AccessToken(value=str(payload["access_token"]), expires_at=time.time() + expires_in)
