"""A local stand-in for iManage Work's OAuth2 token endpoint (HTTPS, trustme certificate).

``POST {server_url}/auth/oauth2/token`` with an OAuth2 password grant form answers
``200 {"access_token": …}`` for the configured credentials and ``401`` otherwise; any other
path answers ``404``. Every request is recorded (path and form) for the tests to inspect.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

TOKEN_PATH = "/auth/oauth2/token"


@dataclass
class IManageServer:
    url: str
    username: str
    password: str
    client_id: str
    client_secret: str
    token: str
    requests: list[dict[str, list[str]]] = field(default_factory=list)

    def expected_form(self) -> dict[str, list[str]]:
        return {
            "grant_type": ["password"],
            "username": [self.username],
            "password": [self.password],
            "client_id": [self.client_id],
            "client_secret": [self.client_secret],
        }


@contextmanager
def imanage_server(
    context: ssl.SSLContext,
    *,
    username: str = "filer@example.com",
    password: str = "imanage-Pa55word",
    client_id: str = "alx-client",
    client_secret: str = "imanage-client-s3cret",
    token: str = "imanage-access-token-123",
) -> Iterator[IManageServer]:
    state = IManageServer(
        url="",
        username=username,
        password=password,
        client_id=client_id,
        client_secret=client_secret,
        token=token,
    )

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
            state.requests.append({"path": [self.path], **form})
            if self.path != TOKEN_PATH:
                self._answer(404, {"error": "not_found"})
            elif form == state.expected_form():
                body = {"access_token": state.token, "token_type": "Bearer", "expires_in": 1800}
                self._answer(200, body)
            else:
                self._answer(401, {"error": "invalid_grant"})

        def _answer(self, status: int, body: dict[str, object]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state.url = f"https://127.0.0.1:{server.server_address[1]}"
    # A short poll interval lets shutdown() return promptly at the end of each test.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
