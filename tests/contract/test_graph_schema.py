"""Graph simulator fidelity against Microsoft's own v1.0 schema (issue 21 item 7).

The simulator's answers for GET event, calendarView, calendarView/delta pages, GET calendar and
POST/GET/PATCH subscription are checked against the vendored CSDL (graph-v1.0-subset.csdl.xml,
with its msgraph-metadata commit): every property exists on the type with a value of its type.
Events must also carry every property live Graph returns by default (DEFAULT_EVENT_PROPERTIES).
Where the simulator knowingly differs from the CSDL, the difference is in KNOWN_DIFFERENCES with
its reason (and in docs/graph-simulator.md, "Against Microsoft's schema")."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.graph_csdl import Model, load_model
from tests.sims.graph_support import (
    PROP_ID,
    WINDOW,
    GraphHarness,
    Receiver,
    delta_round,
    event_body,
    initial_delta_url,
    subscription_body,
)

pytest_plugins = ["tests.sims.graph_fixtures"]

# Properties live Graph v1.0 returns although its published v1.0 CSDL does not declare them (the
# event type is OpenType, so they are legal dynamic properties). Both appear in Microsoft's v1.0
# example responses of whole events, e.g. learn.microsoft.com "Get multiValueLegacyExtendedProperty"
# (occurrenceId) and the event examples that show "uid"; the beta CSDL declares both.
KNOWN_DIFFERENCES = {
    ("event", "occurrenceId"): "live v1.0 returns it (beta-schema property; event is an open type)",
    ("event", "uid"): "live v1.0 returns it (beta-schema property; event is an open type)",
    # Issue 17 (from microsoft-graph-docs issue 391): an event read through another calendar's
    # path comes back with the calendar that holds it. Not in the v1.0 CSDL: unverified against a
    # live tenant; the engine never believes a move without it (docs/graph-simulator.md).
    ("event", "parentFolderId"): "the calendar holding the event, as issue 17 reports live Graph returns it",
    # Reported from the field (reference/graph-pitfalls.md), a simulator setting defaulting on:
    # lifecycle notifications carry organizationId (and an empty resource).
    ("changeNotification", "organizationId"): "reported on live lifecycle notifications",
}

# What live Graph v1.0 returns for an event without $select: the property names of Microsoft's
# whole-event example response in "Get multiValueLegacyExtendedProperty" (api-reference/v1.0,
# microsoft-graph-docs-contrib; the page says "All of the properties will be returned from an
# actual call"), without the expanded navigation property and the annotations. Not in it, though
# in the CSDL: cancelledOccurrences and originalStart (docs/graph-simulator.md).
DEFAULT_EVENT_PROPERTIES = frozenset(
    [
        "id",
        "createdDateTime",
        "lastModifiedDateTime",
        "changeKey",
        "categories",
        "transactionId",
        "originalStartTimeZone",
        "originalEndTimeZone",
        "iCalUId",
        "reminderMinutesBeforeStart",
        "isReminderOn",
        "hasAttachments",
        "subject",
        "bodyPreview",
        "importance",
        "sensitivity",
        "isAllDay",
        "isCancelled",
        "isOrganizer",
        "responseRequested",
        "seriesMasterId",
        "showAs",
        "type",
        "webLink",
        "onlineMeetingUrl",
        "isOnlineMeeting",
        "onlineMeetingProvider",
        "allowNewTimeProposals",
        "occurrenceId",
        "isDraft",
        "hideAttendees",
        "responseStatus",
        "body",
        "start",
        "end",
        "location",
        "locations",
        "recurrence",
        "attendees",
        "organizer",
        "onlineMeeting",
    ]
)


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


def _problems(model: Model, value: Any, type_name: str) -> list[str]:
    """Schema problems, less the known differences."""
    known = [f".{prop}: not a property of {owner} in" for owner, prop in KNOWN_DIFFERENCES]
    return [p for p in model.problems(value, type_name) if not any(k in p for k in known)]


def _rich_event(session: Any, graph: GraphHarness) -> dict[str, Any]:
    """An event using every part of the event the product reads or writes."""
    body = event_body(
        subject="Fidelity",
        zone="Pacific Standard Time",
        body={"contentType": "html", "content": "<p>Bring the <b>ladder</b></p>"},
        location={"displayName": "Depot"},
        categories=["Syncro"],
        attendees=[{"emailAddress": {"address": "kim@example.com", "name": "Kim"}, "type": "required"}],
        transactionId="7c6b8f7e-1d7e-4b0c-9a55-0e0d3b9f2a11",
        singleValueExtendedProperties=[{"id": PROP_ID, "value": "4294967297"}],
    )
    created = session.post(f"{graph.v1}/me/events", json=body)
    assert created.status_code == 201, created.text
    return created.json()


def _weekly(session: Any, graph: GraphHarness) -> dict[str, Any]:
    body = event_body(
        subject="Standup",
        start="2030-01-07T09:00:00",
        end="2030-01-07T09:30:00",
        recurrence={
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "sunday"},
            "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 3},
        },
    )
    created = session.post(f"{graph.v1}/me/events", json=body)
    assert created.status_code == 201, created.text
    return created.json()


def test_the_vendored_schema_names_its_commit_and_holds_the_types_we_check(model: Model) -> None:
    assert len(model.commit) == 40
    assert {"event", "calendar", "subscription", "dateTimeTimeZone", "patternedRecurrence"} <= set(model.types)
    assert DEFAULT_EVENT_PROPERTIES - model.structural("event") == {"occurrenceId"}  # the one known difference


def test_the_checker_finds_an_unknown_property_a_wrong_type_and_a_bad_enum(model: Model) -> None:
    event = {
        "id": "x",
        "subject": 5,
        "showAs": "sleeping",
        "start": {"dateTime": "2030-01-01T00:00:00", "timeZone": "UTC", "zone": "x"},
        "isAllDay": "no",
        "createdDateTime": "yesterday",
        "attendees": [{"emailAddress": {"address": "a@b.c"}, "type": "required", "status": None}],
    }
    found = model.problems(event, "event")
    for expected in (
        "$.subject: 5 is not an Edm.String",
        "$.showAs: 'sleeping' is not a freeBusyStatus",
        "$.start.zone: not a property of dateTimeTimeZone",
        "$.isAllDay: 'no' is not an Edm.Boolean",
        "$.createdDateTime: 'yesterday' is not an Edm.DateTimeOffset",
    ):
        assert any(p.startswith(expected) for p in found), (expected, found)
    assert len(found) == 5, found


def test_get_event_fits_the_schema_and_has_every_default_property(graph: GraphHarness, model: Model) -> None:
    session = graph.session()
    created = _rich_event(session, graph)
    assert _problems(model, created, "event") == []
    got = session.get(f"{graph.v1}/me/events/{created['id']}")
    assert got.status_code == 200, got.text
    event = got.json()
    assert _problems(model, event, "event") == []
    assert DEFAULT_EVENT_PROPERTIES - set(event) == set(), "missing default properties"
    expanded = session.get(
        f"{graph.v1}/me/events/{created['id']}",
        params={"$expand": f"singleValueExtendedProperties($filter=id eq '{PROP_ID}')"},
    ).json()
    assert expanded["singleValueExtendedProperties"], expanded
    assert _problems(model, expanded, "event") == []


def test_a_series_and_its_occurrences_in_calendar_view_fit_the_schema(graph: GraphHarness, model: Model) -> None:
    session = graph.session()
    master = _weekly(session, graph)
    assert _problems(model, master, "event") == []
    # Graph fills in every field of the recurrence, whatever the client sent (the product reads them).
    assert set(master["recurrence"]["pattern"]) == model.structural("recurrencePattern")
    assert set(master["recurrence"]["range"]) == model.structural("recurrenceRange")
    view = session.get(f"{graph.v1}/me/calendarView", params=WINDOW)
    assert view.status_code == 200, view.text
    items = view.json()["value"]
    assert {i["type"] for i in items} == {"occurrence"} and len(items) == 3
    for item in items:
        assert _problems(model, item, "event") == []
        assert DEFAULT_EVENT_PROPERTIES - set(item) == set()


def test_delta_pages_fit_the_schema(graph: GraphHarness, model: Model) -> None:
    session = graph.session()
    _rich_event(session, graph)
    _weekly(session, graph)
    pages, _ = delta_round(session, initial_delta_url(graph), page_size=2)
    items = [item for page in pages for item in page]
    assert len(items) >= 4
    for item in items:
        assert _problems(model, item, "event") == [], item
    deleted = items[0]["id"]
    session.delete(f"{graph.v1}/me/events/{deleted}")
    _, link = delta_round(session, initial_delta_url(graph))
    session.post(f"{graph.v1}/me/events", json=event_body(subject="Later"))
    changes, _ = delta_round(session, link)
    for item in [i for page in changes for i in page]:
        if "@removed" in item:
            assert set(item) <= {"@odata.type", "id", "@removed"}, item
        else:
            assert _problems(model, item, "event") == [], item


def test_calendars_fit_the_schema(graph: GraphHarness, model: Model) -> None:
    session = graph.session()
    calendars = session.get(f"{graph.v1}/me/calendars").json()["value"]
    assert calendars
    for calendar in calendars:
        assert _problems(model, calendar, "calendar") == []
        assert set(calendar) - {"@odata.context"} >= model.structural("calendar")


def test_subscriptions_fit_the_schema(graph: GraphHarness, receiver: Receiver, model: Model) -> None:
    session = graph.session()
    created = session.post(f"{graph.v1}/subscriptions", json=subscription_body(graph, receiver))
    assert created.status_code == 201, created.text
    assert _problems(model, created.json(), "subscription") == []
    # Microsoft's create-subscription example answers with every property, nulls included.
    assert set(created.json()) - {"@odata.context"} == model.structural("subscription")
    sub_id = created.json()["id"]
    got = session.get(f"{graph.v1}/subscriptions/{sub_id}")
    assert got.status_code == 200 and _problems(model, got.json(), "subscription") == []
    listed = session.get(f"{graph.v1}/subscriptions").json()["value"]
    assert [_problems(model, s, "subscription") for s in listed] == [[] for _ in listed]


# "Get user": without $select, Graph returns only this set (learn.microsoft.com, user-get, v1.0).
DEFAULT_USER_PROPERTIES = frozenset(
    [
        "businessPhones",
        "displayName",
        "givenName",
        "id",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
    ]
)


def test_me_fits_the_schema_with_the_default_properties(graph: GraphHarness, model: Model) -> None:
    me = graph.session().get(f"{graph.v1}/me")
    assert me.status_code == 200, me.text
    assert _problems(model, me.json(), "user") == []
    assert set(me.json()) - {"@odata.context"} == DEFAULT_USER_PROPERTIES


def test_change_and_lifecycle_notifications_fit_the_schema(
    graph: GraphHarness, receiver: Receiver, model: Model
) -> None:
    graph.settings(extra_updated_notifications=0)
    session = graph.session()
    subscription = session.post(f"{graph.v1}/subscriptions", json=subscription_body(graph, receiver)).json()
    event = session.post(f"{graph.v1}/me/events", json=event_body()).json()
    receiver.wait_for(1)
    session.delete(f"{graph.v1}/me/events/{event['id']}")
    posts = receiver.wait_for(2)
    assert [item["changeType"] for p in posts for item in p["body"]["value"]] == ["created", "deleted"]
    for post in posts:
        assert _problems(model, post["body"], "changeNotificationCollection") == [], post
    for number, kind in enumerate(["missed", "reauthorizationRequired", "subscriptionRemoved"], start=3):
        graph.sim.subscriptions.lifecycle(subscription["id"], kind)
        lifecycle = receiver.wait_for(number)[-1]
        assert lifecycle["path"].endswith("/lifecycle") and lifecycle["body"]["value"][0]["lifecycleEvent"] == kind
        assert _problems(model, lifecycle["body"], "changeNotificationCollection") == [], lifecycle


def test_a_series_without_a_recurrence_zone_takes_its_start_zone(graph: GraphHarness) -> None:
    """Microsoft's "Create a daily recurring event" example sends no recurrenceTimeZone and gets
    back the start's zone ("Pacific Standard Time"), not an empty string."""
    body = event_body(
        subject="Lunch",
        start="2030-01-07T12:00:00",
        end="2030-01-07T14:00:00",
        zone="Pacific Standard Time",
        recurrence={
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 2},
        },
    )
    created = graph.session().post(f"{graph.v1}/me/events", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["recurrence"]["range"]["recurrenceTimeZone"] == "Pacific Standard Time"
    given = {**body["recurrence"]["range"], "recurrenceTimeZone": "Eastern Standard Time"}
    other = graph.session().post(
        f"{graph.v1}/me/events", json={**body, "recurrence": {**body["recurrence"], "range": given}}
    )
    assert other.json()["recurrence"]["range"]["recurrenceTimeZone"] == "Eastern Standard Time"
