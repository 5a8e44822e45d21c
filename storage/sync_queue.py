"""The sync-job queue: one message asks for one technician to be synced.

Messages are base64 JSON, as the Functions queue trigger decodes them by default. Delivery is
at least once, so a job must be safe to run twice (the engine is idempotent; the lease
serialises).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from storage.table import translated_errors

if TYPE_CHECKING:
    from storage.account import StorageAccount


@dataclass(frozen=True)
class SyncJob:
    syncro_user_id: int
    reason: str  # "graph-notification", "syncro-notification", "reconcile", "admin", ...
    requested_at: str  # ISO 8601 UTC

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SyncJob:
        """Raises ValueError on anything that is not a sync job."""
        try:
            data = json.loads(text)
            return cls(int(data["syncro_user_id"]), str(data["reason"]), str(data["requested_at"]))
        except (KeyError, TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"not a sync job: {error}") from None


class SyncQueue:
    def __init__(self, account: StorageAccount) -> None:
        self._account = account
        self.name = account.sync_queue_name

    def enqueue(self, job: SyncJob, *, delay_seconds: int = 0) -> None:
        with translated_errors(self.name, "(send)"):
            self._account.queue(self.name).send_message(job.to_json(), visibility_timeout=delay_seconds or None)

    def depth(self) -> int:
        """Approximate number of messages waiting (Azure's own estimate)."""
        with translated_errors(self.name, "(properties)"):
            return self._account.queue(self.name).get_queue_properties().approximate_message_count

    def poison_depth(self) -> int:
        with translated_errors(self.name, "(properties)"):
            return self._account.queue(f"{self.name}-poison").get_queue_properties().approximate_message_count
