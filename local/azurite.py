"""Start and stop Azurite (Table, Queue and Blob Storage emulator from npm) for the local stack and tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from local.tls import TlsFiles

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Azurite's well-known development account (public, documented by Microsoft; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def connection_string(*, blob_port: int, queue_port: int, table_port: int, host: str = "127.0.0.1") -> str:
    base = f"http://{host}"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint={base}:{blob_port}/{DEV_ACCOUNT};"
        f"QueueEndpoint={base}:{queue_port}/{DEV_ACCOUNT};"
        f"TableEndpoint={base}:{table_port}/{DEV_ACCOUNT};"
    )


@dataclass
class Azurite:
    """A running Azurite process; ``stop()`` ends it and removes its in-memory data."""

    process: subprocess.Popen
    blob_port: int
    queue_port: int
    table_port: int
    workdir: Path
    scheme: str = "http"

    def endpoint(self, service: str) -> str:
        """Base URL of one service ("table", "queue", "blob") for the dev account."""
        port = {"blob": self.blob_port, "queue": self.queue_port, "table": self.table_port}[service]
        return f"{self.scheme}://127.0.0.1:{port}/{DEV_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return connection_string(blob_port=self.blob_port, queue_port=self.queue_port, table_port=self.table_port)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.workdir, ignore_errors=True)


def azurite_binary() -> Path:
    binary = PROJECT_ROOT / "node_modules" / ".bin" / "azurite"
    if not binary.exists():
        raise RuntimeError("Azurite is not installed: run `npm ci` in the project root (make does this for you)")
    return binary


def _die_with_parent() -> None:
    """Runs in the child before exec: Linux sends it SIGTERM when the Python process that started
    it dies, so a killed test run or stack never leaves Azurite behind."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Azurite exited early with code {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"Azurite did not listen on port {port} within {timeout:.0f} s")


def start_azurite(
    *,
    blob_port: int = 0,
    queue_port: int = 0,
    table_port: int = 0,
    in_memory: bool = True,
    location: Path | None = None,
    tls: TlsFiles | None = None,
    timeout: float = 60.0,
) -> Azurite:
    """Start Azurite on the given ports (0 = a free port each) and wait until all three listen.

    With ``tls``, Azurite serves HTTPS and accepts OAuth bearer tokens (``--oauth basic``), the
    way identity-based connections (managed identity) reach real storage.
    """
    ports = [p or free_port() for p in (blob_port, queue_port, table_port)]
    workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
    data = location or workdir
    data.mkdir(parents=True, exist_ok=True)
    command = [
        str(azurite_binary()),
        "--silent",
        "--skipApiVersionCheck",
        "--disableProductStyleUrl",
        "--disableTelemetry",
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(ports[0]),
        "--queueHost",
        "127.0.0.1",
        "--queuePort",
        str(ports[1]),
        "--tableHost",
        "127.0.0.1",
        "--tablePort",
        str(ports[2]),
    ]
    if tls is not None:
        command += ["--cert", str(tls.cert_chain), "--key", str(tls.private_key), "--oauth", "basic"]
    # Azurite refuses --location together with --inMemoryPersistence.
    command += ["--inMemoryPersistence"] if in_memory else ["--location", str(data)]
    process = subprocess.Popen(
        command,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    azurite = Azurite(process, *ports, workdir=workdir, scheme="https" if tls else "http")
    try:
        for port in ports:
            _wait_for_port(port, process, timeout)
    except Exception:
        azurite.stop()
        raise
    return azurite
