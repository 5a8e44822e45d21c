"""Events as calendarView and delta see them: singles, and series expanded into occurrences and
exceptions. Occurrence ids are derived from the master id and the occurrence's original start,
so they are stable, resolvable, and kept when an occurrence becomes an exception."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from local.sims.graph.model import StoredEvent, TimeSpec
from local.sims.graph.recurrence import occurrence_dates
from local.sims.graph.timefmt import resolve_zone, to_utc

_OCCURRENCE = re.compile(r"^(?P<master>.+)_OCC(?P<key>\d{8}T\d{6}Z)$")
# Key in an exception's fields holding the extended properties set on that occurrence alone.
OWN_EXTENDED = "_ownExtendedProperties"


@dataclass
class Instance:
    """One item as Graph lists it."""

    id: str
    kind: str  # singleInstance | occurrence | exception | seriesMaster
    event: StoredEvent  # the event itself, or the master of an occurrence
    start: TimeSpec
    end: TimeSpec
    fields: dict[str, Any]
    change_key: str
    modified: datetime
    original_start: datetime | None = None

    @property
    def version(self) -> str:
        """What delta compares between rounds: any change to the item or its master."""
        if self.kind in ("occurrence", "exception"):
            return f"{self.event.change_key}/{self.change_key}"
        return self.change_key

    @property
    def extended(self) -> dict[str, tuple[str, str]]:
        """Extended properties as the item carries them: the series' and, on an exception, its own."""
        return {**self.event.extended, **(self.fields.get(OWN_EXTENDED) or {})}

    @property
    def series_master_id(self) -> str | None:
        return self.event.id if self.kind in ("occurrence", "exception") else None


def occurrence_key(original_start: datetime) -> str:
    return original_start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def occurrence_id(master_id: str, key: str) -> str:
    return f"{master_id}_OCC{key}"


def parse_occurrence_id(item_id: str) -> tuple[str, str] | None:
    match = _OCCURRENCE.match(item_id)
    return (match["master"], match["key"]) if match else None


def as_instance(event: StoredEvent) -> Instance:
    kind = "seriesMaster" if event.is_series else "singleInstance"
    return Instance(event.id, kind, event, event.start, event.end, event.fields, event.change_key, event.modified)


def series_instances(master: StoredEvent, until: datetime) -> list[Instance]:
    """Occurrences and exceptions of ``master`` whose original start is before ``until`` (+ a day)."""
    assert master.recurrence is not None
    zone = resolve_zone(master.start.zone)
    last_day = (until.astimezone(zone) + timedelta(days=1)).date()
    result = []
    for day in occurrence_dates(master.recurrence, last_day):
        start = _occurrence_start(master, day)
        key = occurrence_key(start.utc)
        if key in master.deleted_occurrences:
            continue
        result.append(_build(master, key, start))
    return result


def _occurrence_start(master: StoredEvent, day: Any) -> TimeSpec:
    zone = resolve_zone(master.start.zone)
    local = datetime.combine(day, master.start.local.time())
    return TimeSpec(local=local, zone=master.start.zone, utc=to_utc(local, zone))


def _occurrence_end(master: StoredEvent, start: TimeSpec) -> TimeSpec:
    end_zone = resolve_zone(master.end.zone)
    if master.is_all_day:
        local = start.local + (master.end.local - master.start.local)
        return TimeSpec(local=local, zone=master.end.zone, utc=to_utc(local, end_zone))
    utc = start.utc + (master.end.utc - master.start.utc)
    return TimeSpec(local=utc.astimezone(end_zone).replace(tzinfo=None), zone=master.end.zone, utc=utc)


def _build(master: StoredEvent, key: str, start: TimeSpec) -> Instance:
    item_id = occurrence_id(master.id, key)
    override = master.overrides.get(key)
    if override is None:
        end = _occurrence_end(master, start)
        return Instance(
            item_id,
            "occurrence",
            master,
            start,
            end,
            master.fields,
            master.change_key,
            master.modified,
            original_start=start.utc,
        )
    own_start = override.start or start
    own_end = override.end or _occurrence_end(master, start)
    fields = {**master.fields, **override.fields}
    return Instance(
        item_id,
        "exception",
        master,
        own_start,
        own_end,
        fields,
        override.change_key,
        override.modified,
        original_start=start.utc,
    )


def find_occurrence(master: StoredEvent, key: str) -> Instance | None:
    """The occurrence with this key, if the series has it (and it is not deleted)."""
    if master.recurrence is None or key in master.deleted_occurrences:
        return None
    try:
        original = datetime.strptime(key, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return next((i for i in series_instances(master, original) if i.id.endswith(key)), None)


def overlaps(instance: Instance, start: datetime, end: datetime) -> bool:
    """calendarView's rule: the item overlaps [start, end); zero-length items count at their start."""
    if instance.start.utc == instance.end.utc:
        return start <= instance.start.utc < end
    return instance.start.utc < end and instance.end.utc > start


def instances_between(events: list[StoredEvent], start: datetime, end: datetime) -> list[Instance]:
    """Every single event, occurrence and exception overlapping the window, ordered by start."""
    result = []
    for event in events:
        if event.is_series:
            result.extend(i for i in series_instances(event, end) if overlaps(i, start, end))
        else:
            single = as_instance(event)
            if overlaps(single, start, end):
                result.append(single)
    result.sort(key=lambda i: (i.start.utc, i.id))
    return result
