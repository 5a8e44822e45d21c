"""Syncro change detection: poll appointment windows inside a request budget and diff them
against the mirror (what the last poll saw), then queue one sync job per technician that changed.

Syncro has no updated-since filter and announces only creations, so updates and deletions are
found by listing day windows and comparing. Three phases, as the sync core does them:

- pure planning: `plan_windows` (the near window every round, one slice of the rest of the sync
  window per round, a cursor remembering where) and `diff` (new, changed, vanished);
- the shell, `poll_once`: list pages while the `RequestBudget` allows, write the mirror, confirm
  each vanished appointment with ``GET /appointments/{id}`` (a 404) before forgetting it, and
  enqueue jobs.

A round is the near window plus one far slice. Each run continues the unfinished round where the
last stopped (window and page, kept in the ``syncropoll/round`` cursor) before planning the next,
so every run makes progress and a full pass takes at most `runs_per_pass` complete rounds.

Ownership: an appointment is a technician's when ``user_id``/``user_ids`` name them. Syncro's
documented responses never show those fields. The first page that holds appointments tells: with
the fields, one account-wide listing serves every tech; without them (`OwnershipMode.TOKENS`), each
tech's own listing (``mine=true``, with that tech's API token) is read instead, in the same budget,
and the report carries `OwnershipUnknown` so health and the admin overview can say so. The
decision is kept in the ``syncropoll/ownership`` cursor; delete that row to probe again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from storage.cursors import SYNCRO_POLL, Cursor
from storage.errors import ConcurrencyConflict, NotFound
from storage.mirror import MirrorEntry
from storage.sync_queue import SyncJob
from sync.errors import SyncroError, SyncroForbidden, SyncroNotFound, SyncroThrottled, SyncroUnauthorized
from sync.syncro import MAX_PAGES
from sync.times import parse_time

if TYPE_CHECKING:
    from storage.cursors import CursorStore
    from storage.mirror import MirrorStore
    from storage.sync_queue import SyncQueue
    from sync.budget import RequestBudget
    from sync.syncro import AppointmentPage, SyncroClient

Window = tuple[date, date]  # days in the account's zone; date_to exclusive, as Syncro's filter
JOB_REASON = "syncro-poll"
ROUND_KEY = "round"
OWNERSHIP_KEY = "ownership"
# Ids listed so far in a window whose pages span runs; past this many the cursor row would grow
# beyond what a table property holds, and that window skips vanish detection this round.
MAX_CARRIED_IDS = 1500
USER_FIELDS = ("user_id", "user_ids")
# Every run lists the near window, today to two days ahead: an edit to what a tech does in the next
# 48 hours reaches Outlook within a run or two. The rest of the sync window comes a slice a run, so
# a whole pass takes 12 runs (118 far days / 10) and any other edit arrives within 15 minutes. A
# run's cost is the near pages plus a twelfth of the rest: it grows with the account, but a
# 5,000-appointment account stays within the poller's 60 a minute (docs/poller.md, bench/poll_cost.py).
# (It was yesterday to 14 days ahead every run: 200 pages a run for 5,000 appointments in those
# days, more than three times the budget, so a round took four minutes and every edit waited.)
NEAR_DAYS = (0, 2)
SLICE_DAYS = 10

VOLATILE_FIELDS = ("updated_at",)  # Syncro's version marker: compared on its own, not hashed


class OwnershipMode(StrEnum):
    UNKNOWN = "unknown"  # no appointment listed yet, so nobody knows whether Syncro shows owners
    FIELDS = "fields"  # responses carry user_id/user_ids: one account-wide listing serves all techs
    TOKENS = "tokens"  # the fields are withheld: each tech's own listing with their API token


def _not_polled(lead: str, techs: tuple[int, ...], aside: str, until: str) -> str:
    """The sentence naming techs whose appointments are not polled, and what makes them polled."""
    names = ", ".join(str(tech) for tech in techs)
    return (
        f" {lead} Syncro user(s) {names}{aside}: their appointments are not polled {until} or an admin sets it "
        "on their card in the admin overview (Syncro: their user menu > Profile/Password > API Tokens)."
    )


@dataclass(frozen=True)
class OwnershipUnknown:
    """Syncro's responses do not say whom an appointment belongs to; shown in health and on the
    admin overview as `explanation`."""

    techs_without_token: tuple[int, ...] = ()
    techs_token_refused: tuple[int, ...] = ()  # Syncro refused their token this run (revoked, deleted)

    @property
    def explanation(self) -> str:
        text = (
            "Syncro's API does not say which technician an appointment belongs to (its responses leave out "
            "user_id and user_ids), so each technician's appointments are read with that technician's own "
            "Syncro API token."
        )
        if self.techs_without_token:
            until = "until they add one (the second step of linking, or their settings page)"
            text += _not_polled("No API token is set for", self.techs_without_token, "", until)
        if self.techs_token_refused:
            aside = " (revoked or deleted in Syncro)"
            text += _not_polled(
                "Syncro refused the API token of",
                self.techs_token_refused,
                aside,
                "until they set a new one on their settings page",
            )
        return text


@dataclass(frozen=True)
class Changes:
    """What one tech's listing says against the mirror."""

    new: tuple[dict[str, Any], ...] = ()
    changed: tuple[dict[str, Any], ...] = ()
    vanished: tuple[MirrorEntry, ...] = ()  # not yet believed: the shell confirms each with a GET

    def __bool__(self) -> bool:
        return bool(self.new or self.changed or self.vanished)


@dataclass(frozen=True)
class PollReport:
    requests_made: int
    pages: int
    changed_techs: tuple[int, ...]  # each got one sync job
    ownership: OwnershipMode
    ownership_unknown: OwnershipUnknown | None  # set whenever Syncro withholds the owner fields
    skipped_for_budget: int  # window listings left for a later run because the budget ran out
    unconfirmed: int  # vanished appointments not yet checked (budget): checked on a later listing
    deleted: int  # confirmed gone (404) and forgotten
    round_complete: bool
    throttled: bool  # Syncro answered 429 past the client's retries: the run stopped there
    windows: tuple[Window, ...]  # the round's windows


# -- pure: windows ------------------------------------------------------------------------------


def _far_segments(
    today: date, *, past_days: int, future_days: int, near: tuple[int, int]
) -> tuple[Window | None, list[Window]]:
    start, end = today - timedelta(days=past_days), today + timedelta(days=future_days + 1)
    near_from, near_to = max(start, today - timedelta(days=near[0])), min(end, today + timedelta(days=near[1] + 1))
    if near_from >= near_to:
        return None, [(start, end)] if start < end else []
    segments = [(start, near_from), (near_to, end)]
    return (near_from, near_to), [(low, high) for low, high in segments if low < high]


def _check(past_days: int, future_days: int, near: tuple[int, int], slice_days: int) -> None:
    if min(past_days, future_days, *near) < 0 or slice_days < 1:
        raise ValueError("window days must not be negative and slices hold at least one day")


def plan_windows(
    now: date,
    cursor: int | None,
    *,
    past_days: int = 60,
    future_days: int = 60,
    near: tuple[int, int] = NEAR_DAYS,
    slice_days: int = SLICE_DAYS,
) -> tuple[list[Window], int]:
    """The windows of one round and the cursor of the next.

    ``now`` is today in the account's zone (a datetime is read as its date). The sync window is
    ``past_days`` back to ``future_days`` ahead, both days included; the near window ``near[0]``
    days back to ``near[1]`` ahead comes every round, and the rest (the far days, counted from the
    oldest) comes ``slice_days`` at a time from position ``cursor`` (None or out of range: 0). A
    slice crossing the near window comes as two windows. The cursor counts far days, so it keeps
    its meaning as days pass.
    """
    _check(past_days, future_days, near, slice_days)
    today = now.date() if isinstance(now, datetime) else now
    near_window, far = _far_segments(today, past_days=past_days, future_days=future_days, near=near)
    windows = [near_window] if near_window else []
    total = sum((high - low).days for low, high in far)
    if total == 0:
        return windows, 0
    position = cursor if cursor is not None and 0 <= cursor < total else 0
    take = min(slice_days, total - position)  # the last slice may be short: a pass never wraps mid-slice
    skip = position
    for low, high in far:
        length = (high - low).days
        if skip >= length:
            skip -= length
            continue
        count = min(take, length - skip)
        windows.append((low + timedelta(days=skip), low + timedelta(days=skip + count)))
        take -= count
        skip = 0
        if take == 0:
            break
    following = position + min(slice_days, total - position)
    return windows, following if following < total else 0


def runs_per_pass(
    *, past_days: int = 60, future_days: int = 60, near: tuple[int, int] = NEAR_DAYS, slice_days: int = SLICE_DAYS
) -> int:
    """Rounds that cover the whole sync window, starting from cursor 0."""
    _check(past_days, future_days, near, slice_days)
    _, far = _far_segments(date(2000, 1, 1), past_days=past_days, future_days=future_days, near=near)
    return max(1, math.ceil(sum((high - low).days for low, high in far) / slice_days))


# -- pure: diff ---------------------------------------------------------------------------------


def content_hash(appointment: Mapping[str, Any]) -> str:
    """A stable digest of what Syncro shows of an appointment, its version marker left out."""
    content = {key: value for key, value in appointment.items() if key not in VOLATILE_FIELDS}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:32]


def owners_of(appointment: Mapping[str, Any]) -> frozenset[int] | None:
    """The Syncro user ids an appointment is assigned to, or None when Syncro left both fields out."""
    if not any(name in appointment for name in USER_FIELDS):
        return None
    owners: set[int] = set()
    single = appointment.get("user_id")
    if single is not None and not isinstance(single, bool):
        owners.add(int(single))
    for value in appointment.get("user_ids") or ():
        if value is not None and not isinstance(value, bool):
            owners.add(int(value))
    return frozenset(owners)


def start_day(appointment: Mapping[str, Any], zone: tzinfo) -> date | None:
    """The day the appointment starts in ``zone`` (Syncro's date filter reads starts so), or None."""
    moment = parse_time(appointment.get("start_at"), naive=zone)
    return None if moment is None else moment.astimezone(zone).date()


def _in_window(appointment: Mapping[str, Any], window: Window, zone: tzinfo) -> bool:
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
            and _in_window(entry.appointment, window, zone)
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


# -- the round's progress (the syncropoll/round cursor) -----------------------------------------


@dataclass(frozen=True)
class Unit:
    """One window listing: account-wide (``tech`` None) or one tech's own (``mine=true``)."""

    tech: int | None
    window: Window


@dataclass
class RoundState:
    far_cursor: int  # where the next round's far slice starts
    units: list[Unit] = field(default_factory=list)
    unit: int = 0  # the next unit to list
    page: int = 1  # its next page
    seen: list[int] | None = field(default_factory=list)  # ids listed from it so far (None: too many)
    near_pages: int = 0  # pages the round's near listing took so far
    pass_runs: int = 1  # runs the pass this round belongs to has taken, this one included

    @property
    def complete(self) -> bool:
        return self.unit >= len(self.units)

    def to_json(self) -> str:
        units = [[unit.tech, unit.window[0].isoformat(), unit.window[1].isoformat()] for unit in self.units]
        data = {
            "far": self.far_cursor,
            "units": units,
            "unit": self.unit,
            "page": self.page,
            "seen": self.seen,
            "near_pages": self.near_pages,
            "pass_runs": self.pass_runs,
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> RoundState:
        """An unreadable row starts afresh rather than stopping every poll."""
        try:
            data = json.loads(text)
            units = [
                Unit(None if tech is None else int(tech), (date.fromisoformat(low), date.fromisoformat(high)))
                for tech, low, high in data["units"]
            ]
            seen = data.get("seen")
            return cls(
                far_cursor=int(data["far"]),
                units=units,
                unit=int(data["unit"]),
                page=max(1, int(data["page"])),
                seen=None if seen is None else [int(value) for value in seen],
                near_pages=int(data.get("near_pages", 0)),
                pass_runs=max(1, int(data.get("pass_runs", 1))),
            )
        except (KeyError, TypeError, ValueError):
            return cls(far_cursor=0)


def _units(
    windows: Iterable[Window], mode: OwnershipMode, techs: Collection[int], tokened: Collection[int]
) -> list[Unit]:
    if not techs:
        return []  # nobody to keep a mirror for: spend nothing
    if mode is not OwnershipMode.TOKENS:
        return [Unit(None, window) for window in windows]
    return [Unit(tech, window) for window in windows for tech in sorted(techs) if tech in tokened]


# -- the shell ----------------------------------------------------------------------------------


class _BudgetSpent(Exception):
    """The budget cannot pay for the next request: the run stops and the next one resumes."""


class _Poll:
    """One run of `poll_once`; holds what the run has read and done."""

    def __init__(
        self,
        *,
        client: SyncroClient,
        mirror: MirrorStore,
        cursors: CursorStore,
        budget: RequestBudget,
        now: datetime,
        techs: Collection[int],
        tech_clients: Mapping[int, SyncroClient],
        zone: tzinfo,
        feed_base_url: str | None = None,
        feed_ticket_base: str = "",
    ) -> None:
        self.client, self.mirror, self.cursors, self.budget = client, mirror, cursors, budget
        self.now, self.techs, self.tech_clients, self.zone = now, frozenset(techs), tech_clients, zone
        self.feed_base_url = feed_base_url
        self.feed_ticket_base = feed_ticket_base
        self.ownership_row = _read_cursor(cursors, OWNERSHIP_KEY)
        self.mode = read_ownership(cursors)
        self.entries = {tech: {e.appointment_id: e for e in mirror.list_entries(tech)} for tech in self.techs}
        self.changed: set[int] = set()
        self.refused: set[int] = set()  # techs whose own token Syncro refused
        self.requests = self.pages = self.deleted = self.unconfirmed = 0

    # -- requests, paid from the budget ----------------------------------------------------------

    def call(self, client: SyncroClient, send: Callable[[], Any]) -> Any:
        if self.budget.available() < 1:
            raise _BudgetSpent
        before = client.requests_made
        try:
            return send()
        finally:
            spent = client.requests_made - before  # retries included
            self.budget.charge(spent)
            self.requests += spent

    # -- mirror writes ---------------------------------------------------------------------------

    def store(self, tech: int, item: Mapping[str, Any]) -> None:
        entry = MirrorEntry(
            syncro_user_id=tech,
            appointment_id=item["id"],
            updated_at=str(item.get("updated_at") or ""),
            content_hash=content_hash(item),
            appointment=dict(item),
            seen_at=self.now,
        )
        if self.feed_base_url and isinstance(self.zone, ZoneInfo):
            # The ICS feed's bytes for this version, rendered once here rather than on a feed request.
            from ics.fragments import with_fragment

            entry = with_fragment(entry, zone=self.zone, base_url=self.feed_base_url, ticket_base=self.feed_ticket_base)
        self.entries[tech][entry.appointment_id] = self.mirror.put_entry(entry)
        self.changed.add(tech)

    def forget(self, tech: int, appointment_id: int) -> None:
        self.mirror.delete_entry(tech, appointment_id)
        self.entries[tech].pop(appointment_id, None)
        self.changed.add(tech)

    def prune(self, before: date) -> None:
        """Entries that started before the sync window: out of scope now, forgotten without a job."""
        for tech, entries in self.entries.items():
            for appointment_id, entry in list(entries.items()):
                day = start_day(entry.appointment, self.zone)
                if day is not None and day < before:
                    self.mirror.delete_entry(tech, appointment_id)
                    del entries[appointment_id]

    # -- listing ---------------------------------------------------------------------------------

    def take_page(self, unit: Unit, items: list[dict[str, Any]]) -> None:
        """Apply new and changed items at once (a window whose pages span runs is never lost)."""
        if unit.tech is not None:
            by_tech = {unit.tech: items}
        else:
            by_tech = {tech: [] for tech in self.techs}
            for item in items:
                owners = owners_of(item)
                if owners is None:
                    continue  # this one came without owners: it can be no tech's, nor leave one
                for tech in self.techs:
                    if tech in owners:
                        by_tech[tech].append(item)
                    elif item["id"] in self.entries[tech]:
                        self.forget(tech, item["id"])  # listed, so it exists: reassigned away from tech
        for tech, listed in by_tech.items():
            changes = diff(self.entries[tech].values(), listed, None, zone=self.zone)
            for item in (*changes.new, *changes.changed):
                self.store(tech, item)

    def finish_unit(self, unit: Unit, seen: Collection[int] | None) -> None:
        if seen is None:
            return  # too many ids to carry between runs: the next round checks this window
        for tech in sorted(self.techs) if unit.tech is None else [unit.tech]:
            changes = diff(self.entries[tech].values(), [], unit.window, seen=frozenset(seen), zone=self.zone)
            held = sum(
                1 for entry in self.entries[tech].values() if _in_window(entry.appointment, unit.window, self.zone)
            )
            trusted = not suspicious_listing(listed=len(seen), held=held, vanished=len(changes.vanished))
            for index, entry in enumerate(changes.vanished):
                try:
                    self.confirm(tech, entry, unit.window, trust_listing=trusted)
                except (_BudgetSpent, SyncroThrottled):
                    self.unconfirmed += len(changes.vanished) - index
                    raise

    def confirm(self, tech: int, entry: MirrorEntry, window: Window, *, trust_listing: bool = True) -> None:
        """Believe a disappearance only on a 404; otherwise the appointment moved or changed hands.
        Without owner fields, "changed hands" is inferred from the listing, so it is believed only
        when the listing looks sound (``trust_listing``, see `suspicious_listing`) or another
        tech's listing already shows the appointment."""
        try:
            record = self.call(self.client, lambda: self.client.get_appointment(entry.appointment_id))
        except SyncroNotFound:
            self.forget(tech, entry.appointment_id)
            self.deleted += 1
            return
        owners = owners_of(record)
        if owners is not None:
            stays = tech in owners
        else:
            # Without owners: still starting well inside the tech's own listing's window but not
            # listed means it is someone else's now. The edge days are left alone, as Syncro's day
            # boundaries may be UTC's rather than the account's.
            day = start_day(record, self.zone)
            inside = day is not None and window[0] < day < window[1] - timedelta(days=1)
            if day is not None and not inside and window[0] <= day < window[1]:
                # An edge day of the window (windows meet at the near window's ends): ask the
                # tech's own listing around that day; absent from it too, it is inside after all.
                inside = not self.listed_around(tech, entry.appointment_id, day)
            elsewhere = any(entry.appointment_id in self.entries[other] for other in self.techs if other != tech)
            # Changed since the mirror saw it and gone from his listing: someone changed it, its
            # owner too (a listing that glitched leaves the appointment as it was). Believed even
            # from an empty listing, so a tech's only job given away does leave him.
            touched = str(record.get("updated_at") or "") != entry.updated_at
            stays = not inside or not (trust_listing or elsewhere or touched)
        if not stays:
            self.forget(tech, entry.appointment_id)
        elif str(record.get("updated_at") or "") != entry.updated_at or content_hash(record) != entry.content_hash:
            self.store(tech, record)  # moved out of the window: kept, with its new times

    def listed_around(self, tech: int, appointment_id: int, day: date) -> bool:
        """Whether the tech's own listing from the day before ``day`` to the day after shows the
        appointment (True when the tech has no token to ask with: nothing is believed then)."""
        client = self.tech_clients.get(tech)
        if client is None:
            return True
        page_number = 1
        while True:
            page: AppointmentPage = self.call(
                client,
                lambda number=page_number: client.list_appointments(
                    date_from=day - timedelta(days=1), date_to=day + timedelta(days=2), page=number, mine=True
                ),
            )
            if any(item.get("id") == appointment_id for item in page.items):
                return True
            if not page.items or page.total_pages is None or page.page >= min(page.total_pages, MAX_PAGES):
                return False
            page_number += 1

    # -- one page of the round ---------------------------------------------------------------------

    def list_next(self, state: RoundState) -> None:
        """List the round's next page, apply it, and move ``state`` on (to the next unit when done)."""
        unit = state.units[state.unit]
        client = self.client if unit.tech is None else self.tech_clients.get(unit.tech)
        if client is None or (unit.tech is not None and unit.tech not in self.techs):
            _next_unit(state)  # that tech's token or link went away since the round began
            return
        try:
            page: AppointmentPage = self.call(
                client,
                lambda: client.list_appointments(
                    date_from=unit.window[0], date_to=unit.window[1], page=state.page, mine=unit.tech is not None
                ),
            )
        except (SyncroUnauthorized, SyncroForbidden):
            if unit.tech is None:
                raise  # the app's own token: nothing can be polled
            # One tech's own token refused (revoked or deleted in Syncro): the others are still polled,
            # and the report names them (OwnershipUnknown.techs_token_refused).
            self.refused.add(unit.tech)
            _next_unit(state)
            return
        self.pages += 1
        if unit.tech is None and page.items and self.owners_withheld(page.items):
            # The rest of the round, tech by tech with their own tokens; this page told only that.
            rest = [other.window for other in state.units[state.unit :] if other.tech is None]
            state.units = state.units[: state.unit] + _units(rest, self.mode, self.techs, self.tech_clients)
            state.page, state.seen = 1, []
            return
        carried = frozenset(state.seen or ())
        fresh = [item for item in page.items if item["id"] not in carried]
        self.take_page(unit, fresh)
        if state.seen is not None:
            state.seen.extend(item["id"] for item in fresh)
            if len(state.seen) > MAX_CARRIED_IDS:
                state.seen = None
        last = page.page >= page.total_pages if page.total_pages is not None else not fresh
        if not (last or page.page >= MAX_PAGES):  # a list that never ends is read once a round
            state.page += 1
            return
        seen, index = state.seen, state.unit
        _next_unit(state)  # past this unit even if the budget or a 429 stops its confirmations
        try:
            self.finish_unit(unit, seen)
        except SyncroError as error:
            if isinstance(error, SyncroThrottled):
                raise
            # A confirmation failed outright (a 500): list this window again next run, so the
            # disappearance is confirmed then rather than a whole round later.
            state.unit, state.page, state.seen = index, 1, []
            raise

    def owners_withheld(self, items: list[dict[str, Any]]) -> bool:
        """What an account-wide page says about the owner fields; a change of mind is recorded."""
        withheld = all(owners_of(item) is None for item in items)
        found = OwnershipMode.TOKENS if withheld else OwnershipMode.FIELDS
        if found is not self.mode:
            self.mode = found
            self.ownership_row = _save_cursor(self.cursors, self.ownership_row, OWNERSHIP_KEY, found.value, self.now)
        return withheld


def _read_cursor(cursors: CursorStore, key: str) -> Cursor | None:
    try:
        return cursors.get_cursor(SYNCRO_POLL, key)
    except NotFound:
        return None


def _save_cursor(cursors: CursorStore, previous: Cursor | None, key: str, value: str, now: datetime) -> Cursor | None:
    """Advance the cursor; a lost race (another run moved it) keeps theirs."""
    try:
        return cursors.save_cursor(Cursor(SYNCRO_POLL, key, value, now, previous.etag if previous else None))
    except ConcurrencyConflict:
        return None


def read_ownership(cursors: CursorStore) -> OwnershipMode:
    """What the poller has found out about Syncro's owner fields (for health and the admin overview)."""
    row = _read_cursor(cursors, OWNERSHIP_KEY)
    try:
        return OwnershipMode(row.value) if row else OwnershipMode.UNKNOWN
    except ValueError:
        return OwnershipMode.UNKNOWN


def probe_ownership(cursors: CursorStore, items: list[dict[str, Any]], *, now: datetime) -> OwnershipMode:
    """What one account-wide page says about the owner fields, recorded as the poller records it
    (linking asks before the first poll has run, to know whether a tech needs their own token).
    An empty page says nothing: UNKNOWN, and nothing is recorded."""
    if not items:
        return read_ownership(cursors)
    found = OwnershipMode.TOKENS if all(owners_of(item) is None for item in items) else OwnershipMode.FIELDS
    _save_cursor(cursors, _read_cursor(cursors, OWNERSHIP_KEY), OWNERSHIP_KEY, found.value, now)
    return found


def poll_once(
    *,
    client: SyncroClient,
    mirror: MirrorStore,
    cursors: CursorStore,
    queue: SyncQueue,
    budget: RequestBudget,
    clock: Callable[[], datetime],
    techs: Iterable[int],
    tech_clients: Mapping[int, SyncroClient] | None = None,
    zone: tzinfo = UTC,
    past_days: int = 60,
    future_days: int = 60,
    near: tuple[int, int] = NEAR_DAYS,
    slice_days: int = SLICE_DAYS,
    feed_base_url: str | None = None,
    feed_ticket_base: str = "",
) -> PollReport:
    """Poll Syncro once within ``budget`` and queue one job per tech whose appointments changed.

    ``client`` uses the account's API token (its user must see every appointment); ``techs`` are
    the Syncro user ids to keep mirrors for; ``tech_clients`` hold a client built with each
    tech's own token, used when Syncro withholds the owner fields. ``zone`` is the account's time
    zone (``GET /settings``), in which Syncro's day windows are read; ``clock`` gives aware UTC now.
    With ``feed_base_url`` (the app's public URL) each stored appointment also keeps its ICS event's
    bytes (`ics.fragments.with_fragment`; ``feed_ticket_base`` starts its ticket link, as in
    Outlook), so the feed never renders it on a request.
    Stops when the budget is spent or Syncro throttles, and resumes there next run.
    Raises SyncroError (other than 429, 404 and a tech's own token refused: that tech is left out
    and named in ``ownership_unknown``) and StorageError; the jobs of changes already
    written to the mirror are queued even then.
    """
    now = clock()
    today = now.astimezone(zone).date()
    run = _Poll(
        client=client,
        mirror=mirror,
        cursors=cursors,
        budget=budget,
        now=now,
        techs=frozenset(techs),
        tech_clients=dict(tech_clients or {}),
        zone=zone,
        feed_base_url=feed_base_url,
        feed_ticket_base=feed_ticket_base,
    )
    round_row = _read_cursor(cursors, ROUND_KEY)
    state = RoundState.from_json(round_row.value) if round_row else RoundState(far_cursor=0)
    throttled = False
    plan = functools.partial(
        plan_windows, today, past_days=past_days, future_days=future_days, near=near, slice_days=slice_days
    )
    near_window, _ = _far_segments(today, past_days=past_days, future_days=future_days, near=near)
    try:
        if state.complete:
            state = _next_round(state, plan(state.far_cursor), run, near_window=None)
            run.prune(today - timedelta(days=past_days))
        else:
            state.pass_runs += 1
            if near_window is not None and state.units[state.unit].window != near_window:
                _list_near_afresh(run, state, near_window, budget)
        while True:
            while not state.complete:
                listing_near = state.units[state.unit].window == near_window
                pages = run.pages
                run.list_next(state)
                state.near_pages += run.pages - pages if listing_near else 0
            if not (_behind(state, slice_days) and budget.available() > 0):
                break
            # The pass fell behind (a slice took more than a run): go on with the next far slice
            # in this run, the near window already fresh, so a pass still takes about 12 runs.
            state = _next_round(state, plan(state.far_cursor), run, near_window=near_window)
    except _BudgetSpent:
        pass
    except SyncroThrottled:
        throttled = True  # someone else spent Syncro's 180 a minute: resume next run
    finally:
        _save_cursor(cursors, round_row, ROUND_KEY, state.to_json(), now)
        for tech in sorted(run.changed):
            queue.enqueue(SyncJob(tech, JOB_REASON, now.isoformat()))
    missing = tuple(sorted(tech for tech in run.techs if tech not in run.tech_clients))
    return PollReport(
        requests_made=run.requests,
        pages=run.pages,
        changed_techs=tuple(sorted(run.changed)),
        ownership=run.mode,
        ownership_unknown=(
            OwnershipUnknown(missing, tuple(sorted(run.refused))) if run.mode is OwnershipMode.TOKENS else None
        ),
        skipped_for_budget=len(state.units) - state.unit,
        unconfirmed=run.unconfirmed,
        deleted=run.deleted,
        round_complete=state.complete,
        throttled=throttled,
        windows=tuple(dict.fromkeys(unit.window for unit in state.units)),
    )


def _next_round(
    done: RoundState, planned: tuple[list[Window], int], run: _Poll, *, near_window: Window | None
) -> RoundState:
    """The round after ``done``: its windows from `plan_windows`, less ``near_window`` when given
    (listed already in this run). A round from far day 0 starts a new pass."""
    windows, following = planned
    far = [window for window in windows if window != near_window]
    pass_runs = 1 if done.far_cursor == 0 else done.pass_runs + (0 if near_window else 1)
    units = _units(far, run.mode, run.techs, run.tech_clients)
    near_pages = done.near_pages if near_window else 0  # a round that lists the near window counts it afresh
    return RoundState(far_cursor=following, units=units, near_pages=near_pages, pass_runs=pass_runs)


def _list_near_afresh(run: _Poll, state: RoundState, near_window: Window, budget: RequestBudget) -> None:
    """A round the budget stopped resumes past its near listing: list the near window afresh
    first, so the next 48 hours are never a whole round late. Only when the budget pays for it
    (as many pages as the round's own near listing took) with room left for the round: else
    the round would never end."""
    if not 0 < state.near_pages < budget.available():
        return
    first = RoundState(far_cursor=state.far_cursor, units=_units([near_window], run.mode, run.techs, run.tech_clients))
    while not first.complete:
        run.list_next(first)


def _behind(state: RoundState, slice_days: int) -> bool:
    """Whether the pass has finished fewer far slices than it has taken runs (and is not over)."""
    return state.complete and state.far_cursor != 0 and state.far_cursor // slice_days < state.pass_runs


def _next_unit(state: RoundState) -> None:
    state.unit, state.page, state.seen = state.unit + 1, 1, []
