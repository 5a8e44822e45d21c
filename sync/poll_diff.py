"""What a listing says against the mirror (pure): new, changed and vanished appointments
(`diff`), Syncro's content hash (`content_hash`, the version marker left out), the day an
appointment starts (`start_day`), and when a listing's absences cannot be believed
(`suspicious_listing`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, tzinfo
from typing import Any

from storage.mirror import MirrorEntry
from sync.poll_windows import Window
from sync.times import parse_time

VOLATILE_FIELDS = ("updated_at",)  # Syncro's version marker: compared on its own, not hashed


@dataclass(frozen=True)
class Changes:
    """What one tech's listing says against the mirror."""

    new: tuple[dict[str, Any], ...] = ()
    changed: tuple[dict[str, Any], ...] = ()
    vanished: tuple[MirrorEntry, ...] = ()  # not yet believed: the shell confirms each with a GET

    def __bool__(self) -> bool:
        return bool(self.new or self.changed or self.vanished)


def content_hash(appointment: Mapping[str, Any]) -> str:
    """A stable digest of what Syncro shows of an appointment, its version marker left out."""
    content = {key: value for key, value in appointment.items() if key not in VOLATILE_FIELDS}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:32]


def start_day(appointment: Mapping[str, Any], zone: tzinfo) -> date | None:
    """The day the appointment starts in ``zone`` (Syncro's date filter reads starts so), or None."""
    moment = parse_time(appointment.get("start_at"), naive=zone)
    return None if moment is None else moment.astimezone(zone).date()


def in_window(appointment: Mapping[str, Any], window: Window, zone: tzinfo) -> bool:
    day = start_day(appointment, zone)
    return day is None or window[0] <= day < window[1]  # an unreadable start is checked, not trusted


def diff(
    mirror_entries: Iterable[MirrorEntry],
    listed: Iterable[Mapping[str, Any]],
    window: Window | None,
    *,
    seen: Collection[int] = frozenset(),
    zone: tzinfo = UTC,
) -> Changes:
    """One tech's listing against their mirror entries.

    New: listed, not in the mirror. Changed: ``updated_at`` or the content hash moved (either one:
    Syncro touches ``updated_at`` on every save, and a hash alone catches a marker that did not
    move). Vanished: a mirror entry starting inside ``window`` that is neither listed nor in
    ``seen`` (ids listed from the same window by an earlier run). ``window`` None means the listing
    is partial: nothing vanishes.
    """
    entries = {entry.appointment_id: entry for entry in mirror_entries}
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    listed_ids: set[int] = set()
    for item in listed:
        listed_ids.add(item["id"])
        entry = entries.get(item["id"])
        if entry is None:
            new.append(dict(item))
        elif str(item.get("updated_at") or "") != entry.updated_at or content_hash(item) != entry.content_hash:
            changed.append(dict(item))
    vanished: list[MirrorEntry] = []
    if window is not None:
        vanished = [
            entry
            for appointment_id, entry in sorted(entries.items())
            if appointment_id not in listed_ids
            and appointment_id not in seen
            and in_window(entry.appointment, window, zone)
        ]
    return Changes(new=tuple(new), changed=tuple(changed), vanished=tuple(vanished))


GUARD_COUNT = 10  # as the planner's deletion guard (sync.planner.Policy)
GUARD_FRACTION = 0.5


def suspicious_listing(*, listed: int, held: int, vanished: int) -> bool:
    """A window's listing that cannot be believed about what it leaves out: empty where the mirror
    held appointments, or missing many of them at once. Its absences are then believed only
    on a 404 (never taken for reassignments), like the planner's guard on deletions."""
    if held and not listed:
        return True
    return vanished >= GUARD_COUNT and vanished > GUARD_FRACTION * held
