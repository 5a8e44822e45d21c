"""Real Syncro ids are above 2^32: every table family stores and finds them exactly, against Azurite.

azure-data-tables sends a bare ``int`` as Edm.Int32 and raises ``TypeError`` from 2^31 up, so
these tests fail if any repository writes a Syncro id as a plain integer property again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage import StorageAccount
from storage.ids import id_from_property, id_property
from storage.links import Link, LinkStatus
from storage.mappings import Mapping, MappingState
from storage.mirror import MirrorEntry
from storage.oauth_state import FlowState
from storage.subscriptions import SubscriptionRecord
from storage.sync_queue import SyncJob
from storage.token_caches import TokenCacheRecord

WHEN = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
APPOINTMENT_ID = 5_560_138_523  # what a live Syncro create returned in 2025
TECH = 4_294_967_297  # 2^32 + 1: no user id is that large today, but nothing here may assume it
OTHER_TECH = TECH + 1


def test_a_mapping_with_a_real_syncro_appointment_id_round_trips(account: StorageAccount) -> None:
    row = Mapping(TECH, "pair-1", "syncro", MappingState.SYNCED, WHEN, syncro_id=APPOINTMENT_ID, graph_id="AAMk1")
    created = account.mappings.create_mapping(row)
    read = account.mappings.get_mapping(TECH, "pair-1")
    assert read == created
    assert read.syncro_id == APPOINTMENT_ID and type(read.syncro_id) is int
    assert [m.syncro_id for m in account.mappings.list_mappings(TECH)] == [APPOINTMENT_ID]


def test_ids_beyond_int64_round_trip_too(account: StorageAccount) -> None:
    huge = 2**70 + 3  # strings carry any size; Edm.Int64 would not
    account.mappings.create_mapping(Mapping(TECH, "pair-2", "outlook", MappingState.INTENT, WHEN, syncro_id=huge))
    assert account.mappings.get_mapping(TECH, "pair-2").syncro_id == huge


def test_links_token_caches_and_the_mirror_key_on_large_ids(account: StorageAccount) -> None:
    link = Link(
        TECH, "t@contoso.com", "oid.tid", "t@contoso.com", "tid", "cal", "Calendar", True, LinkStatus.ACTIVE, WHEN
    )
    account.links.create_link(link)
    assert [x.syncro_user_id for x in account.links.list_links()] == [TECH]
    account.token_caches.save_cache(TokenCacheRecord(TECH, b"cache", WHEN))
    assert account.token_caches.get_cache(TECH).encrypted == b"cache"
    appointment = {"id": APPOINTMENT_ID, "customer_id": 31_000_001, "ticket_id": 123_456_789}
    account.mirror.put_entry(MirrorEntry(TECH, APPOINTMENT_ID, "2026-11-24T09:00:00.000Z", "h", appointment, WHEN))
    entry = account.mirror.get_entry(TECH, APPOINTMENT_ID)
    assert entry.appointment_id == APPOINTMENT_ID and entry.appointment == appointment


def test_per_tech_queries_find_large_tech_ids_and_only_theirs(account: StorageAccount) -> None:
    account.subscriptions.upsert_subscription(SubscriptionRecord("sub-a", TECH, "/me/events", WHEN, "h", WHEN))
    account.subscriptions.upsert_subscription(SubscriptionRecord("sub-b", OTHER_TECH, "/me/events", WHEN, "h", WHEN))
    assert [s.subscription_id for s in account.subscriptions.list_for_tech(TECH)] == ["sub-a"]
    assert account.subscriptions.get_subscription("sub-b").syncro_user_id == OTHER_TECH

    account.feed_tokens.create_token("feed-a", syncro_user_id=TECH, created_at=WHEN)
    account.feed_tokens.create_token("feed-b", syncro_user_id=OTHER_TECH, created_at=WHEN)
    assert [t.syncro_user_id for t in account.feed_tokens.list_for_tech(OTHER_TECH)] == [OTHER_TECH]
    assert account.feed_tokens.get_by_token("feed-a").syncro_user_id == TECH


def test_oauth_state_and_sync_jobs_carry_large_ids(account: StorageAccount) -> None:
    account.oauth_states.create_state(FlowState("s1", TECH, b"flow", WHEN, WHEN + timedelta(minutes=10)))
    assert account.oauth_states.take_state("s1").syncro_user_id == TECH
    job = SyncJob(TECH, "poll", WHEN.isoformat())
    account.sync_queue.enqueue(job)
    message = next(account.queue(account.sync_queue.name).receive_messages())
    assert SyncJob.from_json(message.content) == job


def test_rows_written_with_numeric_ids_are_still_read(account: StorageAccount) -> None:
    """A row edited by hand (Storage Explorer) or written before ids were strings holds Edm.Int32
    or Edm.Int64; reading it gives the same int."""
    from azure.data.tables import EdmType, EntityProperty

    table = account.table("mappings")
    base = {"origin": "syncro", "state": "synced", "synced_at": WHEN}
    table.create({"PartitionKey": "7", "RowKey": "int32", "syncro_id": 42, **base})
    table.create(
        {"PartitionKey": "7", "RowKey": "int64", "syncro_id": EntityProperty(APPOINTMENT_ID, EdmType.INT64), **base}
    )
    assert {m.key: m.syncro_id for m in account.mappings.list_mappings(7)} == {"int32": 42, "int64": APPOINTMENT_ID}


def test_id_property_refuses_what_is_not_a_whole_number() -> None:
    assert id_property(APPOINTMENT_ID) == "5560138523"
    for bad in (True, 1.5, "12", None):
        with pytest.raises(TypeError):
            id_property(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        id_from_property(b"12")
    with pytest.raises(ValueError):
        id_from_property("twelve")
