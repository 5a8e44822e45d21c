"""Conflicts the sync settled (the same field changed on both sides), kept so the settings page
can tell the tech which version was kept. Newest first; only the last `KEEP` per tech."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from storage.errors import NotFound

if TYPE_CHECKING:
    from collections.abc import Iterator

    from storage.table import Tables

KEEP = 20
_FAR = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ConflictRecord:
    syncro_user_id: int
    at: datetime
    fields: tuple[str, ...]  # neutral field names (summary, start, location, ...)
    winner: str  # "syncro" or "outlook": whose value was kept
    summary: str  # the appointment's title after the sync, to name it on the page


def _row_key(record: ConflictRecord, pair_key: str) -> str:
    # Microseconds to the far future: row keys sort ascending, so the newest comes first.
    remaining = int((_FAR - record.at).total_seconds() * 1_000_000)
    return f"{remaining:020d}-{hashlib.sha256(pair_key.encode()).hexdigest()[:12]}"


class ConflictStore:
    def __init__(self, account: Tables) -> None:
        self._table = account.table("conflicts")

    def add(self, record: ConflictRecord, *, pair_key: str) -> None:
        entity = {
            "PartitionKey": str(record.syncro_user_id),
            "RowKey": _row_key(record, pair_key),
            "at": record.at,
            "fields": json.dumps(list(record.fields)),
            "winner": record.winner,
            "summary": record.summary[:500],
        }
        self._table.upsert(entity)
        for old, _ in list(self._table.partition(str(record.syncro_user_id)))[KEEP:]:
            try:
                self._table.delete(old["PartitionKey"], old["RowKey"])
            except NotFound:
                continue

    def recent(self, syncro_user_id: int, *, limit: int = 5) -> Iterator[ConflictRecord]:
        for count, (entity, _) in enumerate(self._table.partition(str(syncro_user_id))):
            if count >= limit:
                return
            yield ConflictRecord(
                syncro_user_id=syncro_user_id,
                at=entity["at"],
                fields=tuple(json.loads(entity["fields"])),
                winner=entity["winner"],
                summary=entity.get("summary", ""),
            )
