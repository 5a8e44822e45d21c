"""The Syncro account's time zone, read from Syncro (``GET /settings``) once an hour a process.

One cache for everything that needs the zone: the sync (all-day days, the sync window) and the
ICS feed (the same, per request). The refresh rule, and why:

- A zone read is good for `ZONE_TTL_SECONDS` (an hour): an account's zone almost never changes,
  a feed request or a sync must not cost a Syncro call (the feed answers calendar apps polling
  every few minutes; the sync shares Syncro's request budget), and an admin who does change it
  sees it within the hour without a restart.
- When Syncro fails, the last zone read is kept (a stale zone is far likelier right than none)
  and Syncro is asked again after `ZONE_RETRY_SECONDS`, not on every call, so an outage does not
  add a failing call to every request. With no zone read yet the failure is raised, and raised
  again until the retry time: the sync fails and retries later (it must not place all-day
  events in a guessed zone); the feed answers in UTC meanwhile (`ics.feed.account_zone`).

Entries are per key (the Syncro base URL; one account a process, but tests run several simulated
accounts in one process); `clear` forgets them all (`services.reset`, through the feed's caches).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

ZONE_TTL_SECONDS = 3600.0
ZONE_RETRY_SECONDS = 300.0


@dataclass(frozen=True)
class _Entry:
    zone: ZoneInfo | None
    good_until: float
    error: BaseException | None = None


class AccountZones:
    """The account zones read so far, by key; ``clock`` is monotonic seconds (tests pass their own)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def get(self, key: str, fetch: Callable[[], str]) -> ZoneInfo:
        """The zone for ``key``, calling ``fetch`` (the zone's name) when the one held is older
        than an hour or none is held. Raises what ``fetch`` raised (or an unknown zone name's
        error) when no zone for ``key`` was ever read, until `ZONE_RETRY_SECONDS` after."""
        with self._lock:
            now = self._clock()
            held = self._entries.get(key)
            if held is None or now >= held.good_until:
                try:
                    held = _Entry(ZoneInfo(fetch()), now + ZONE_TTL_SECONDS)
                except Exception as error:
                    held = _Entry(held.zone if held else None, now + ZONE_RETRY_SECONDS, error)
                self._entries[key] = held
            if held.zone is None:
                assert held.error is not None
                raise held.error
            return held.zone

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


ACCOUNT_ZONES = AccountZones()  # the process's one cache
