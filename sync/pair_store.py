"""The pair rows and recycle bin of one tech, as the actions see them (`sync.sides.PairStore`),
over `storage.mappings` and `storage.recycle_bin`.

It reads the tech's rows once per sync run and keeps them current with its own writes, so an
action sees what an earlier action of the same run wrote (a retry of it is then skipped).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from storage.mappings import Mapping, MappingState
from storage.recycle_bin import RecycleEntry, new_entry_id
from sync.model import Appointment, Side
from sync.pairs import Pair
from sync.sides import Tally

if TYPE_CHECKING:
    from storage.account import StorageAccount


def pair_of(row: Mapping) -> Pair:
    return Pair(
        key=row.key,
        origin=Side(row.origin),
        syncro_id=None if row.syncro_id is None else str(row.syncro_id),
        outlook_id=row.graph_id,
        syncro_version=row.syncro_version,
        outlook_version=row.graph_version,
        base=Appointment.from_json(row.base) if row.base else None,
        intent_at=row.intent_at if row.state is MappingState.INTENT else None,
        released=row.state is MappingState.RELEASED,
    )


class MappingPairStore:
    """One tech's pair rows (Table Storage), read once per run; writes go through at once."""

    def __init__(
        self,
        *,
        tech: int,
        storage: StorageAccount,
        clock: Callable[[], datetime],
        kept_of: Callable[[str], dict[str, Any] | None],
        tally: Tally,
    ) -> None:
        self.tech, self.storage, self.clock, self.tally = tech, storage, clock, tally
        self._kept_of = kept_of  # the Syncro appointment's customer, ticket... as last seen
        self.rows: dict[str, Mapping] = {row.key: row for row in storage.mappings.list_mappings(tech)}

    def now(self) -> datetime:
        return self.clock()

    def pair(self, key: str) -> Pair | None:
        row = self.rows.get(key)
        return pair_of(row) if row is not None else None

    def pairs(self) -> list[Pair]:
        return [pair_of(row) for row in self.rows.values()]

    def claimed(self, side: Side) -> set[str]:
        if side is Side.OUTLOOK:
            return {row.graph_id for row in self.rows.values() if row.graph_id}
        return {str(row.syncro_id) for row in self.rows.values() if row.syncro_id is not None}

    def save(self, pair: Pair, *, state: MappingState) -> None:
        old = self.rows.get(pair.key)
        now = self.clock()
        row = Mapping(
            syncro_user_id=self.tech,
            key=pair.key,
            origin=pair.origin.value,
            state=state,
            synced_at=now,
            intent_at=(pair.intent_at or now) if state is MappingState.INTENT else None,
            syncro_id=None if pair.syncro_id is None else int(pair.syncro_id),
            graph_id=pair.outlook_id,
            syncro_version=pair.syncro_version,
            graph_version=pair.outlook_version,
            base=pair.base.to_json() if pair.base else None,
            # from the Syncro mirror while it holds the appointment, else as the row remembered
            # it (deleted meanwhile): a re-create or a restore brings the whole job back
            syncro_kept=(self._kept_of(pair.syncro_id) if pair.syncro_id else None)
            or (old.syncro_kept if old else None),
            etag=old.etag if old else None,
        )
        mappings = self.storage.mappings
        self.rows[pair.key] = mappings.update_mapping(row) if old else mappings.create_mapping(row)

    def drop(self, key: str) -> None:
        if self.rows.pop(key, None) is not None:
            self.storage.mappings.delete_mapping(self.tech, key)

    def kept(self, key: str) -> dict[str, Any] | None:
        row = self.rows.get(key)
        return row.syncro_kept if row is not None else None

    def bin(
        self, *, side: Side, item_id: str, origin: Side, content: Appointment, kept: dict[str, Any] | None, reason: str
    ) -> str:
        entry = self.storage.recycle_bin.add_entry(
            RecycleEntry(
                syncro_user_id=self.tech,
                entry_id=new_entry_id(self.clock()),
                side=side.value,
                original_id=item_id,
                origin=origin.value,
                content={**content.to_json(), **({"syncro": kept} if kept else {})},
                deleted_at=self.clock(),
                reason=reason,
            )
        )
        return entry.entry_id

    def unbin(self, entry_id: str) -> None:
        self.storage.recycle_bin.delete_entry(self.tech, entry_id)
