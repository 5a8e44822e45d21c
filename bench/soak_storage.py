"""Storage faults for the soak (`bench/soak.py`): a TCP proxy in front of one Azurite service
(Table or Queue), which the product's connection string points at instead of Azurite itself.

Azurite has no fault switches, so the proxy makes them, at the start of a request (a client
chunk that begins with an HTTP method; the Azure SDK does not pipeline, so that is where a
request starts):
- ``down(seconds)``: every connection, open or new, is closed at once (Azurite unavailable);
- ``fail(n, status)``: the next ``n`` requests are answered ``status`` (500/503) by the proxy;
- ``hold(when)``: the next request is held past the product's read timeout (storage.account's
  30 s), ``"before"`` Azurite sees it or ``"after"`` (Azurite acted, the answer never comes).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field

REQUEST_START = re.compile(rb"^(GET|PUT|POST|DELETE|PATCH|HEAD|MERGE|OPTIONS) /")
HELD_SECONDS = 35.0  # past storage.account's read_timeout (30 s)


def error_response(status: int) -> bytes:
    reason = {500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
    code = "ServerBusy" if status == 503 else "InternalError"
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
        f"<Message>Injected by the soak's storage proxy.</Message></Error>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\nx-ms-error-code: {code}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head + body


@dataclass
class StorageProxy:
    """Listens on loopback and forwards to ``upstream_port``; ``port`` once started."""

    upstream_port: int
    name: str = "storage"
    port: int = 0
    _plan: deque[tuple[str, int]] = field(default_factory=deque)  # (action, status) per request
    _down_until: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _open: set[socket.socket] = field(default_factory=set)
    _listener: socket.socket | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener, self.port = listener, listener.getsockname()[1]
        threading.Thread(target=self._accept, name=f"proxy-{self.name}", daemon=True).start()
        return self.port

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        self._close_all()

    # -- the faults ----------------------------------------------------------------------------

    def down(self, seconds: float) -> None:
        with self._lock:
            self._down_until = time.monotonic() + seconds
        self._close_all()

    def fail(self, times: int, status: int = 503) -> None:
        with self._lock:
            self._plan.extend([("fail", status)] * times)

    def hold(self, when: str) -> None:
        with self._lock:
            self._plan.append((when, 0))

    def clear(self) -> None:
        with self._lock:
            self._plan.clear()
            self._down_until = 0.0

    def _is_down(self) -> bool:
        with self._lock:
            return time.monotonic() < self._down_until

    def _next_action(self) -> tuple[str, int]:
        with self._lock:
            if time.monotonic() < self._down_until:
                return ("down", 0)
            return self._plan.popleft() if self._plan else ("pass", 0)

    # -- the plumbing --------------------------------------------------------------------------

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _close(sock)

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._is_down():
                _close(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
            connection = _Connection(client, upstream)
            threading.Thread(target=self._client_side, args=(connection,), daemon=True).start()
            threading.Thread(target=self._upstream_side, args=(connection,), daemon=True).start()

    def _client_side(self, conn: _Connection) -> None:
        try:
            while True:
                data = conn.client.recv(65536)
                if not data:
                    break
                if conn.blackhole:
                    continue
                if REQUEST_START.match(data):
                    action, status = self._next_action()
                    if action == "down":
                        break
                    if action == "fail":
                        conn.client.sendall(error_response(status))
                        break
                    if action == "before":  # never forwarded; the client gives up
                        conn.blackhole = True
                        threading.Timer(HELD_SECONDS, conn.close).start()
                        continue
                    if action == "after":  # forwarded; its answer is swallowed
                        conn.swallow = True
                        threading.Timer(HELD_SECONDS, conn.close).start()
                conn.upstream.sendall(data)
        except OSError:
            pass
        conn.close()

    def _upstream_side(self, conn: _Connection) -> None:
        try:
            while True:
                data = conn.upstream.recv(65536)
                if not data:
                    break
                if not conn.swallow:
                    conn.client.sendall(data)
        except OSError:
            pass
        conn.close()


@dataclass
class _Connection:
    client: socket.socket
    upstream: socket.socket
    blackhole: bool = False
    swallow: bool = False

    def close(self) -> None:
        _close(self.client)
        _close(self.upstream)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
