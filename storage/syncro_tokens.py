"""Per-technician Syncro API tokens, for when Syncro's responses do not say whom an appointment
belongs to (`sync.poller`, ownership "tokens"): each tech's own appointments are listed with their
own token. The bytes arrive already encrypted (`sync.syncro_tokens` encrypts, with the same
cipher and key rotation as the Microsoft token caches)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from storage.table import Tables

_PARTITION = "syncrotoken"


@dataclass(frozen=True)
class SyncroTokenRecord:
    syncro_user_id: int
    encrypted: bytes = b""
    set_at: datetime | None = None
    set_by: str = ""  # "admin" or "tech": who entered it, shown on the pages


class SyncroTokenStore:
    def __init__(self, account: Tables) -> None:
        self._table = account.table("syncrotokens")

    def get_token(self, syncro_user_id: int) -> SyncroTokenRecord:
        """Raises NotFound."""
        entity, _etag = self._table.get(_PARTITION, str(syncro_user_id))
        return _record(entity)

    def list_tokens(self) -> Iterator[SyncroTokenRecord]:
        for entity, _etag in self._table.partition(_PARTITION):
            yield _record(entity)

    def save_token(self, record: SyncroTokenRecord) -> None:
        """Create or replace (the last one entered wins)."""
        self._table.upsert(
            {
                "PartitionKey": _PARTITION,
                "RowKey": str(record.syncro_user_id),
                "encrypted": record.encrypted,
                "set_at": record.set_at,
                "set_by": record.set_by,
            }
        )

    def delete_token(self, syncro_user_id: int) -> None:
        """Succeeds when there is none."""
        self._table.delete(_PARTITION, str(syncro_user_id))


def _record(entity: dict[str, Any]) -> SyncroTokenRecord:
    return SyncroTokenRecord(
        int(entity["RowKey"]), bytes(entity["encrypted"]), entity.get("set_at"), str(entity.get("set_by", ""))
    )
