"""``calendarView/delta``: rounds of pages ending in a deltaLink, and later rounds of changes only.

A delta token stands for what the client has seen (item id -> version) over one calendar and one
frozen window. A new round compares the calendar now with that snapshot: new or changed items in
full, vanished ones (deleted, or moved out of the window) as ``@removed``. Only the last few token
generations per mailbox+calendar+window are kept; older or invalidated ones answer 410.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from local.sims.control import SimClock
from local.sims.graph.context import Ctx
from local.sims.graph.errors import GraphError, GraphResponse
from local.sims.graph.instances import Instance, instances_between, parse_occurrence_id
from local.sims.graph.model import Mailbox
from local.sims.graph.reading import page_size, read_options
from local.sims.graph.render import ReadOptions, render_event
from local.sims.graph.router import GraphRouter
from local.sims.graph.settings import GraphSettings
from local.sims.graph.store import GraphStore
from local.sims.graph.timefmt import parse_query_instant

DELTA_PATHS = [
    "/me/calendarView/delta",
    "/me/calendar/calendarView/delta",
    "/me/calendars/{calendar}/calendarView/delta",
]
NOT_ON_DELTA = ("$select", "$filter", "$expand", "$orderby", "$search")
WindowKey = tuple[str, str, str, str]  # mailbox oid, calendar id, window start, window end


@dataclass
class DeltaState:
    key: WindowKey
    window: tuple[datetime, datetime]
    snapshot: dict[str, str]  # item id -> version the client has been given
    minted: float


@dataclass
class DeltaRound:
    key: WindowKey
    pages: list[list[dict[str, Any]]]
    delta_token: str
    minted: float


class DeltaTracker:
    def __init__(self, store: GraphStore, settings: GraphSettings, clock: SimClock) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, DeltaState] = {}
        self._rounds: dict[str, DeltaRound] = {}
        self._generations: dict[WindowKey, deque[str]] = defaultdict(deque)
        self._round_ids: dict[WindowKey, deque[str]] = defaultdict(deque)

    def register(self, router: GraphRouter) -> None:
        for path in DELTA_PATHS:
            router.add("GET", path, self.delta, "read")

    def reset(self) -> None:
        with self._lock:
            self._states.clear()
            self._rounds.clear()
            self._generations.clear()
            self._round_ids.clear()

    def invalidate(self, mailbox_oid: str) -> int:
        """Forget every token and round of a mailbox; returns how many tokens were dropped."""
        with self._lock:
            doomed = [t for t, s in self._states.items() if s.key[0] == mailbox_oid]
            for token in doomed:
                del self._states[token]
            for round_id in [r for r, v in self._rounds.items() if v.key[0] == mailbox_oid]:
                del self._rounds[round_id]
            return len(doomed)

    # --- the endpoint ----------------------------------------------------------------------
    def delta(self, ctx: Ctx) -> GraphResponse:
        for option in NOT_ON_DELTA:
            if ctx.query(option) is not None:
                raise GraphError(
                    400,
                    "ErrorInvalidUrlQuery",
                    f"The following parameters are not supported with change tracking over the "
                    f"'CalendarView' resource: '{option}'.",
                )
        skip_token, delta_token = ctx.query("$skiptoken"), ctx.query("$deltatoken")
        if skip_token is not None:
            return self._page(ctx, skip_token)
        options = read_options(ctx, self.settings, odata=False)
        size = page_size(ctx, self.settings.delta_default_page_size)
        if delta_token is not None:
            state = self._state(ctx, delta_token)
            round_id = self._new_round(ctx.me, state.key, state.window, state.snapshot, options, size)
        else:
            start = parse_query_instant(ctx.query("startDateTime"), "startDateTime")
            end = parse_query_instant(ctx.query("endDateTime"), "endDateTime")
            calendar_id = self._calendar_id(ctx)
            key = (ctx.me.oid, calendar_id, start.isoformat(), end.isoformat())
            round_id = self._new_round(ctx.me, key, (start, end), {}, options, size)
        return self._page(ctx, f"{round_id}.0")

    def _calendar_id(self, ctx: Ctx) -> str:
        with self.store.lock:
            if "calendar" in ctx.params:
                return self.store.calendar(ctx.me, ctx.params["calendar"]).id
            return ctx.me.default_calendar.id

    def _gone(self, ctx: Ctx) -> GraphError:
        return GraphError(
            self.settings.delta_gone_status,
            self.settings.delta_gone_code,
            "The sync state generation is not found. Delta tokens may be expired or invalid.",
            {"Location": ctx.link(ctx.request.path, {"$deltatoken": ""})},
        )

    def _state(self, ctx: Ctx, token: str) -> DeltaState:
        with self._lock:
            state = self._states.get(token)
        max_age = self.settings.delta_token_max_age_seconds
        if state is None or state.key[0] != ctx.me.oid:
            raise self._gone(ctx)
        if max_age and self.clock.timestamp() - state.minted > max_age:
            raise self._gone(ctx)
        return state

    def _page(self, ctx: Ctx, skip_token: str) -> GraphResponse:
        round_id, _, index_text = skip_token.rpartition(".")
        with self._lock:
            delta_round = self._rounds.get(round_id)
        if delta_round is None or delta_round.key[0] != ctx.me.oid or not index_text.isdigit():
            raise self._gone(ctx)
        index = int(index_text)
        if index >= len(delta_round.pages):
            raise self._gone(ctx)
        body: dict[str, Any] = {
            "@odata.context": f"{ctx.base}/$metadata#Collection(event)",
            "value": delta_round.pages[index],
        }
        if index + 1 < len(delta_round.pages):
            body["@odata.nextLink"] = ctx.link(ctx.request.path, {"$skiptoken": f"{round_id}.{index + 1}"})
        else:
            body["@odata.deltaLink"] = ctx.link(self._delta_path(ctx), {"$deltatoken": delta_round.delta_token})
        headers = {"Preference-Applied": ", ".join(ctx.applied)} if ctx.applied else {}
        return GraphResponse(200, body, headers)

    def _delta_path(self, ctx: Ctx) -> str:
        """Links are kept as returned; Graph may answer /users/x/calendarView/delta with a
        deltaLink on /users/x/calendar/calendarView/delta (reported)."""
        path = ctx.request.path
        lowered = path.lower()
        via_default_calendar = "/calendar/" in lowered or "/calendars/" in lowered
        if self.settings.delta_link_via_calendar_segment and "user" in ctx.params and not via_default_calendar:
            return re.sub(r"/calendarView/delta", "/calendar/calendarView/delta", path, count=1, flags=re.IGNORECASE)
        return path

    # --- computing a round -----------------------------------------------------------------
    def _new_round(
        self,
        mailbox: Mailbox,
        key: WindowKey,
        window: tuple[datetime, datetime],
        previous: dict[str, str],
        options: ReadOptions,
        size: int,
    ) -> str:
        with self.store.lock:
            items = instances_between(self.store.events_of(mailbox, key[1]), *window)
            changed, snapshot = self._changes(mailbox, items, previous)
            present = {i.id for i in items}
            removed = [
                i for i in previous if i not in present and i not in snapshot and not self._silent_removal(mailbox, i)
            ]
            stub_options = ReadOptions(**{**options.__dict__, "stubs": self.settings.delta_occurrence_stubs})
            groups = self._groups(changed, mailbox, stub_options) + [[_removed(i)] for i in removed]
        token = secrets.token_urlsafe(24)
        now = self.clock.timestamp()
        round_id = secrets.token_urlsafe(18).replace(".", "_")
        with self._lock:
            self._states[token] = DeltaState(key, window, snapshot, now)
            self._rounds[round_id] = DeltaRound(key, self._paginate(groups, size), token, now)
            _keep_last(self._generations[key], token, self.settings.delta_token_generations, self._states)
            _keep_last(self._round_ids[key], round_id, self.settings.delta_token_generations, self._rounds)
        return round_id

    def _changes(
        self, mailbox: Mailbox, items: list[Instance], previous: dict[str, str]
    ) -> tuple[list[Instance], dict[str, str]]:
        """Items new or changed since ``previous``, and the snapshot the next token stands for.
        Changes younger than the visibility lag are left for a later round."""
        cutoff = self.clock.now() - timedelta(seconds=self.settings.delta_visibility_lag_seconds)
        lagging = self.settings.delta_visibility_lag_seconds > 0
        changed, snapshot = [], {}
        for item in items:
            if lagging and max(item.modified, item.event.modified) > cutoff:
                if item.id in previous:
                    snapshot[item.id] = previous[item.id]
                continue
            snapshot[item.id] = item.version
            if previous.get(item.id) != item.version:
                changed.append(item)
        if lagging:
            for item_id, version in previous.items():
                if item_id not in snapshot and self._changed_after(mailbox, item_id, cutoff):
                    snapshot[item_id] = version
        return changed, snapshot

    @staticmethod
    def _changed_after(mailbox: Mailbox, item_id: str, cutoff: datetime) -> bool:
        """Whether the item (or its series) was modified or deleted after ``cutoff``."""
        parsed = parse_occurrence_id(item_id)
        event_id = parsed[0] if parsed else item_id
        event = mailbox.events.get(event_id)
        moment = event.modified if event is not None else mailbox.deleted_at.get(event_id)
        return moment is not None and moment > cutoff

    def _silent_removal(self, mailbox: Mailbox, item_id: str) -> bool:
        """A deleted occurrence gets no tombstone (reported), unless the setting asks for one."""
        if self.settings.delta_tombstone_deleted_occurrences:
            return False
        parsed = parse_occurrence_id(item_id)
        master = mailbox.events.get(parsed[0]) if parsed else None
        return master is not None and parsed is not None and parsed[1] in master.deleted_occurrences

    @staticmethod
    def _groups(items: list[Instance], mailbox: Mailbox, options: ReadOptions) -> list[list[dict[str, Any]]]:
        """Items grouped by series, in order of first appearance."""
        groups: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            groups.setdefault(item.series_master_id or item.id, []).append(render_event(item, mailbox, options))
        return list(groups.values())

    def _paginate(self, groups: list[list[dict[str, Any]]], size: int) -> list[list[dict[str, Any]]]:
        if self.settings.delta_split_series_across_pages:
            groups = [[item] for group in groups for item in group]
        pages: list[list[dict[str, Any]]] = [[]]
        for group in groups:
            # A whole series goes on one page, so a page can exceed the size asked for.
            if len(pages[-1]) >= size:
                pages.append([])
            pages[-1].extend(group)
        self._add_repeats(pages)
        # Empty pages that still carry a nextLink (reported), before the page with the deltaLink.
        return pages[:-1] + [[] for _ in range(self.settings.delta_empty_pages)] + pages[-1:]

    def _add_repeats(self, pages: list[list[dict[str, Any]]]) -> None:
        duplicates = self.settings.delta_duplicate_items
        if duplicates and pages[0]:
            pages[0].extend(pages[0][:duplicates])
        replay = self.settings.delta_replay_items
        if replay:
            for index in range(len(pages) - 1, 0, -1):
                pages[index][:0] = pages[index - 1][-replay:]


def _removed(item_id: str) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.event", "id": item_id, "@removed": {"reason": "deleted"}}


def _keep_last(order: deque[str], new: str, count: int, table: dict[str, Any]) -> None:
    order.append(new)
    while len(order) > max(1, count):
        table.pop(order.popleft(), None)
