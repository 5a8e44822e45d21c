"""The Syncro mirror: what the last poll saw of each technician's appointments.

The poller compares a fresh poll with the mirror to find updates and deletions (Syncro only
announces creations), and the ICS feed renders from it without calling Syncro.

A row may also hold the appointment's ``VEVENT`` as the feed last rendered it (``feed_fragment``)
and what it was rendered from (``feed_fragment_key``), so that a fresh instance serves the feed
by joining bytes instead of running icalendar for every event (docs/ics.md "Cost"). The feed
writes them (`attach_fragment`); a `put_entry` of a changed appointment drops them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from storage.errors import ConcurrencyConflict, NotFound, ValueTooLarge
from storage.table import MAX_VALUE_BYTES, pack_bytes, unpack_bytes

if TYPE_CHECKING:
    from collections.abc import Iterator

    from storage.table import Entity, Tables


def appointment_json(appointment: dict[str, Any]) -> bytes:
    """The appointment as a row stores it."""
    return json.dumps(appointment, separators=(",", ":")).encode("utf-8")


def _is_newer(held: str, offered: str) -> bool:
    """Whether Syncro's version marker ``held`` is later than ``offered``. Markers that do not
    parse as ISO times compare as not newer: the offered version is written, as before."""
    try:
        return datetime.fromisoformat(held.replace("Z", "+00:00")) > datetime.fromisoformat(
            offered.replace("Z", "+00:00")
        )
    except (ValueError, TypeError):
        return False


def _digest(stored: bytes) -> str:
    return hashlib.sha256(stored).hexdigest()[:32]


@dataclass(frozen=True)
class MirrorEntry:
    syncro_user_id: int
    appointment_id: int
    updated_at: str  # Syncro's version marker, as Syncro wrote it
    content_hash: str
    appointment: dict[str, Any]  # the appointment as Syncro returned it
    seen_at: datetime
    etag: str | None = None
    feed_fragment: bytes | None = None  # the feed's VEVENT for it, as last rendered (see ics.fragments)
    feed_fragment_key: str = ""  # what ``feed_fragment`` was rendered from; "" with no fragment

    @cached_property
    def appointment_digest(self) -> str:
        """A digest of the whole appointment as stored: any change to it changes the digest.
        (Rows read from storage get the digest of the bytes just read, which are the same.)"""
        return _digest(appointment_json(self.appointment))


def _to_entity(entry: MirrorEntry) -> Entity:
    entity = {
        "PartitionKey": str(entry.syncro_user_id),
        "RowKey": str(entry.appointment_id),
        "updated_at": entry.updated_at,
        "content_hash": entry.content_hash,
        "seen_at": entry.seen_at,
        **pack_bytes("appointment", appointment_json(entry.appointment)),
    }
    if entry.feed_fragment is not None and entry.feed_fragment_key:
        entity["feed_fragment_key"] = entry.feed_fragment_key
        entity.update(pack_bytes("feed_fragment", entry.feed_fragment))
    return entity


def _from_entity(entity: Entity, etag: str) -> MirrorEntry:
    stored = unpack_bytes(entity, "appointment")
    fragment_key = entity.get("feed_fragment_key") or ""
    entry = MirrorEntry(
        syncro_user_id=int(entity["PartitionKey"]),
        appointment_id=int(entity["RowKey"]),
        updated_at=entity["updated_at"],
        content_hash=entity["content_hash"],
        appointment=json.loads(stored),
        seen_at=entity["seen_at"],
        etag=etag,
        feed_fragment=unpack_bytes(entity, "feed_fragment") if fragment_key else None,
        feed_fragment_key=fragment_key,
    )
    # ``appointment_json`` of what ``json.loads`` just read gives these very bytes: spare the
    # feed a second serialisation of every row (cached_property's slot is the instance dict).
    entry.__dict__["appointment_digest"] = _digest(stored)
    return entry


class MirrorStore:
    def __init__(self, account: Tables) -> None:
        self._table = account.table("syncromirror")

    def get_entry(self, syncro_user_id: int, appointment_id: int) -> MirrorEntry:
        """Raises NotFound."""
        return _from_entity(*self._table.get(str(syncro_user_id), str(appointment_id)))

    def list_entries(self, syncro_user_id: int) -> Iterator[MirrorEntry]:
        for entity, etag in self._table.partition(str(syncro_user_id)):
            yield _from_entity(entity, etag)

    def put_entry(self, entry: MirrorEntry) -> MirrorEntry:
        """Record ``entry`` unless the row already holds a newer version; the row as it is now.

        The one way into the mirror. Four writers race on a row: the poll (whose listing may
        have been read before a sync wrote the appointment), a sync's own writes, a restore and
        the Syncro webhook. Unconditional last-writer-wins let a poll that listed before a
        sync's update put the older version back, so the next poll saw the sync's own write as
        a dispatcher's edit and the feed showed the old version meanwhile. Here a write lands
        only over a row whose ``updated_at`` is not newer, under the row's ETag; the same
        version with the same content is not written again."""

        def newest(current: Entity | None) -> tuple[Entity | None, MirrorEntry]:
            if current is None:
                return _to_entity(entry), entry
            held_at, held_hash = str(current.get("updated_at") or ""), current.get("content_hash")
            if _is_newer(held_at, entry.updated_at) or (held_at, held_hash) == (entry.updated_at, entry.content_hash):
                return None, _from_entity(current, "")  # the row's appointment is read only when it is kept
            return _to_entity(entry), entry

        kept, etag = self._table.update(str(entry.syncro_user_id), str(entry.appointment_id), newest)
        return replace(kept, etag=etag)

    def attach_fragment(self, entry: MirrorEntry, key: str, fragment: bytes) -> MirrorEntry | None:
        """Store the feed's rendering of ``entry`` in its row, only if the row is still the one
        read (its ETag): a poll that changed it meanwhile wins. None when it lost the race, the row
        is gone, or both would not fit in one row. Raises StorageError otherwise."""
        if entry.etag is None or len(appointment_json(entry.appointment)) + len(fragment) > MAX_VALUE_BYTES:
            return None  # a row holds 1 MiB: an appointment that large keeps its row as it is
        updated = replace(entry, feed_fragment=fragment, feed_fragment_key=key)
        try:
            return replace(updated, etag=self._table.replace(_to_entity(updated), etag=entry.etag))
        except (ConcurrencyConflict, NotFound, ValueTooLarge):  # too large by the service's own count
            return None

    def delete_entry(self, syncro_user_id: int, appointment_id: int) -> None:
        self._table.delete(str(syncro_user_id), str(appointment_id))
