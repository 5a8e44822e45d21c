"""Syncro's rate limit: N requests a minute per client IP, counted on the shared clock.

``fixed`` counts per epoch-aligned minute, as Rack::Attack's throttle does (every request
counts, rejected ones included); ``sliding`` counts the accepted requests of the last 60 s.
"""

from __future__ import annotations

import threading
from collections import deque

from local.sims.control import SimClock

WINDOW_SECONDS = 60.0


class RateLimiter:
    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._fixed: dict[str, tuple[int, int]] = {}  # client -> (window number, count)
        self._sliding: dict[str, deque[float]] = {}

    def reset(self) -> None:
        with self._lock:
            self._fixed.clear()
            self._sliding.clear()

    def check(self, client: str, *, limit: int, window: str) -> float | None:
        """Record one request; None if allowed, else the seconds until the client may retry."""
        now = self._clock.timestamp()
        with self._lock:
            if window == "sliding":
                return self._check_sliding(client, now, limit)
            return self._check_fixed(client, now, limit)

    def _check_fixed(self, client: str, now: float, limit: int) -> float | None:
        number = int(now // WINDOW_SECONDS)
        previous, count = self._fixed.get(client, (number, 0))
        count = count + 1 if previous == number else 1
        self._fixed[client] = (number, count)
        if count <= limit:
            return None
        return (number + 1) * WINDOW_SECONDS - now

    def _check_sliding(self, client: str, now: float, limit: int) -> float | None:
        hits = self._sliding.setdefault(client, deque())
        while hits and hits[0] <= now - WINDOW_SECONDS:
            hits.popleft()
        if len(hits) < limit:
            hits.append(now)
            return None
        return hits[0] + WINDOW_SECONDS - now

    def usage(self) -> dict[str, int]:
        """Requests counted in each client's current window (for ``GET /_sim/rate_limit``)."""
        now = self._clock.timestamp()
        with self._lock:
            fixed = {
                client: count for client, (number, count) in self._fixed.items() if number == int(now // WINDOW_SECONDS)
            }
            sliding = {
                client: sum(1 for hit in hits if hit > now - WINDOW_SECONDS) for client, hits in self._sliding.items()
            }
        return {**fixed, **{client: n for client, n in sliding.items() if n}}
