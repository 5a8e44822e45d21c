"""Files that hold secrets on this machine (`.local/stack.json`, the local host's keys, the test
CA's private key): created readable by their owner only, from the first byte. Writing first and
chmodding after leaves a moment in which the file has the umask's mode (usually 0644), and an
existing file keeps its old mode across ``write_text``."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_MODE = 0o600


def write_private_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, the file 0600 from its creation on: a temporary file
    made with that mode in the same directory, then renamed over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), PRIVATE_MODE)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_private_text(path: Path, text: str) -> None:
    write_private_bytes(path, text.encode("utf-8"))
