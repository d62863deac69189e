"""A real webhook receiver on 127.0.0.1 (http.server in a thread) that verifies every
delivery with the Standard Webhooks library, and helpers to run the Tasks API's due tasks."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django_tasks_db.management.commands.db_worker import Worker
from standardwebhooks import Webhook as Verifier

from outbound.webhooks.services import SUBSCRIPTIONS


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST to ``/hooks/outbound`` with the next status of ``script`` (the last
    one repeats; 204 by default), ``delay`` seconds late; a 3xx points to ``/elsewhere``
    (answered 204). Keeps every request."""

    script: list[int] = field(default_factory=lambda: [204])
    delay: float = 0.0
    location: str = ""
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    scheme: str = "http"
    host: str = "127.0.0.1"
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.server_address[1]
        return f"{self.scheme}://{self.host}:{port}/hooks/outbound"

    def next_answer(self) -> int:
        """The script's next status; the last one stays."""
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def posts(self, path: str = "/hooks/outbound") -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def verified(self, secret: str) -> list[Any]:
        """Every delivery, each verified with standardwebhooks (raises if one is not)."""
        return [Verifier(secret).verify(r.body, r.headers) for r in self.posts()]

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.posts()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.posts())} of {count} deliveries arrived")
            time.sleep(0.02)
        return self.posts()


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection, as Outbound sends

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                status = receiver.next_answer() if self.path == "/hooks/outbound" else 204
                receiver.received.append(
                    Received(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, body, status
                    )
                )
            if receiver.delay:
                time.sleep(receiver.delay)
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", receiver.location or "/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(autouse=True)
def _fresh_subscriptions() -> Iterator[None]:
    """Each test reads the webhooks it made (the cache would keep the last test's a second)."""
    SUBSCRIPTIONS.invalidate()
    yield
    SUBSCRIPTIONS.invalidate()


class _TLSServer(ThreadingHTTPServer):
    tls: ssl.SSLContext

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        return self.tls.wrap_socket(sock, server_side=True), address


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _serve(ThreadingHTTPServer)


@pytest.fixture
def https_receiver(server_tls: ssl.SSLContext) -> Iterator[Receiver]:
    """The same over TLS, its certificate (for 127.0.0.1 and localhost) from the tests' CA."""

    class Server(_TLSServer):
        tls = server_tls

    for recv in _serve(Server):
        recv.scheme = "https"
        yield recv


def _serve(server_class: type[ThreadingHTTPServer]) -> Iterator[Receiver]:
    recv = Receiver()
    server = server_class(("127.0.0.1", 0), _handler(recv))
    server.daemon_threads = True
    recv.server = server
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield recv
    finally:
        server.shutdown()
        server.server_close()


def run_due_tasks() -> int:
    """Run every Tasks API task that is due now (the database backend's own worker, in
    batch mode, in this process); answers how many ran."""
    worker = Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="tests",
        excluded_queue_names=[],
    )
    worker.run()
    return worker._run_tasks


@pytest.fixture
def due_tasks() -> Callable[[], int]:
    return run_due_tasks
