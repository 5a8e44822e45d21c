"""What the soak's users did and what they must find at the end (`bench/soak.py`).

Each appointment a user makes is a `Thing`: its title starts with a key of its own (``k3.17``),
which no edit changes, so its items are found on both sides whatever the sync did to them. The
model holds the content the user expects now, by the mapping rules the engine's convergence
tests check (`sync.mapping` reads each side into a neutral `Appointment`; a copy's title carries
exactly one ``[S] ``/``[O] `` tag, the original none).

So that "what the user expects" is never a matter of the conflict policy, each field (summary,
notes, location, time: `convergence_model.MODEL_UNITS`) is edited on one side at a time: its
side may change only once both sides were seen to agree. Two fields of one appointment may be
edited on the two sides at once (the engine merges them). A deletion, on either side, is made
only where both sides agree, and the thing is then expected gone from both.

Kinds beyond a timed appointment of one tech: all-day ones (one or two days; an edit of the time
may turn a timed one all-day and back), and Syncro jobs with two linked techs (`Thing.techs`),
shown in each tech's calendar; one of them deleting it in Outlook takes only them off the job
(`Thing.left`), which stays for the other. And recurring series made in Outlook (daily, three
occurrences): each occurrence is a `Thing` of its own (`Thing.series`; its key is the series' key
and the occurrence's day, ``k3.17@2026-12-10``), edited (title, notes, place) or deleted in
Outlook only, one occurrence at a time; the product syncs each as an appointment of its own.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sync.mapping import OUTLOOK_TAG, SYNCRO_TAG, appointment_from_graph, appointment_from_syncro, strip_tags
from sync.model import Appointment

SYNCRO, OUTLOOK = "syncro", "outlook"
SIDES = (SYNCRO, OUTLOOK)
UNITS = ("summary", "description", "location", "when")
DESCRIPTIONS = ("", "notes", "bring the ladder\nand a cable", "call first")
LOCATIONS = ("", "Site A", "Office", "Warehouse 2")
ALL_DAY_SHARE = 0.2


@dataclass
class Thing:
    key: str
    tech: int
    origin: str
    content: Appointment  # what the user expects on both sides now
    owner: dict[str, str] = field(default_factory=dict)  # unit -> the side it is edited on
    ids: dict[str, str] = field(default_factory=dict)  # side -> id, once known
    deleted_on: str = ""  # the side a user deleted it on ("" = alive)
    revision: int = 0
    techs: list[int] = field(default_factory=list)  # the techs it is assigned to now (first: ``tech``)
    left: list[int] = field(default_factory=list)  # techs who took themselves off it in Outlook
    series: str = ""  # the Outlook series it is an occurrence of ("" = none)

    def __post_init__(self) -> None:
        self.owner = self.owner or dict.fromkeys(UNITS, self.origin)
        self.techs = self.techs or [self.tech]

    def leave(self, tech: int) -> None:
        """``tech`` deleted it in their Outlook: the job stays, for the others."""
        self.techs.remove(tech)
        self.left.append(tech)
        self.tech = self.techs[0]

    @property
    def title_key(self) -> str:
        """The key its title starts with (an occurrence's key without its day)."""
        return self.key.split("@")[0]


@dataclass(frozen=True)
class Item:
    """One item as a side holds it."""

    side: str
    id: str
    title: str
    content: Appointment


def key_of(title: str) -> str:
    """The thing's key: the first word of the title without its tag."""
    words = strip_tags(title).split()
    return words[0] if words and words[0].startswith("k") and "." in words[0] else ""


def fresh_content(rng: random.Random, key: str, zone: ZoneInfo, today: date) -> Appointment:
    return Appointment(
        summary=f"{key} r0",
        description=rng.choice(DESCRIPTIONS),
        location=rng.choice(LOCATIONS),
        **_when(rng, zone, today),
    )


def _when(rng: random.Random, zone: ZoneInfo, today: date) -> dict[str, Any]:
    # Inside the poller's near window (yesterday to 14 days ahead), timed, on the hour; or all day,
    # from midnight to midnight in the account's zone (one or two days).
    day = today + timedelta(days=rng.randint(1, 6))
    if rng.random() < ALL_DAY_SHARE:
        start = datetime.combine(day, time(0), zone)
        end = datetime.combine(day + timedelta(days=rng.choice((1, 2))), time(0), zone)
        return {"start": start, "end": end, "all_day": True}
    start = datetime.combine(day, time(rng.randint(7, 16)), zone)
    return {"start": start, "end": start + timedelta(hours=rng.choice((1, 2))), "all_day": False}


def edited(thing: Thing, unit: str, rng: random.Random, zone: ZoneInfo, today: date) -> Appointment:
    """``thing``'s content with ``unit`` changed to a new value."""
    current = thing.content
    if unit == "summary":
        thing.revision += 1
        return replace(current, summary=f"{thing.title_key} r{thing.revision}")
    if unit == "description":
        return replace(current, description=rng.choice([d for d in DESCRIPTIONS if d != current.description]))
    if unit == "location":
        return replace(current, location=rng.choice([v for v in LOCATIONS if v != current.location]))
    while True:
        when = _when(rng, zone, today)
        if when["start"] != current.start or when["end"] != current.end:
            return replace(current, **when)


def syncro_items(records: list[dict[str, Any]], tech: int, zone: ZoneInfo) -> list[Item]:
    return [
        Item(SYNCRO, str(r["id"]), str(r.get("summary") or ""), appointment_from_syncro(r, zone=zone))
        for r in records
        if tech in (r.get("user_ids") or []) or r.get("user_id") == tech
    ]


def outlook_items(events: list[dict[str, Any]], calendar_name: str, zone: ZoneInfo) -> list[Item]:
    """The synced calendar's events (as the Graph simulator stores them, `stored_events`)."""
    return [
        Item(OUTLOOK, str(e["id"]), str(e.get("subject") or ""), appointment_from_graph(e, zone=zone))
        for e in events
        if e.get("calendarName") == calendar_name
    ]


def by_key(items: list[Item], series: set[str], zone: ZoneInfo) -> dict[str, list[Item]]:
    """Items by their thing's key; an occurrence of a ``series`` key gets its day appended."""
    found: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        key = key_of(item.title)
        if key in series:
            key = f"{key}@{item.content.start.astimezone(zone).date().isoformat()}"
        found[key].append(item)
    return found


def occurrences(content: Appointment, count: int, zone: ZoneInfo) -> list[Appointment]:
    """A daily series' occurrences, at the same local time each day."""
    start, end = content.start.astimezone(zone), content.end.astimezone(zone)
    return [
        replace(
            content,
            start=datetime.combine(start.date() + timedelta(days=n), start.time(), zone),
            end=datetime.combine(end.date() + timedelta(days=n), end.time(), zone),
        )
        for n in range(count)
    ]


def agrees(thing: Thing, held: dict[str, dict[str, list[Item]]]) -> bool:
    """Both sides of one tech hold ``thing`` once, each with the expected content."""
    return all([item.content for item in held[side].get(thing.key, [])] == [thing.content] for side in SIDES)


def agrees_for_all(thing: Thing, held: dict[int, dict[str, dict[str, list[Item]]]]) -> bool:
    """Every tech on ``thing`` sees it as expected on both sides, and none who left sees it."""
    return all(agrees(thing, held[tech]) for tech in thing.techs) and not any(
        held[tech][side].get(thing.key) for tech in thing.left for side in SIDES
    )


def expected_title(thing: Thing, side: str) -> str:
    summary = thing.content.summary
    if side == thing.origin:
        return summary
    return (SYNCRO_TAG if thing.origin == SYNCRO else OUTLOOK_TAG) + summary


@dataclass
class Verdict:
    duplicates: int = 0
    lost: int = 0
    unintended_deletions: int = 0
    unconverged_techs: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def note(self, tech: int, problem: str) -> None:
        self.unconverged_techs.add(tech)
        self.problems.append(f"tech {tech}: {problem}")


def judge(things: list[Thing], held: dict[int, dict[str, dict[str, list[Item]]]], verdict: Verdict) -> None:
    """Count, per tech, what the sides hold against what the users did."""
    for thing in things:
        for tech in thing.left:
            for side in SIDES:
                if held[tech][side].get(thing.key):
                    verdict.note(tech, f"{thing.key} still in {side} after this tech deleted it in Outlook")
        for tech in thing.techs:
            _judge_one(thing, tech, held[tech], verdict)
    for tech, sides in held.items():
        known = {t.key for t in things if tech in t.techs or tech in t.left}
        for side in SIDES:
            strangers = Counter(key for key in sides[side] if key not in known)
            for key, count in strangers.items():
                verdict.note(tech, f"{count} item(s) in {side} that no user made ({key or 'untitled'})")


def _judge_one(thing: Thing, tech: int, sides: dict[str, dict[str, list[Item]]], verdict: Verdict) -> None:
    """What one tech's two sides hold of ``thing`` against what the users did."""
    for side in SIDES:
        items = sides[side].get(thing.key, [])
        if thing.deleted_on:
            if items:
                verdict.note(tech, f"{thing.key} deleted in {thing.deleted_on} but still in {side}")
            continue
        if len(items) > 1:
            verdict.duplicates += len(items) - 1
            verdict.note(tech, f"{thing.key} is in {side} {len(items)} times: {[i.title for i in items]}")
        if not items:
            verdict.unintended_deletions += 1
            verdict.note(tech, f"{thing.key} is missing from {side} (nobody deleted it)")
            continue
        if all(item.content != thing.content for item in items):
            verdict.lost += 1
            verdict.note(tech, f"{thing.key} in {side} holds {_show(items[0].content)}, "
                         f"the users left {_show(thing.content)}")  # fmt: skip
        for item in items:
            if item.title != expected_title(thing, side):
                verdict.note(tech, f"{thing.key} in {side} is titled {item.title!r}")


def _show(content: Appointment) -> str:
    return (
        f"{content.summary!r}/{content.description!r}/{content.location!r}/"
        f"{content.start.isoformat(timespec='minutes')}-{content.end.isoformat(timespec='minutes')}"
    )
