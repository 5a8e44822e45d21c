"""Syncro's rate limit: N requests a minute per client IP, counted on the shared clock.

``fixed`` counts per epoch-aligned minute, as Rack::Attack's throttle does (every request
counts, rejected ones included); ``sliding`` counts the accepted requests of the last 60 s.

Whatever the window, every API request's arrival is kept (the last `ARRIVALS_KEPT`), so a test
can ask how many arrived in the busiest 60 s of any alignment (`busiest_minute`), which is what
an app's own budget must keep under, whichever way Syncro counts.
"""

from __future__ import annotations

import threading
from collections import deque

from local.sims.control import SimClock

WINDOW_SECONDS = 60.0
ARRIVALS_KEPT = 100_000


def busiest_minute(arrivals: list[float]) -> tuple[int, float | None]:
    """The most arrivals (timestamps, sorted) within any 60 s ``[t, t + 60)``, and the first such ``t``."""
    best, start, at = 0, 0, None
    for end, moment in enumerate(arrivals):
        while arrivals[start] <= moment - WINDOW_SECONDS:
            start += 1
        if end - start + 1 > best:
            best, at = end - start + 1, arrivals[start]
    return best, at


class RateLimiter:
    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._fixed: dict[str, tuple[int, int]] = {}  # client -> (window number, count)
        self._sliding: dict[str, deque[float]] = {}
        self._arrivals: deque[float] = deque(maxlen=ARRIVALS_KEPT)

    def reset(self) -> None:
        with self._lock:
            self._fixed.clear()
            self._sliding.clear()
            self._arrivals.clear()

    def check(self, client: str, *, limit: int, window: str) -> float | None:
        """Record one request; None if allowed, else the seconds until the client may retry."""
        now = self._clock.timestamp()
        with self._lock:
            self._arrivals.append(now)
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

    def busiest(self) -> tuple[int, int, float | None]:
        """Requests arrived (all clients, kept ones), and `busiest_minute` over them."""
        with self._lock:
            arrivals = sorted(self._arrivals)
        return (len(arrivals), *busiest_minute(arrivals))

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
