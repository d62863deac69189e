"""Real SMTP servers on loopback for the tests: aiosmtpd (plain, STARTTLS, implicit TLS,
AUTH, XOAUTH2, scripted failures) and a server that accepts and never speaks."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Recorder:
    """Handler that stores every message it accepts and every AUTH it saw."""

    messages: list[Envelope] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    rcpt_reply: str | None = None  # e.g. "550 no such user" to refuse every RCPT

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 Message accepted"

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) < 2:
            return AuthResult(success=False, handled=False)
        decoded = base64.b64decode(args[1]).decode()
        fields = dict(part.split("=", 1) for part in decoded.split("\x01") if "=" in part)
        token = fields.get("auth", "").removeprefix("Bearer ")
        self.logins.append(("XOAUTH2:" + fields.get("user", ""), token))
        return AuthResult(success=token in self.valid_tokens, handled=False)


class PasswordAuthenticator:
    def __init__(self, users: dict[str, str], recorder: Recorder):
        self.users = users
        self.recorder = recorder

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.recorder.logins.append((login, password))
        return AuthResult(success=self.users.get(login) == password, handled=False)


@dataclass
class RunningServer:
    host: str
    port: int
    recorder: Recorder


@contextmanager
def smtp_server(
    *,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    users: dict[str, str] | None = None,
    auth_require_tls: bool = True,
    host: str = "127.0.0.1",
    recorder: Recorder | None = None,
) -> Iterator[RunningServer]:
    recorder = recorder or Recorder()
    port = free_port()
    kwargs: dict[str, Any] = {}
    if starttls is not None:
        kwargs.update(tls_context=starttls, require_starttls=False)
    if users is not None:
        kwargs.update(
            authenticator=PasswordAuthenticator(users, recorder),
            auth_require_tls=auth_require_tls,
            auth_required=True,
        )
    controller = Controller(recorder, hostname=host, port=port, ssl_context=implicit_tls, **kwargs)
    controller.start()
    try:
        yield RunningServer(host=host, port=port, recorder=recorder)
    finally:
        controller.stop()


@contextmanager
def silent_server(host: str = "127.0.0.1") -> Iterator[RunningServer]:
    """Accepts connections and never sends a byte (no banner)."""
    listener = socket.socket()
    listener.bind((host, 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield RunningServer(host=host, port=listener.getsockname()[1], recorder=Recorder())
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()
