"""Real SMTP servers on loopback for the tests: aiosmtpd (plain, STARTTLS, implicit TLS,
AUTH, XOAUTH2, scripted failures) and a server that accepts and never speaks."""

from __future__ import annotations

import asyncio
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
    """Handler that stores every message it accepts, every AUTH and EHLO name it saw, and
    counts the QUITs it received."""

    messages: list[Envelope] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    rcpt_reply: str | None = None  # e.g. "550 no such user" to refuse every RCPT
    ehlo_names: list[str] = field(default_factory=list)  # what each EHLO said it was
    quits: int = 0  # QUIT commands received
    # A refused AUTH's reply, formatted with {login} and {password} (a server that echoes);
    # not named auth_*: aiosmtpd takes handler attributes named so for AUTH mechanisms.
    refused_login_reply: str | None = None

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list
    ) -> list:
        self.ehlo_names.append(hostname)
        session.host_name = hostname
        return responses

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.quits += 1
        return "221 Bye"

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
        if self.users.get(login) == password:
            return AuthResult(success=True, handled=False)
        reply = self.recorder.refused_login_reply
        message = reply.format(login=login, password=password) if reply else None
        return AuthResult(success=False, handled=False, message=message)


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
    factory = _ScriptedController if isinstance(recorder, Scripted) else Controller
    controller = factory(recorder, hostname=host, port=port, ssl_context=implicit_tls, **kwargs)
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


# --- scripted failures for the sender's reliability tests ----------------------------------

DROP_BEFORE_DOT = "before_dot"
DROP_AFTER_DOT = "after_dot"
DROP_AT_DATA = "at_data"


@dataclass
class Scripted(Recorder):
    """A :class:`Recorder` with scripted trouble, and a count of the connections it served.

    ``defer``: address -> how many of its RCPTs are answered 451 before 250 (-1: always);
    ``refuse``: addresses answered 550 at RCPT; ``drops``: what happens to each DATA in turn,
    :data:`DROP_BEFORE_DOT` (the connection is cut while the message is coming in) or
    :data:`DROP_AFTER_DOT` (the message arrived, the connection is cut before the reply; the
    copy lands in ``unacknowledged``), then normal service; ``rcpt_delays``: seconds to wait
    before answering each RCPT in turn; ``data_delay``: seconds to wait before answering the
    final dot. ``connections``/``disconnects`` count the clients that said EHLO and the ones
    of them that have gone. :data:`DROP_AT_DATA` in ``drops`` closes the connection when DATA
    comes, unanswered (the RCPT replies have gone out). ``pipelining`` advertises PIPELINING
    (RFC 2920; aiosmtpd reads pipelined commands but does not say so); ``round_trips``
    counts the MAIL, RCPT and DATA commands after which the client waited for the reply
    (nothing more of its had arrived): one per command without pipelining, one per
    transaction with it. Needs :func:`smtp_server` (it picks the right server).
    """

    defer: dict[str, int] = field(default_factory=dict)
    refuse: set[str] = field(default_factory=set)
    drops: list[str] = field(default_factory=list)
    rcpt_delays: list[float] = field(default_factory=list)
    data_delay: float = 0.0
    connections: int = 0
    disconnects: int = 0
    rcpts: list[str] = field(default_factory=list)
    unacknowledged: list[Envelope] = field(default_factory=list)
    pipelining: bool = False
    round_trips: int = 0

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list
    ) -> list:
        # One SMTP protocol object per TCP connection (STARTTLS keeps it): count each once.
        if not getattr(server, "_outbound_counted", False):
            server._outbound_counted = True  # type: ignore[attr-defined]
            self.connections += 1
        responses = await super().handle_EHLO(server, session, envelope, hostname, responses)
        if self.pipelining:  # before the last line ("250 HELP"): only that one has a space
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list
    ) -> str:
        self.rcpts.append(address)
        if self.rcpt_delays:
            await asyncio.sleep(self.rcpt_delays.pop(0))
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        left = self.defer.get(address, 0)
        if left:
            if left > 0:
                self.defer[address] = left - 1
            return "451 4.3.2 Please try again later"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.drops and self.drops[0] == DROP_AFTER_DOT:
            self.drops.pop(0)
            self.unacknowledged.append(envelope)
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()
            return "250 never heard by the client"
        return await super().handle_DATA(server, session, envelope)


class _ScriptedSMTP(SMTP):
    def connection_lost(self, error: Exception | None) -> None:
        handler = self.event_handler
        if isinstance(handler, Scripted) and getattr(self, "_outbound_counted", False):
            handler.disconnects += 1  # a client that said EHLO has gone
        super().connection_lost(error)

    def _count_wait(self) -> None:
        # Nothing else of the client's in the buffer: it sent this command and now waits.
        handler = self.event_handler
        if isinstance(handler, Scripted) and not getattr(self._reader, "_buffer", b""):
            handler.round_trips += 1

    async def smtp_MAIL(self, arg: str | None) -> None:
        self._count_wait()
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str | None) -> None:
        self._count_wait()
        await super().smtp_RCPT(arg)

    async def smtp_DATA(self, arg: str) -> None:
        self._count_wait()
        handler = self.event_handler
        if isinstance(handler, Scripted) and handler.drops and handler.drops[0] == DROP_AT_DATA:
            handler.drops.pop(0)
            assert isinstance(self.transport, asyncio.Transport)
            self.transport.close()  # what was written (the RCPT replies) goes out first
            return
        if (
            isinstance(handler, Scripted)
            and handler.drops
            and handler.drops[0] == DROP_BEFORE_DOT
            and self.envelope is not None
            and self.envelope.rcpt_tos
        ):
            handler.drops.pop(0)
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readuntil(b"\r\n")  # the first line of the message, then cut
            assert isinstance(self.transport, asyncio.Transport)
            self.transport.abort()
            return
        await super().smtp_DATA(arg)


class _ScriptedController(Controller):
    def factory(self) -> SMTP:
        return _ScriptedSMTP(self.handler, **self.SMTP_kwargs)
