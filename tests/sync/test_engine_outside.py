"""Issue 17: sync defects found from outside, each as a dispatcher in Syncro and techs in Outlook
would meet it, end to end (the in-process product, Azurite, the simulators with their strict
defaults and Graph's delta quirks). Nothing lost, nothing doubled. Each test is named for the
behaviour it proves."""

from __future__ import annotations

from typing import Any

from local import demo
from tests.sync import test_engine_scenarios as scenarios
from tests.sync.test_engine_scenarios import TECH, World, _by_summary

pytest_plugins = ["tests.app.linking_support"]

BLAKE = demo.TECHS[1]
world = scenarios.world  # the scenarios' fixture, for this module's own product


def _calendars(world: World) -> dict[str, str]:
    return {c["name"]: c["id"] for c in world.graph("GET", "/me/calendars").json()["value"]}


def _subjects_in(world: World, calendar_id: str) -> list[str]:
    events = world.graph("GET", f"/me/calendars/{calendar_id}/events?$top=200").json()["value"]
    return [e["subject"] for e in events]


def _choose_calendar(world: World, calendar_id: str) -> None:
    """What the settings page's save does."""
    from oauth.links import save_link_choices

    assert save_link_choices(TECH, calendar_id=calendar_id, two_way=True) is None
    world.calendar_id = calendar_id


def _bin_size(world: World) -> int:
    return len(world.stack.storage().recycle_bin.list_entries(TECH))


def test_switching_calendars_moves_our_copies_and_deletes_nothing_in_syncro(world: World) -> None:
    appointment = world.syncro_create("Switch visit")
    world.outlook_create("Switch errand")
    world.sync()
    (copy,) = _by_summary(world, "[O] Switch errand")
    calendars = _calendars(world)
    old, new = world.calendar_id, calendars["Work Orders"]
    ours = sorted(s for s in _subjects_in(world, old) if s.startswith("[S] "))
    assert "[S] Switch visit" in ours
    syncro_before = sorted(a["id"] for a in world.syncro_all())
    bin_before = _bin_size(world)
    _choose_calendar(world, new)
    try:
        report = world.sync()
        assert report.deleted == {"syncro": 0, "outlook": 0} and report.created["syncro"] == 0, report
        assert sorted(a["id"] for a in world.syncro_all()) == syncro_before  # nothing deleted in Syncro
        assert world.syncro_record(appointment) is not None and world.syncro_record(copy["id"]) is not None
        # our [S] copies moved to the new calendar, once each; the tech's own event stays behind
        assert sorted(s for s in _subjects_in(world, new) if s.startswith("[S] ")) == ours
        left = _subjects_in(world, old)
        assert not [s for s in left if s.startswith("[S] ")] and "Switch errand" in left
        assert _bin_size(world) == bin_before  # a move is no deletion
        assert world.sync().writes == 0
        # the event left behind is no longer synced: its edit stays in Outlook, its copy in Syncro
        (errand,) = [e for e in _events_in(world, old) if e["subject"] == "Switch errand"]
        world.graph("PATCH", f"/me/calendars/{old}/events/{errand['id']}", json={"subject": "Errand, moved"})
        assert world.sync().writes == 0
        assert world.syncro_record(copy["id"])["summary"] == "[O] Switch errand"
    finally:
        _choose_calendar(world, old)
    world.sync()
    assert sorted(s for s in _subjects_in(world, old) if s.startswith("[S] ")) == ours
    assert not [s for s in _subjects_in(world, new) if s.startswith("[S] ")]
    assert world.syncro_record(appointment) is not None


def _events_in(world: World, calendar_id: str) -> list[dict[str, Any]]:
    return world.graph("GET", f"/me/calendars/{calendar_id}/events?$top=200").json()["value"]


def _dispatch(world: World, summary: str, *, days: int, hour: int, **fields: Any) -> int:
    """An appointment the dispatcher makes in Syncro for ALEX, for the demo customer and ticket."""
    from tests.sync.test_engine_scenarios import _at

    body = {
        "summary": summary,
        "start_at": _at(days, hour),
        "end_at": _at(days, hour + 1),
        "user_id": TECH,
        "customer_id": demo.CUSTOMER_ID,
        "ticket_id": demo.FIRST_TICKET_ID,
        **fields,
    }
    answer = world.sim("syncro", "POST", "/_sim/appointments", json=body).json()
    return int(answer.get("id") or answer["appointment"]["id"])


def _outlook_copy(world: World, subject: str) -> dict[str, Any]:
    (event,) = [e for e in world.outlook_events() if e["subject"] == subject]
    return event


def test_edit_beats_delete_recreates_the_job_with_its_customer_ticket_and_location(world: World) -> None:
    appointment = _dispatch(world, "PSU swap", days=9, hour=10)  # no location: Outlook shows the address
    world.sync()
    event = _outlook_copy(world, "[S] PSU swap")
    assert "400 Harbor Way" in event["location"]["displayName"]
    world.sim("syncro", "DELETE", f"/_sim/appointments/{appointment}")
    world.graph("PATCH", f"/me/calendars/{world.calendar_id}/events/{event['id']}", json={"subject": "[S] PSU swap x2"})
    report = world.sync()
    assert report.created["syncro"] == 1, report
    (again,) = _by_summary(world, "PSU swap x2")
    record = world.syncro_record(again["id"])
    assert (record["customer_id"], record["ticket_id"]) == (demo.CUSTOMER_ID, demo.FIRST_TICKET_ID), record
    assert not record["location"], record  # the address we only displayed never flows back
    assert world.sync().writes == 0
    assert _outlook_copy(world, "[S] PSU swap x2")["id"] == event["id"]  # the same Outlook copy, still paired


def test_a_restore_brings_the_whole_appointment_back_once(world: World) -> None:
    from sync.engine import restore_entry
    from tests.sync.test_engine_scenarios import default_deps

    appointment = _dispatch(world, "Rack audit", days=10, hour=11, location="Rack room")
    world.sync()
    world.sync()  # delta has shown our copy (Graph tombstones only what a delta round showed)
    event = _outlook_copy(world, "[S] Rack audit")
    world.graph("DELETE", f"/me/calendars/{world.calendar_id}/events/{event['id']}")
    report = world.sync()
    assert report.deleted["syncro"] == 1, report
    assert world.syncro_record(appointment) is None
    entries = world.stack.storage().recycle_bin.list_entries(TECH)
    (entry,) = [e for e in entries if e.original_id == str(appointment)]
    restored = restore_entry(TECH, entry.entry_id, deps=default_deps())
    record = world.syncro_record(int(restored["id"]))
    assert (record["customer_id"], record["ticket_id"], record["location"]) == (
        demo.CUSTOMER_ID,
        demo.FIRST_TICKET_ID,
        "Rack room",
    ), record
    world.sync()
    assert [a["id"] for a in _by_summary(world, "Rack audit")] == [int(restored["id"])]
    assert [e["subject"] for e in world.outlook_events()].count("[S] Rack audit") == 1
    assert world.sync().writes == 0
