"""The recycle bin: the last version of every item a sync deleted, per technician, for 30 days.

An entry is written *before* the delete it stands for, so a sync can never be the reason an
appointment is gone for good; `purge_entries` drops entries older than the retention. Restoring
(`sync.recycle.restore_entry`) re-creates the item on the side it was deleted from.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from storage.table import pack_bytes, unpack_bytes

if TYPE_CHECKING:
    from storage.table import Entity, Tables

RETENTION = timedelta(days=30)


@dataclass(frozen=True)
class RecycleEntry:
    syncro_user_id: int
    entry_id: str  # sortable by deletion time, unique
    side: str  # "syncro" or "outlook": where the item was deleted
    original_id: str  # its id there (Syncro appointment id or Graph event id)
    origin: str  # where the appointment was born ("syncro" or "outlook")
    content: dict[str, Any]  # the neutral appointment (`sync.model.Appointment.to_json`)
    deleted_at: datetime
    reason: str = ""
    etag: str | None = None


def new_entry_id(deleted_at: datetime) -> str:
    return f"{deleted_at.strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}"


_ENTRY_ID = re.compile(r"\d{8}T\d{12}-[0-9a-f]{8}")


def is_entry_id(text: str) -> bool:
    """Whether ``text`` has the shape `new_entry_id` makes (anything else names no entry, and is
    never handed to Table Storage as a key: ``../x`` or ``a#b`` make its requests fail)."""
    return _ENTRY_ID.fullmatch(text) is not None


def _to_entity(entry: RecycleEntry) -> Entity:
    return {
        "PartitionKey": str(entry.syncro_user_id),
        "RowKey": entry.entry_id,
        "side": entry.side,
        "original_id": entry.original_id,
        "origin": entry.origin,
        "deleted_at": entry.deleted_at,
        "reason": entry.reason,
        **pack_bytes("content", json.dumps(entry.content, separators=(",", ":")).encode("utf-8")),
    }


def _from_entity(entity: Entity, etag: str) -> RecycleEntry:
    return RecycleEntry(
        syncro_user_id=int(entity["PartitionKey"]),
        entry_id=entity["RowKey"],
        side=entity["side"],
        original_id=entity["original_id"],
        origin=entity.get("origin", entity["side"]),
        content=json.loads(unpack_bytes(entity, "content")),
        deleted_at=entity["deleted_at"],
        reason=entity.get("reason", ""),
        etag=etag,
    )


class RecycleBinStore:
    def __init__(self, account: Tables) -> None:
        self._table = account.table("recyclebin")
        self._clock = account.clock

    def add_entry(self, entry: RecycleEntry) -> RecycleEntry:
        """Raises ConcurrencyConflict if the entry id is taken (it never is: ids are random)."""
        return replace(entry, etag=self._table.create(_to_entity(entry)))

    def get_entry(self, syncro_user_id: int, entry_id: str) -> RecycleEntry:
        """Raises NotFound (also for an id of another shape, which names no entry)."""
        if not is_entry_id(entry_id):
            from storage.errors import NotFound

            raise NotFound("recyclebin", entry_id)
        return _from_entity(*self._table.get(str(syncro_user_id), entry_id))

    def list_entries(self, syncro_user_id: int) -> list[RecycleEntry]:
        """Newest first."""
        entries = [_from_entity(e, etag) for e, etag in self._table.partition(str(syncro_user_id))]
        return sorted(entries, key=lambda entry: entry.entry_id, reverse=True)

    def delete_entry(self, syncro_user_id: int, entry_id: str) -> None:
        """Succeeds when already gone."""
        self._table.delete(str(syncro_user_id), entry_id)

    def purge_all(self, *, older_than: timedelta = RETENTION) -> int:
        """Drop every tech's entries deleted more than ``older_than`` ago (an unlinked tech's too);
        returns how many. One query across partitions, then deletes by key."""
        cutoff = self._clock() - older_than
        old = self._table.query(
            "deleted_at lt @cutoff", parameters={"cutoff": cutoff}, select=["PartitionKey", "RowKey"]
        )
        keys = [(str(entity["PartitionKey"]), str(entity["RowKey"])) for entity, _etag in old]
        for partition, row in keys:
            self._table.delete(partition, row)
        return len(keys)

    def purge_entries(self, syncro_user_id: int, *, older_than: timedelta = RETENTION) -> int:
        """Drop the tech's entries deleted more than ``older_than`` ago; returns how many."""
        cutoff = self._clock() - older_than
        old = [e for e in self.list_entries(syncro_user_id) if e.deleted_at < cutoff]
        for entry in old:
            self._table.delete(str(syncro_user_id), entry.entry_id, etag=None)
        return len(old)
