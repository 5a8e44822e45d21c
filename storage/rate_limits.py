"""Rate limits for actions a signed-in person can repeat: a fixed window per key, in Table Storage
so every instance counts the same attempts (optimistic concurrency on the row's ETag).

Used where one click costs a call to Syncro or a whole sync (`web.tech_actions`: checking a Syncro
token, "Sync now"); it is not the Syncro request budget.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from storage.errors import ConcurrencyConflict
from storage.keys import encode_key

if TYPE_CHECKING:
    from storage.table import Entity, Tables

_PARTITION = "limit"
_ATTEMPTS = 8


class RateLimitStore:
    def __init__(self, account: Tables) -> None:
        self._table = account.table("ratelimits")
        self._clock = account.clock

    def allow(self, key: str, *, limit: int, window: timedelta) -> bool:
        """Count one attempt under ``key``; False (and nothing counted) once ``limit`` attempts
        fell in the current window, which starts at the first attempt after the last one ended."""
        row = encode_key(key)

        def counted(current: Entity | None) -> tuple[Entity | None, bool]:
            now = self._clock()
            if current is None:
                return self._entity(row, now, 1), True
            started, count = current["window_start"], int(current.get("count", 0))
            if now - started >= window:
                started, count = now, 0
            if count >= limit:
                return None, False
            return self._entity(row, started, count + 1), True

        try:
            return self._table.update(_PARTITION, row, counted, attempts=_ATTEMPTS)[0]
        except ConcurrencyConflict:
            return False  # contended this hard, the attempt waits for a quieter moment

    def forget(self, key: str) -> None:
        """Start counting ``key`` afresh (e.g. after a token check that succeeded)."""
        self._table.delete(_PARTITION, encode_key(key))

    def _entity(self, row: str, started: object, count: int) -> dict[str, object]:
        return {"PartitionKey": _PARTITION, "RowKey": row, "window_start": started, "count": count}
