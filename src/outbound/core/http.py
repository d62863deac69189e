"""Outbound HTTP calls on an admin's say-so (token endpoints, webhooks), under the egress policy.

The host is resolved once, every address is checked (HTTPS port 443 allowed besides the
policy's own ports), and the connection goes to a checked address while the certificate is
verified against the host name. Webhook URLs follow :func:`web_target`, one rule for the
check when a URL is saved and for every delivery: https on 443 by default; other ports, other
addresses and plain http only where ``OUTBOUND_EGRESS_ALLOW`` opens them.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

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


# --- webhooks: JSON POSTs to a URL an admin saved ----------------------------------------------

HTTP_PORT = 80
WEB_PORTS = frozenset({HTTPS_PORT})
MAX_URL_LENGTH = 2000
URL_INVALID = "Enter a valid http:// or https:// URL."
URL_CREDENTIALS = "The URL may not contain a user name or password."
URL_PLAIN_HTTP = (
    "Plain http:// is allowed only to addresses that OUTBOUND_EGRESS_ALLOW lists; use https://."
)


PATH_SAFE = "/%:@!$&'()*+,;=-._~"
QUERY_SAFE = PATH_SAFE + "?"


class InvalidUrl(ValueError):
    """The URL is not one Outbound posts to (its message says why)."""


@dataclass(frozen=True)
class WebTarget:
    """A checked destination: connect to one of ``addresses``, speak to ``host``."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: list[egress.IPAddress] = field(default_factory=list)


@dataclass(frozen=True)
class WebAnswer:
    status: int
    reason: str


def web_policy() -> egress.EgressPolicy:
    """The egress policy for web destinations: port 443 plus whatever OUTBOUND_EGRESS_ALLOW
    opens (the mail ports are not opened to web requests)."""
    return egress.current_policy(default_ports=WEB_PORTS)


def parse_web_url(url: str) -> WebTarget:
    """Parse ``url`` (syntax only; raises :class:`InvalidUrl`)."""
    from outbound.core.validators import has_control_characters, validate_host

    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise InvalidUrl(URL_INVALID)
    if has_control_characters(url) or any(ch.isspace() for ch in url):
        raise InvalidUrl(URL_INVALID)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidUrl(URL_INVALID) from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise InvalidUrl(URL_INVALID)
    if parts.username is not None or parts.password is not None:
        raise InvalidUrl(URL_CREDENTIALS)
    host = parts.hostname
    try:
        validate_host(host)
    except Exception as exc:  # ValidationError: the same words as any URL mistake
        raise InvalidUrl(URL_INVALID) from exc
    # What an HTTP request line may carry: ASCII only. Other characters are sent
    # percent-encoded as UTF-8 (what a browser sends); "%XX" already there stays as it is.
    path = quote(parts.path or "/", safe=PATH_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=QUERY_SAFE)
    default = HTTPS_PORT if scheme == "https" else HTTP_PORT
    return WebTarget(scheme=scheme, host=host, port=port or default, path=path)


def check_web_target(target: WebTarget, addresses: list[egress.IPAddress]) -> WebTarget:
    """The rule: the port and every address allowed by :func:`web_policy`, and plain http
    only when every address is inside a network OUTBOUND_EGRESS_ALLOW lists (raises
    :class:`egress.EgressDenied` or :class:`InvalidUrl`)."""
    policy = web_policy()
    egress.check(addresses, target.port, policy=policy)
    if target.scheme == "http" and not all(
        any(a in net for net in policy.networks if net.version == a.version) for a in addresses
    ):
        raise InvalidUrl(URL_PLAIN_HTTP)
    return WebTarget(target.scheme, target.host, target.port, target.path, list(addresses))


def web_target(url: str, *, timeout: float) -> WebTarget:
    """Parse ``url``, resolve its host once and check it (raises :class:`InvalidUrl`,
    :class:`egress.EgressDenied` or :class:`egress.ResolutionFailed`)."""
    target = parse_web_url(url)
    addresses = egress.resolve(target.host, target.port, timeout=timeout)
    return check_web_target(target, addresses)


def _connect_any(addresses: list[egress.IPAddress], port: int, deadline: float) -> socket.socket:
    """A connection to the first of the checked ``addresses`` that answers, all of them
    together within one ``deadline`` (``time.monotonic()``): addresses that never answer
    cannot each take the whole timeout."""
    failure: OSError | None = None
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no address answered in time")
        try:
            return socket.create_connection((str(address), port), remaining)
        except OSError as exc:
            failure = exc
    raise failure or OSError("no address to connect to")


class _WebHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: WebTarget, timeout: float, deadline: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._addresses = target.addresses
        self._deadline = deadline

    def connect(self) -> None:
        sock = _connect_any(self._addresses, self.port, self._deadline)
        sock.settimeout(max(self._deadline - time.monotonic(), 0.01))
        self.sock = sock


class _WebHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: WebTarget, context: ssl.SSLContext, timeout: float, deadline: float):
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._addresses = target.addresses
        self._tls = context
        self._deadline = deadline

    def connect(self) -> None:
        sock = _connect_any(self._addresses, self.port, self._deadline)
        sock.settimeout(max(self._deadline - time.monotonic(), 0.01))
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def post_json(url: str, body: bytes, *, headers: dict[str, str], timeout: float) -> WebAnswer:
    """POST ``body`` (JSON) to ``url`` under the egress policy and answer the status; a
    redirect is answered as it came, never followed. Raises :class:`InvalidUrl`,
    :class:`egress.EgressDenied`, :class:`egress.ResolutionFailed` or
    :class:`HttpCallFailed` (not reached, or no answer within ``timeout``)."""
    deadline = time.monotonic() + timeout
    target = web_target(url, timeout=timeout)
    remaining = max(deadline - time.monotonic(), 0.05)
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = _WebHTTPSConnection(target, client_context(), remaining, deadline)
    else:
        conn = _WebHTTPConnection(target, remaining, deadline)
    watchdog = threading.Timer(max(deadline - time.monotonic(), 0.01), _abort, args=(conn,))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request(
            "POST",
            target.path,
            body=body,
            headers={"Content-Type": "application/json", "User-Agent": "Outbound", **headers},
        )
        response = conn.getresponse()
        response.read(MAX_BODY)  # read (and drop) what it says, so the exchange completes
    except TimeoutError as exc:
        raise HttpCallFailed("The receiver did not answer in time.") from exc
    except (OSError, http.client.HTTPException) as exc:
        if time.monotonic() >= deadline:
            raise HttpCallFailed("The receiver did not answer in time.") from exc
        raise HttpCallFailed(f"The receiver could not be reached ({type(exc).__name__}).") from exc
    finally:
        watchdog.cancel()
        conn.close()
    return WebAnswer(status=response.status, reason=str(response.reason or ""))
