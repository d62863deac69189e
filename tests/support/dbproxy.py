"""A TCP proxy to put between the application and its database, to take the database away for
real: ``stop()`` drops every connection through it and refuses new ones (the port is closed,
as when PostgreSQL restarts), ``resume()`` listens again on the same port.

Loopback only: it listens on 127.0.0.1 and forwards to a loopback address (PostgreSQL on
127.0.0.1:5432 by default).
"""

from __future__ import annotations

import contextlib
import ipaddress
import selectors
import socket
import threading
from types import TracebackType


class DbProxy:
    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        if not ipaddress.ip_address(upstream[0]).is_loopback:
            raise ValueError("the proxy forwards to loopback only")
        self.upstream = upstream
        self.host = "127.0.0.1"
        self.port = 0  # chosen by the first start(), kept by resume()
        self.accepted = 0  # connections forwarded, over the proxy's life
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # --- control -----------------------------------------------------------------------

    def start(self) -> DbProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stopping.clear()
        self._spawn(self._accept_loop, listener)
        return self

    @property
    def running(self) -> bool:
        return self._listener is not None

    def stop(self) -> None:
        """Drop every connection and refuse new ones (connection refused), until resume()."""
        self._stopping.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            pairs, self._pairs = self._pairs, set()
        for pair in pairs:
            for sock in pair:
                _close(sock)
        threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout=5)

    def resume(self) -> None:
        if self._listener is None:
            self.start()

    def __enter__(self) -> DbProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- forwarding --------------------------------------------------------------------

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by stop()
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)  # the database itself is down: so is the proxy's answer
                continue
            for sock in (client, server):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stopping.is_set():
                    _close(client)
                    _close(server)
                    return
                self._pairs.add((client, server))
                self.accepted += 1
            self._spawn(self._pump, client, server)

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        """Both directions of one connection, until either side closes (or stop())."""
        peer = {client: server, server: client}
        with selectors.DefaultSelector() as selector:
            try:
                selector.register(client, selectors.EVENT_READ)
                selector.register(server, selectors.EVENT_READ)
            except (OSError, ValueError):
                return
            try:
                while not self._stopping.is_set():
                    for key, _ in selector.select(timeout=0.2):
                        sock = key.fileobj
                        assert isinstance(sock, socket.socket)
                        data = sock.recv(65536)
                        if not data:
                            return
                        peer[sock].sendall(data)
            except (OSError, ValueError):
                return
            finally:
                with self._lock:
                    self._pairs.discard((client, server))
                _close(client)
                _close(server)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
