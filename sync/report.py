"""What one sync of one tech did (`SyncReport`), for the job's status row, the settings page and
the admin API (``to_json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class SyncStatus(StrEnum):
    """How a sync ended; the values are what status rows and the API's JSON hold."""

    SYNCED = "synced"
    NOT_LINKED = "not_linked"
    INACTIVE = "inactive"  # paused or needs relinking
    BUSY = "busy"  # another instance holds the tech's lease
    UNLINKED = "unlinked"  # an unlink finished
    FAILED = "failed"  # see ``errors``


@dataclass
class SyncReport:
    """What one sync of one tech did; ``status`` is a `SyncStatus`."""

    syncro_user_id: int
    status: SyncStatus = SyncStatus.SYNCED
    detail: str = ""
    created: dict[str, int] = field(default_factory=lambda: {"syncro": 0, "outlook": 0})
    updated: dict[str, int] = field(default_factory=lambda: {"syncro": 0, "outlook": 0})
    deleted: dict[str, int] = field(default_factory=lambda: {"syncro": 0, "outlook": 0})
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"side", "id", "reason", "summary"}
    errors: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # for the tech: e.g. a shared job kept
    rounds: int = 0
    full_round: bool = False  # the Outlook side was read whole (first sync, new day, expired link)

    @property
    def writes(self) -> int:
        return sum(self.created.values()) + sum(self.updated.values()) + sum(self.deleted.values())

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "syncro_user_id": str(self.syncro_user_id)}
