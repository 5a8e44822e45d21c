"""ID mappings: one row per synced pair (Syncro appointment <-> Graph event) of one technician.

Each side keeps its id and its version marker (Syncro ``updated_at``, Graph ``changeKey``) at the
last sync, so the planner can tell a real change from an echo. A row in
state ``intent`` is written before a Syncro create, so a retry adopts instead of duplicating.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from storage.ids import optional_id_from_property, optional_id_property
from storage.keys import decode_key, encode_key
from storage.table import pack_bytes, unpack_bytes

if TYPE_CHECKING:
    from collections.abc import Iterator

    from storage.table import Entity, Tables


# Where a pair was born: a `sync.model.Side` value. Storage keeps the core's side as the string
# it is (storage may not import `sync`), so there is one enum for the idea, not two.
Origin = Literal["syncro", "outlook"]
ORIGINS: tuple[Origin, ...] = ("syncro", "outlook")


class MappingState(StrEnum):
    SYNCED = "synced"
    INTENT = "intent"  # the write to the other side is under way or was interrupted
    # The Outlook event left the synced calendar (the tech chose another): not synced any more,
    # but the row keeps claiming the Syncro copy so it is never imported back as new.
    RELEASED = "released"


@dataclass(frozen=True)
class Mapping:
    syncro_user_id: int
    key: str  # stable per pair, chosen by the engine (any string; encoded for the table)
    origin: Origin
    state: MappingState
    synced_at: datetime
    syncro_id: int | None = None
    graph_id: str | None = None  # immutable id, case-sensitive
    syncro_version: str = ""
    graph_version: str = ""
    # The last-synced content (the planner's merge ancestor) as JSON, so a time moved in Syncro
    # and a title edited in Outlook can both survive; packed like other large values.
    base: dict[str, Any] | None = None
    # When the intent of a create was written: only items created after it may be adopted.
    intent_at: datetime | None = None
    # What the Syncro appointment held beyond content when last seen (`sync.mapping.syncro_kept`:
    # customer, ticket, type, techs), so a re-create or a restore brings the whole job back.
    syncro_kept: dict[str, Any] | None = None
    etag: str | None = None


def _to_entity(row: Mapping) -> Entity:
    return {
        "PartitionKey": str(row.syncro_user_id),
        "RowKey": encode_key(row.key),
        "origin": str(row.origin),
        "state": row.state.value,
        "synced_at": row.synced_at,
        "syncro_id": optional_id_property(row.syncro_id),
        "graph_id": row.graph_id,
        "syncro_version": row.syncro_version,
        "graph_version": row.graph_version,
        "intent_at": row.intent_at,
        "syncro_kept": json.dumps(row.syncro_kept, separators=(",", ":")) if row.syncro_kept else None,
        **(pack_bytes("base", json.dumps(row.base, separators=(",", ":")).encode("utf-8")) if row.base else {}),
    }


def _from_entity(entity: Entity, etag: str) -> Mapping:
    return Mapping(
        syncro_user_id=int(entity["PartitionKey"]),
        key=decode_key(entity["RowKey"]),
        origin=_origin(entity["origin"]),
        state=MappingState(entity["state"]),
        synced_at=entity["synced_at"],
        syncro_id=optional_id_from_property(entity.get("syncro_id")),
        graph_id=entity.get("graph_id"),
        syncro_version=entity.get("syncro_version", ""),
        graph_version=entity.get("graph_version", ""),
        base=json.loads(unpack_bytes(entity, "base")) if _has_base(entity) else None,
        intent_at=entity.get("intent_at"),
        syncro_kept=json.loads(entity["syncro_kept"]) if entity.get("syncro_kept") else None,
        etag=etag,
    )


def _origin(value: object) -> Origin:
    if value not in ORIGINS:
        raise ValueError(f"a mapping row's origin must be one of {ORIGINS}, not {value!r}")
    return value  # type: ignore[return-value]


def _has_base(entity: Entity) -> bool:
    return int(entity.get("base_chunks", 0)) > 0


class MappingStore:
    def __init__(self, account: Tables) -> None:
        self._table = account.table("mappings")

    def get_mapping(self, syncro_user_id: int, key: str) -> Mapping:
        """Raises NotFound."""
        return _from_entity(*self._table.get(str(syncro_user_id), encode_key(key)))

    def list_mappings(self, syncro_user_id: int) -> Iterator[Mapping]:
        for entity, etag in self._table.partition(str(syncro_user_id)):
            yield _from_entity(entity, etag)

    def create_mapping(self, row: Mapping) -> Mapping:
        """Raises ConcurrencyConflict if the key exists."""
        return replace(row, etag=self._table.create(_to_entity(row)))

    def update_mapping(self, row: Mapping) -> Mapping:
        """Replace the row read as ``row``; raises ConcurrencyConflict if it changed meanwhile."""
        if row.etag is None:
            raise ValueError("update_mapping needs the row as read (with its etag)")
        return replace(row, etag=self._table.replace(_to_entity(row), etag=row.etag))

    def delete_mapping(self, syncro_user_id: int, key: str, *, etag: str | None = None) -> None:
        self._table.delete(str(syncro_user_id), encode_key(key), etag=etag)
