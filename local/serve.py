"""Serve an ASGI app with uvicorn on a background thread (host and simulators alike)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from local.tls import TlsFiles


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Bind a listening socket; port 0 picks a free port, so parallel stacks never collide."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the listening
    # socket says so, and without it Nagle plus delayed ACKs add ~40 ms to every response.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


@dataclass
class RunningServer:
    """A uvicorn server on its own thread; ``url`` has no trailing slash."""

    url: str
    port: int
    _server: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        stop_servers([self], timeout)


def stop_servers(servers: list[RunningServer], timeout: float = 10.0) -> None:
    """Stop ``servers`` together: each may spend its grace period on idle TLS keep-alive
    connections (a second), and one after another those seconds add up at every teardown."""
    for server in servers:
        server._server.should_exit = True
    for server in servers:
        server._thread.join(timeout)


class _QuietShutdown(logging.Filter):
    """uvicorn logs an ERROR when the grace period ends with idle keep-alive connections still open;
    for our servers that is the expected way to stop, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "timeout graceful shutdown exceeded" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietShutdown())


def serve_in_thread(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: TlsFiles | None = None,
    name: str = "server",
) -> RunningServer:
    """Start ``app`` and return once it accepts connections."""
    import uvicorn

    sock = bind_socket(host, port)
    actual_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
        # A client that keeps an idle keep-alive connection open must not hold up stop() for the
        # whole join timeout (tests stop servers often): one second of grace, then connections go.
        timeout_graceful_shutdown=1,
        ssl_certfile=str(tls.cert_chain) if tls else None,
        ssl_keyfile=str(tls.private_key) if tls else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start on port {actual_port}")
        time.sleep(0.01)
    scheme = "https" if tls else "http"
    # The certificate names 127.0.0.1 too; using the address skips a failed ::1 attempt.
    return RunningServer(url=f"{scheme}://{host}:{actual_port}", port=actual_port, _server=server, _thread=thread)
