"""ICS feed tokens. Only a SHA-256 of each token is stored: a leaked table cannot be turned
into working feed URLs. Lookup is by hash, so no secret comparison happens in Python."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from storage.ids import id_from_property, id_property

if TYPE_CHECKING:
    from collections.abc import Iterator

    from storage.table import Entity, Tables

_PARTITION = "feed"


def hash_feed_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FeedToken:
    token_hash: str
    syncro_user_id: int
    created_at: datetime
    revoked_at: datetime | None = None
    etag: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _to_entity(token: FeedToken) -> Entity:
    return {
        "PartitionKey": _PARTITION,
        "RowKey": token.token_hash,
        "syncro_user_id": id_property(token.syncro_user_id),
        "created_at": token.created_at,
        "revoked_at": token.revoked_at,
    }


def _from_entity(entity: Entity, etag: str) -> FeedToken:
    return FeedToken(
        token_hash=entity["RowKey"],
        syncro_user_id=id_from_property(entity["syncro_user_id"]),
        created_at=entity["created_at"],
        revoked_at=entity.get("revoked_at"),
        etag=etag,
    )


class FeedTokenStore:
    def __init__(self, account: Tables) -> None:
        self._table = account.table("feedtokens")

    def get_by_token(self, token: str) -> FeedToken:
        """The record of a presented token; raises NotFound."""
        return _from_entity(*self._table.get(_PARTITION, hash_feed_token(token)))

    def list_for_tech(self, syncro_user_id: int) -> Iterator[FeedToken]:
        rows = self._table.query(
            "PartitionKey eq @pk and syncro_user_id eq @tech",
            parameters={"pk": _PARTITION, "tech": id_property(syncro_user_id)},
        )
        for entity, etag in rows:
            yield _from_entity(entity, etag)

    def techs_with_a_feed(self) -> set[int]:
        """The techs holding an active feed URL, in one query (the admin overview)."""
        rows = self._table.partition(_PARTITION, select=["syncro_user_id", "revoked_at"])
        return {id_from_property(entity["syncro_user_id"]) for entity, _ in rows if entity.get("revoked_at") is None}

    def create_token(self, token: str, *, syncro_user_id: int, created_at: datetime) -> FeedToken:
        record = FeedToken(hash_feed_token(token), syncro_user_id, created_at)
        return replace(record, etag=self._table.create(_to_entity(record)))

    def revoke(self, record: FeedToken, *, at: datetime) -> FeedToken:
        """Mark revoked; raises ConcurrencyConflict if the record changed since it was read."""
        if record.etag is None:
            raise ValueError("revoke needs the token record as read (with its etag)")
        revoked = replace(record, revoked_at=at)
        return replace(revoked, etag=self._table.replace(_to_entity(revoked), etag=record.etag))
