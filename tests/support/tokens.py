"""A local stand-in for Microsoft's token endpoint (HTTPS with a trustme certificate)."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class TokenEndpoint:
    url: str
    client_secret: str
    token: str
    requests: list[dict[str, list[str]]] = field(default_factory=list)


@contextmanager
def token_endpoint(
    context: ssl.SSLContext, *, client_secret: str, token: str = "tok-123"
) -> Iterator[TokenEndpoint]:
    state = TokenEndpoint(url="", client_secret=client_secret, token=token)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            form = parse_qs(self.rfile.read(length).decode())
            state.requests.append({"path": [self.path], **form})
            ok = form.get("client_secret") == [state.client_secret] and form.get("grant_type") == [
                "client_credentials"
            ]
            body = (
                {"access_token": state.token, "expires_in": 3600, "token_type": "Bearer"}
                if ok
                else {"error": "invalid_client"}
            )
            raw = json.dumps(body).encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state.url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
