"""Graph simulator: recurring series, calendarView, and calendarView/delta rounds over real HTTPS."""

from __future__ import annotations

from typing import Any

import requests

from tests.sims.graph_support import USER, WINDOW, GraphHarness, delta_round, event_body, initial_delta_url

pytest_plugins = ["tests.sims.graph_fixtures"]


def _weekly(subject: str = "Standup", count: int = 6, zone: str = "W. Europe Standard Time") -> dict[str, Any]:
    return event_body(
        subject=subject,
        start="2030-01-07T09:00:00",
        end="2030-01-07T09:30:00",
        zone=zone,
        recurrence={
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
            "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": count},
        },
    )


def _view(session: requests.Session, graph: GraphHarness, **headers: str) -> list[dict[str, Any]]:
    items, url, params = [], f"{graph.v1}/me/calendarView", dict(WINDOW)
    while url:
        page = session.get(url, params=params, headers=headers).json()
        items += page["value"]
        url, params = page.get("@odata.nextLink"), None
    return items


# --- series ----------------------------------------------------------------------------------------
def test_series_expands_into_stable_occurrences_in_local_time(graph: GraphHarness) -> None:
    session = graph.session()
    master = session.post(f"{graph.v1}/me/events", json=_weekly()).json()
    assert master["type"] == "seriesMaster" and master["recurrence"]["range"]["numberOfOccurrences"] == 6
    view = _view(session, graph, Prefer='outlook.timezone="W. Europe Standard Time"')
    assert [i["type"] for i in view] == ["occurrence"] * 6
    assert {i["seriesMasterId"] for i in view} == {master["id"]}
    # Each occurrence has its own iCalUId (documented), the series' uid is shared.
    assert len({i["iCalUId"] for i in view}) == 6 and master["iCalUId"] not in {i["iCalUId"] for i in view}
    assert {i["uid"] for i in view} == {master["uid"]}
    assert [i["start"]["dateTime"][:16] for i in view[:3]] == [
        "2030-01-07T09:00",
        "2030-01-09T09:00",
        "2030-01-14T09:00",
    ]
    assert [i["id"] for i in _view(session, graph)] == [i["id"] for i in view]
    listed = session.get(f"{graph.v1}/me/events").json()["value"]
    assert [e["type"] for e in listed] == ["seriesMaster"]
    instances = session.get(
        f"{graph.v1}/me/events/{master['id']}/instances",
        params={"startDateTime": "2030-01-08T00:00:00Z", "endDateTime": "2030-01-15T00:00:00Z"},
    ).json()["value"]
    assert [i["id"] for i in instances] == [view[1]["id"], view[2]["id"]]


def test_series_keeps_local_time_across_dst(graph: GraphHarness) -> None:
    session = graph.session()
    body = event_body(
        start="2030-03-20T09:00:00",
        end="2030-03-20T10:00:00",
        zone="W. Europe Standard Time",
        recurrence={
            "pattern": {"type": "daily", "interval": 7},
            "range": {"type": "endDate", "startDate": "2030-03-20", "endDate": "2030-04-10"},
        },
    )
    session.post(f"{graph.v1}/me/events", json=body)
    view = session.get(
        f"{graph.v1}/me/calendarView",
        params={"startDateTime": "2030-03-01T00:00:00Z", "endDateTime": "2030-05-01T00:00:00Z"},
    ).json()["value"]
    # 09:00 in Berlin is 08:00 UTC before the change on 31 March and 07:00 UTC after it.
    assert [i["start"]["dateTime"][:16] for i in view] == [
        "2030-03-20T08:00",
        "2030-03-27T08:00",
        "2030-04-03T07:00",
        "2030-04-10T07:00",
    ]


def test_editing_an_occurrence_makes_an_exception_with_the_same_id(graph: GraphHarness) -> None:
    session = graph.session()
    session.post(f"{graph.v1}/me/events", json=_weekly())
    second = _view(session, graph)[1]
    patched = session.patch(f"{graph.v1}/me/events/{second['id']}", json={"subject": "Moved standup"}).json()
    assert patched["type"] == "exception" and patched["id"] == second["id"]
    view = _view(session, graph)
    assert [i["subject"] for i in view].count("Moved standup") == 1
    assert view[1]["type"] == "exception"
    crossing = session.patch(
        f"{graph.v1}/me/events/{second['id']}",
        json={
            "start": {"dateTime": "2030-01-14T09:00:00", "timeZone": "W. Europe Standard Time"},
            "end": {"dateTime": "2030-01-14T09:30:00", "timeZone": "W. Europe Standard Time"},
        },
    )
    assert crossing.status_code == 400
    assert crossing.json()["error"]["code"] == "ErrorOccurrenceCrossingBoundary"


def test_deleting_an_occurrence_removes_it_without_a_delta_tombstone(graph: GraphHarness) -> None:
    session = graph.session()
    session.post(f"{graph.v1}/me/events", json=_weekly())
    _, delta_link = delta_round(session, initial_delta_url(graph))
    doomed = _view(session, graph)[2]
    assert session.delete(f"{graph.v1}/me/events/{doomed['id']}").status_code == 204
    assert doomed["id"] not in [i["id"] for i in _view(session, graph)]
    pages, _ = delta_round(session, delta_link)
    items = [i for page in pages for i in page]
    assert not [i for i in items if "@removed" in i]
    graph.settings(delta_tombstone_deleted_occurrences=True)
    second_doomed = _view(session, graph)[0]
    session.delete(f"{graph.v1}/me/events/{second_doomed['id']}")
    _, link = delta_round(session, initial_delta_url(graph))
    session.delete(f"{graph.v1}/me/events/{_view(session, graph)[0]['id']}")
    pages, _ = delta_round(session, link)
    assert len([i for page in pages for i in page if "@removed" in i]) == 1


# --- delta ------------------------------------------------------------------------------------------
def test_delta_pages_follow_maxpagesize_but_never_split_a_series(graph: GraphHarness) -> None:
    session = graph.session()
    for day in range(1, 6):
        session.post(
            f"{graph.v1}/me/events",
            json=event_body(subject=f"Single {day}", start=f"2030-01-0{day}T08:00:00", end=f"2030-01-0{day}T08:30:00"),
        )
    session.post(f"{graph.v1}/me/events", json=_weekly(count=4))
    pages, delta_link = delta_round(session, initial_delta_url(graph), page_size=2)
    sizes = [len(p) for p in pages]
    assert sum(sizes) == 9 and len(pages) >= 3
    assert max(sizes) >= 4  # the four occurrences came together, over the size asked for
    series_pages = {n for n, page in enumerate(pages) for item in page if item["type"] == "occurrence"}
    assert len(series_pages) == 1
    assert "$deltatoken=" in delta_link
    assert all(p["start"]["dateTime"].endswith(".0000000") for page in pages for p in page)


def test_incremental_round_reports_updates_creations_and_removals(graph: GraphHarness) -> None:
    session = graph.session()
    keep = session.post(f"{graph.v1}/me/events", json=event_body(subject="Keep")).json()
    change = session.post(f"{graph.v1}/me/events", json=event_body(subject="Change")).json()
    gone = session.post(f"{graph.v1}/me/events", json=event_body(subject="Gone")).json()
    away = session.post(f"{graph.v1}/me/events", json=event_body(subject="Away")).json()
    pages, delta_link = delta_round(session, initial_delta_url(graph))
    assert {i["id"] for page in pages for i in page} == {keep["id"], change["id"], gone["id"], away["id"]}
    empty, delta_link = delta_round(session, delta_link)
    assert empty == [[]]
    session.patch(f"{graph.v1}/me/events/{change['id']}", json={"subject": "Changed"})
    session.delete(f"{graph.v1}/me/events/{gone['id']}")
    session.patch(
        f"{graph.v1}/me/events/{away['id']}",
        json={
            "start": {"dateTime": "2031-01-07T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2031-01-07T11:00:00", "timeZone": "UTC"},
        },
    )
    new = session.post(f"{graph.v1}/me/events", json=event_body(subject="New")).json()
    pages, _ = delta_round(session, delta_link)
    items = {i["id"]: i for page in pages for i in page}
    assert set(items) == {change["id"], gone["id"], away["id"], new["id"]}
    assert items[change["id"]]["subject"] == "Changed"
    assert items[new["id"]]["subject"] == "New"
    for removed in (gone["id"], away["id"]):
        assert items[removed] == {
            "@odata.type": "#microsoft.graph.event",
            "id": removed,
            "@removed": {"reason": "deleted"},
        }


def test_old_generations_and_invalidated_tokens_answer_410(graph: GraphHarness) -> None:
    session = graph.session()
    session.post(f"{graph.v1}/me/events", json=event_body())
    _, first = delta_round(session, initial_delta_url(graph))
    link = first
    for _ in range(3):
        _, link = delta_round(session, link)
    gone = session.get(first)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "SyncStateNotFound"
    assert session.get(link).status_code == 200
    invalidate = graph.plain().post(f"{graph.url}/_sim/mailboxes/{USER}/delta/invalidate")
    assert invalidate.json()["invalidated"] >= 1
    assert session.get(link).status_code == 410


def test_token_older_than_max_age_answers_410_on_the_moved_clock(graph: GraphHarness) -> None:
    session = graph.session(lifetime=30 * 24 * 3600)
    _, link = delta_round(session, initial_delta_url(graph))
    graph.control.clock.advance(8 * 24 * 3600)
    assert session.get(link).status_code == 410


def test_duplicate_and_stub_settings(graph: GraphHarness) -> None:
    session = graph.session()
    session.post(f"{graph.v1}/me/events", json=_weekly(count=2))
    session.post(f"{graph.v1}/me/events", json=event_body())
    graph.settings(delta_duplicate_items=1)  # stubs are on by default
    pages, _ = delta_round(session, initial_delta_url(graph))
    ids = [i["id"] for page in pages for i in page]
    assert len(ids) == len(set(ids)) + 1
    stubs = [i for page in pages for i in page if i.get("type") == "occurrence"]
    stub_keys = {"@odata.type", "@odata.etag", "id", "seriesMasterId", "type", "start", "end"}
    assert stubs and all(set(s) == stub_keys for s in stubs)
    graph.settings(delta_occurrence_stubs=False)
    pages, _ = delta_round(session, initial_delta_url(graph))
    assert all("subject" in i for page in pages for i in page)


def test_delta_refuses_query_options_and_needs_a_window(graph: GraphHarness) -> None:
    session = graph.session()
    assert session.get(f"{graph.v1}/me/calendarView/delta").status_code == 400
    assert session.get(initial_delta_url(graph) + "&$select=subject").status_code == 400


def test_per_calendar_delta_sees_only_that_calendar(graph: GraphHarness) -> None:
    session = graph.session()
    other = session.post(f"{graph.v1}/me/calendars", json={"name": "Syncro"}).json()
    session.post(f"{graph.v1}/me/calendars/{other['id']}/events", json=event_body(subject="Here"))
    session.post(f"{graph.v1}/me/events", json=event_body(subject="Default"))
    url = (
        f"{graph.v1}/me/calendars/{other['id']}/calendarView/delta?startDateTime={WINDOW['startDateTime']}"
        f"&endDateTime={WINDOW['endDateTime']}"
    )
    pages, _ = delta_round(session, url)
    assert [i["subject"] for page in pages for i in page] == ["Here"]


def test_visibility_lag_holds_changes_back_until_the_clock_passes_it(graph: GraphHarness) -> None:
    session = graph.session(lifetime=24 * 3600)
    first = session.post(f"{graph.v1}/me/events", json=event_body(subject="Old")).json()
    _, link = delta_round(session, initial_delta_url(graph))
    graph.settings(delta_visibility_lag_seconds=60)
    session.patch(f"{graph.v1}/me/events/{first['id']}", json={"subject": "Renamed"})
    second = session.post(f"{graph.v1}/me/events", json=event_body(subject="Brand new")).json()
    pages, link = delta_round(session, link)
    assert pages == [[]]
    graph.control.clock.advance(61)
    pages, _ = delta_round(session, link)
    assert {i["id"]: i["subject"] for page in pages for i in page} == {
        first["id"]: "Renamed",
        second["id"]: "Brand new",
    }


def test_empty_pages_and_delta_link_via_calendar_segment(graph: GraphHarness) -> None:
    session = graph.session()
    session.post(f"{graph.v1}/me/events", json=event_body())
    graph.settings(delta_empty_pages=2, delta_link_via_calendar_segment=True)
    url = initial_delta_url(graph).replace("/me/", f"/users/{USER}/")
    pages, link = delta_round(session, url)
    assert [len(p) for p in pages] == [0, 0, 1]
    assert f"/users/{USER}/calendar/calendarView/delta?$deltatoken=" in link
    assert session.get(link).status_code == 200
