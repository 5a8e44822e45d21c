"""The Syncro mirror: what the last poll saw of each technician's appointments.

The poller compares a fresh poll with the mirror to find updates and deletions (Syncro only
announces creations), and the ICS feed renders from it without calling Syncro.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from storage.table import pack_bytes, unpack_bytes

if TYPE_CHECKING:
    from collections.abc import Iterator

    from storage.account import StorageAccount
    from storage.table import Entity


@dataclass(frozen=True)
class MirrorEntry:
    syncro_user_id: int
    appointment_id: int
    updated_at: str  # Syncro's version marker, as Syncro wrote it
    content_hash: str
    appointment: dict[str, Any]  # the appointment as Syncro returned it
    seen_at: datetime
    etag: str | None = None


def _to_entity(entry: MirrorEntry) -> Entity:
    return {
        "PartitionKey": str(entry.syncro_user_id),
        "RowKey": str(entry.appointment_id),
        "updated_at": entry.updated_at,
        "content_hash": entry.content_hash,
        "seen_at": entry.seen_at,
        **pack_bytes("appointment", json.dumps(entry.appointment, separators=(",", ":")).encode("utf-8")),
    }


def _from_entity(entity: Entity, etag: str) -> MirrorEntry:
    return MirrorEntry(
        syncro_user_id=int(entity["PartitionKey"]),
        appointment_id=int(entity["RowKey"]),
        updated_at=entity["updated_at"],
        content_hash=entity["content_hash"],
        appointment=json.loads(unpack_bytes(entity, "appointment")),
        seen_at=entity["seen_at"],
        etag=etag,
    )


class MirrorStore:
    def __init__(self, account: StorageAccount) -> None:
        self._table = account.table("syncromirror")

    def get_entry(self, syncro_user_id: int, appointment_id: int) -> MirrorEntry:
        """Raises NotFound."""
        return _from_entity(*self._table.get(str(syncro_user_id), str(appointment_id)))

    def list_entries(self, syncro_user_id: int) -> Iterator[MirrorEntry]:
        for entity, etag in self._table.partition(str(syncro_user_id)):
            yield _from_entity(entity, etag)

    def upsert_entry(self, entry: MirrorEntry) -> MirrorEntry:
        """Last writer wins: the poller of a tech runs under that tech's lease."""
        return replace(entry, etag=self._table.upsert(_to_entity(entry)))

    def delete_entry(self, syncro_user_id: int, appointment_id: int) -> None:
        self._table.delete(str(syncro_user_id), str(appointment_id))
