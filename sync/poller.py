"""Syncro change detection: poll appointment windows inside a request budget and diff them
against the mirror (what the last poll saw), then queue one sync job per technician that changed.

Syncro has no updated-since filter and announces only creations, so updates and deletions are
found by listing day windows and comparing. Three phases, as the sync core does them:

- pure planning: `sync.poll_windows.plan_windows` (the near window every round, one slice of the
  rest of the sync window per round, a cursor remembering where) and `sync.poll_diff.diff` (new,
  changed, vanished);
- the shell, `poll_once`: list pages while the `RequestBudget` allows, write the mirror, confirm
  each vanished appointment with ``GET /appointments/{id}`` (a 404) before forgetting it, and
  enqueue jobs.

A round is the near window plus one far slice. Each run continues the unfinished round where the
last stopped (window and page, kept in the ``syncropoll/round`` cursor) before planning the next,
so every run makes progress and a full pass takes at most `runs_per_pass` complete rounds.

Where the parts live: the windows and the round's progress in `sync.poll_windows`, the diff in
`sync.poll_diff`, whose an appointment is (and how the poller found out) in `sync.ownership`, the
cursor rows in `sync.poll_cursors`; this module is the shell that runs a poll over them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from storage.mirror import MirrorEntry
from storage.sync_queue import SyncJob
from sync.errors import SyncroError, SyncroForbidden, SyncroNotFound, SyncroThrottled, SyncroUnauthorized
from sync.job_reasons import JobReason
from sync.ownership import OWNERSHIP_KEY, OwnershipMode, OwnershipUnknown, owners_of, read_ownership
from sync.poll_cursors import read_cursor, save_cursor
from sync.poll_diff import content_hash, diff, in_window, start_day, suspicious_listing
from sync.poll_windows import (
    NEAR_DAYS,
    SLICE_DAYS,
    RoundState,
    Unit,
    Window,
    far_segments,
    plan_windows,
    round_units,
    split_window,
)
from sync.syncro import MAX_PAGES

if TYPE_CHECKING:
    from storage.cursors import CursorStore
    from storage.mirror import MirrorStore
    from storage.sync_queue import SyncQueue
    from sync.budget import RequestBudget
    from sync.syncro import AppointmentPage, SyncroClient

JOB_REASON = JobReason.SYNCRO_POLL
ROUND_KEY = "round"
# Ids listed so far in a window whose pages span runs; past this many the cursor row would grow
# beyond what a table property holds, and that window skips vanish detection this round.
MAX_CARRIED_IDS = 1500


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


# -- the round's progress (the syncropoll/round cursor) -----------------------------------------


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
        self.ownership_row = read_cursor(cursors, OWNERSHIP_KEY)
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
                1 for entry in self.entries[tech].values() if in_window(entry.appointment, unit.window, self.zone)
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
            state.units = state.units[: state.unit] + round_units(rest, self.mode, self.techs, self.tech_clients)
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
        if not last and page.page >= MAX_PAGES and (halves := split_window(unit.window)):
            # More in this window than one listing can page through: list it again in halves
            # (what was read is kept; nothing past the cap is left unread or taken for gone).
            state.units[state.unit : state.unit + 1] = [Unit(unit.tech, half) for half in halves]
            state.page, state.seen = 1, []
            return
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
            self.ownership_row = save_cursor(self.cursors, self.ownership_row, OWNERSHIP_KEY, found.value, self.now)
        return withheld


def poll_once(
    *,
    client: SyncroClient,
    mirror: MirrorStore,
    cursors: CursorStore,
    queue: SyncQueue,
    budget: RequestBudget,
    clock: Callable[[], datetime],
    techs: Iterable[int],
    ask_syncs: Callable[[dict[int, str]], object] | None = None,
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
    ``ask_syncs`` asks for the jobs (tech -> reason): the app passes `realtime.enqueue.request_syncs`,
    which sends none for a tech whose job is queued and not started yet (a listing that spans
    several runs would otherwise queue a tech's sync once a run); without it each job goes
    straight onto ``queue``.
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
    round_row = read_cursor(cursors, ROUND_KEY)
    state = RoundState.from_json(round_row.value) if round_row else RoundState(far_cursor=0)
    throttled = False
    plan = functools.partial(
        plan_windows, today, past_days=past_days, future_days=future_days, near=near, slice_days=slice_days
    )
    near_window, _ = far_segments(today, past_days=past_days, future_days=future_days, near=near)
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
        save_cursor(cursors, round_row, ROUND_KEY, state.to_json(), now)
        if ask_syncs is not None and run.changed:
            ask_syncs({tech: JOB_REASON for tech in sorted(run.changed)})
        elif ask_syncs is None:
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
    units = round_units(far, run.mode, run.techs, run.tech_clients)
    near_pages = done.near_pages if near_window else 0  # a round that lists the near window counts it afresh
    return RoundState(far_cursor=following, units=units, near_pages=near_pages, pass_runs=pass_runs)


def _list_near_afresh(run: _Poll, state: RoundState, near_window: Window, budget: RequestBudget) -> None:
    """A round the budget stopped resumes past its near listing: list the near window afresh
    first, so the next 48 hours are never a whole round late. Only when the budget pays for it
    (as many pages as the round's own near listing took) with room left for the round: else
    the round would never end."""
    if not 0 < state.near_pages < budget.available():
        return
    first = RoundState(
        far_cursor=state.far_cursor, units=round_units([near_window], run.mode, run.techs, run.tech_clients)
    )
    while not first.complete:
        run.list_next(first)


def _behind(state: RoundState, slice_days: int) -> bool:
    """Whether the pass has finished fewer far slices than it has taken runs (and is not over)."""
    return state.complete and state.far_cursor != 0 and state.far_cursor // slice_days < state.pass_runs


def _next_unit(state: RoundState) -> None:
    state.unit, state.page, state.seen = state.unit + 1, 1, []
