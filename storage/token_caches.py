"""MSAL token caches, one per technician. The bytes arrive already encrypted (oauth/tokens.py
encrypts); they can outgrow one 64 KiB property, so they are split across several."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from storage.table import pack_bytes, unpack_bytes

if TYPE_CHECKING:
    from collections.abc import Iterator

    from storage.table import Tables

_PARTITION = "tokencache"


@dataclass(frozen=True)
class TokenCacheRecord:
    syncro_user_id: int
    encrypted: bytes
    updated_at: datetime
    etag: str | None = None


class TokenCacheStore:
    def __init__(self, account: Tables) -> None:
        self._table = account.table("tokencaches")

    def get_cache(self, syncro_user_id: int) -> TokenCacheRecord:
        """Raises NotFound."""
        entity, etag = self._table.get(_PARTITION, str(syncro_user_id))
        return _record(entity, etag)

    def list_caches(self) -> Iterator[TokenCacheRecord]:
        """Every stored cache, lazily (key rotation re-encrypts them one by one)."""
        for entity, etag in self._table.partition(_PARTITION):
            yield _record(entity, etag)

    def save_cache(self, record: TokenCacheRecord) -> TokenCacheRecord:
        """Create (``etag`` None) or replace the row read as ``record``; raises ConcurrencyConflict on a lost race."""
        entity = {
            "PartitionKey": _PARTITION,
            "RowKey": str(record.syncro_user_id),
            "updated_at": record.updated_at,
            **pack_bytes("cache", record.encrypted),
        }
        if record.etag is None:
            return replace(record, etag=self._table.create(entity))
        return replace(record, etag=self._table.replace(entity, etag=record.etag))

    def delete_cache(self, syncro_user_id: int) -> None:
        self._table.delete(_PARTITION, str(syncro_user_id))


def _record(entity: dict[str, Any], etag: str) -> TokenCacheRecord:
    return TokenCacheRecord(int(entity["RowKey"]), unpack_bytes(entity, "cache"), entity["updated_at"], etag)
