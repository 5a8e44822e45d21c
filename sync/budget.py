"""Syncro's request budgets.

- `SharedBudget`: the app's one budget (``SYNCRO_REQUESTS_PER_MINUTE``), shared by every
  instance and every caller through one ledger row in Table Storage, with a reserved share per
  caller. `sync.syncro.SyncroClient` asks it before every request. Decisions are the pure
  functions below (`grantable`, `seconds_until_free`, ...); docs/budget.md says why each number.
- `RequestBudget`: a token bucket in one process, on an injected clock: the poller's own cap
  (``SYNCRO_POLL_REQUESTS_PER_MINUTE``) and each instance's webhook burst guard.

Syncro allows 180 requests a minute per account and answers 429 without ``Retry-After`` beyond
that, for this app and the MSP's other integrations together.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from storage.syncro_budget import Ledger

log = logging.getLogger("sync.budget")

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


# -- one budget for the whole app: every instance, every caller ---------------------------------
#
# Syncro counts 180 requests a minute for the account's address, whoever sends them. Each process
# keeping its own bucket multiplies the budget by the number of instances, so the app's requests
# are granted from one ledger in Table Storage (`storage.syncro_budget`), written with ETags.
# The decisions below are pure functions over that ledger; `SharedBudget` is the shell around
# them. docs/budget.md gives the reasons for each number.

SLOT_SECONDS = 2  # grants are counted in 2-s slots of UTC time (epoch seconds // 2)
# A grant is spent within its own slot (checked on the local clock), so a request arrives within
# [slot start, slot end + network delay). Any 60-s window of arrivals then meets at most 32
# consecutive slots (60/2, one for a partial slot at each end, while delay and clock skew stay
# under one slot): counting the last 32 slots (64 s) keeps every 60-s window within the limit.
WINDOW_SLOTS = 32
MAX_BATCH = 8  # most requests granted in one storage round trip (unused ones lapse with their slot)
DEFAULT_SHARED_PER_MINUTE = 150  # under Syncro's 180: room for clock skew and the MSP's other integrations


class Caller(enum.StrEnum):
    """Who spends a request; each has a reserved share (`RESERVED_SHARES`)."""

    POLL = "poll"  # the poll timer's window scans
    JOB = "job"  # sync jobs, "Sync now", admin routes: anything not labelled otherwise
    WEBHOOK = "webhook"  # the Syncro webhook's re-read and owner probes
    TOKEN = "token"  # checking a technician's own Syncro token (GET /me)


# Reserved shares of the limit: a caller that has asked within the window always gets its reserve,
# whoever else is busy. The rest (35 %) is a pool any caller may borrow, and so are the reserves
# of callers that have not asked for 64 s (idle: a quiet night's webhook share serves the poller).
# Once a caller asks, even if refused, its unused reserve is held for it: a webhook burst or a job
# backlog gets its share as soon as the requests lent out leave the window.
RESERVED_SHARES: Mapping[Caller, float] = {
    Caller.POLL: 0.25,
    Caller.JOB: 0.25,
    Caller.WEBHOOK: 0.10,
    Caller.TOKEN: 0.05,
}

# How long each caller may wait for a request before it defers (`SyncroBudgetExhausted`): the
# poller stops its run and the webhook leaves the work to the poller at once; a job waits a while
# (the queue would otherwise retry it within 30 s anyway); a token check is a person waiting.
WAIT_SECONDS: Mapping[Caller, float] = {Caller.POLL: 0.0, Caller.WEBHOOK: 0.0, Caller.JOB: 20.0, Caller.TOKEN: 5.0}


@dataclass(frozen=True)
class Limits:
    """The limit over `WINDOW_SLOTS` slots and each caller's reserve within it."""

    per_window: int
    reserves: Mapping[str, int]

    @classmethod
    def of(cls, per_minute: int, shares: Mapping[Caller, float] = RESERVED_SHARES) -> Limits:
        if per_minute < 1:
            raise ValueError("a request budget needs at least one request a minute")
        return cls(per_minute, {str(caller): int(per_minute * share) for caller, share in shares.items()})


def slot_of(timestamp: float) -> int:
    return int(timestamp // SLOT_SECONDS)


def window_use(ledger: Ledger, slot: int) -> dict[str, int]:
    """Requests granted per caller in the window that ends with ``slot``."""
    use: dict[str, int] = {}
    for at, counts in ledger.slots.items():
        if slot - WINDOW_SLOTS < at <= slot:
            for caller, count in counts.items():
                use[caller] = use.get(caller, 0) + count
    return use


def grantable(
    caller: str, want: int, use: Mapping[str, int], limits: Limits, active: Collection[str] | None = None
) -> int:
    """How many of ``want`` requests ``caller`` may have now: within its own reserve, or from what
    no other ``active`` caller's unused reserve holds (default: every caller counts as active);
    never past the limit."""
    total = sum(use.values())
    free = limits.per_window - total
    own = limits.reserves.get(caller, 0) - use.get(caller, 0)
    held_for_others = sum(
        max(0, reserve - use.get(other, 0))
        for other, reserve in limits.reserves.items()
        if other != caller and (active is None or other in active)
    )
    return max(0, min(want, free, max(own, free - held_for_others)))


def active_callers(ledger: Ledger, slot: int) -> frozenset[str]:
    """Callers granted or refused a request in the window that ends with ``slot``."""
    asked = {caller for caller, count in window_use(ledger, slot).items() if count > 0}
    refused_lately = {
        caller
        for caller, last in ledger.refused.items()
        if slot - WINDOW_SLOTS < int(last.get("slot", -(10**12))) <= slot
    }
    return frozenset(asked | refused_lately)


def seconds_until_free(ledger: Ledger, caller: str, limits: Limits, now: float) -> float:
    """When the window will have dropped enough old grants for ``caller`` to get one request."""
    slot = slot_of(now)
    for later in range(slot + 1, slot + WINDOW_SLOTS + 1):
        active = active_callers(ledger, later) | {caller}
        if grantable(caller, 1, window_use(ledger, later), limits, active) >= 1:
            return max(0.0, later * SLOT_SECONDS - now)
    return float(WINDOW_SLOTS * SLOT_SECONDS)  # not reached while the limit is at least 1


def granted(ledger: Ledger, caller: str, count: int, slot: int) -> Ledger:
    """The ledger with ``count`` more requests for ``caller`` in ``slot``, slots out of the window dropped."""
    slots = {at: dict(counts) for at, counts in ledger.slots.items() if at > slot - WINDOW_SLOTS}
    slots.setdefault(slot, {})[caller] = slots.get(slot, {}).get(caller, 0) + count
    return Ledger(slots, dict(ledger.refused))


def refused(ledger: Ledger, caller: str, slot: int, at: str) -> Ledger:
    """The ledger recording that ``caller`` was refused in ``slot`` (counted once per slot and
    process, so waiting costs few writes)."""
    last = ledger.refused.get(caller, {})
    recent = int(last.get("count", 0)) if slot - WINDOW_SLOTS < int(last.get("slot", -(10**12))) else 0
    gone = {**ledger.refused, caller: {"slot": slot, "count": recent + 1, "at": at}}
    slots = {at_: counts for at_, counts in ledger.slots.items() if at_ > slot - WINDOW_SLOTS}
    return Ledger(slots, gone)


def next_batch(previous: int, *, used_all: bool, most: int = MAX_BATCH) -> int:
    """Requests to ask for next time: twice as many after a batch used up within its slot (a busy
    caller pays fewer storage round trips), half after one whose rest lapsed (less waste)."""
    return min(most, previous * 2) if used_all else max(1, previous // 2)


def largest_batch(per_minute: int) -> int:
    """A batch's rest lapses with its slot: a small budget cannot afford that, so batches stay
    within a twentieth of the limit (one at a time under 40 a minute)."""
    return max(1, min(MAX_BATCH, per_minute // 20))


@dataclass(frozen=True)
class CallerStatus:
    caller: str
    used: int  # requests granted in the last WINDOW_SLOTS slots
    reserved: int
    refused_recently: int  # refusals (slot-counted) within the window
    last_refused_at: str | None


@dataclass(frozen=True)
class BudgetStatus:
    """What the shared budget looks like now, for health details, logs and benchmarks."""

    limit: int
    window_seconds: int
    used: int
    callers: tuple[CallerStatus, ...]

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit

    def to_json(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "window_seconds": self.window_seconds,
            "used": self.used,
            "exhausted": self.exhausted,
            "callers": {c.caller: {k: v for k, v in asdict(c).items() if k != "caller"} for c in self.callers},
        }


def status_of(ledger: Ledger, limits: Limits, now: float) -> BudgetStatus:
    slot = slot_of(now)
    use = window_use(ledger, slot)
    callers = []
    for caller in Caller:
        last = ledger.refused.get(caller.value, {})
        recent = slot - WINDOW_SLOTS < int(last.get("slot", -(10**12)))
        callers.append(
            CallerStatus(
                caller.value,
                use.get(caller.value, 0),
                limits.reserves.get(caller.value, 0),
                int(last.get("count", 0)) if recent else 0,
                last.get("at"),
            )
        )
    return BudgetStatus(limits.per_window, WINDOW_SLOTS * SLOT_SECONDS, sum(use.values()), tuple(callers))


# -- the shell -----------------------------------------------------------------------------------


@dataclass
class Spending:
    """Who is spending inside a `spending_as` block, and whether the budget sent them away
    (so the block's owner can defer its work: a job re-queues itself, the poll says why it stopped)."""

    caller: Caller
    refusals: int = 0
    retry_after: float = 0.0


_spending: contextvars.ContextVar[Spending | None] = contextvars.ContextVar("syncro_spending", default=None)


@contextlib.contextmanager
def spending_as(caller: Caller) -> Iterator[Spending]:
    """Requests sent to Syncro inside this block are charged to ``caller`` (the entry points of the
    poll timer, the webhook, the sync job and the token check say who they are; anything else is
    charged as sync work). Yields the block's `Spending`."""
    spending = Spending(caller)
    token = _spending.set(spending)
    try:
        yield spending
    finally:
        _spending.reset(token)


def current_caller() -> Caller:
    spending = _spending.get()
    return spending.caller if spending is not None else Caller.JOB


class LedgerStore(Protocol):
    """Where the ledger lives (`storage.syncro_budget.SyncroBudgetStore`)."""

    def read(self) -> tuple[Ledger, str | None]:
        """The ledger and its ETag (None: no row yet)."""
        ...

    def write(self, ledger: Ledger, *, etag: str | None) -> None:
        """Create (etag None) or replace on ``etag``; raises storage.errors.ConcurrencyConflict when
        another instance wrote first."""
        ...


@dataclass
class _Lease:
    slot: int
    size: int
    left: int


class SharedBudget:
    """The app-wide Syncro budget: ``acquire`` before every request sent (`sync.syncro.SyncroClient`
    calls it before each attempt, retries included).

    A process asks the ledger for a batch of requests at a time (`next_batch`) and spends them
    within their slot; storage costs at most two round trips per batch. ``clock`` gives epoch
    seconds (UTC wall time: instances agree on slots as far as their clocks agree), ``sleep``
    waits; both are seams for tests.
    """

    ATTEMPTS = 12  # ETag races before a grant gives up for now

    def __init__(
        self,
        store: LedgerStore,
        per_minute: int = DEFAULT_SHARED_PER_MINUTE,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        waits: Mapping[Caller, float] = WAIT_SECONDS,
    ) -> None:
        self.limits = Limits.of(per_minute)
        self._most = largest_batch(per_minute)
        self._store, self._clock, self._sleep, self._waits = store, clock, sleep, waits
        self._lock = threading.Lock()
        self._leases: dict[str, _Lease] = {}
        self._refusal_slot: dict[str, int] = {}

    def acquire(self, caller: Caller | None = None) -> None:
        """Take one request for ``caller`` (default: `current_caller`), waiting up to its
        `WAIT_SECONDS`. Raises SyncroBudgetExhausted (nothing may be sent; ``retry_after`` says
        when to try again) and StorageError."""
        from sync.errors import SyncroBudgetExhausted

        who = caller or current_caller()
        deadline = self._clock() + self._waits.get(who, 0.0)
        while True:
            if self._take_local(who.value):
                return
            wait = self._grant(who.value)
            if wait is None:
                continue  # a batch was granted: take from it
            now = self._clock()
            if now + wait > deadline:
                spending = _spending.get()
                if spending is not None:
                    spending.refusals += 1
                    spending.retry_after = max(spending.retry_after, wait)
                log.info(
                    "Syncro budget exhausted: %s defers (%d a minute shared by every instance); "
                    "a request frees up in %.0f s",
                    who.value,
                    self.limits.per_window,
                    wait,
                    extra={"budget_caller": who.value, "retry_after": round(wait, 1)},
                )
                raise SyncroBudgetExhausted(
                    None,
                    None,
                    f"the app's shared Syncro budget has no request left for {who.value} now",
                    retry_after=max(wait, 0.1),
                )
            self._sleep(max(wait, 0.05))

    def status(self) -> BudgetStatus:
        """The ledger now (one storage read). Raises StorageError."""
        ledger, _ = self._store.read()
        return status_of(ledger, self.limits, self._clock())

    def _take_local(self, caller: str) -> bool:
        slot = slot_of(self._clock())
        with self._lock:
            lease = self._leases.get(caller)
            if lease is not None and lease.slot == slot and lease.left > 0:
                lease.left -= 1
                return True
            return False

    def _batch(self, caller: str, slot: int) -> int:
        with self._lock:
            lease = self._leases.get(caller)
        if lease is None:
            return 1
        if lease.slot == slot:  # used up within its slot
            return next_batch(lease.size, used_all=True, most=self._most)
        return next_batch(lease.size, used_all=lease.left == 0, most=self._most)

    def _grant(self, caller: str) -> float | None:
        """One ETag round: None when a batch was granted (now in the local lease), else the
        seconds until one may be."""
        from storage.errors import ConcurrencyConflict

        for _ in range(self.ATTEMPTS):
            now = self._clock()
            slot = slot_of(now)
            ledger, etag = self._store.read()
            want = self._batch(caller, slot)
            active = active_callers(ledger, slot) | {caller}
            count = grantable(caller, want, window_use(ledger, slot), self.limits, active)
            try:
                if count > 0:
                    self._store.write(granted(ledger, caller, count, slot), etag=etag)
                    with self._lock:
                        self._leases[caller] = _Lease(slot, count, count)
                    return None
                wait = seconds_until_free(ledger, caller, self.limits, now)
                if self._refusal_slot.get(caller) != slot:  # recorded once per slot, for the status
                    self._store.write(refused(ledger, caller, slot, _iso(now)), etag=etag)
                    self._refusal_slot[caller] = slot
                return wait
            except ConcurrencyConflict:
                continue  # another instance wrote first: read again
        return 0.05 + random.random() * 0.2  # contended: try again shortly


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
