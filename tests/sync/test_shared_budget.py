"""The app-wide Syncro budget's decisions (pure) and its shell on an in-memory ledger with ETags.

Instances racing on Table Storage are `tests/realtime/test_shared_budget.py`'s."""

from __future__ import annotations

import threading

import pytest

from storage.errors import ConcurrencyConflict
from storage.syncro_budget import Ledger
from sync.budget import (
    SLOT_SECONDS,
    WINDOW_SLOTS,
    Caller,
    Limits,
    SharedBudget,
    active_callers,
    grantable,
    granted,
    refused,
    seconds_until_free,
    slot_of,
    spending_as,
    status_of,
    window_use,
)
from sync.errors import SyncroBudgetExhausted, SyncroThrottled

LIMITS = Limits.of(100)  # reserves: poll 25, job 25, webhook 10, token 5; pool 35


class MemoryLedger:
    """A ledger row with an ETag, as Table Storage keeps it (a version number stands for the ETag)."""

    def __init__(self) -> None:
        self.ledger, self.version, self.lock = Ledger(), 0, threading.Lock()
        self.writes = 0

    def read(self) -> tuple[Ledger, str | None]:
        with self.lock:
            copy = Ledger.from_json(**self.ledger.to_json())
            return copy, (str(self.version) if self.version else None)

    def write(self, ledger: Ledger, *, etag: str | None) -> None:
        with self.lock:
            if (str(self.version) if self.version else None) != etag:
                raise ConcurrencyConflict("syncrobudget", "budget/syncro")
            self.ledger, self.version = Ledger.from_json(**ledger.to_json()), self.version + 1
            self.writes += 1


class Clock:
    def __init__(self, at: float = 1_000_000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.at += seconds


# -- decisions ----------------------------------------------------------------------------------


def test_a_caller_gets_its_reserve_and_the_pool_but_never_an_active_callers_unused_reserve() -> None:
    alone = grantable("poll", 1000, {}, LIMITS)
    assert alone == 100 - (25 + 10 + 5)  # everything but the others' reserves
    assert grantable("job", 1000, {"poll": 40}, LIMITS) == 25 + 20  # its reserve, and what the poller left of the pool


def test_the_reserves_of_callers_that_have_not_asked_lately_are_lent_out() -> None:
    assert grantable("poll", 1000, {}, LIMITS, active={"poll"}) == 100
    assert grantable("poll", 1000, {}, LIMITS, active={"poll", "webhook"}) == 90  # the webhook asked: its 10 held
    ledger = refused(Ledger(), "webhook", 50, "2026-12-07T20:00:00+00:00")
    assert active_callers(ledger, 50 + WINDOW_SLOTS - 1) == {"webhook"}
    assert active_callers(ledger, 50 + WINDOW_SLOTS) == frozenset()  # a window later it is idle again


def test_a_caller_within_its_reserve_is_served_however_busy_the_others_were() -> None:
    use = {"poll": 60, "job": 25}  # the poller took the whole pool, jobs their reserve
    assert grantable("poll", 1, use, LIMITS) == 0
    assert grantable("job", 1, use, LIMITS) == 0
    assert grantable("webhook", 100, use, LIMITS) == 10
    assert grantable("token", 100, use, LIMITS) == 5


def test_the_limit_holds_whoever_asks() -> None:
    use = {"poll": 25, "job": 25, "webhook": 10, "token": 5}
    for caller in Caller:
        assert grantable(caller.value, 100, {**use, "job": 60}, LIMITS) == 0


def test_grants_leave_the_window_after_64_seconds_and_old_slots_are_dropped() -> None:
    ledger = granted(Ledger(), "poll", 60, 10)
    assert window_use(ledger, 10 + WINDOW_SLOTS - 1) == {"poll": 60}
    assert window_use(ledger, 10 + WINDOW_SLOTS) == {}
    assert list(granted(ledger, "job", 1, 10 + WINDOW_SLOTS).slots) == [10 + WINDOW_SLOTS]


def test_the_wait_is_until_the_slot_whose_expiry_frees_a_request() -> None:
    now = 100 * SLOT_SECONDS + 0.5
    ledger = granted(granted(Ledger(), "poll", 50, 90), "poll", 50, 95)  # the whole limit
    assert grantable("poll", 1, window_use(ledger, slot_of(now)), LIMITS) == 0
    # slot 90's grants leave the window at slot 90 + 32 = 122
    assert seconds_until_free(ledger, "poll", LIMITS, now) == pytest.approx(122 * SLOT_SECONDS - now)


def test_the_status_names_who_waited() -> None:
    ledger = refused(granted(Ledger(), "poll", 60, 10), "job", 11, "2026-12-07T20:00:00+00:00")
    status = status_of(ledger, LIMITS, 11 * SLOT_SECONDS).to_json()
    assert status["used"] == 60 and status["limit"] == 100 and not status["exhausted"]
    assert status["callers"]["job"]["refused_recently"] == 1
    assert status["callers"]["job"]["last_refused_at"] == "2026-12-07T20:00:00+00:00"
    assert status["callers"]["poll"]["used"] == 60


def test_an_unreadable_ledger_reads_as_empty() -> None:
    assert Ledger.from_json("not json", "[]") == Ledger()


# -- the shell ---------------------------------------------------------------------------------


def test_grants_come_in_growing_batches_so_storage_costs_less_than_a_write_a_request() -> None:
    clock, store = Clock(), MemoryLedger()
    budget = SharedBudget(store, 180, clock=clock, sleep=clock.sleep)
    with spending_as(Caller.POLL):
        for _ in range(15):
            budget.acquire()
    assert store.writes == 4  # 1 + 2 + 4 + 8
    assert window_use(store.ledger, slot_of(clock())) == {"poll": 15}


def test_a_small_budget_is_granted_one_request_at_a_time_so_none_lapses() -> None:
    clock, store = Clock(), MemoryLedger()
    budget = SharedBudget(store, 30, clock=clock, sleep=clock.sleep)
    with spending_as(Caller.POLL):
        for _ in range(3):
            budget.acquire()
    assert store.writes == 3
    assert window_use(store.ledger, slot_of(clock())) == {"poll": 3}


def test_the_poller_and_webhook_defer_at_once_and_nothing_is_counted_for_them() -> None:
    clock, store = Clock(), MemoryLedger()
    budget = SharedBudget(store, 20, clock=clock, sleep=clock.sleep)  # nobody else asked: all 20 lent
    with spending_as(Caller.POLL) as spending:
        taken = 0
        with pytest.raises(SyncroBudgetExhausted) as refused:
            while True:
                budget.acquire()
                taken += 1
                clock.at += 0.01
    assert taken == 20 and spending.refusals == 1
    assert isinstance(refused.value, SyncroThrottled) and refused.value.retry_after > 0
    assert clock.at < 1_000_001  # it did not wait
    status = budget.status().to_json()
    assert status["callers"]["poll"]["refused_recently"] == 1


def test_a_job_waits_for_a_request_to_free_up_rather_than_fail() -> None:
    clock, store = Clock(), MemoryLedger()
    store.ledger = granted(Ledger(), "job", 20, slot_of(clock()) - WINDOW_SLOTS + 2)  # leaves in 4 s
    budget = SharedBudget(store, 20, clock=clock, sleep=clock.sleep)
    with spending_as(Caller.JOB) as spending:
        budget.acquire()
    assert spending.refusals == 0
    assert 3 <= clock.at - 1_000_000 <= 5


def test_instances_racing_on_the_ledger_never_grant_past_the_limit() -> None:
    store = MemoryLedger()
    at = 1_000_000.0
    store.ledger = refused(Ledger(), "webhook", slot_of(at), "2026-12-07T20:00:00+00:00")  # it has asked
    budgets = [SharedBudget(store, 40, clock=lambda: at, sleep=lambda s: None) for _ in range(4)]
    granted_count = 0
    lock = threading.Lock()

    def spend(budget: SharedBudget, caller: Caller) -> None:
        nonlocal granted_count
        with spending_as(caller):
            while True:
                try:
                    budget.acquire()
                except SyncroBudgetExhausted:
                    return
                with lock:
                    granted_count += 1

    callers = [Caller.POLL, Caller.WEBHOOK, Caller.POLL, Caller.WEBHOOK]
    threads = [threading.Thread(target=spend, args=(b, c)) for b, c in zip(budgets, callers, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    use = window_use(store.ledger, slot_of(at))
    assert sum(use.values()) <= 40
    assert granted_count <= sum(use.values())  # every request sent was granted in the ledger
    assert use["webhook"] >= 4  # its reserve, however hard the poller pushed
