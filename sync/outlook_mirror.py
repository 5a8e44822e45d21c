"""Keeping the Outlook mirror: one ``calendarView/delta`` round per sync of a technician.

The delta link is kept in the ``graphdelta`` cursor of the tech, with the calendar and window it
was started for: a new day (the window rolls forward), another calendar, or a link Graph no
longer knows (`DeltaTokenExpired`, 410) starts a full round whose result *replaces* the mirror.
Nothing is created twice after a full round, because the planner pairs items through the mapping
rows, not through the mirror. Occurrence stubs are filled (``list_instances`` per series, then
``get_event`` for stragglers) before they are stored, so every entry maps.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from storage.cursors import GRAPH_DELTA, Cursor
from storage.errors import ConcurrencyConflict, NotFound
from storage.outlook_mirror import OutlookEntry
from sync.errors import DeltaTokenExpired, GraphNotFound

if TYPE_CHECKING:
    from storage.cursors import CursorStore
    from storage.outlook_mirror import OutlookMirrorStore
    from sync.graph import GraphClient


@dataclass(frozen=True)
class Window:
    """The sync window: ``start`` to ``end`` (aware), from midnights in the account's zone."""

    start: datetime
    end: datetime

    @classmethod
    def around(cls, today: date, zone: tzinfo, *, past_days: int, future_days: int) -> Window:
        start = datetime.combine(today - timedelta(days=past_days), time(), zone)
        end = datetime.combine(today + timedelta(days=future_days + 1), time(), zone)
        return cls(start, end)


@dataclass(frozen=True)
class OutlookRefresh:
    events: dict[str, dict[str, Any]]  # id -> event, the whole mirror after the round
    full_round: bool
    expired: bool  # the stored delta link was refused (410): a full round was made instead


def _is_stub(event: dict[str, Any]) -> bool:
    return "subject" not in event and "@removed" not in event


def _fill_stubs(graph: GraphClient, calendar_id: str, items: list[dict[str, Any]], window: Window) -> list[dict]:
    stubs = [item for item in items if _is_stub(item)]
    if not stubs:
        return items
    full: dict[str, dict[str, Any]] = {}
    for series in sorted({str(s["seriesMasterId"]) for s in stubs if s.get("seriesMasterId")}):
        try:
            for instance in graph.list_instances(calendar_id, series, window.start, window.end):
                full[str(instance["id"])] = instance
        except GraphNotFound:
            continue  # the series went away meanwhile: its occurrences come as removed next round
    filled = []
    for item in items:
        if not _is_stub(item):
            filled.append(item)
        elif item["id"] in full:
            filled.append(full[item["id"]])
        else:
            try:
                filled.append(graph.get_event(calendar_id, item["id"]))
            except GraphNotFound:
                continue
    return filled


def refresh_outlook(
    *,
    tech: int,
    calendar_id: str,
    graph: GraphClient,
    store: OutlookMirrorStore,
    cursors: CursorStore,
    window: Window,
    now: datetime,
    mapped: Collection[str] = (),
) -> OutlookRefresh:
    """Bring the tech's Outlook mirror up to date with one delta round (a full one when needed).

    Graph reports an event moved out of the window as removed: a ``mapped`` event that vanishes is
    read once by id, and kept (with its new times) unless Graph answers 404, so moving an event
    far ahead never deletes its counterpart.

    Raises GraphError (other than an expired link) and StorageError."""
    cursor = _read(cursors, tech)
    state = _state(cursor)
    fresh = {"calendar": calendar_id, "start": window.start.isoformat(), "end": window.end.isoformat()}
    link = state.get("link") if all(state.get(k) == v for k, v in fresh.items()) else None
    expired = False
    try:
        round_ = graph.calendar_view_delta(calendar_id, start=window.start, end=window.end, delta_link=link)
    except DeltaTokenExpired:
        expired, link = True, None
        round_ = graph.calendar_view_delta(calendar_id, start=window.start, end=window.end)
    items = _fill_stubs(graph, calendar_id, round_.items, window)
    known = {e.event_id: e.event for e in store.list_entries(tech)}
    events = {} if link is None else dict(known)
    listed = {str(i["id"]) for i in items}
    gone = set(round_.removed) | (set(known) - listed if link is None else set())
    for event_id in sorted(gone):
        events.pop(event_id, None)
        moved = _moved_out(graph, calendar_id, event_id) if event_id in mapped else None
        if moved is not None:
            events[event_id] = moved  # moved out of the window, not deleted: its pair stays
            store.upsert_entry(OutlookEntry(tech, event_id, str(moved.get("changeKey") or ""), moved, now))
        else:
            store.delete_entry(tech, event_id)
    for item in items:
        events[str(item["id"])] = item
        store.upsert_entry(OutlookEntry(tech, str(item["id"]), str(item.get("changeKey") or ""), item, now))
    try:
        cursors.save_cursor(
            Cursor(
                GRAPH_DELTA, str(tech), json.dumps({**fresh, "link": round_.delta_link}), now, cursor and cursor.etag
            )
        )
    except ConcurrencyConflict:
        pass  # another run advanced it; ours is as good and theirs is kept
    return OutlookRefresh(events=events, full_round=link is None, expired=expired)


def _moved_out(graph: GraphClient, calendar_id: str, event_id: str) -> dict[str, Any] | None:
    try:
        return graph.get_event(calendar_id, event_id)
    except GraphNotFound:
        return None


def forget_outlook(tech: int, *, store: OutlookMirrorStore, cursors: CursorStore) -> None:
    store.clear(tech)
    cursors.delete_cursor(GRAPH_DELTA, str(tech))


def _read(cursors: CursorStore, tech: int) -> Cursor | None:
    try:
        return cursors.get_cursor(GRAPH_DELTA, str(tech))
    except NotFound:
        return None


def _state(cursor: Cursor | None) -> dict[str, Any]:
    if cursor is None:
        return {}
    try:
        value = json.loads(cursor.value)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
