"""The soak's storage proxy (`bench/soak_storage.py`) against a small HTTP server standing in for
Azurite: it forwards, answers injected 5xx, drops connections while down, and holds a request."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import soak_storage
from bench.soak_storage import StorageProxy


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        _Upstream.seen.append(self.rfile.read(length).decode())
        self.send_response(201)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[StorageProxy]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = StorageProxy(server.server_address[1])
    proxy.start()
    _Upstream.seen.clear()
    yield proxy
    proxy.stop()
    server.shutdown()


def put(proxy: StorageProxy, session: requests.Session, body: str, timeout: float = 5) -> int:
    return session.put(f"http://127.0.0.1:{proxy.port}/x", data=body, timeout=timeout).status_code


def test_the_proxy_forwards_then_answers_injected_errors_then_forwards_again(proxy: StorageProxy) -> None:
    with requests.Session() as session:
        assert put(proxy, session, "a") == 201
        proxy.fail(2, 503)
        assert put(proxy, session, "b") == 503
        assert put(proxy, session, "c") == 503
        assert put(proxy, session, "d") == 201
    assert _Upstream.seen == ["a", "d"]


def test_while_down_no_request_gets_through(proxy: StorageProxy) -> None:
    proxy.down(1.0)
    with pytest.raises(requests.ConnectionError):
        put(proxy, requests.Session(), "lost")
    assert _Upstream.seen == []


def test_a_request_held_after_reaching_upstream_acts_but_never_answers(
    proxy: StorageProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(soak_storage, "HELD_SECONDS", 3.0)
    proxy.hold("after")
    with pytest.raises(requests.RequestException):
        put(proxy, requests.Session(), "acted", timeout=1)
    assert _Upstream.seen == ["acted"]
    proxy.hold("before")
    with pytest.raises(requests.RequestException):
        put(proxy, requests.Session(), "never", timeout=1)
    assert _Upstream.seen == ["acted"]
