"""GraphClient's events, delta rounds, Syncro-id tags and $batch against the Graph simulator over
real TLS: delta quirks on (replays, duplicates, empty pages with a nextLink, a 2 s visibility
lag, occurrence stubs), 410 SyncStateNotFound, transient 412s, MailboxConcurrency throttling."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sync.errors import (
    DeltaTokenExpired,
    GraphError,
    GraphInvalidRequest,
    GraphNotFound,
    GraphPreconditionFailed,
    GraphThrottled,
    NotFound,
)
from sync.graph import SYNCRO_ID_PROPERTY, BatchRequest, BatchResponse, DeltaRound, GraphClient, syncro_id_of
from tests.sims.graph_support import USER, GraphHarness, event_body
from tests.sync.client_support import Sleeps, graph_client_for, graph_count, graph_fault

pytest_plugins = ["tests.sims.graph_fixtures", "tests.sync.client_support"]

START = datetime(2030, 1, 1, tzinfo=UTC)
END = datetime(2030, 2, 1, tzinfo=UTC)
BIG = 5_560_138_523  # a Syncro id above 2^32


@pytest.fixture
def client(graph: GraphHarness, sleeps: Sleeps) -> GraphClient:
    # A fresh token per request: tests move the simulator's clock by hours.
    with graph_client_for(graph, sleeps, graph.token) as client:
        yield client


@pytest.fixture
def calendars(graph: GraphHarness) -> dict[str, str]:
    """The mailbox with its default calendar and a "Syncro" calendar; name -> id."""
    spec = {
        "oid": USER,
        "name": "Tess Tech",
        "tenant_id": "t-1",
        "email": "tess@contoso.example",
        "calendars": [{"name": "Calendar", "is_default": True}, {"name": "Syncro"}],
    }
    response = graph.plain().post(f"{graph.url}/_sim/seed", json={"mailboxes": [spec]})
    assert response.status_code == 200, response.text
    return response.json()["mailboxes"][0]["calendars"]


def seed_events(graph: GraphHarness, events: list[dict[str, Any]]) -> list[str]:
    spec = {"oid": USER, "email": "tess@contoso.example", "events": events}
    response = graph.plain().post(f"{graph.url}/_sim/seed", json={"mailboxes": [spec]})
    assert response.status_code == 200, response.text
    return response.json()["mailboxes"][0]["events"]


def singles(count: int, calendar: str = "Syncro", day: int = 7) -> list[dict[str, Any]]:
    return [
        {
            **event_body(f"Visit {index}", f"2030-01-{day + index // 8:02d}T{8 + index % 8:02d}:00:00", "", "UTC"),
            "end": {"dateTime": f"2030-01-{day + index // 8:02d}T{8 + index % 8:02d}:30:00", "timeZone": "UTC"},
            "calendar": calendar,
        }
        for index in range(count)
    ]


def weekly(subject: str = "Standup", count: int = 6) -> dict[str, Any]:
    return event_body(
        subject,
        "2030-01-07T09:00:00",
        "2030-01-07T09:30:00",
        "W. Europe Standard Time",
        recurrence={
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
            "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": count},
        },
    )


def truth(graph: GraphHarness, calendar_id: str) -> dict[str, str]:
    """What the calendar holds over the window: calendarView's id -> etag, read directly."""
    session = graph.session()
    items: dict[str, str] = {}
    url: str | None = f"{graph.v1}/me/calendars/{calendar_id}/calendarView"
    params: dict[str, str] | None = {"startDateTime": "2030-01-01T00:00:00Z", "endDateTime": "2030-02-01T00:00:00Z"}
    while url:
        page = session.get(url, params=params, headers={"Prefer": "odata.maxpagesize=50"}).json()
        items.update({item["id"]: item["@odata.etag"] for item in page["value"]})
        url, params = page.get("@odata.nextLink"), None
    return items


def settle(graph: GraphHarness) -> None:
    """Past the delta visibility lag of the quirks preset (2 s on the simulator's clock)."""
    graph.control.clock.advance(5)


class Mirror:
    """What a sync engine keeps from delta rounds: id -> etag."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}
        self.link: str | None = None

    def apply(self, delta: DeltaRound) -> None:
        for item in delta.items:
            self.items[item["id"]] = item["@odata.etag"]
        for item_id in delta.removed:
            self.items.pop(item_id, None)
        self.link = delta.delta_link


# -- delta ------------------------------------------------------------------------------------------


def test_a_first_round_under_quirks_lists_the_calendar_once_each(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str]
) -> None:
    graph.settings(delta_quirks=True)
    seed_events(graph, [*singles(23), {**weekly(), "calendar": "Syncro"}, *singles(3, calendar="Calendar")])
    settle(graph)
    delta = client.calendar_view_delta(calendars["Syncro"], start=START, end=END, page_size=5)
    ids = [item["id"] for item in delta.items]
    assert len(ids) == len(set(ids)) == 29  # 23 singles and 6 occurrences, replays and duplicates folded
    assert {item["id"]: item["@odata.etag"] for item in delta.items} == truth(graph, calendars["Syncro"])
    assert delta.removed == []
    stubs = [item for item in delta.items if item.get("type") == "occurrence"]
    assert len(stubs) == 6 and all("subject" not in stub for stub in stubs)
    pages = graph_count(graph, "GET /v1.0/me/calendars/{calendar}/calendarView/delta")
    assert pages >= 7  # six pages of five, and the empty page with a nextLink


def test_rounds_under_quirks_converge_to_the_calendars_content(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str]
) -> None:
    graph.settings(delta_quirks=True)
    calendar = calendars["Syncro"]
    ids = seed_events(graph, [*singles(12), {**weekly(), "calendar": "Syncro"}])
    settle(graph)
    mirror = Mirror()
    mirror.apply(client.calendar_view_delta(calendar, start=START, end=END, page_size=4))
    assert mirror.items == truth(graph, calendar)

    client.update_event(calendar, ids[0], {"subject": "Moved"}, if_match=None)
    client.delete_event(calendar, ids[1])
    client.update_event(
        calendar, ids[2], event_body("Out", "2030-03-01T08:00:00", "2030-03-01T09:00:00"), if_match=None
    )
    new = {key: value for key, value in singles(1, day=20)[0].items() if key != "calendar"}
    created = client.create_event(calendar, new, transaction_id="tx-new", syncro_id=BIG)
    # Within the lag, the round may miss these changes; later rounds from its link catch up.
    mirror.apply(client.calendar_view_delta(calendar, start=START, end=END, delta_link=mirror.link, page_size=4))
    settle(graph)
    delta = client.calendar_view_delta(calendar, start=START, end=END, delta_link=mirror.link, page_size=4)
    mirror.apply(delta)
    assert mirror.items == truth(graph, calendar)
    assert created["id"] in mirror.items and ids[1] not in mirror.items and ids[2] not in mirror.items

    quiet = client.calendar_view_delta(calendar, start=START, end=END, delta_link=mirror.link, page_size=4)
    assert (quiet.items, quiet.removed) == ([], [])


def test_an_expired_delta_link_raises_delta_token_expired(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str]
) -> None:
    seed_events(graph, singles(2))
    first = client.calendar_view_delta(calendars["Syncro"], start=START, end=END)
    graph.control.clock.advance(8 * 24 * 3600)  # past the week delta tokens live
    with pytest.raises(DeltaTokenExpired) as caught:
        client.calendar_view_delta(calendars["Syncro"], start=START, end=END, delta_link=first.delta_link)
    error = caught.value
    assert isinstance(error, GraphError) and not isinstance(error, NotFound)
    assert (error.status, error.code) == (410, "SyncStateNotFound")
    assert "full round" in str(error)
    again = client.calendar_view_delta(calendars["Syncro"], start=START, end=END)
    assert len(again.items) == 2


def test_the_documented_spelling_and_invalidated_links_are_expired_too(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str]
) -> None:
    graph.settings(delta_gone_code="syncStateNotFound")
    first = client.calendar_view_delta(calendars["Syncro"], start=START, end=END)
    assert graph.plain().post(f"{graph.url}/_sim/mailboxes/{USER}/delta/invalidate").status_code == 200
    with pytest.raises(DeltaTokenExpired) as caught:
        client.calendar_view_delta(calendars["Syncro"], start=START, end=END, delta_link=first.delta_link)
    assert caught.value.code == "syncStateNotFound"


def test_old_generations_of_a_delta_link_expire(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str]
) -> None:
    first = client.calendar_view_delta(calendars["Syncro"], start=START, end=END)
    link = first.delta_link
    for _ in range(3):  # three newer generations; Graph keeps only a few
        link = client.calendar_view_delta(calendars["Syncro"], start=START, end=END, delta_link=link).delta_link
    with pytest.raises(DeltaTokenExpired):
        client.calendar_view_delta(calendars["Syncro"], start=START, end=END, delta_link=first.delta_link)


def test_a_delta_link_to_another_host_is_refused(client: GraphClient, calendars: dict[str, str]) -> None:
    with pytest.raises(GraphError, match="another host"):
        client.calendar_view_delta(
            calendars["Syncro"], start=START, end=END, delta_link="https://evil.example/v1.0/me/calendarView/delta"
        )


# -- reading events ---------------------------------------------------------------------------------


def test_get_event_reads_utc_times_and_our_tag(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str]
) -> None:
    body = event_body("Visit", "2030-01-07T10:00:00", "2030-01-07T11:00:00", "Pacific Standard Time")
    created = client.create_event(calendars["Syncro"], body, transaction_id="tx-1", syncro_id=BIG)
    event = client.get_event(calendars["Syncro"], created["id"])
    assert event["start"] == {"dateTime": "2030-01-07T18:00:00.0000000", "timeZone": "UTC"}
    assert syncro_id_of(event) == str(BIG)
    # Graph answers an event by id through any calendar's path; its parentFolderId says where it is
    elsewhere = client.get_event(calendars["Calendar"], created["id"])
    assert elsewhere["id"] == created["id"] and elsewhere["parentFolderId"] == calendars["Syncro"]


def test_list_instances_fills_the_occurrence_stubs_of_delta(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str]
) -> None:
    graph.settings(delta_quirks=True)
    (master,) = seed_events(graph, [{**weekly(), "calendar": "Syncro"}])
    settle(graph)
    stubs = client.calendar_view_delta(calendars["Syncro"], start=START, end=END).items
    assert {stub["seriesMasterId"] for stub in stubs} == {master}
    instances = client.list_instances(calendars["Syncro"], master, START, END)
    assert [item["id"] for item in instances] == sorted(stub["id"] for stub in stubs)
    assert all(item["subject"] == "Standup" and item["type"] == "occurrence" for item in instances)
    occurrence = client.get_event(calendars["Syncro"], stubs[0]["id"])
    assert occurrence["seriesMasterId"] == master
    with pytest.raises(GraphInvalidRequest):
        client.list_instances(calendars["Syncro"], instances[0]["id"], START, END)


def test_instances_of_several_series_come_through_one_batch_with_their_further_pages(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str], sleeps: Sleeps
) -> None:
    calendar = calendars["Syncro"]
    daily = event_body(
        "Daily",
        "2030-01-07T08:00:00",
        "2030-01-07T08:15:00",
        "UTC",
        recurrence={
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 14},
        },
    )
    long, short = seed_events(graph, [{**daily, "calendar": "Syncro"}, {**weekly("Review", 3), "calendar": "Syncro"}])
    graph.plain().delete(f"{graph.url}/_sim/counters")
    found = client.list_instances_of(calendar, [long, short, "AAMkA-gone="], START, END)
    assert graph_count(graph, "POST /v1.0/$batch") == 1 and sleeps.waits == []
    assert graph_count(graph, "GET /v1.0/me/calendars/{calendar}/events/{id}/instances") == 3 + 1  # a second page
    assert found["AAMkA-gone="] is None
    assert [e["id"] for e in found[long] or []] == [e["id"] for e in client.list_instances(calendar, long, START, END)]
    assert len(found[long] or []) == 14 and len(found[short] or []) == 3


def test_get_events_reads_several_through_one_batch_and_none_for_missing(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str]
) -> None:
    calendar = calendars["Syncro"]
    created = client.create_event(
        calendar,
        event_body("Tagged", "2030-01-08T09:00:00", "2030-01-08T10:00:00", "UTC"),
        transaction_id="t-1",
        syncro_id=BIG,
    )
    ids = seed_events(graph, singles(3))
    graph.plain().delete(f"{graph.url}/_sim/counters")
    found = client.get_events(calendar, [created["id"], *ids, "AAMkA-gone="])
    assert graph_count(graph, "POST /v1.0/$batch") == 1
    assert found["AAMkA-gone="] is None and [found[i]["subject"] for i in ids] == ["Visit 0", "Visit 1", "Visit 2"]
    assert syncro_id_of(found[created["id"]]) == str(BIG)  # each read carries our tag, as get_event does
    assert found[ids[0]]["start"]["timeZone"] == "UTC"
    # One id costs one plain GET, as before.
    graph.plain().delete(f"{graph.url}/_sim/counters")
    assert client.get_events(calendar, [ids[0]])[ids[0]]["subject"] == "Visit 0"
    assert graph_count(graph, "POST /v1.0/$batch") == 0


# -- writing events ---------------------------------------------------------------------------------


def test_create_with_a_used_transaction_id_returns_the_first_event(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str]
) -> None:
    body = event_body("Visit")
    first = client.create_event(calendars["Syncro"], body, transaction_id="tx-42", syncro_id=BIG)
    second = client.create_event(calendars["Syncro"], body, transaction_id="tx-42", syncro_id=BIG)
    assert second["id"] == first["id"]
    assert len(client.find_by_syncro_id(calendars["Syncro"], BIG)) == 1
    assert first["transactionId"] == "tx-42"


def test_a_create_is_resent_after_a_gateway_timeout(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str], sleeps: Sleeps
) -> None:
    graph_fault(graph, method="POST", path="/calendars/[^/]+/events$", status=504, times=1)
    created = client.create_event(calendars["Syncro"], event_body("Visit"), transaction_id="tx-504", syncro_id=7)
    assert client.requests_made == 2
    assert sleeps.waits == [0.5]
    assert [event["id"] for event in client.find_by_syncro_id(calendars["Syncro"], 7)] == [created["id"]]


def test_find_by_syncro_id_matches_our_property_only(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str]
) -> None:
    calendar = calendars["Syncro"]
    ours = client.create_event(calendar, event_body("Ours"), transaction_id="tx-a", syncro_id=BIG)
    client.create_event(calendar, event_body("Other"), transaction_id="tx-b", syncro_id=BIG + 1)
    client.create_event(calendars["Calendar"], event_body("Elsewhere"), transaction_id="tx-c", syncro_id=BIG)
    # The same name in another case is another property to Exchange.
    respelled = event_body(
        "Respelled",
        singleValueExtendedProperties=[{"id": SYNCRO_ID_PROPERTY.replace("SyncroId", "syncroid"), "value": str(BIG)}],
    )
    assert graph.session().post(f"{graph.v1}/me/calendars/{calendar}/events", json=respelled).status_code == 201
    found = client.find_by_syncro_id(calendar, BIG)
    assert [event["id"] for event in found] == [ours["id"]]
    assert syncro_id_of(found[0]) == str(BIG)
    assert client.find_by_syncro_id(calendar, 123) == []


def test_update_with_if_match_and_a_stale_etag(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str]
) -> None:
    calendar = calendars["Syncro"]
    created = client.create_event(calendar, event_body("Visit"), transaction_id="tx-u", syncro_id=1)
    updated = client.update_event(calendar, created["id"], {"subject": "Changed"}, if_match=created["@odata.etag"])
    assert updated["subject"] == "Changed" and updated["@odata.etag"] != created["@odata.etag"]
    with pytest.raises(GraphPreconditionFailed) as caught:
        client.update_event(calendar, created["id"], {"subject": "Stale"}, if_match=created["@odata.etag"])
    assert caught.value.status == 412
    assert client.get_event(calendar, created["id"])["subject"] == "Changed"


def test_a_transient_conflict_without_if_match_is_retried(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str], sleeps: Sleeps
) -> None:
    calendar = calendars["Syncro"]
    created = client.create_event(calendar, event_body("Visit"), transaction_id="tx-t", syncro_id=1)
    graph.settings(transient_conflict_next=2)
    assert client.update_event(calendar, created["id"], {"subject": "Again"}, if_match=None)["subject"] == "Again"
    assert sleeps.waits == [0.5, 1.0]
    graph.settings(transient_conflict_next=1)
    assert client.get_event(calendar, created["id"])["subject"] == "Again"  # reads meet it too
    graph.settings(transient_conflict_next=3)
    with pytest.raises(GraphPreconditionFailed) as caught:
        client.update_event(calendar, created["id"], {"subject": "Never"}, if_match=None)
    assert caught.value.code == "ErrorIrresolvableConflict"


def test_a_conflict_with_if_match_is_never_retried(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str], sleeps: Sleeps
) -> None:
    calendar = calendars["Syncro"]
    created = client.create_event(calendar, event_body("Visit"), transaction_id="tx-i", syncro_id=1)
    graph.settings(transient_conflict_next=1)
    with pytest.raises(GraphPreconditionFailed):
        client.update_event(calendar, created["id"], {"subject": "X"}, if_match=created["@odata.etag"])
    assert sleeps.waits == []


def test_delete_then_not_found_and_with_if_match(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str]
) -> None:
    calendar = calendars["Syncro"]
    first = client.create_event(calendar, event_body("One"), transaction_id="tx-d1", syncro_id=1)
    second = client.create_event(calendar, event_body("Two"), transaction_id="tx-d2", syncro_id=2)
    graph.settings(transient_conflict_next=1)
    assert client.delete_event(calendar, first["id"]) is None
    with pytest.raises(GraphNotFound):
        client.delete_event(calendar, first["id"])
    client.update_event(calendar, second["id"], {"subject": "Changed"}, if_match=None)
    with pytest.raises(GraphPreconditionFailed):
        client.delete_event(calendar, second["id"], if_match=second["@odata.etag"])
    current = client.get_event(calendar, second["id"])
    client.delete_event(calendar, second["id"], if_match=current["@odata.etag"])
    assert client.find_by_syncro_id(calendar, 2) == []


# -- $batch -----------------------------------------------------------------------------------------


def test_a_batch_of_45_is_split_in_twenties_and_waits_out_throttling(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str], sleeps: Sleeps
) -> None:
    calendar = calendars["Syncro"]
    ids = seed_events(graph, singles(45))
    requests = [
        BatchRequest(id=f"r{index}", method="GET", url=f"/me/calendars/{calendar}/events/{event_id}")
        for index, event_id in enumerate(ids)
    ]
    before = client.requests_made
    answers = client.batch(requests)
    assert [answer.id for answer in answers] == [request.id for request in requests]
    assert all(isinstance(answer, BatchResponse) and answer.ok for answer in answers)
    assert [answer.body["id"] for answer in answers] == ids
    assert answers[0].body["start"]["timeZone"] == "UTC"  # each step carried the Prefer header
    batches = graph_count(graph, "POST /v1.0/$batch")
    assert batches == client.requests_made - before
    assert batches > 3  # 20 + 20 + 5, then again for the steps the mailbox's limit of four throttled
    assert sleeps.waits  # and waited between


def test_a_429_inside_a_batch_is_retried_after_its_retry_after(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str], sleeps: Sleeps
) -> None:
    calendar = calendars["Syncro"]
    ids = seed_events(graph, singles(3))
    graph.settings(batch_parallel=False)
    graph_fault(graph, path=f"/events/{ids[1]}$", status=429, headers={"Retry-After": "0.7"}, times=1)
    requests = [
        BatchRequest(id=str(index), method="GET", url=f"/me/calendars/{calendar}/events/{event_id}")
        for index, event_id in enumerate(ids)
    ]
    answers = client.batch(requests)
    assert [answer.status for answer in answers] == [200, 200, 200]
    assert sleeps.waits == [0.7]
    assert graph_count(graph, "POST /v1.0/$batch") == 2


def test_batch_writes_and_failures_are_answered_not_raised(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str]
) -> None:
    calendar = calendars["Syncro"]
    (event_id,) = seed_events(graph, singles(1))
    answers = client.batch(
        [
            BatchRequest(
                id="patch",
                method="PATCH",
                url=f"/me/calendars/{calendar}/events/{event_id}",
                body={"subject": "Batched"},
            ),
            BatchRequest(id="missing", method="GET", url=f"/me/calendars/{calendar}/events/AAMkA-none="),
        ]
    )
    patched, missing = answers
    assert patched.ok and patched.body["subject"] == "Batched" and patched.error() is None
    assert missing.status == 404 and isinstance(missing.error(), GraphNotFound)


def test_throttling_that_outlasts_the_batch_budget_is_answered_as_429(
    graph: GraphHarness, client: GraphClient, calendars: dict[str, str], sleeps: Sleeps
) -> None:
    calendar = calendars["Syncro"]
    (event_id,) = seed_events(graph, singles(1))
    graph_fault(graph, path=f"/events/{event_id}$", status=429, headers={"Retry-After": "1"}, times=0)
    (answer,) = client.batch([BatchRequest(id="1", method="GET", url=f"/me/calendars/{calendar}/events/{event_id}")])
    assert answer.status == 429 and isinstance(answer.error(), GraphThrottled)
    assert answer.error().retry_after == 1.0
    assert len(sleeps.waits) == 3  # four batches in all, as the retry policy's attempts


def test_batch_ids_must_be_unique(client: GraphClient) -> None:
    with pytest.raises(ValueError):
        client.batch([BatchRequest(id="a", method="GET", url="/me"), BatchRequest(id="a", method="GET", url="/me")])
