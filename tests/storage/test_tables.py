"""Round-trips for every table family, against Azurite."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime, timedelta

import pytest

from storage import ConcurrencyConflict, NotFound, StorageAccount, ValueTooLarge
from storage.cursors import GRAPH_DELTA, Cursor
from storage.links import Link, LinkStatus
from storage.mappings import Mapping, MappingState
from storage.mirror import MirrorEntry
from storage.oauth_state import FlowState
from storage.subscriptions import SubscriptionRecord, hash_client_state
from storage.sync_queue import SyncJob
from storage.token_caches import TokenCacheRecord

WHEN = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
NASTY_ID = "AAMk/AGI\\x#y?z%41\x00\x01\x1f\x7f\x9f-é-" + "W"  # every forbidden character, plus % and non-ASCII


def make_link(syncro_user_id: int = 7) -> Link:
    return Link(
        syncro_user_id=syncro_user_id,
        email="tech@contoso.com",
        ms_account_id="oid.tid",
        ms_username="tech@contoso.com",
        ms_tenant_id="tid",
        calendar_id=NASTY_ID,
        calendar_name="Calendar",
        two_way=True,
        status=LinkStatus.ACTIVE,
        linked_at=WHEN,
    )


def test_link_round_trip_update_and_delete(account: StorageAccount) -> None:
    created = account.links.create_link(make_link())
    assert created.etag
    read = account.links.get_link(7)
    assert read == created
    updated = account.links.update_link(read.with_changes(two_way=False, status=LinkStatus.NEEDS_RELINK))
    assert account.links.get_link(7).two_way is False
    assert account.links.get_link(7).status is LinkStatus.NEEDS_RELINK
    assert [link.syncro_user_id for link in account.links.list_links()] == [7]
    assert account.links.count() == 1
    account.links.delete_link(7, etag=updated.etag)
    with pytest.raises(NotFound):
        account.links.get_link(7)
    account.links.delete_link(7)  # deleting what is gone succeeds


def test_creating_an_existing_link_is_a_conflict(account: StorageAccount) -> None:
    account.links.create_link(make_link())
    with pytest.raises(ConcurrencyConflict):
        account.links.create_link(make_link())


def test_token_cache_of_200_kib_round_trips(account: StorageAccount) -> None:
    blob = os.urandom(200 * 1024)
    saved = account.token_caches.save_cache(TokenCacheRecord(7, blob, WHEN))
    assert account.token_caches.get_cache(7).encrypted == blob
    smaller = os.urandom(1000)  # replacing with fewer chunks must not leave old chunks behind
    account.token_caches.save_cache(TokenCacheRecord(7, smaller, WHEN, etag=saved.etag))
    assert account.token_caches.get_cache(7).encrypted == smaller


def test_a_value_larger_than_a_row_is_refused_before_writing(account: StorageAccount) -> None:
    with pytest.raises(ValueTooLarge):
        account.token_caches.save_cache(TokenCacheRecord(7, b"x" * (1024 * 1024), WHEN))
    with pytest.raises(NotFound):
        account.token_caches.get_cache(7)


def test_mapping_with_every_forbidden_key_character_round_trips(account: StorageAccount) -> None:
    row = Mapping(
        syncro_user_id=7,
        key=NASTY_ID,
        origin="outlook",
        state=MappingState.INTENT,
        synced_at=WHEN,
        graph_id=NASTY_ID,
        graph_version="ck1",
    )
    created = account.mappings.create_mapping(row)
    read = account.mappings.get_mapping(7, NASTY_ID)
    assert read == created
    assert read.key == NASTY_ID and read.graph_id == NASTY_ID and read.syncro_id is None
    done = account.mappings.update_mapping(dataclasses.replace(read, state=MappingState.SYNCED, syncro_id=42))
    assert [m.syncro_id for m in account.mappings.list_mappings(7)] == [42]
    # Ids differing only in case are different rows (Graph ids are case-sensitive).
    account.mappings.create_mapping(Mapping(7, NASTY_ID.lower(), "outlook", MappingState.SYNCED, WHEN))
    assert len(list(account.mappings.list_mappings(7))) == 2
    account.mappings.delete_mapping(7, NASTY_ID, etag=done.etag)
    assert [m.key for m in account.mappings.list_mappings(7)] == [NASTY_ID.lower()]


def test_mapping_keeps_the_last_synced_content_for_the_merge(account: StorageAccount) -> None:
    base = {"summary": "Server swap, café ☕", "start": "2026-03-10T16:00:00+00:00", "description": "x" * 100_000}
    row = Mapping(8, "pair", "syncro", MappingState.INTENT, WHEN, syncro_id=5560138523, base=base, intent_at=WHEN)
    created = account.mappings.create_mapping(row)
    assert account.mappings.get_mapping(8, "pair").base == base
    assert account.mappings.get_mapping(8, "pair").intent_at == WHEN
    kept = {"customer_id": 28_417_993, "ticket_id": 104_552_301, "user_ids": [1_342_117]}
    created = account.mappings.update_mapping(dataclasses.replace(created, syncro_kept=kept))
    assert account.mappings.get_mapping(8, "pair").syncro_kept == kept
    cleared = account.mappings.update_mapping(dataclasses.replace(created, base=None))
    assert account.mappings.get_mapping(8, "pair").base is None and cleared.etag


def test_subscription_round_trip_and_client_state_check(account: StorageAccount) -> None:
    record = SubscriptionRecord(NASTY_ID, 7, "/me/calendars/x/events", WHEN, hash_client_state("s3cret"), WHEN)
    account.subscriptions.upsert_subscription(record)
    read = account.subscriptions.get_subscription(NASTY_ID)
    assert read.resource == record.resource and read.expires_at == WHEN
    assert read.client_state_matches("s3cret")
    assert not read.client_state_matches("s3cres")
    assert not read.client_state_matches(None)
    assert [s.subscription_id for s in account.subscriptions.list_for_tech(7)] == [NASTY_ID]
    assert list(account.subscriptions.list_for_tech(8)) == []
    assert account.subscriptions.count() == 1
    account.subscriptions.delete_subscription(NASTY_ID)
    assert account.subscriptions.count() == 0


def test_cursor_advances_only_from_the_version_read(account: StorageAccount) -> None:
    first = account.cursors.save_cursor(Cursor(GRAPH_DELTA, "7", "https://graph/delta?$deltatoken=1", WHEN))
    second = account.cursors.save_cursor(
        Cursor(GRAPH_DELTA, "7", "https://graph/delta?$deltatoken=2", WHEN, first.etag)
    )
    with pytest.raises(ConcurrencyConflict):  # a slower round that read the first version loses
        account.cursors.save_cursor(Cursor(GRAPH_DELTA, "7", "https://graph/delta?$deltatoken=stale", WHEN, first.etag))
    assert account.cursors.get_cursor(GRAPH_DELTA, "7").value.endswith("=2")
    assert second.etag != first.etag


def test_mirror_entry_round_trips_with_a_large_description(account: StorageAccount) -> None:
    appointment = {"id": 99, "summary": "Server swap", "description": "é" * 100_000, "user_ids": [7, 8]}
    account.mirror.put_entry(MirrorEntry(7, 99, "2026-11-24T09:00:00.000Z", "hash", appointment, WHEN))
    read = account.mirror.get_entry(7, 99)
    assert read.appointment == appointment
    assert [e.appointment_id for e in account.mirror.list_entries(7)] == [99]
    account.mirror.delete_entry(7, 99)
    assert list(account.mirror.list_entries(7)) == []


def test_feed_tokens_are_stored_hashed_and_revocable(account: StorageAccount) -> None:
    record = account.feed_tokens.create_token("feed-secret-token", syncro_user_id=7, created_at=WHEN)
    assert "feed-secret-token" not in repr(record)
    found = account.feed_tokens.get_by_token("feed-secret-token")
    assert found.active and found.syncro_user_id == 7
    with pytest.raises(NotFound):
        account.feed_tokens.get_by_token("feed-secret-tokeN")
    account.feed_tokens.revoke(found, at=WHEN)
    assert not account.feed_tokens.get_by_token("feed-secret-token").active
    assert len(list(account.feed_tokens.list_for_tech(7))) == 1


def test_oauth_state_is_taken_once_and_expires(account: StorageAccount, clock) -> None:
    account.oauth_states.create_state(FlowState("st/ate", 7, b"flow-bytes", clock(), clock() + timedelta(minutes=10)))
    taken = account.oauth_states.take_state("st/ate")
    assert taken.flow == b"flow-bytes" and taken.syncro_user_id == 7
    with pytest.raises(NotFound):
        account.oauth_states.take_state("st/ate")
    account.oauth_states.create_state(FlowState("late", 7, b"x", clock(), clock() + timedelta(minutes=10)))
    clock.advance(minutes=11)
    with pytest.raises(NotFound):
        account.oauth_states.take_state("late")


def test_expired_oauth_states_are_purged(account: StorageAccount, clock) -> None:
    account.oauth_states.create_state(FlowState("old", 7, b"x", clock(), clock() + timedelta(minutes=10)))
    account.oauth_states.create_state(FlowState("new", 7, b"x", clock(), clock() + timedelta(minutes=30)))
    clock.advance(minutes=20)
    assert account.oauth_states.purge_expired() == 1
    assert account.oauth_states.take_state("new").state == "new"


def test_sync_queue_round_trip(account: StorageAccount) -> None:
    job = SyncJob(7, "admin", WHEN.isoformat())
    account.sync_queue.enqueue(job)
    assert account.sync_queue.depth() == 1
    message = next(account.queue(account.sync_queue.name).receive_messages())
    assert SyncJob.from_json(message.content) == job
    with pytest.raises(ValueError, match="not a sync job"):
        SyncJob.from_json('{"reason": "x"}')


def test_conflicts_are_listed_newest_first_and_only_the_last_twenty_kept(account: StorageAccount) -> None:
    from datetime import timedelta

    from storage.conflicts import KEEP, ConflictRecord

    tech = 5560138523
    for minute in range(KEEP + 3):
        record = ConflictRecord(tech, WHEN + timedelta(minutes=minute), ("summary",), "outlook", f"Visit {minute}")
        account.conflicts.add(record, pair_key=f"pair-{minute}")
    newest = list(account.conflicts.recent(tech, limit=3))
    assert [c.summary for c in newest] == [f"Visit {KEEP + 2}", f"Visit {KEEP + 1}", f"Visit {KEEP}"]
    assert len(list(account.conflicts.recent(tech, limit=100))) == KEEP
