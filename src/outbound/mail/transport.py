"""The one SMTP transport builder: the connection test and the sender open connections here.

``open_connection`` walks resolve → egress check → connect → implicit TLS or banner + EHLO +
STARTTLS → EHLO → AUTH, recording every step (name, ok, duration, server reply, TLS details,
capabilities). A watchdog closes the socket at the deadline, so nothing outlives the timeout
even against a server that accepts and never speaks. Credentials are never sent before TLS
when TLS was asked for, and the texts of the steps that carry them are scrubbed of them.

A session the server is still in step with ends with QUIT (:func:`say_goodbye`), whatever
ended it; only a connection that is broken or mid-command is just closed.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import ipaddress
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from outbound.core import egress, watchdog
from outbound.core.secrets import SecretDecryptionError
from outbound.core.tls import client_context, describe_tls
from outbound.integrations.microsoft import AccessToken, TokenError, fetch_token
from outbound.integrations.models import AuthenticationObject
from outbound.integrations.providers import SECRETS_UNREADABLE
from outbound.mail.choices import AuthorizationMethod, Security

# How long a polite QUIT waits for the server's 221 before the socket is simply closed.
GOODBYE_TIMEOUT = 2.0
AUTH_AFTER_STARTTLS = "The server offers AUTH only after STARTTLS: turn TLS on."


@dataclass(frozen=True)
class SmtpTarget:
    """Everything needed to reach and log in to one SMTP server."""

    host: str
    port: int
    security: str = Security.STARTTLS
    username: str = ""
    password: str | None = field(default=None, repr=False)
    authorization_method: str = AuthorizationMethod.USERNAME_AND_PASSWORD
    authentication_object: AuthenticationObject | None = field(default=None, repr=False)
    timeout: float = 10.0
    # Where XOAUTH2 tokens come from: the sender passes its cache; the test fetches afresh.
    token_provider: Callable[..., AccessToken] = field(default=fetch_token, repr=False)

    @property
    def uses_microsoft(self) -> bool:
        return self.authorization_method == AuthorizationMethod.MICROSOFT_CLIENT_CREDENTIALS


@dataclass
class Step:
    name: str
    ok: bool = True
    duration_ms: float = 0.0
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "duration_ms": round(self.duration_ms, 1),
            "detail": self.detail,
            **self.data,
        }


class StepFailed(Exception):
    def __init__(self, step: str, message: str):
        super().__init__(message)
        self.step = step
        self.message = message


class _Refused(Exception):
    """A failure whose message is already meant for an admin."""


class Session:
    """Step recorder, deadline and watchdog for one connection attempt."""

    def __init__(self, target: SmtpTarget, on_step: Callable[[Step], None] | None = None):
        self.target = target
        self.steps: list[Step] = []
        self.on_step = on_step  # told of each step as it finishes (the console's live report)
        self.deadline = time.monotonic() + target.timeout
        self.smtp: smtplib.SMTP | None = None
        self.raw_sock: socket.socket | None = None
        self.aborted = False
        self._secrets = [s for s in (target.password,) if s]
        self._watchdog = watchdog.arm(target.timeout, self._abort)

    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.01)

    def add_secret(self, value: str) -> None:
        self._secrets.append(value)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            for form in (secret, base64.b64encode(secret.encode()).decode()):
                text = text.replace(form, "***")
        return text

    def _abort(self) -> None:
        self.aborted = True
        sock = self.smtp.sock if self.smtp is not None and self.smtp.sock else self.raw_sock
        if sock is not None:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def close(self) -> None:
        self._watchdog.cancel()

    @contextmanager
    def step(self, name: str, *, credentials: bool = False) -> Iterator[Step]:
        """One recorded step. Only a step that sends ``credentials`` (AUTH, the token
        request) has its texts scrubbed: no other step sends a secret, so no other reply can
        hold one, and scrubbing a text that echoes what the caller typed (a test recipient)
        would tell whether what was typed contains the secret. (What a credential step
        echoes, the user name, cannot differ from the saved one while the saved password is
        in play: services' same-server rule.)"""
        step = Step(name)
        if self.smtp is not None and self.smtp.sock is not None:
            self.smtp.sock.settimeout(self.remaining())
        started = time.perf_counter()
        try:
            if time.monotonic() >= self.deadline:
                raise TimeoutError
            yield step
        except Exception as exc:
            step.ok = False
            step.detail = self.describe(exc)
            if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code > 0:
                step.data.setdefault("reply", _reply(exc.smtp_code, exc.smtp_error))
            if credentials:
                step.detail = self.scrub(step.detail)
            raise StepFailed(name, step.detail) from exc
        finally:
            step.duration_ms = (time.perf_counter() - started) * 1000
            if credentials:
                if step.ok:  # a failure's text was scrubbed above, before it was raised
                    step.detail = self.scrub(step.detail)
                if "reply" in step.data:
                    step.data["reply"] = self.scrub(str(step.data["reply"]))
            self.steps.append(step)
            if self.on_step is not None:
                self.on_step(step)

    def describe(self, exc: BaseException) -> str:
        timeout = f"{self.target.timeout:g}"
        # smtplib reports a read timeout as SMTPServerDisconnected; look at the cause too.
        timed_out = isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)
        if self.aborted or timed_out or time.monotonic() >= self.deadline:
            return f"No answer from the server within {timeout} seconds."
        if isinstance(exc, _Refused | TokenError | egress.ResolutionFailed | egress.EgressDenied):
            return str(exc)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return f"The server's certificate could not be verified: {exc.verify_message}."
        if isinstance(exc, ssl.SSLError):
            return f"The TLS handshake failed: {exc.reason or exc}."
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return f"The server rejected the credentials: {_reply(exc.smtp_code, exc.smtp_error)}."
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            replies = "; ".join(_reply(c, m) for c, m in exc.recipients.values())
            return f"The server refused the recipient: {replies}."
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return "The server closed the connection unexpectedly."
        if isinstance(exc, smtplib.SMTPResponseException):
            return f"The server answered {_reply(exc.smtp_code, exc.smtp_error)}."
        if isinstance(exc, ConnectionRefusedError):
            return "The server refused the connection (nothing listens on that port?)."
        if isinstance(exc, OSError):
            return f"Network error: {exc.strerror or type(exc).__name__}."
        return f"Unexpected error: {type(exc).__name__}."


@functools.cache
def local_fqdn() -> str:
    """This machine's fully qualified name, or "" when it has none (a short or localhost
    name, which strict servers refuse in EHLO). Looked up once per process."""
    name = socket.getfqdn().strip().rstrip(".")
    first, _, rest = name.partition(".")
    if not rest or first.lower().startswith("localhost") or name.lower().endswith(".localdomain"):
        return ""
    return name


def helo_name(sock: socket.socket | None = None) -> str:
    """The name we EHLO with: ``OUTBOUND_SMTP_HELO_NAME``, else this machine's fully
    qualified name, else the address literal of our end of ``sock`` (RFC 5321 4.1.3)."""
    if settings.OUTBOUND_SMTP_HELO_NAME:
        return str(settings.OUTBOUND_SMTP_HELO_NAME)
    if fqdn := local_fqdn():
        return fqdn
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):
            address = ipaddress.ip_address(str(sock.getsockname()[0]).split("%", 1)[0])
            if isinstance(address, ipaddress.IPv6Address):
                if address.ipv4_mapped is None:
                    return f"[IPv6:{address.compressed}]"
                address = address.ipv4_mapped
            return f"[{address}]"
    return "localhost"


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {text}".strip()


def _connect(addresses: list[egress.IPAddress], port: int, session: Session) -> socket.socket:
    last: OSError | None = None
    for address in addresses:
        try:
            sock = socket.create_connection((str(address), port), timeout=session.remaining())
        except OSError as exc:
            last = exc
            if session.aborted or time.monotonic() >= session.deadline:
                break
            continue
        session.raw_sock = sock
        return sock
    raise last or OSError("no address to connect to")


def _capabilities(smtp: smtplib.SMTP) -> list[str]:
    # smtplib keeps AUTH's parameters with a leading space (" PLAIN LOGIN"): one space each.
    return [" ".join(f"{k.upper()} {v}".split()) for k, v in smtp.esmtp_features.items()]


def open_connection(target: SmtpTarget, session: Session) -> smtplib.SMTP:
    """An SMTP connection, greeted and authenticated, or :class:`StepFailed` — in which case
    whatever socket was opened is closed (with QUIT, when the server is still in step)."""
    try:
        return _open_connection(target, session)
    except BaseException as exc:
        if session.smtp is not None and in_step(exc, session):
            say_goodbye(session.smtp, timeout=session.remaining())
        close_quietly(session.smtp)
        if session.raw_sock is not None:
            with contextlib.suppress(OSError):
                session.raw_sock.close()
        raise


def in_step(exc: BaseException, session: Session) -> bool:
    """Whether the server still expects a command after ``exc`` ended what we were doing: it
    answered (an error reply) or we stopped ourselves; not after a dropped connection, a
    timeout or a failed TLS handshake, where a QUIT would be noise on a broken stream."""
    cause = exc.__cause__ if isinstance(exc, StepFailed) else exc
    if session.aborted or time.monotonic() >= session.deadline:
        return False
    if isinstance(cause, smtplib.SMTPServerDisconnected):
        return False
    return isinstance(
        cause, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused | _Refused | TokenError
    )


def _tls_context(target: SmtpTarget) -> ssl.SSLContext | Exception | None:
    """The TLS context, made before any step's clock starts (building it loads the trust
    store); a failure to build it is returned, to be reported by the step that needs it."""
    if target.security == Security.NONE:
        return None
    try:
        return client_context()
    except (OSError, ssl.SSLError, ValueError) as exc:
        return exc


def _require_context(context: ssl.SSLContext | Exception | None) -> ssl.SSLContext:
    if isinstance(context, ssl.SSLContext):
        return context
    reason = getattr(context, "strerror", None) or getattr(context, "reason", None)
    raise _Refused(
        "The trusted certificates could not be loaded (OUTBOUND_SMTP_CA_FILE"
        + (f": {reason}" if reason else "")
        + ")."
    )


def _open_connection(target: SmtpTarget, session: Session) -> smtplib.SMTP:
    context = _tls_context(target)
    local_fqdn()  # the one DNS lookup for the EHLO name, also outside every step's clock

    with session.step("resolve") as step:
        addresses = egress.resolve(target.host, target.port, timeout=session.remaining())
        # Checked before anything is reported: a refused destination reveals no addresses
        # (an editor could otherwise resolve internal names through the test).
        egress.check(addresses, target.port)
        step.data["addresses"] = [str(a) for a in addresses]
        step.detail = f"{target.host} resolves to {', '.join(map(str, addresses))}."

    hostname = target.host.strip("[]")
    with session.step("connect") as step:
        if target.security != Security.NONE:
            context = _require_context(context)  # a bad CA bundle: reported, no socket
        sock = _connect(addresses, target.port, session)
        peer = sock.getpeername()
        step.detail = f"Connected to {peer[0]} port {peer[1]}."

    if target.security == Security.SSL:
        with session.step("tls") as step:
            sock.settimeout(session.remaining())
            sock = _require_context(context).wrap_socket(sock, server_hostname=hostname)
            session.raw_sock = sock
            step.data.update(describe_tls(sock))
            step.detail = f"Implicit TLS established ({sock.version()})."

    smtp = smtplib.SMTP(local_hostname=helo_name(sock), timeout=session.remaining())
    smtp._host = hostname  # type: ignore[attr-defined]  # STARTTLS verifies against this name
    smtp.sock = sock
    session.smtp = smtp

    with session.step("banner") as step:
        code, message = smtp.getreply()
        step.data["reply"] = _reply(code, message)
        if code != 220:
            raise smtplib.SMTPConnectError(code, message)
        step.detail = "The server greeted us."

    with session.step("ehlo") as step:
        code, message = smtp.ehlo()
        step.data["reply"] = _reply(code, message).splitlines()[0]
        if not 200 <= code < 300:
            raise smtplib.SMTPHeloError(code, message)
        step.data["capabilities"] = _capabilities(smtp)
        step.detail = f"{len(smtp.esmtp_features)} extensions advertised."

    if target.security == Security.STARTTLS:
        with session.step("starttls") as step:
            if not smtp.has_extn("starttls"):
                raise _Refused(
                    "The server does not offer STARTTLS; nothing more was sent (no credentials)."
                )
            code, message = smtp.starttls(context=_require_context(context))
            step.data["reply"] = _reply(code, message)
            assert isinstance(smtp.sock, ssl.SSLSocket)
            step.data.update(describe_tls(smtp.sock))
            step.detail = f"TLS established ({smtp.sock.version()})."
        with session.step("ehlo_after_starttls") as step:
            code, message = smtp.ehlo()
            step.data["reply"] = _reply(code, message).splitlines()[0]
            if not 200 <= code < 300:
                raise smtplib.SMTPHeloError(code, message)
            step.data["capabilities"] = _capabilities(smtp)
            step.detail = f"{len(smtp.esmtp_features)} extensions advertised."

    if target.uses_microsoft:
        obj = target.authentication_object
        with session.step("token", credentials=True) as step:
            if obj is None:
                raise _Refused("No authentication object is set.")
            try:
                secret = obj.get_secret("client_secret")
            except SecretDecryptionError:
                # Sealed for another endpoint (or under a lost key): it goes nowhere.
                raise _Refused(SECRETS_UNREADABLE) from None
            if secret:
                session.add_secret(secret)
            token = target.token_provider(obj, timeout=session.remaining())
            session.add_secret(token.value)
            step.detail = "Access token received from the token endpoint."
        with session.step("auth", credentials=True) as step:
            step.data["mechanism"] = _require_auth(smtp, "XOAUTH2")
            sasl = f"user={target.username}\x01auth=Bearer {token.value}\x01\x01"
            session.add_secret(sasl)  # and its base64 form, should a server echo it
            code, message = smtp.auth(
                "XOAUTH2", lambda challenge=None: sasl if challenge is None else ""
            )
            step.data["reply"] = _reply(code, message)
            step.detail = "Authenticated with XOAUTH2."
    elif target.username:
        with session.step("auth", credentials=True) as step:
            mechanism = step.data["mechanism"] = _require_auth(smtp, "PLAIN", "LOGIN")
            smtp.user, smtp.password = target.username, target.password or ""
            if smtp.password:  # the exact PLAIN blob too, should a server echo it
                session.add_secret(f"\0{smtp.user}\0{smtp.password}")
            code, message = _login(smtp, mechanism, smtp.user, smtp.password)
            step.data["reply"] = _reply(code, message)
            step.detail = f"Authenticated as {target.username} with {mechanism}."
    return smtp


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _login(smtp: smtplib.SMTP, mechanism: str, user: str, password: str) -> tuple[int, bytes]:
    """AUTH PLAIN or LOGIN with UTF-8 credentials (smtplib's own helpers only take ASCII)."""
    if mechanism == "PLAIN":
        code, message = smtp.docmd("AUTH", "PLAIN " + _b64(f"\0{user}\0{password}"))
    else:
        code, message = smtp.docmd("AUTH", "LOGIN " + _b64(user))
        if code == 334:
            code, message = smtp.docmd(_b64(password))
    if code not in (235, 503):
        raise smtplib.SMTPAuthenticationError(code, message)
    return code, message


def _require_auth(smtp: smtplib.SMTP, *mechanisms: str) -> str:
    offered = (smtp.esmtp_features.get("auth") or "").upper().split()
    for mechanism in mechanisms:
        if mechanism in offered:
            return mechanism
    if not offered:
        if smtp.has_extn("starttls") and not isinstance(smtp.sock, ssl.SSLSocket):
            raise _Refused(AUTH_AFTER_STARTTLS)
        raise _Refused("The server does not offer authentication (no AUTH extension).")
    raise _Refused(
        f"The server offers {', '.join(offered)}, none of which Outbound supports here "
        f"({', '.join(mechanisms)})."
    )


def send_commands(smtp: smtplib.SMTP, commands: list[str]) -> None:
    """Send ``commands`` in one write, without waiting for replies (RFC 2920 PIPELINING):
    the caller reads one reply per command, in order, with ``smtp.getreply()``. One write,
    not one per command: separate small writes could wait on each other's ACK (Nagle)."""
    for command in commands:
        if "\r" in command or "\n" in command:  # what smtplib's putcmd refuses, too
            raise ValueError("An SMTP command may not contain a line break.")
    smtp.send("".join(f"{command}\r\n" for command in commands))


_LEADING_DOT = re.compile(rb"(?m)^\.")
_BARE_EOL = re.compile(rb"\r\n|\r|\n")


def send_data(smtp: smtplib.SMTP, content: bytes) -> tuple[int, bytes]:
    """After DATA's 354: the message (line ends normalised, leading dots doubled), the final
    dot, and the server's reply to it — what ``smtplib.SMTP.data`` does after its DATA."""
    body = _LEADING_DOT.sub(b"..", _BARE_EOL.sub(b"\r\n", content))
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    smtp.send(body + b".\r\n")
    return smtp.getreply()


def end_empty_data(smtp: smtplib.SMTP) -> tuple[int, bytes]:
    """A lone dot: how a pipelining client ends a DATA the server accepted although it had
    no recipient to deliver to (RFC 2920 3.1); the server then refuses the empty message."""
    smtp.send(b".\r\n")
    return smtp.getreply()


def say_goodbye(smtp: smtplib.SMTP | None, *, timeout: float = GOODBYE_TIMEOUT) -> None:
    """QUIT, wait briefly for the reply, close: the end of a session the server is still in
    step with (it would otherwise hold it open until its own timeout)."""
    if smtp is None:
        return
    try:
        if smtp.sock is not None:
            smtp.sock.settimeout(max(min(timeout, GOODBYE_TIMEOUT), 0.01))
            smtp.quit()
    except (OSError, smtplib.SMTPException):
        pass  # it had gone already
    finally:
        close_quietly(smtp)


def close_quietly(smtp: smtplib.SMTP | None) -> None:
    """Close without a word: for a connection that is broken or in the middle of a command."""
    if smtp is None:
        return
    with contextlib.suppress(OSError):
        smtp.close()
