"""Races: two writers on one row, two instances on one lease, two callbacks on one OAuth state."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest

from storage import ConcurrencyConflict, LeaseHeld, NotFound, StorageAccount
from storage.leases import KeptLease
from storage.oauth_state import FlowState
from tests.storage.test_tables import make_link


def race(count: int, action: Callable[[int], object]) -> tuple[list[object], list[BaseException]]:
    """Run ``action(i)`` on ``count`` threads released together; return results and errors."""
    barrier = threading.Barrier(count)
    results: list[object] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        barrier.wait()
        try:
            outcome = action(index)
            with lock:
                results.append(outcome)
        except BaseException as error:  # collected for the assertions
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results, errors


def test_two_writers_of_one_row_exactly_one_wins(account: StorageAccount) -> None:
    account.links.create_link(make_link())
    first_read = account.links.get_link(7)
    second_read = account.links.get_link(7)

    results, errors = race(
        2, lambda i: account.links.update_link((first_read, second_read)[i].with_changes(calendar_name=f"writer {i}"))
    )

    assert len(results) == 1 and len(errors) == 1
    assert isinstance(errors[0], ConcurrencyConflict)
    assert account.links.get_link(7).calendar_name == results[0].calendar_name


def test_sequential_stale_write_is_refused(account: StorageAccount) -> None:
    account.links.create_link(make_link())
    stale = account.links.get_link(7)
    account.links.update_link(stale.with_changes(two_way=False))
    with pytest.raises(ConcurrencyConflict):
        account.links.update_link(stale.with_changes(calendar_name="lost update"))
    assert account.links.get_link(7).calendar_name == "Calendar"


def test_lease_cannot_be_taken_until_it_expires(account: StorageAccount, clock) -> None:
    held = account.leases.acquire("tech-7", holder="instance-a", duration=timedelta(seconds=60))
    clock.advance(seconds=59)
    with pytest.raises(LeaseHeld) as refused:
        account.leases.acquire("tech-7", holder="instance-b", duration=timedelta(seconds=60))
    assert refused.value.holder == "instance-a" and refused.value.expires_at == held.expires_at

    clock.advance(seconds=2)
    taken = account.leases.acquire("tech-7", holder="instance-b", duration=timedelta(seconds=60))
    assert taken.holder == "instance-b"
    # The old holder learns it lost the lease when it tries to renew, and its release is harmless.
    with pytest.raises(ConcurrencyConflict):
        account.leases.renew(held, duration=timedelta(seconds=60))
    account.leases.release(held)
    with pytest.raises(LeaseHeld):
        account.leases.acquire("tech-7", holder="instance-a", duration=timedelta(seconds=60))


def test_lease_renew_and_release(account: StorageAccount, clock) -> None:
    held = account.leases.acquire("tech-7", holder="a", duration=timedelta(seconds=30))
    clock.advance(seconds=25)
    renewed = account.leases.renew(held, duration=timedelta(seconds=30))
    clock.advance(seconds=25)  # past the first expiry, inside the renewed one
    with pytest.raises(LeaseHeld):
        account.leases.acquire("tech-7", holder="b", duration=timedelta(seconds=30))
    account.leases.release(renewed)
    assert account.leases.acquire("tech-7", holder="b", duration=timedelta(seconds=30)).holder == "b"


def test_racing_instances_on_a_free_lease_exactly_one_wins(account: StorageAccount) -> None:
    results, errors = race(
        4, lambda i: account.leases.acquire("tech-9", holder=f"instance-{i}", duration=timedelta(seconds=60))
    )
    assert len(results) == 1
    assert len(errors) == 3 and all(isinstance(e, ConcurrencyConflict) for e in errors)


def test_racing_callbacks_on_one_oauth_state_exactly_one_completes(account: StorageAccount, clock) -> None:
    account.oauth_states.create_state(FlowState("s", 7, b"flow", clock(), clock() + timedelta(minutes=10)))
    results, errors = race(3, lambda i: account.oauth_states.take_state("s"))
    assert len(results) == 1
    assert len(errors) == 2 and all(isinstance(e, NotFound) for e in errors)


def test_racing_read_modify_writes_each_count_once(account: StorageAccount) -> None:
    """`Table.update` (session versions, rate limits, job status): six writers adding one to the
    same row, released together, leave it at six; none is lost to another's write."""
    table = account.table("sessionversions")

    def add_one(_: int) -> int:
        def bumped(current: dict | None) -> tuple[dict, int]:
            count = int((current or {}).get("count", 0)) + 1
            return {"PartitionKey": "p", "RowKey": "r", "count": count}, count

        return table.update("p", "r", bumped, attempts=20)[0]

    results, errors = race(6, add_one)
    assert errors == []
    assert sorted(results) == [1, 2, 3, 4, 5, 6]
    assert table.get("p", "r")[0]["count"] == 6


def test_a_row_that_keeps_changing_gives_up_with_a_conflict_not_a_type_error(account: StorageAccount) -> None:
    """Every read is overtaken by another writer: after its attempts, `update` says so with
    ConcurrencyConflict naming the row (the session-version bump used to raise a TypeError here)."""
    table = account.table("sessionversions")
    table.create({"PartitionKey": "p", "RowKey": "r", "count": 0})

    def overtaken(current: dict | None) -> tuple[dict, None]:
        entity, _ = table.get("p", "r")
        table.upsert({**entity, "count": int(entity["count"]) + 1})  # another instance writes first
        return {"PartitionKey": "p", "RowKey": "r", "count": -1}, None

    with pytest.raises(ConcurrencyConflict, match="p/r"):
        table.update("p", "r", overtaken, attempts=3)
    assert table.get("p", "r")[0]["count"] == 3


def _version(account: StorageAccount, minute: int) -> object:
    from datetime import UTC, datetime

    from storage.mirror import MirrorEntry

    marker = f"2026-12-07T10:{minute:02d}:00.000-05:00"
    appointment = {"id": 2**33, "summary": f"version {minute}", "updated_at": marker}
    return MirrorEntry(7, 2**33, marker, f"hash-{minute}", appointment, datetime.now(UTC))


def test_a_poll_that_listed_before_a_sync_wrote_does_not_put_the_older_version_back(account: StorageAccount) -> None:
    """The race `MirrorStore.put_entry` closes: a poll lists version 1, a sync updates the
    appointment (version 2) and records it, then the poll records what it listed. The mirror
    keeps version 2 (unconditional writes put version 1 back: the next poll then took the sync's
    own write for a dispatcher's edit, and the feed showed the old text)."""
    account.mirror.put_entry(_version(account, 1))
    listed = _version(account, 1)
    account.mirror.put_entry(_version(account, 2))  # the sync's write
    kept = account.mirror.put_entry(listed)  # the poll's, late
    assert kept.updated_at.startswith("2026-12-07T10:02")
    assert account.mirror.get_entry(7, 2**33).appointment["summary"] == "version 2"


def test_racing_mirror_writers_leave_the_newest_version(account: StorageAccount) -> None:
    versions = [_version(account, minute) for minute in range(1, 7)]
    _, errors = race(len(versions), lambda i: account.mirror.put_entry(versions[i]))
    assert errors == []
    assert account.mirror.get_entry(7, 2**33).appointment["summary"] == "version 6"


def test_the_same_version_is_not_written_twice(account: StorageAccount) -> None:
    first = account.mirror.put_entry(_version(account, 3))
    again = account.mirror.put_entry(_version(account, 3))
    assert again.etag == first.etag  # no write: a fragment the feed attached stays


# -- a kept lease: renewed while its holder works, free soon after the holder dies ---------------


def _expiry(account: StorageAccount, name: str) -> object:
    return account.leases.read(name).expires_at


def test_a_kept_lease_outlives_its_duration_while_its_holder_works(account: StorageAccount, clock) -> None:
    held = account.leases.acquire("sync:7", holder="a", duration=timedelta(seconds=60))
    kept = KeptLease(account.leases, held, timedelta(seconds=60))
    try:
        for _ in range(3):  # three minutes of work, a beat every 40 s (the thread's, or between rounds)
            clock.advance(seconds=40)
            assert kept.beat()
        with pytest.raises(LeaseHeld):
            account.leases.acquire("sync:7", holder="b", duration=timedelta(seconds=60))
    finally:
        kept.release()
    assert account.leases.acquire("sync:7", holder="b", duration=timedelta(seconds=60)).holder == "b"


def test_a_kept_lease_whose_holder_died_is_free_within_its_duration(account: StorageAccount, clock) -> None:
    """A killed instance stops beating: another takes the lease a minute later, not after the
    function timeout, and the dead holder learns it lost it (its release leaves the new one)."""
    held = account.leases.acquire("sync:7", holder="a", duration=timedelta(seconds=60))
    kept = KeptLease(account.leases, held, timedelta(seconds=60))
    clock.advance(seconds=61)
    taken = account.leases.acquire("sync:7", holder="b", duration=timedelta(seconds=60))
    assert not kept.beat() and kept.lost
    kept.release()
    assert _expiry(account, "sync:7") == taken.expires_at


def test_a_kept_lease_is_renewed_by_its_thread_and_never_past_its_deadline(account: StorageAccount, clock) -> None:
    short = timedelta(seconds=0.3)  # the thread beats every 0.1 s of real time
    held = account.leases.acquire("timer:a", holder="a", duration=short)
    kept = KeptLease(account.leases, held, short)
    try:
        clock.advance(seconds=5)
        for _ in range(100):  # the thread's next beat moves the expiry to the clock's new time
            if _expiry(account, "timer:a") != held.expires_at:
                break
            threading.Event().wait(0.1)
        assert _expiry(account, "timer:a") == clock() + short
    finally:
        kept.release()
    done = account.leases.acquire("timer:b", holder="a", duration=short)
    hung = KeptLease(account.leases, done, short, until=clock())  # the work's deadline has passed
    try:
        clock.advance(seconds=5)
        threading.Event().wait(0.5)  # several of the thread's turns: none renews
        assert account.leases.acquire("timer:b", holder="b", duration=short).holder == "b"
    finally:
        hung.release()
