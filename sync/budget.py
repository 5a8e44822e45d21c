"""The request budget the Syncro poller spends: a token bucket on an injected clock.

Syncro allows 180 requests a minute per IP and answers 429 without ``Retry-After`` beyond that;
everything the app sends to Syncro (poller, sync jobs, webhooks' re-reads) shares those 180, so
the poller keeps to its own share (default 60, a third). The bucket holds at most one minute of
requests and refills continuously, so a run that finds it empty stops and the next run resumes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_REQUESTS_PER_MINUTE = 60  # a third of Syncro's 180: sync jobs and webhooks need the rest


class RequestBudget:
    """``per_minute`` requests a minute, never more than ``per_minute`` at once.

    ``clock`` gives seconds (monotonic); tests pass a fake one. Requests are charged after they
    are sent (``charge``), as the client counts them, retries included: a call whose retries
    overdraw the bucket leaves a debt that the following minute pays, so over time the rate holds.
    """

    def __init__(
        self, per_minute: int = DEFAULT_REQUESTS_PER_MINUTE, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if per_minute < 1:
            raise ValueError("a request budget needs at least one request a minute")
        self.per_minute = per_minute
        self._clock = clock
        self._tokens = float(per_minute)
        self._at = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._at)  # a clock that steps back grants nothing
        self._tokens = min(float(self.per_minute), self._tokens + elapsed * self.per_minute / 60.0)
        self._at = now

    def available(self) -> int:
        """Whole requests that may be sent now (0 when empty or in debt)."""
        with self._lock:
            self._refill()
            return max(0, int(self._tokens + 1e-9))

    def charge(self, count: int) -> None:
        """Record ``count`` requests sent (may go below zero: see the class docstring)."""
        if count < 0:
            raise ValueError("cannot charge a negative number of requests")
        with self._lock:
            self._refill()
            self._tokens -= count

    def seconds_until_available(self) -> float:
        """How long until one request may be sent (0 when one may be sent now)."""
        with self._lock:
            self._refill()
            missing = 1.0 - self._tokens
            return max(0.0, missing * 60.0 / self.per_minute) if missing > 1e-9 else 0.0
