"""`sync.engine.build_inputs` turns the link's and the admin's choices into what the planner
decides on (pure: plain records in, items out). The end-to-end versions of these policies are in
`test_engine_policies.py`; here are the cases the simulators cannot stage (a declined meeting
that stays in the calendar) and the edges of the import window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from settings import SyncOptions
from storage.links import Link, LinkStatus
from sync.actions import DeleteOn, Pair
from sync.executor import Snapshot
from sync.inputs import BUSY, build_inputs
from sync.model import Appointment, Side
from sync.planner import Policy, plan

ZONE = ZoneInfo("America/New_York")
TECH = 5560138523
LINKED = datetime(2026, 12, 1, 12, tzinfo=UTC)
NOW = LINKED + timedelta(hours=1)


def _link(**changes: Any) -> Link:
    link = Link(
        TECH, "a@x.example", "oid.tid", "a@x.example", "tid", "cal", "Calendar", True, LinkStatus.ACTIVE, LINKED
    )
    return link.with_changes(**changes)


def _event(event_id: str, subject: str, *, day: int = 3, created: datetime = NOW, **fields: Any) -> dict[str, Any]:
    start = datetime(2026, 12, day, 15, tzinfo=UTC)
    return {
        "id": event_id,
        "subject": subject,
        "changeKey": f"ck-{event_id}",
        "type": "singleInstance",
        "isAllDay": False,
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "body": {"contentType": "text", "content": "agenda"},
        "location": {"displayName": "Room 1"},
        "createdDateTime": created.isoformat(),
        "lastModifiedDateTime": created.isoformat(),
        **fields,
    }


def _syncro(appointment_id: str, summary: str, *, day: int = 3) -> dict[str, Any]:
    start = datetime(2026, 12, day, 15, tzinfo=UTC)
    return {
        "id": int(appointment_id),
        "summary": summary,
        "description": "agenda",
        "location": "Room 1",
        "start_at": start.isoformat(),
        "end_at": (start + timedelta(hours=1)).isoformat(),
        "updated_at": "2026-12-01T13:00:00Z",
    }


def _items(outlook: dict[str, dict[str, Any]], *, pairs: list[Pair] = (), link: Link | None = None, **options: Any):  # type: ignore[assignment]
    snapshot = Snapshot(syncro={}, outlook=outlook)
    return build_inputs(
        snapshot, list(pairs), tech=TECH, link=link or _link(), zone=ZONE, options=SyncOptions(**options), now=NOW
    )


def test_a_declined_meeting_that_stays_in_the_calendar_removes_its_syncro_copy() -> None:
    declined = _event("e1", "Review", isOrganizer=False, responseStatus={"response": "declined"})
    record = _syncro("5560138601", "[O] Review")
    content = Appointment(
        "Review",
        datetime(2026, 12, 3, 15, tzinfo=UTC),
        datetime(2026, 12, 3, 16, tzinfo=UTC),
        False,
        "agenda",
        "Room 1",
    )
    pair = Pair("outlook:e1", Side.OUTLOOK, "5560138601", "e1", record["updated_at"], "ck-old", content)
    snapshot = Snapshot(syncro={"5560138601": record}, outlook={"e1": declined})
    inputs = build_inputs(snapshot, [pair], tech=TECH, link=_link(), zone=ZONE, options=SyncOptions(), now=NOW)
    (outlook,) = inputs.outlook
    assert outlook.flags.withdrawn is True
    actions = plan(inputs.pairs, inputs.syncro, inputs.outlook, policy=Policy(two_way=True))
    assert actions == [
        DeleteOn(Side.SYNCRO, "5560138601", record["updated_at"], "outlook:e1", inputs.syncro[0].content)
    ]


def test_a_declined_or_cancelled_meeting_nobody_synced_is_not_an_item() -> None:
    inputs = _items(
        {
            "e1": _event("e1", "A", isOrganizer=False, responseStatus={"response": "declined"}),
            "e2": _event("e2", "Canceled: B", isOrganizer=False, isCancelled=True),
        }
    )
    assert inputs.outlook == []


def test_a_meeting_someone_else_organised_flows_from_outlook_only() -> None:
    inputs = _items({"e1": _event("e1", "Review", isOrganizer=False), "e2": _event("e2", "Mine", isOrganizer=True)})
    flags = {item.id: item.flags.outlook_only for item in inputs.outlook}
    assert flags == {"e1": True, "e2": False}


def test_a_private_event_reads_as_busy_unless_the_tech_shares_private_details() -> None:
    private = {"e1": _event("e1", "Therapy", sensitivity="private")}
    (masked,) = _items(private).outlook
    assert (masked.content.summary, masked.content.description, masked.content.location) == (BUSY, "", "")
    assert masked.flags.outlook_only is True
    (shared,) = _items(private, link=_link(share_private=True)).outlook
    assert shared.content.summary == "Therapy" and not shared.flags.outlook_only


def test_a_syncro_born_event_the_tech_marks_private_is_never_masked() -> None:
    content = Appointment(
        "Swap", datetime(2026, 12, 3, 15, tzinfo=UTC), datetime(2026, 12, 3, 16, tzinfo=UTC), False, "agenda", "Room 1"
    )
    pair = Pair("syncro:1", Side.SYNCRO, "1", "e1", "v1", "ck-e1", content)
    (item,) = _items({"e1": _event("e1", "[S] Swap", sensitivity="private")}, pairs=[pair]).outlook
    assert item.content.summary == "Swap" and not item.flags.outlook_only


def test_occurrences_start_no_pair_when_recurring_sync_is_off_but_synced_ones_keep_syncing() -> None:
    occurrence = _event("o1", "Stand-up", type="occurrence", seriesMasterId="m")
    (item,) = _items({"o1": occurrence}, recurring=False).outlook
    assert item.flags.no_import
    assert plan([], [], [item], policy=Policy(two_way=True)) == []
    (default,) = _items({"o1": occurrence}).outlook
    assert not default.flags.no_import


def test_events_from_before_the_link_are_imported_only_inside_the_import_window() -> None:
    before = LINKED - timedelta(days=3)
    events = {
        "soon": _event("soon", "Soon", day=2, created=before),  # 2 Dec: within 2 days of 1 Dec
        "later": _event("later", "Later", day=9, created=before),
        "new": _event("new", "New", day=20),
    }
    off = {item.id: item.flags.preexisting for item in _items(events).outlook}
    assert off == {"soon": True, "later": True, "new": False}
    on = {
        item.id: item.flags.preexisting for item in _items(events, import_existing=True, import_existing_days=2).outlook
    }
    assert on == {"soon": False, "later": True, "new": False}


def test_an_unreadable_event_is_skipped_with_its_reason_and_a_short_title_to_find_it_by() -> None:
    broken = _event(
        "e1", "Quarterly\\x00 review of the whole server estate at the head office, all day", isAllDay=False
    )
    broken["start"] = {"dateTime": "not a time", "timeZone": "UTC"}
    inputs = _items({"e1": broken})
    assert inputs.outlook == []
    (skipped,) = inputs.skipped
    assert skipped["side"] == "outlook" and skipped["id"] == "e1" and "start" in skipped["reason"]
    assert skipped["summary"].startswith("Quarterly") and len(skipped["summary"]) <= 60


def test_only_a_parent_that_is_another_calendar_of_the_mailbox_counts_as_elsewhere() -> None:
    from types import SimpleNamespace

    from sync.inputs import other_calendars

    asked: list[str] = []

    class Graph:
        def calendars(self) -> list[SimpleNamespace]:
            asked.append("calendars")
            return [SimpleNamespace(id="home"), SimpleNamespace(id="work")]

    home = {"a": {"parentFolderId": "home"}, "b": {}}
    assert other_calendars(Graph(), "home", home) == frozenset() and asked == []  # nothing suspicious: no call
    moved = {**home, "c": {"parentFolderId": "work"}, "d": {"parentFolderId": "AQMk-another-form-of-home"}}
    assert other_calendars(Graph(), "home", moved) == frozenset({"work"})  # an unknown form is never elsewhere
