"""The admin log: who did what to which technician, and when; newest first.

Every admin action is recorded here, whether it came through the signed-in admin's pages or a
function-key route for automation (`web.admin_handlers`, `blueprints.audit`), and the admin overview shows the latest.
An entry holds no secret: a Syncro token or feed URL is named, never written.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from storage.ids import id_from_property, id_property

if TYPE_CHECKING:
    from storage.table import Tables

_PARTITION = "log"
_MAX_TICKS = 10**19  # RowKeys sort as text: inverted, zero-padded microseconds put the newest first
_TEXT_LIMIT = 500


@dataclass(frozen=True)
class AdminAction:
    at: datetime
    actor: str  # "Dana Dispatch <dana@…>" for a page, "function key 1a2b3c4d" for automation
    action: str  # "remove", "issue_feed", "sync_now", "set_syncro_token", ...
    syncro_user_id: int | None = None
    detail: str = ""


class AdminLogStore:
    def __init__(self, account: Tables) -> None:
        self._table = account.table("adminlog")

    def record(self, entry: AdminAction) -> None:
        micros = int(entry.at.timestamp() * 1_000_000)
        self._table.create(
            {
                "PartitionKey": _PARTITION,
                # A random tail: two actions in one microsecond are both kept.
                "RowKey": f"{_MAX_TICKS - micros:020d}-{secrets.token_hex(4)}",
                "at": entry.at,
                "actor": entry.actor[:_TEXT_LIMIT],
                "action": entry.action[:_TEXT_LIMIT],
                "syncro_user_id": id_property(entry.syncro_user_id) if entry.syncro_user_id is not None else "",
                "detail": entry.detail[:_TEXT_LIMIT],
            }
        )

    def latest(self, limit: int = 50) -> list[AdminAction]:
        entries = []
        for entity, _ in self._table.partition(_PARTITION):
            raw = entity.get("syncro_user_id") or ""
            entries.append(
                AdminAction(
                    at=entity["at"],
                    actor=str(entity.get("actor", "")),
                    action=str(entity.get("action", "")),
                    syncro_user_id=id_from_property(raw) if raw else None,
                    detail=str(entity.get("detail", "")),
                )
            )
            if len(entries) >= limit:
                break
        return entries
