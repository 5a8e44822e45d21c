"""The recycle bin on Azurite: entries are listed newest first, fetched by id, and purged after
the retention."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage import StorageAccount
from storage.errors import NotFound
from storage.recycle_bin import RecycleEntry, new_entry_id

TECH = 5_560_138_523  # above 2**32, as Syncro ids are
CONTENT = {"summary": "Visit", "start": "2026-12-02T09:00:00+00:00", "end": "2026-12-02T10:00:00+00:00"}


def _entry(account: StorageAccount, original_id: str, *, side: str = "outlook") -> RecycleEntry:
    now = account.clock()
    return account.recycle_bin.add_entry(
        RecycleEntry(TECH, new_entry_id(now), side, original_id, "syncro", CONTENT, now, reason="test")
    )


def test_entries_are_listed_newest_first_and_read_back_whole(account: StorageAccount, clock) -> None:
    first = _entry(account, "AAMk-1")
    clock.advance(minutes=1)
    second = _entry(account, "5560138524", side="syncro")
    listed = account.recycle_bin.list_entries(TECH)
    assert [e.entry_id for e in listed] == [second.entry_id, first.entry_id]
    read = account.recycle_bin.get_entry(TECH, first.entry_id)
    assert (read.side, read.original_id, read.origin, read.content, read.reason) == (
        "outlook",
        "AAMk-1",
        "syncro",
        CONTENT,
        "test",
    )
    assert account.recycle_bin.list_entries(TECH + 1) == []


def test_purge_drops_only_entries_older_than_the_retention(account: StorageAccount, clock) -> None:
    old = _entry(account, "old")
    clock.advance(days=31)
    young = _entry(account, "young")
    assert account.recycle_bin.purge_entries(TECH, older_than=timedelta(days=30)) == 1
    assert [e.entry_id for e in account.recycle_bin.list_entries(TECH)] == [young.entry_id]
    with pytest.raises(NotFound):
        account.recycle_bin.get_entry(TECH, old.entry_id)


def test_deleting_an_entry_twice_succeeds(account: StorageAccount) -> None:
    entry = _entry(account, "x")
    account.recycle_bin.delete_entry(TECH, entry.entry_id)
    account.recycle_bin.delete_entry(TECH, entry.entry_id)
    assert account.recycle_bin.list_entries(TECH) == []
