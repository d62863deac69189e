"""Outbound HTTPS calls on an admin's say-so (token endpoints), under the egress policy.

The host is resolved once, every address is checked (HTTPS port 443 allowed besides the
policy's own ports), and the connection goes to a checked address while the certificate is
verified against the host name.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from outbound.core import egress
from outbound.core.tls import client_context

HTTPS_PORT = 443
MAX_BODY = 1 << 20


class HttpCallFailed(Exception):
    """The endpoint could not be reached (or is not an https:// URL)."""


@dataclass(frozen=True)
class JsonResponse:
    status: int
    body: dict[str, Any]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, context: ssl.SSLContext, timeout: float):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def _abort(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def post_form(url: str, form: dict[str, str], *, timeout: float) -> JsonResponse:
    """POST ``form`` url-encoded to ``url`` and parse the JSON answer (``{}`` if it is not)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise HttpCallFailed("The URL must be an https:// URL.")
    try:
        port = parts.port or HTTPS_PORT
    except ValueError as exc:
        raise HttpCallFailed("The URL has an invalid port.") from exc
    deadline = time.monotonic() + timeout
    addresses = egress.resolve(parts.hostname, port, timeout=timeout)
    policy = egress.current_policy()
    egress.check(
        addresses,
        port,
        policy=egress.EgressPolicy(
            networks=policy.networks,
            ports=policy.ports | {HTTPS_PORT},
            port_ranges=policy.port_ranges,
        ),
    )
    conn = _PinnedHTTPSConnection(
        parts.hostname,
        port,
        str(addresses[0]),
        client_context(),
        max(deadline - time.monotonic(), 0.05),
    )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    # http.client's timeout applies per read; a watchdog bounds the whole exchange, so a
    # server that trickles bytes cannot hold the caller past its deadline.
    watchdog = threading.Timer(max(deadline - time.monotonic(), 0.01), _abort, args=(conn,))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request(
            "POST",
            path,
            body=urlencode(form),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        response = conn.getresponse()
        raw = response.read(MAX_BODY)
    except (OSError, http.client.HTTPException) as exc:
        raise HttpCallFailed(f"The endpoint could not be reached ({type(exc).__name__}).") from exc
    finally:
        watchdog.cancel()
        conn.close()
    if time.monotonic() >= deadline:
        raise HttpCallFailed("The endpoint did not answer in time.")
    try:
        payload = json.loads(raw or b"{}")
    except (ValueError, RecursionError):  # an endpoint's deeply nested answer is not JSON to us
        payload = {}
    return JsonResponse(status=response.status, body=payload if isinstance(payload, dict) else {})
