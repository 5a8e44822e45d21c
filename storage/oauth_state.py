"""OAuth flow state between /oauth/start and /oauth/callback, keyed by MSAL's ``state``.

A state can be taken once: `take_state` deletes it with its ETag, so two callbacks racing with
the same ``state`` cannot both complete the flow.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from storage.errors import ConcurrencyConflict, NotFound
from storage.ids import id_from_property, id_property
from storage.keys import encode_key
from storage.table import pack_bytes, unpack_bytes

if TYPE_CHECKING:
    from storage.table import Tables

_PARTITION = "flow"


@dataclass(frozen=True)
class FlowState:
    state: str
    syncro_user_id: int
    flow: bytes  # the MSAL flow, serialized and encrypted by oauth/
    created_at: datetime
    expires_at: datetime
    etag: str | None = None


class OAuthStateStore:
    def __init__(self, account: Tables) -> None:
        self._table = account.table("oauthstate")
        self._clock = account.clock

    def create_state(self, record: FlowState) -> FlowState:
        entity = {
            "PartitionKey": _PARTITION,
            "RowKey": encode_key(record.state),
            "syncro_user_id": id_property(record.syncro_user_id),
            "created_at": record.created_at,
            "expires_at": record.expires_at,
            **pack_bytes("flow", record.flow),
        }
        return replace(record, etag=self._table.create(entity))

    def take_state(self, state: str) -> FlowState:
        """Return and consume the flow for ``state``. Raises NotFound if unknown, expired or already taken."""
        key = encode_key(state)
        entity, etag = self._table.get(_PARTITION, key)
        if entity.get("taken"):
            raise NotFound(self._table.name, state)
        # A conditional replace, not a delete: Table Storage reports deleting a missing row as
        # success, so two racing callbacks could both "delete" it. Exactly one replace wins.
        try:
            taken_etag = self._table.replace({**entity, "taken": True}, etag=etag)
        except (ConcurrencyConflict, NotFound):
            raise NotFound(self._table.name, state) from None
        self._table.delete(_PARTITION, key, etag=taken_etag)
        record = FlowState(
            state=state,
            syncro_user_id=id_from_property(entity["syncro_user_id"]),
            flow=unpack_bytes(entity, "flow"),
            created_at=entity["created_at"],
            expires_at=entity["expires_at"],
        )
        if record.expires_at <= self._clock():
            raise NotFound(self._table.name, state)
        return record

    def purge_expired(self) -> int:
        """Delete flows that expired unused; returns how many."""
        rows = self._table.query(
            "PartitionKey eq @pk and expires_at lt @now", parameters={"pk": _PARTITION, "now": self._clock()}
        )
        removed = 0
        for entity, etag in rows:
            try:
                self._table.delete(_PARTITION, entity["RowKey"], etag=etag)
                removed += 1
            except ConcurrencyConflict:
                continue
        return removed
