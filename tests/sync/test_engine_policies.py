"""The sync engine's policies for what crosses from Outlook, end to end (the in-process product,
Azurite, the simulators with their strict defaults): meetings someone else organised, private
events, recurring series, events from before the link, and Syncro's appointment type and
customer for appointments created from Outlook. Each test is named for the behaviour it proves."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from local import demo
from services import sync_deps
from sync.engine import SyncReport, sync_tech
from tests.sync import test_engine_scenarios as scenarios
from tests.sync.test_engine_scenarios import TECH, World, _at, _by_summary

pytest_plugins = ["tests.app.linking_support"]

BLAKE = demo.TECHS[1]
world = scenarios.world  # the scenarios' fixture, for this module's own product


def _sync(world: World, *, series_check: bool = False, **options: Any) -> SyncReport:
    world.sim("graph", "POST", "/_sim/clock", json={"advance_seconds": 3})
    world.poll()
    deps = sync_deps()
    deps.options = replace(deps.options, **options)
    report = sync_tech(TECH, deps=deps, series_check=series_check)
    assert report.status == "synced" and not report.errors, report
    return report


def _as_blake(world: World) -> requests.Session:
    """Blake's own Graph session: he organises meetings and invites ALEX."""
    sim = world.stack.sim("graph")
    mailbox = next(m for m in sim.store.mailboxes.values() if m.name == BLAKE.name)
    token = sim.dispatcher.issuer.issue(
        tenant_id=mailbox.tenant_id,
        object_id=mailbox.oid,
        username=mailbox.email,
        name=mailbox.name,
        scopes=["Calendars.ReadWrite", "User.Read"],
        client_id="test",
        now=sim.control.clock.timestamp(),
        lifetime_seconds=3600,
    )
    session = world.stack.browser()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def _alex_address(world: World) -> str:
    sim = world.stack.sim("graph")
    return sim.store.mailboxes[world.mailbox_oid].email


def _blake_invites_alex(world: World, subject: str, *, days: int = 4, hour: int = 9) -> str:
    body = {
        "subject": subject,
        "start": {"dateTime": _at(days, hour)[:-1], "timeZone": "UTC"},
        "end": {"dateTime": _at(days, hour + 1)[:-1], "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": _alex_address(world)}, "type": "required"}],
    }
    answer = _as_blake(world).post(f"{world.stack.sim_url('graph')}/v1.0/me/events", json=body, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def _alex_copy(world: World, subject: str) -> dict[str, Any]:
    (copy,) = [e for e in world.outlook_events() if subject in e["subject"]]
    assert copy["isOrganizer"] is False
    return copy


def test_a_meeting_someone_else_organised_reaches_syncro_and_syncro_edits_are_put_back(world: World) -> None:
    _blake_invites_alex(world, "Quarterly review")
    copy = _alex_copy(world, "Quarterly review")
    report = _sync(world)
    assert report.created == {"syncro": 1, "outlook": 0}
    (appointment,) = _by_summary(world, "[O] Quarterly review")

    world.sim("syncro", "PUT", f"/_sim/appointments/{appointment['id']}", json={"summary": "[O] Moved by dispatch"})
    report = _sync(world)
    assert report.updated == {"syncro": 1, "outlook": 0}  # Outlook's version is put back in Syncro
    assert [a["id"] for a in _by_summary(world, "[O] Quarterly review")] == [appointment["id"]]
    assert _alex_copy(world, "Quarterly review")["changeKey"] == copy["changeKey"]  # the invitation untouched


def test_a_cancelled_meeting_removes_its_syncro_copy_even_after_a_syncro_edit(world: World) -> None:
    meeting = _blake_invites_alex(world, "Vendor demo", hour=11)
    _sync(world)
    (appointment,) = _by_summary(world, "[O] Vendor demo")
    world.sim("syncro", "PUT", f"/_sim/appointments/{appointment['id']}", json={"location": "Room 2"})
    answer = _as_blake(world).delete(f"{world.stack.sim_url('graph')}/v1.0/me/events/{meeting}", timeout=30)
    assert answer.status_code == 204, answer.text
    assert _alex_copy(world, "Vendor demo")["isCancelled"] is True

    report = _sync(world)
    assert report.deleted == {"syncro": 1, "outlook": 0}
    assert world.syncro_record(appointment["id"]) is None
    assert any(e.original_id == str(appointment["id"]) for e in world.stack.storage().recycle_bin.list_entries(TECH))
    assert _sync(world).writes == 0  # the cancelled copy is not imported again


def test_a_private_event_reaches_syncro_as_busy_unless_the_tech_opts_in(world: World) -> None:
    body = {
        "subject": "Therapy",
        "body": {"contentType": "text", "content": "personal matters"},
        "location": {"displayName": "Clinic"},
        "sensitivity": "private",
        "start": {"dateTime": _at(5, 13)[:-1], "timeZone": "UTC"},
        "end": {"dateTime": _at(5, 14)[:-1], "timeZone": "UTC"},
    }
    world.graph("POST", f"/me/calendars/{world.calendar_id}/events", json=body)
    _sync(world)
    (busy,) = _by_summary(world, "[O] Busy")
    record = world.syncro_record(busy["id"])
    assert record is not None and "personal" not in str(record.get("description") or "")
    assert not record.get("location")
    assert _by_summary(world, "[O] Therapy") == []

    links = world.stack.storage().links
    links.update_link(links.get_link(TECH).with_changes(share_private=True))
    try:
        report = _sync(world)
        assert report.updated["syncro"] == 1 and report.updated["outlook"] == 0
        (shared,) = _by_summary(world, "[O] Therapy")
        assert shared["id"] == busy["id"]
    finally:
        links.update_link(links.get_link(TECH).with_changes(share_private=False))


def _series(world: World, subject: str, *, days: int, count: int) -> str:
    start = datetime.now(UTC).date() + timedelta(days=days)
    body = {
        "subject": subject,
        "start": {"dateTime": f"{start.isoformat()}T07:00:00", "timeZone": "UTC"},
        "end": {"dateTime": f"{start.isoformat()}T07:30:00", "timeZone": "UTC"},
        "recurrence": {
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "startDate": start.isoformat(), "numberOfOccurrences": count},
        },
    }
    return world.graph("POST", f"/me/calendars/{world.calendar_id}/events", json=body).json()["id"]


def test_recurring_events_sync_as_occurrences_and_an_edited_occurrence_follows(world: World) -> None:
    master = _series(world, "Stand-up", days=6, count=3)
    report = _sync(world)
    assert report.created["syncro"] == 3
    starts = sorted(a["start_at"] for a in _by_summary(world, "[O] Stand-up"))
    assert len(starts) == 3 and len(set(starts)) == 3

    window = f"startDateTime={_at(0, 0)}&endDateTime={_at(30, 0)}"
    occurrences = world.graph("GET", f"/me/events/{master}/instances?{window}").json()["value"]
    world.graph("PATCH", f"/me/events/{occurrences[1]['id']}", json={"subject": "Stand-up (remote)"})
    report = _sync(world)
    assert report.updated == {"syncro": 1, "outlook": 0}
    assert len(_by_summary(world, "[O] Stand-up")) == 2 and len(_by_summary(world, "[O] Stand-up (remote)")) == 1


def test_a_deleted_occurrence_follows_when_outlook_says_its_series_changed(world: World) -> None:
    # Graph's delta has no tombstone for a deleted occurrence; its notification names the master.
    master = _series(world, "Patch window", days=10, count=3)
    _sync(world)
    assert len(_by_summary(world, "[O] Patch window")) == 3
    window = f"startDateTime={_at(0, 0)}&endDateTime={_at(30, 0)}"
    occurrences = world.graph("GET", f"/me/events/{master}/instances?{window}").json()["value"]
    world.graph("DELETE", f"/me/events/{occurrences[0]['id']}")

    assert _sync(world).deleted == {"syncro": 0, "outlook": 0}  # a reconcile alone cannot see it
    report = _sync(world, series_check=True)
    assert report.deleted == {"syncro": 1, "outlook": 0}
    remaining = sorted(a["start_at"] for a in _by_summary(world, "[O] Patch window"))
    assert len(remaining) == 2
    assert _sync(world, series_check=True).writes == 0


def test_a_deleted_occurrence_follows_even_when_delta_brings_other_changes(world: World) -> None:
    """The occurrence's deletion leaves no trace in delta, and the same notification's delta round
    brings another change: the series are still expanded again (a soak run found the occurrence
    still in Syncro after minutes of "Sync now")."""
    master = _series(world, "Backup check", days=11, count=3)
    _sync(world)
    window = f"startDateTime={_at(0, 0)}&endDateTime={_at(30, 0)}"
    occurrences = world.graph("GET", f"/me/events/{master}/instances?{window}").json()["value"]
    world.graph("DELETE", f"/me/events/{occurrences[2]['id']}")
    world.outlook_create("Toner delivery", days=13)  # delta is not quiet this time
    report = _sync(world, series_check=True)
    assert report.deleted == {"syncro": 1, "outlook": 0}, report
    assert len(_by_summary(world, "[O] Backup check")) == 2
    assert len(_by_summary(world, "[O] Toner delivery")) == 1


def test_with_recurring_sync_off_a_new_series_stays_in_outlook(world: World) -> None:
    master = _series(world, "Gym", days=8, count=2)
    report = _sync(world, recurring=False)
    assert report.created["syncro"] == 0
    assert _by_summary(world, "[O] Gym") == []
    world.graph("DELETE", f"/me/events/{master}")  # so the other tests, with the default, never see it


def test_importing_existing_events_brings_those_inside_its_window_only(world: World) -> None:
    # "Dentist" (in two days) was in ALEX's calendar before the link; "Dentist" stays out by default.
    assert _by_summary(world, "[O] Dentist") == []
    report = _sync(world, import_existing=True, import_existing_days=1)
    assert report.created["syncro"] == 0  # outside a window of today only
    report = _sync(world, import_existing=True, import_existing_days=7)
    assert report.created["syncro"] == 1
    assert len(_by_summary(world, "[O] Dentist")) == 1


def test_appointments_from_outlook_get_the_configured_type_and_customer(world: World) -> None:
    store = world.stack.sim("syncro").store
    kind = store.appointment_types_json()[0]["id"]
    customer = next(a["customer_id"] for a in world.syncro_all() if a.get("customer_id"))
    world.outlook_create("Site survey", days=9)
    _sync(world, appointment_type_id=kind, customer_id=customer)
    (created,) = _by_summary(world, "[O] Site survey")
    record = world.syncro_record(created["id"])
    assert record is not None
    assert record.get("appointment_type_id") == kind and record.get("customer_id") == customer


def test_deleted_in_syncro_but_edited_in_outlook_the_edit_wins_and_comes_back(world: World) -> None:
    appointment = world.syncro_create("Cabling job", days=11)
    _sync(world)
    event = next(e for e in world.outlook_events() if e["subject"] == "[S] Cabling job")
    world.sim("syncro", "DELETE", f"/_sim/appointments/{appointment}")
    world.graph("PATCH", f"/me/events/{event['id']}", json={"location": {"displayName": "Rack room"}})
    report = _sync(world)
    assert report.created == {"syncro": 1, "outlook": 0} and report.deleted == {"syncro": 0, "outlook": 0}
    (back,) = _by_summary(world, "Cabling job")  # Syncro-born: re-created untagged, as it was
    assert back["id"] != appointment and back.get("location") == "Rack room"
    assert _sync(world).writes == 0


def test_an_empty_syncro_listing_where_data_was_deletes_nothing(world: World) -> None:
    before = sorted(world.outlook_subjects())
    empty = {"appointments": [], "meta": {"total_pages": 1, "total_entries": 0, "page": 1}}
    world.sim(
        "syncro",
        "POST",
        "/_sim/faults",
        json={"method": "GET", "path": r"/appointments$", "status": 200, "body": empty, "times": 0},
    )
    try:
        report = _sync(world)
    finally:
        world.sim("syncro", "DELETE", "/_sim/faults")
    assert report.deleted == {"syncro": 0, "outlook": 0}  # each vanished one was read back (GET by id): still there
    assert sorted(world.outlook_subjects()) == before
    assert _sync(world).writes == 0


def test_an_empty_outlook_round_where_data_was_deletes_nothing(world: World) -> None:
    syncro_before = sorted(str(a.get("summary")) for a in world.syncro_all())
    world.sim("graph", "POST", f"/_sim/mailboxes/{world.mailbox_oid}/delta/invalidate")
    gone = f"{world.stack.sim_url('graph')}/v1.0/me/calendarView/delta?$deltatoken=forgotten"
    empty = {"value": [], "@odata.deltaLink": gone}
    rule = {"method": "GET", "path": r"calendarView/delta", "status": 200, "body": empty, "times": 2}
    world.sim("graph", "POST", "/_sim/faults", json=rule)
    try:
        report = _sync(world)
    finally:
        world.sim("graph", "DELETE", "/_sim/faults")
    assert report.deleted == {"syncro": 0, "outlook": 0}  # the guard re-read each mapped event by id
    assert sorted(str(a.get("summary")) for a in world.syncro_all()) == syncro_before
    report = _sync(world)
    assert report.deleted == {"syncro": 0, "outlook": 0} and report.created == {"syncro": 0, "outlook": 0}


def test_every_action_and_the_sync_log_one_structured_line_with_ids_and_no_content(world: World, caplog) -> None:
    import json
    import logging

    world.outlook_create("Secret project Zeta", days=12)
    deps = sync_deps()
    world.sim("graph", "POST", "/_sim/clock", json={"advance_seconds": 3})
    with caplog.at_level(logging.INFO):
        report = sync_tech(TECH, deps=deps, job_id="job-1", correlation_id="job-1/1")
    assert report.created["syncro"] == 1
    # the sync's lines (a Syncro notification delivered meanwhile logs a webhook line of its own)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith('{"event":"sync.')]
    actions = [line for line in lines if line["event"] == "sync.action"]
    assert any(line["action"] == "CreateOn" and line["outcome"] == "done" for line in actions)
    assert all(
        line["tech"] == TECH and line["job_id"] == "job-1" and line["correlation_id"] == "job-1/1" for line in lines
    )
    assert [line["status"] for line in lines if line["event"] == "sync.finished"] == ["synced"]
    assert "Zeta" not in caplog.text  # never an event's content
