"""Many new events in Outlook at once: `GraphClient.batch` with ``dependsOn`` chains and lanes, and
the executor's creates through it, against the Graph simulator over real TLS (its default 20 ms
latency and 4 concurrent requests per mailbox) and the rows in Azurite.

Graph takes a batch fully parallel or fully sequential: a chain of 20 runs one step at a time,
four chains in flight stay within the mailbox's limit, a failed step fails the rest of its chain
with 424 (unrun, sent again), and what is still failing keeps its intent row for the next round.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from settings import StorageSettings
from storage import StorageAccount
from storage.mappings import MappingState
from sync.actions import CreateOn, UpdateOn
from sync.errors import GraphUnavailable
from sync.executor import Executor, Snapshot
from sync.graph import MAILBOX_CONCURRENCY, SYNCRO_ID_PROPERTY, BatchRequest, GraphClient
from sync.model import Appointment, Side
from sync.sides import Tally
from tests.sims.graph_support import USER, GraphHarness
from tests.sync.client_support import Sleeps, graph_client_for, graph_count, graph_fault

pytest_plugins = ["tests.sims.graph_fixtures", "tests.sync.client_support"]

TECH = 4242
START = datetime(2030, 1, 7, 8, tzinfo=UTC)


@pytest.fixture
def calendar(graph: GraphHarness) -> str:
    spec = {"oid": USER, "name": "Tess Tech", "tenant_id": "t-1", "email": "tess@contoso.example"}
    spec["calendars"] = [{"name": "Calendar", "is_default": True}, {"name": "Syncro"}]
    response = graph.plain().post(f"{graph.url}/_sim/seed", json={"mailboxes": [spec]})
    assert response.status_code == 200, response.text
    return str(response.json()["mailboxes"][0]["calendars"]["Syncro"])


@pytest.fixture
def client(graph: GraphHarness, sleeps: Sleeps) -> Iterator[GraphClient]:
    with graph_client_for(graph, sleeps, graph.token) as client:
        yield client


@pytest.fixture
def storage(storage_connection_string: str) -> StorageAccount:
    prefix = "b" + uuid.uuid4().hex[:10]
    settings = StorageSettings(storage_connection_string, None, None, table_prefix=prefix)
    return StorageAccount(settings, sync_queue_name=f"{prefix}-jobs")


def _executor(storage: StorageAccount, client: GraphClient, calendar: str) -> Executor:
    return Executor(
        tech=TECH,
        calendar_id=calendar,
        storage=storage,
        graph=client,
        syncro=None,  # type: ignore[arg-type]  # Outlook creates never call Syncro
        zone=ZoneInfo("UTC"),
        syncro_web_url="https://acme.syncromsp.example",
        clock=lambda: datetime.now(UTC),
        snapshot=Snapshot(syncro={}, outlook={}),
        tally=Tally(),
    )


def _creates(count: int) -> list[CreateOn]:
    return [
        CreateOn(
            side=Side.OUTLOOK,
            content=Appointment(
                f"Visit {n}",
                START + timedelta(days=n // 8, hours=n % 8),
                START + timedelta(days=n // 8, hours=n % 8, minutes=30),
            ),
            origin=Side.SYNCRO,
            pair_key=f"s:{1000 + n}",
            source_id=str(1000 + n),
            source_version=f"v{n}",
        )
        for n in range(count)
    ]


def _subjects(client: GraphClient, calendar: str) -> list[str]:
    path = f"/me/calendars/{calendar}/events?$top=200"
    return sorted(str(event["subject"]) for event in client._pages(path))


def _create_steps(calendar: str, count: int) -> list[BatchRequest]:
    body: dict[str, Any] = {
        "start": {"dateTime": "2030-01-07T08:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-07T09:00:00", "timeZone": "UTC"},
    }
    return [
        BatchRequest(str(n), "POST", f"/me/calendars/{calendar}/events", {**body, "subject": f"Step {n:02}"})
        for n in range(count)
    ]


# -- the client ---------------------------------------------------------------------------------


def test_sixty_chained_creates_take_three_batches_and_meet_no_throttling(
    graph: GraphHarness, client: GraphClient, calendar: str, sleeps: Sleeps
) -> None:
    answers = client.batch(_create_steps(calendar, 60), chained=True, lanes=MAILBOX_CONCURRENCY)
    assert [a.id for a in answers] == [str(n) for n in range(60)] and all(a.status == 201 for a in answers)
    assert graph_count(graph, "POST /v1.0/$batch") == 3 and graph_count(graph, "STEP /v1.0/$batch") == 60
    assert sleeps.waits == []
    assert _subjects(client, calendar) == [f"Step {n:02}" for n in range(60)]


def test_a_failed_step_is_answered_and_the_rest_of_its_chain_is_sent_again_at_once(
    graph: GraphHarness, client: GraphClient, calendar: str, sleeps: Sleeps
) -> None:
    graph_fault(graph, method="POST", path=r"/events$", status=500, times=1)
    answers = client.batch(_create_steps(calendar, 10), chained=True)
    assert [a.status for a in answers] == [500] + [201] * 9  # the chain's first step failed
    assert graph_count(graph, "POST /v1.0/$batch") == 2 and sleeps.waits == []  # nothing to wait for
    assert _subjects(client, calendar) == [f"Step {n:02}" for n in range(1, 10)]


def test_a_throttled_step_and_its_unrun_dependants_are_sent_again_after_its_retry_after(
    graph: GraphHarness, client: GraphClient, calendar: str, sleeps: Sleeps
) -> None:
    graph.settings(batch_shuffle_responses=False)
    graph_fault(graph, method="POST", path=r"/events$", status=429, headers={"Retry-After": "0.4"}, times=1)
    answers = client.batch(_create_steps(calendar, 5), chained=True)
    assert all(a.status == 201 for a in answers)
    assert sleeps.waits == [0.4]
    assert graph_count(graph, "POST /v1.0/$batch") == 2
    assert _subjects(client, calendar) == [f"Step {n:02}" for n in range(5)]  # each once


def test_a_batch_that_fails_as_a_whole_answers_its_steps_and_keeps_the_other_lanes(
    graph: GraphHarness, client: GraphClient, calendar: str
) -> None:
    graph_fault(graph, method="POST", path=r"^/v1\.0/\$batch$", status=500, times=1)
    answers = client.batch(_create_steps(calendar, 40), chained=True, lanes=2)
    failed = [a for a in answers if not a.ok]
    assert len(failed) == 20 and all(isinstance(a.error(), GraphUnavailable) for a in failed)
    assert len(_subjects(client, calendar)) == 20


def test_when_every_batch_fails_the_error_is_raised(graph: GraphHarness, client: GraphClient, calendar: str) -> None:
    graph_fault(graph, method="POST", path=r"^/v1\.0/\$batch$", status=500, times=2)
    with pytest.raises(GraphUnavailable):
        client.batch(_create_steps(calendar, 40), chained=True, lanes=2)


# -- the executor -------------------------------------------------------------------------------


def test_the_executor_creates_100_events_in_five_chained_batches_and_records_each_pair(
    graph: GraphHarness, client: GraphClient, calendar: str, storage: StorageAccount
) -> None:
    executor = _executor(storage, client, calendar)
    assert executor.run(_creates(100)) == 100  # two waves: four batches in flight, then one
    assert executor.tally.created == {"syncro": 0, "outlook": 100} and executor.tally.errors == []
    assert graph_count(graph, "POST /v1.0/$batch") == 5
    rows = {row.key: row for row in storage.mappings.list_mappings(TECH)}
    assert len(rows) == 100 and all(row.state is MappingState.SYNCED and row.graph_id for row in rows.values())
    assert {row.graph_id for row in rows.values()} == {e.event_id for e in storage.outlook_mirror.list_entries(TECH)}
    event = client.get_event(calendar, rows["s:1007"].graph_id or "")
    assert event["subject"] == "[S] Visit 7"
    assert {"id": SYNCRO_ID_PROPERTY, "value": "1007"} in event["singleValueExtendedProperties"]


def test_a_create_that_failed_in_its_batch_keeps_its_intent_and_the_next_round_makes_it_once(
    graph: GraphHarness, client: GraphClient, calendar: str, storage: StorageAccount
) -> None:
    graph_fault(graph, method="POST", path=r"/events$", status=500, times=1)
    executor = _executor(storage, client, calendar)
    assert executor.run(_creates(25)) == 24
    assert len(executor.tally.errors) == 1
    [intent] = [row for row in storage.mappings.list_mappings(TECH) if row.state is MappingState.INTENT]
    assert intent.graph_id is None and intent.intent_at is not None
    # The next round (a new executor, as the next sync builds) retries the intent: nothing of it
    # exists in Outlook, so it is created, once.
    retry = _executor(storage, client, calendar)
    [action] = [a for a in _creates(25) if a.pair_key == intent.key]
    assert retry.run([action]) == 0  # planned before the intent: the row moved on, so it is skipped
    assert retry.run([replace(action, intent_at=intent.intent_at)]) == 1  # as the next plan has it
    subjects = _subjects(client, calendar)
    assert len(subjects) == 25 and len(set(subjects)) == 25
    assert all(row.state is MappingState.SYNCED for row in storage.mappings.list_mappings(TECH))


def test_an_update_of_an_event_deleted_since_the_mirror_read_it_is_stale_and_forgotten(
    client: GraphClient, calendar: str, storage: StorageAccount
) -> None:
    """The tech deleted the event and delta has not said so yet (or a fault lost it): the write's
    404 counts as stale, not as an error shown every sync, and the mirror forgets the event, so the
    next plan sees it gone (a soak run showed the same 404 on every 'Sync now' for minutes)."""
    executor = _executor(storage, client, calendar)
    [action] = _creates(1)
    assert executor.run([action]) == 1
    [row] = storage.mappings.list_mappings(TECH)
    event_id = row.graph_id or ""
    client.delete_event(calendar, event_id)
    update = UpdateOn(Side.OUTLOOK, event_id, replace(action.content, summary="Moved"), row.graph_version, row.key)
    assert executor.run([update]) == 0
    assert executor.tally.errors == [] and executor.tally.stale == 1
    assert event_id not in {entry.event_id for entry in storage.outlook_mirror.list_entries(TECH)}
