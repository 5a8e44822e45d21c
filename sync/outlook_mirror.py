"""Keeping the Outlook mirror: one ``calendarView/delta`` round per sync of a technician.

The delta link is kept in the ``graphdelta`` cursor of the tech, with the calendar and window it
was started for: a new day (the window rolls forward), another calendar, or a link Graph no
longer knows (`DeltaTokenExpired`, 410) starts a full round whose result *replaces* the mirror.
Nothing is created twice after a full round, because the planner pairs items through the mapping
rows, not through the mirror. Occurrence stubs are filled (each series' instances, then the
stragglers by id; several at once in chained ``$batch`` requests) before they are stored, so
every entry maps. An item whose
``changeKey`` is the one stored (our own write read back, or a replay) is not written again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from functools import partial
from typing import TYPE_CHECKING, Any

from storage.cursors import GRAPH_DELTA, Cursor
from storage.errors import ConcurrencyConflict, NotFound
from storage.outlook_mirror import OutlookEntry
from sync.errors import DeltaTokenExpired

STORAGE_WRITERS = 8  # mirror writes in flight at once

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
    """Occurrence stubs replaced by the full occurrences: each series' instances (several
    series in chained ``$batch`` requests), then the stragglers by id (likewise); a stub whose
    series or self is gone (404) is left out: it comes as removed next round."""
    stubs = [item for item in items if _is_stub(item)]
    if not stubs:
        return items
    series = sorted({str(s["seriesMasterId"]) for s in stubs if s.get("seriesMasterId")})
    full: dict[str, dict[str, Any]] = {}
    for instances in graph.list_instances_of(calendar_id, series, window.start, window.end).values():
        full.update({str(instance["id"]): instance for instance in instances or []})
    stragglers = [str(item["id"]) for item in stubs if item["id"] not in full]
    full.update({k: v for k, v in graph.get_events(calendar_id, stragglers).items() if v is not None})
    filled = []
    for item in items:
        if not _is_stub(item):
            filled.append(item)
        elif item["id"] in full:
            filled.append(full[item["id"]])
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
    writes: list[Callable[[], object]] = []
    # Graph reports an event moved out of the window as removed: read the mapped ones by id.
    moved_out = graph.get_events(calendar_id, sorted(gone & set(mapped)))
    for event_id in sorted(gone):
        events.pop(event_id, None)
        moved = moved_out.get(event_id)
        if moved is not None:
            events[event_id] = moved  # moved out of the window, not deleted: its pair stays
            writes.append(partial(store.upsert_entry, _entry(tech, moved, now)))
        else:
            writes.append(partial(store.delete_entry, tech, event_id))
    for item in items:
        events[str(item["id"])] = item
        stored = known.get(str(item["id"]))
        if stored is not None and item.get("changeKey") and stored.get("changeKey") == item.get("changeKey"):
            continue  # this version is stored already (our own write, read back; or a replay)
        writes.append(partial(store.upsert_entry, _entry(tech, item, now)))
    _run_all(writes)
    try:
        cursors.save_cursor(
            Cursor(
                GRAPH_DELTA, str(tech), json.dumps({**fresh, "link": round_.delta_link}), now, cursor and cursor.etag
            )
        )
    except ConcurrencyConflict:
        pass  # another run advanced it; ours is as good and theirs is kept
    return OutlookRefresh(events=events, full_round=link is None, expired=expired)


def _entry(tech: int, event: dict[str, Any], now: datetime) -> OutlookEntry:
    return OutlookEntry(tech, str(event["id"]), str(event.get("changeKey") or ""), event, now)


def _run_all(writes: list[Callable[[], object]]) -> None:
    """The mirror's writes (each its own entry), ``STORAGE_WRITERS`` at a time: a first or a
    busy round writes hundreds. The first exception is raised once all have finished."""
    if len(writes) < 2:
        for write in writes:
            write()
        return
    with ThreadPoolExecutor(max_workers=STORAGE_WRITERS, thread_name_prefix="outlook-mirror") as pool:
        futures = [pool.submit(write) for write in writes]
    for future in futures:
        future.result()


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
