"""Cursors: where the next incremental read starts (Graph deltaLinks, Syncro poll progress).

A cursor is advanced with its ETag, so two instances that both finished a round cannot move it
back: the loser gets ConcurrencyConflict and discards its result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from storage.keys import encode_key

if TYPE_CHECKING:
    from storage.table import Tables

GRAPH_DELTA = "graphdelta"
SYNCRO_POLL = "syncropoll"


@dataclass(frozen=True)
class Cursor:
    kind: str  # GRAPH_DELTA, SYNCRO_POLL, ...
    key: str  # e.g. the technician id, or a poll tier
    value: str
    updated_at: datetime
    etag: str | None = None


class CursorStore:
    def __init__(self, account: Tables) -> None:
        self._table = account.table("cursors")

    def get_cursor(self, kind: str, key: str) -> Cursor:
        """Raises NotFound."""
        entity, etag = self._table.get(kind, encode_key(key))
        return Cursor(kind, key, entity["value"], entity["updated_at"], etag)

    def save_cursor(self, cursor: Cursor) -> Cursor:
        """Create (``etag`` None) or advance the cursor read as ``cursor``; raises ConcurrencyConflict."""
        entity = {
            "PartitionKey": cursor.kind,
            "RowKey": encode_key(cursor.key),
            "value": cursor.value,
            "updated_at": cursor.updated_at,
        }
        if cursor.etag is None:
            return replace(cursor, etag=self._table.create(entity))
        return replace(cursor, etag=self._table.replace(entity, etag=cursor.etag))

    def delete_cursor(self, kind: str, key: str) -> None:
        self._table.delete(kind, encode_key(key))
