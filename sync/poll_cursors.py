"""The poller's rows in the cursor table (``syncropoll/<key>``): read, and advanced with the
row's ETag so two runs never both move it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from storage.cursors import SYNCRO_POLL, Cursor
from storage.errors import ConcurrencyConflict, NotFound

if TYPE_CHECKING:
    from storage.cursors import CursorStore


def read_cursor(cursors: CursorStore, key: str) -> Cursor | None:
    try:
        return cursors.get_cursor(SYNCRO_POLL, key)
    except NotFound:
        return None


def save_cursor(cursors: CursorStore, previous: Cursor | None, key: str, value: str, now: datetime) -> Cursor | None:
    """Advance the cursor; a lost race (another run moved it) keeps theirs."""
    try:
        return cursors.save_cursor(Cursor(SYNCRO_POLL, key, value, now, previous.etag if previous else None))
    except ConcurrencyConflict:
        return None
