"""The sync engine: one technician's sync, read -> plan -> execute, until both sides agree.

`sync_tech` reads the link (only an active one syncs; an unlinking one with "remove our events"
has its ``[S]`` events deleted through the recycle bin, then its token and link forgotten),
brings the Outlook mirror up to date with one delta round, reads the Syncro mirror the poller
keeps, maps both into `sync.model.Item`s (an item that cannot be mapped is skipped with its
reason and its pair left alone: never a deletion), and loops `sync.planner.plan` and
`sync.executor.Executor` until the plan is empty (or `SyncDeps.max_rounds`). It runs under the
tech's lease, so two instances never sync the same tech at once. See ``docs/sync.md``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from settings import SyncOptions
from storage.account import utc_now
from storage.conflicts import ConflictRecord
from storage.errors import ConcurrencyConflict, LeaseHeld, NotFound
from storage.links import LinkStatus
from storage.mappings import Mapping, MappingState, Origin
from storage.outlook_mirror import OutlookEntry
from storage.recycle_bin import RETENTION, RecycleEntry, new_entry_id
from sync.actions import MEETING_PREFIX, WRITES, Action, Pair, UpdateOn
from sync.errors import NotFound as ServiceNotFound
from sync.errors import ServiceError
from sync.executor import Executor, Snapshot, Tally, carries_outlook_tag, parse_time, transaction_id
from sync.mapping import (
    SYNCRO_TAG,
    SyncroContext,
    UnmappableItem,
    appointment_from_graph,
    appointment_from_syncro,
    context_lines,
    graph_fields,
    shown_context,
    syncro_fields,
    tag_intact,
)
from sync.model import Appointment, Item, Side
from sync.outlook_mirror import Window, forget_outlook, refresh_outlook
from sync.planner import Policy, plan

if TYPE_CHECKING:
    from storage.account import StorageAccount
    from storage.links import Link
    from sync.graph import GraphClient
    from sync.syncro import SyncroClient

log = logging.getLogger(__name__)
_ZONES: dict[str, ZoneInfo] = {}  # the account's zone per Syncro base URL (GET /settings once a process)


@dataclass
class SyncDeps:
    """What a sync needs; `services.sync_deps` builds it from the app's settings."""

    storage: StorageAccount
    graph_for: Callable[[int], GraphClient]
    syncro: SyncroClient
    syncro_web_url: str  # e.g. https://acme.syncromsp.com, for ticket links on Outlook events
    past_days: int = 60
    future_days: int = 60
    conflict: str = "latest"
    clock: Callable[[], datetime] = utc_now
    forget_tokens: Callable[[int], None] | None = None
    forget_subscriptions: Callable[[int], object] | None = None  # an unlink's: Graph stops notifying
    zone: ZoneInfo | None = None
    max_rounds: int = 4
    lease: timedelta = timedelta(minutes=5)
    options: SyncOptions = field(default_factory=SyncOptions)
    public_base_url: str = ""  # the app's URL: the ICS feed's UIDs, so polls can pre-render feed events

    def account_zone(self) -> ZoneInfo:
        if self.zone is None:
            key = self.syncro.base_url
            if key not in _ZONES:
                _ZONES[key] = ZoneInfo(self.syncro.account_time_zone())
            self.zone = _ZONES[key]
        return self.zone


@dataclass
class SyncReport:
    """What one sync of one tech did. ``status``: ``synced``, ``not_linked``, ``inactive``
    (paused or needs relinking), ``busy`` (another instance holds the tech's lease),
    ``unlinked`` (an unlink finished), ``failed`` (see ``errors``)."""

    syncro_user_id: int
    status: str = "synced"
    detail: str = ""
    created: dict[str, int] = field(default_factory=lambda: {"syncro": 0, "outlook": 0})
    updated: dict[str, int] = field(default_factory=lambda: {"syncro": 0, "outlook": 0})
    deleted: dict[str, int] = field(default_factory=lambda: {"syncro": 0, "outlook": 0})
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"side", "id", "reason", "summary"}
    errors: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # for the tech: e.g. a shared job kept
    rounds: int = 0
    full_round: bool = False  # the Outlook side was read whole (first sync, new day, expired link)

    @property
    def writes(self) -> int:
        return sum(self.created.values()) + sum(self.updated.values()) + sum(self.deleted.values())

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "syncro_user_id": str(self.syncro_user_id)}


# -- building the planner's input -------------------------------------------------------------


@dataclass
class Inputs:
    pairs: list[Pair]
    syncro: list[Item]
    outlook: list[Item]
    skipped: list[dict[str, str]]


PRIVATE = frozenset({"private", "confidential"})  # Graph's sensitivity values Outlook shows as private
BUSY = "Busy"


def build_inputs(
    snapshot: Snapshot,
    pairs: list[Pair],
    *,
    tech: int,
    link: Link,
    zone: ZoneInfo,
    options: SyncOptions | None = None,
    now: datetime | None = None,
    meetings: dict[str, tuple[str, int]] | None = None,
    other_calendars: frozenset[str] = frozenset(),
) -> Inputs:
    """Items of both sides and the pairs to plan over. An item that cannot be mapped is skipped
    with its reason, and so are its pair and the pair's other item: an unreadable item is never
    taken for a deleted one (nor its counterpart for a new one).

    The policies of ``options`` and the link become item extras the planner reads (see
    `sync.planner.plan`): events from before the link are ``preexisting`` unless the import of
    existing events is on and they start inside its window; occurrences of recurring events do
    not start pairs when recurring sync is off; meetings the tech did not organise and private
    events are ``outlook_only`` (private ones reach Syncro as "Busy" unless the tech opted in);
    cancelled and declined meetings are ``withdrawn``. ``meetings`` (`invitations`) marks the
    tech's invitations to meetings another linked tech organised (``meeting_of``); an event whose
    ``parentFolderId`` is one of ``other_calendars`` (the mailbox's other calendars) is
    ``elsewhere``."""
    options = options or SyncOptions()
    import_from = import_to = None
    if options.import_existing and now is not None:
        today = now.astimezone(zone).date()
        import_from = datetime.combine(today, datetime.min.time(), zone)
        import_to = import_from + timedelta(days=options.import_existing_days)
    syncro_born = {pair.outlook_id for pair in pairs if pair.origin is Side.SYNCRO and pair.outlook_id}
    mapped_outlook = {pair.outlook_id for pair in pairs if pair.outlook_id}
    skipped: list[dict[str, str]] = []
    bad: set[tuple[Side, str]] = set()

    def skip(side: Side, item_id: str, error: UnmappableItem, title: str) -> None:
        bad.add((side, item_id))
        skipped.append({"side": side.value, "id": item_id, "reason": error.reason, "summary": title})

    syncro_items: dict[str, Item] = {}
    for item_id, record in snapshot.syncro.items():
        try:
            content = appointment_from_syncro(record, zone=zone)
        except UnmappableItem as error:
            skip(Side.SYNCRO, item_id, error, _title(record, "summary"))
            continue
        extras = {
            "modified_at": parse_time(record.get("updated_at")),
            "created_at": parse_time(record.get("created_at")),
            "tagged": carries_outlook_tag(record),
        }
        syncro_items[item_id] = Item(Side.SYNCRO, item_id, str(record.get("updated_at") or ""), content, extras)
    ours = {}
    for pair in pairs:
        for replaces in {None, pair.outlook_id}:
            ours[transaction_id(tech, pair.key, replaces)] = pair.key
    outlook_items: dict[str, Item] = {}
    for item_id, event in snapshot.outlook.items():
        if event.get("type") == "seriesMaster":
            continue  # occurrences sync one by one
        withdrawn = bool(event.get("isCancelled")) or _response(event) == "declined"
        if withdrawn and item_id not in mapped_outlook:
            continue
        try:
            content = appointment_from_graph(event, zone=zone)
        except UnmappableItem as error:
            skip(Side.OUTLOOK, item_id, error, _title(event, "subject"))
            continue
        created = parse_time(event.get("createdDateTime"))
        extras: dict[str, object] = {
            "modified_at": parse_time(event.get("lastModifiedDateTime")),
            "created_at": created,
        }
        # Graph answers an event by id whatever calendar holds it: where it lives is its
        # parentFolderId, never the path it was read through (the tech switched calendars).
        if event.get("parentFolderId") in other_calendars:
            extras["elsewhere"] = True
        importable = import_from is not None and import_to is not None and import_from <= content.start < import_to
        if created is not None and created < link.linked_at and not importable:
            extras["preexisting"] = True
        txn = event.get("transactionId")
        if txn in ours:
            extras["pair_key"] = ours[txn]
        elif txn and str(event.get("subject") or "").startswith(SYNCRO_TAG):
            extras["pair_key"] = f"orphan:{txn}"  # ours, left by a pair that is gone: never imported back
        if extras.get("elsewhere") and item_id not in mapped_outlook and "pair_key" not in extras:
            continue  # another calendar's event, not ours: nothing to do with it
        if withdrawn:
            extras["withdrawn"] = True
        if not options.recurring and event.get("type") in ("occurrence", "exception"):
            extras["no_import"] = "recurring events are not synced (SYNC_RECURRING_EVENTS)"
        if item_id not in syncro_born and "pair_key" not in extras:
            private = str(event.get("sensitivity") or "normal").lower() in PRIVATE and not link.share_private
            if private:
                content = replace(content, summary=BUSY, description="", location="")
            if private or event.get("isOrganizer") is False:
                extras["outlook_only"] = True
            if event.get("isOrganizer") is False and meetings and item_id in meetings:
                extras["meeting_of"] = meetings[item_id]
        outlook_items[item_id] = Item(Side.OUTLOOK, item_id, str(event.get("changeKey") or ""), content, extras)
    kept: list[Pair] = []
    for pair in pairs:
        ids = [(side, item_id) for side in Side if (item_id := pair.id_on(side))]
        if any(key in bad for key in ids):
            for side, item_id in ids:
                (syncro_items if side is Side.SYNCRO else outlook_items).pop(item_id, None)
            continue
        kept.append(pair)
    return Inputs(kept, list(syncro_items.values()), list(outlook_items.values()), skipped)


def other_calendars(graph: GraphClient, calendar_id: str, events: dict[str, dict[str, Any]]) -> frozenset[str]:
    """The mailbox's calendars other than the synced one, asked of Graph only when an event
    says it lives elsewhere (``parentFolderId``): Graph answers an event by id whatever
    calendar holds it, so only its parent tells. A parent that is no calendar of the mailbox
    (an id in another form) is not taken for elsewhere: such an event stays where it was.
    Raises GraphError."""
    parents = {str(e.get("parentFolderId")) for e in events.values() if e.get("parentFolderId")}
    if not parents - {calendar_id}:
        return frozenset()
    return frozenset(c.id for c in graph.calendars() if c.id != calendar_id) & parents


def invitations(
    storage: StorageAccount, tech: int, events: dict[str, dict[str, Any]], mapped: set[str]
) -> dict[str, tuple[str, int]]:
    """The tech's unmapped invitations (``isOrganizer`` false) to meetings another active,
    two-way linked tech organised (his link's address is the organiser's): event id ->
    (the Syncro id of the organiser's job, or "" while his sync has not made it; the organiser).
    The organiser's event is found in his Outlook mirror by ``iCalUId``, which every copy of a
    meeting shares. Reads only when there is such an invitation. Raises StorageError."""
    wanted = {
        event_id: event
        for event_id, event in events.items()
        if event_id not in mapped and event.get("isOrganizer") is False and event.get("iCalUId")
    }
    if not wanted:
        return {}
    organisers: dict[str, int] = {}
    for other in storage.links.list_links():
        if other.syncro_user_id != tech and other.status is LinkStatus.ACTIVE and other.two_way:
            for address in (other.email, other.ms_username):
                if address:
                    organisers[address.strip().lower()] = other.syncro_user_id
    known: dict[int, tuple[dict[str, str], dict[str, str]]] = {}
    found: dict[str, tuple[str, int]] = {}
    for event_id, event in wanted.items():
        organizer = event.get("organizer") if isinstance(event.get("organizer"), dict) else {}
        email = organizer.get("emailAddress") if isinstance(organizer.get("emailAddress"), dict) else {}
        organiser = organisers.get(str(email.get("address") or "").strip().lower())
        if organiser is None:
            continue
        if organiser not in known:
            by_uid = {
                str(entry.event.get("iCalUId")): entry.event_id
                for entry in storage.outlook_mirror.list_entries(organiser)
                if entry.event.get("isOrganizer") is not False
            }
            jobs = {
                row.graph_id: str(row.syncro_id)
                for row in storage.mappings.list_mappings(organiser)
                if row.graph_id and row.syncro_id is not None and row.state is MappingState.SYNCED
            }
            known[organiser] = (by_uid, jobs)
        by_uid, jobs = known[organiser]
        found[event_id] = (jobs.get(by_uid.get(str(event["iCalUId"]), ""), ""), organiser)
    return found


def _title(record: Any, name: str) -> str:
    """An unreadable item's title as far as it reads, one short line, for the tech to find it by."""
    value = record.get(name) if isinstance(record, dict) else None
    if not isinstance(value, str):
        return ""
    line = " ".join("".join(c if c.isprintable() else " " for c in value).split())
    return line[:57] + "..." if len(line) > 60 else line


def _response(event: dict[str, Any]) -> str:
    status = event.get("responseStatus")
    return str(status.get("response") or "").lower() if isinstance(status, dict) else ""


def tag_repairs(
    inputs: Inputs,
    snapshot: Snapshot,
    actions: list[Action],
    *,
    two_way: bool,
    syncro_web_url: str | None = None,
    zone: ZoneInfo | None = None,
) -> list[UpdateOn]:
    """Writes that put back an origin tag the tech deleted or doubled (``[S]`` on a Syncro-born
    event in Outlook; ``[O]`` on an Outlook-born appointment in Syncro, two-way only), and, given
    ``syncro_web_url`` and ``zone``, that bring a Syncro-born event's customer and ticket header
    up to date (the dispatcher linked another ticket, the customer moved). Tags and the header
    are not content, so the planner never sees them; only pairs in sync that no action touches,
    one write each."""
    busy = {getattr(action, "pair_key", None) for action in actions}
    syncro = {item.id: item for item in inputs.syncro}
    outlook = {item.id: item for item in inputs.outlook}
    repairs: list[UpdateOn] = []
    for pair in inputs.pairs:
        passive = pair.released or pair.key.startswith(MEETING_PREFIX)  # nothing syncs through these
        if pair.key in busy or passive or pair.syncro_id is None or pair.outlook_id is None:
            continue
        s, o = syncro.get(pair.syncro_id), outlook.get(pair.outlook_id)
        if s is None or o is None or (s.version, o.version) != (pair.syncro_version, pair.outlook_version):
            continue
        if pair.origin is Side.SYNCRO:
            event = snapshot.outlook[o.id]
            stale = not tag_intact(str(event.get("subject") or ""), Side.SYNCRO)
            if not stale and syncro_web_url is not None and zone is not None:
                context = SyncroContext.from_syncro(snapshot.syncro[s.id], syncro_web_url=syncro_web_url)
                stale = shown_context(event) != context_lines(s.content, context, zone=zone)
            if stale:
                repairs.append(UpdateOn(Side.OUTLOOK, o.id, o.content, o.version, pair.key, in_sync_with=s.version))
        elif two_way and not tag_intact(str(snapshot.syncro[s.id].get("summary") or ""), Side.OUTLOOK):
            repairs.append(UpdateOn(Side.SYNCRO, s.id, s.content, s.version, pair.key, in_sync_with=o.version))
    return repairs


# -- the sync -----------------------------------------------------------------------------------


def sync_tech(
    syncro_user_id: int,
    *,
    deps: SyncDeps,
    series_check: bool = False,
    job_id: str | None = None,
    correlation_id: str | None = None,
) -> SyncReport:
    """Sync one technician now and say what changed.

    ``series_check``: Outlook told us something changed (a Graph notification). When the delta
    round then brings nothing new, the recurring series in the mirror are expanded again, because
    a deleted occurrence gets no tombstone in delta and its notification names only the series
    master (`recheck_series`).

    ``job_id`` and ``correlation_id`` (the queue message, the invocation) go into the structured
    log line of every action and of the sync (`ops.logs`).

    Never raises for what a service or an item did: failures land in ``report.errors`` (and
    ``status`` ``failed`` when the sync could not start). Raises StorageError when Table Storage
    itself fails."""
    report = SyncReport(syncro_user_id)
    storage = deps.storage
    try:
        link = storage.links.get_link(syncro_user_id)
    except NotFound:
        report.status, report.detail = "not_linked", "this technician has not linked a calendar"
        return report
    if link.status not in (LinkStatus.ACTIVE, LinkStatus.UNLINKING):
        report.status, report.detail = "inactive", f"the link is {link.status.value}"
        return report
    try:
        lease = storage.leases.acquire(f"sync:{syncro_user_id}", holder=uuid.uuid4().hex, duration=deps.lease)
    except (LeaseHeld, ConcurrencyConflict):  # held, or taken by another instance as we took it
        report.status, report.detail = "busy", "another sync of this technician is running"
        return report
    keeper = _LeaseKeeper(storage, lease, deps.lease)
    from oauth.tokens import TokenError

    try:
        if link.status is LinkStatus.UNLINKING:
            return _unlink(link, deps, report)
        _sync(
            link,
            deps,
            report,
            series_check=series_check,
            keep_alive=keeper.renew,
            log_ids={"job_id": job_id, "correlation_id": correlation_id},
        )
    except TokenError as error:
        report.status = "failed"
        report.detail = "no Microsoft token to work with" if link.status is LinkStatus.UNLINKING else ""
        report.errors.append(str(error))
    except ServiceError as error:
        # Nothing to plan from (Graph failed before the plan): the next sync retries.
        report.status = "failed"
        report.errors.append(str(error))
    except _LeaseLost:
        report.status, report.detail = "busy", "the sync ran past its lease and stopped; another instance carries on"
    finally:
        keeper.release()
        _log_report(report, job_id=job_id, correlation_id=correlation_id)
    return report


def _log_report(report: SyncReport, *, job_id: str | None, correlation_id: str | None) -> None:
    from ops.logs import log_event

    log_event(
        log,
        "sync.finished",
        tech=report.syncro_user_id,
        job_id=job_id,
        correlation_id=correlation_id,
        status=report.status,
        rounds=report.rounds,
        writes=report.writes,
        conflicts=len(report.conflicts),
        skipped=len(report.skipped),
        errors=len(report.errors),
        full_round=report.full_round,
    )


class _LeaseLost(Exception):
    pass


class _LeaseKeeper:
    """The tech's lease, renewed between rounds: a long sync keeps it, a dead instance loses it
    within ``SyncDeps.lease``."""

    def __init__(self, storage: StorageAccount, lease: Any, duration: timedelta) -> None:
        self._storage, self._lease, self._duration = storage, lease, duration

    def renew(self) -> None:
        try:
            self._lease = self._storage.leases.renew(self._lease, duration=self._duration)
        except ConcurrencyConflict:
            raise _LeaseLost from None

    def release(self) -> None:
        self._storage.leases.release(self._lease)


def _sync(
    link: Link,
    deps: SyncDeps,
    report: SyncReport,
    *,
    series_check: bool = False,
    keep_alive: Callable[[], None] = lambda: None,
    log_ids: dict[str, str | None] | None = None,
) -> None:
    tech, storage, now = link.syncro_user_id, deps.storage, deps.clock()
    zone = deps.account_zone()
    graph = deps.graph_for(tech)
    window = Window.around(now.astimezone(zone).date(), zone, past_days=deps.past_days, future_days=deps.future_days)
    before = _versions(storage, tech) if series_check else None
    refreshed = refresh_outlook(
        tech=tech,
        calendar_id=link.calendar_id,
        graph=graph,
        store=storage.outlook_mirror,
        cursors=storage.cursors,
        window=window,
        now=now,
        mapped={row.graph_id for row in storage.mappings.list_mappings(tech) if row.graph_id},
    )
    report.full_round = refreshed.full_round
    outlook = dict(refreshed.events)
    # A deleted occurrence shows in delta only as nothing new: expand series when delta was quiet.
    if before is not None and not refreshed.full_round and before == _versions_of(outlook):
        recheck_series(
            graph, link.calendar_id, outlook, window, forget=lambda event_id: _forget_event(deps, tech, event_id)
        )
    snapshot = Snapshot(
        syncro={str(e.appointment_id): e.appointment for e in storage.mirror.list_entries(tech)},
        outlook=outlook,
    )
    tally = Tally()
    executor = Executor(
        tech=tech,
        calendar_id=link.calendar_id,
        storage=storage,
        graph=graph,
        syncro=deps.syncro,
        zone=zone,
        syncro_web_url=deps.syncro_web_url,
        clock=deps.clock,
        snapshot=snapshot,
        tally=tally,
        options=deps.options,
        **(log_ids or {}),
    )
    policy = Policy(two_way=link.two_way, conflict=deps.conflict)  # type: ignore[arg-type]
    skipped: dict[tuple[str, str], dict[str, str]] = {}
    elsewhere = other_calendars(graph, link.calendar_id, snapshot.outlook)
    for _round in range(deps.max_rounds):
        keep_alive()
        pairs = executor.pairs()
        mapped = {pair.outlook_id for pair in pairs if pair.outlook_id}
        meetings = invitations(storage, tech, snapshot.outlook, mapped) if link.two_way else {}
        inputs = build_inputs(
            snapshot,
            pairs,
            tech=tech,
            link=link,
            zone=zone,
            options=deps.options,
            now=now,
            meetings=meetings,
            other_calendars=elsewhere,
        )
        skipped.update({(s["side"], s["id"]): s for s in inputs.skipped})
        actions = plan(inputs.pairs, inputs.syncro, inputs.outlook, policy=policy, verified_gone=tally.verified_gone)
        actions += tag_repairs(
            inputs, snapshot, actions, two_way=link.two_way, syncro_web_url=deps.syncro_web_url, zone=zone
        )
        if not actions:
            break
        report.rounds += 1
        executor.run(actions)
        if not any(isinstance(a, WRITES) for a in actions) and report.rounds > 1 and tally.errors:
            break  # only failing bookkeeping left: the next sync tries again
    storage.recycle_bin.purge_entries(tech, older_than=RETENTION)
    report.created, report.updated, report.deleted = tally.created, tally.updated, tally.deleted
    report.conflicts, report.errors, report.notices = tally.conflicts, tally.errors, tally.notices
    report.skipped = list(skipped.values())
    for conflict in tally.conflicts:  # for the settings page: which version was kept, and why
        record = ConflictRecord(tech, now, tuple(conflict["fields"]), conflict["winner"], conflict["summary"])
        storage.conflicts.add(record, pair_key=conflict["pair"])


def _versions(storage: StorageAccount, tech: int) -> dict[str, str]:
    return _versions_of({entry.event_id: entry.event for entry in storage.outlook_mirror.list_entries(tech)})


def _versions_of(events: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {event_id: str(event.get("changeKey") or "") for event_id, event in events.items()}


def _forget_event(deps: SyncDeps, tech: int, event_id: str) -> None:
    deps.storage.outlook_mirror.delete_entry(tech, event_id)


def recheck_series(
    graph: GraphClient,
    calendar_id: str,
    events: dict[str, dict[str, Any]],
    window: Window,
    *,
    forget: Callable[[str], None],
) -> list[str]:
    """Expand each recurring series that has occurrences in ``events`` (the Outlook mirror) and
    drop the occurrences Graph no longer lists: deleted occurrences, which delta never reports.
    One ``instances`` request per series; a series gone entirely (404) drops all of its
    occurrences. Returns the ids dropped (from ``events`` and, through ``forget``, the mirror)."""
    from sync.errors import GraphNotFound

    series: dict[str, set[str]] = {}
    for event_id, event in events.items():
        master = event.get("seriesMasterId")
        if master and event.get("type") in ("occurrence", "exception"):
            series.setdefault(str(master), set()).add(event_id)
    dropped: list[str] = []
    for master, ids in sorted(series.items()):
        try:
            listed = {
                str(item.get("id")) for item in graph.list_instances(calendar_id, master, window.start, window.end)
            }
        except GraphNotFound:
            listed = set()
        for event_id in sorted(ids - listed):
            forget(event_id)
            events.pop(event_id, None)
            dropped.append(event_id)
    return dropped


def _unlink(link: Link, deps: SyncDeps, report: SyncReport) -> SyncReport:
    """Delete our ``[S]`` events (when asked; each through the recycle bin), then forget the
    tech's rows, mirror, cursor, token and link. A failure leaves the link unlinking, to retry."""
    tech, storage = link.syncro_user_id, deps.storage
    rows = list(storage.mappings.list_mappings(tech))
    if link.remove_outlook_events:
        graph = deps.graph_for(tech)
        events = {e.event_id: e.event for e in storage.outlook_mirror.list_entries(tech)}
        zone = deps.account_zone()
        for row in rows:
            if row.origin is not Origin.SYNCRO or not row.graph_id:
                continue
            content = _content_of(events.get(row.graph_id), row.base, zone)
            entry = storage.recycle_bin.add_entry(
                RecycleEntry(
                    tech,
                    new_entry_id(deps.clock()),
                    "outlook",
                    row.graph_id,
                    "syncro",
                    content,
                    deps.clock(),
                    reason="unlinked with remove our events",
                )
            )
            try:
                graph.delete_event(link.calendar_id, row.graph_id)
            except ServiceNotFound:
                pass
            except ServiceError as error:
                storage.recycle_bin.delete_entry(tech, entry.entry_id)
                report.errors.append(str(error))
                continue
            report.deleted["outlook"] += 1
    if report.errors:
        report.status, report.detail = "failed", "some events could not be removed; the next sync tries again"
        return report
    for row in rows:
        storage.mappings.delete_mapping(tech, row.key)
    forget_outlook(tech, store=storage.outlook_mirror, cursors=storage.cursors)
    if deps.forget_subscriptions is not None:
        deps.forget_subscriptions(tech)  # while the token still works: Graph stops notifying us for this tech
    if deps.forget_tokens is not None:
        try:
            deps.forget_tokens(tech)
        except NotFound:
            pass
    storage.links.delete_link(tech)
    report.status, report.detail = "unlinked", "the link and its tokens are forgotten"
    return report


def _content_of(event: dict[str, Any] | None, base: dict[str, Any] | None, zone: ZoneInfo) -> dict[str, Any]:
    if event is not None:
        try:
            return appointment_from_graph(event, zone=zone).to_json()
        except UnmappableItem:
            pass
    return base or {}


# -- the recycle bin ------------------------------------------------------------------------------


def _intend_job(deps: SyncDeps, tech: int, event: Item, kept: dict[str, Any]) -> None:
    """An intent row for the Syncro copy of a restored event of the tech's own, holding what its
    deleted job held beyond content: the sync creates the job from it (as it retries any intent)
    and sends those fields with the create."""
    from sync.executor import INTENT_SKEW
    from sync.planner import new_pair_key

    now = deps.clock()
    row = Mapping(
        syncro_user_id=tech,
        key=new_pair_key(event),
        origin=Origin.OUTLOOK,
        state=MappingState.INTENT,
        synced_at=now,
        intent_at=now - INTENT_SKEW,
        graph_id=event.id,
        graph_version=event.version,
        base=event.content.to_json(),
        syncro_kept=dict(kept),
    )
    deps.storage.mappings.create_mapping(row)


def restore_entry(syncro_user_id: int, entry_id: str, *, deps: SyncDeps) -> dict[str, str]:
    """Bring back what a sync deleted: the appointment is re-created on the side it was born
    (``entry.origin``), without a tag, as a new item there; the next sync carries it to the other
    side as it would any new item (Syncro always; Outlook with two-way on). Then the entry is
    dropped. Returns ``{"side", "id"}`` of the new item.

    Raises storage NotFound (no such entry, or no link for an Outlook restore), ServiceError when
    the create fails (the entry stays)."""
    storage = deps.storage
    entry = storage.recycle_bin.get_entry(syncro_user_id, entry_id)
    content = Appointment.from_json(entry.content)
    zone = deps.account_zone()
    if entry.origin == Side.SYNCRO.value:
        kept = entry.content.get("syncro") if isinstance(entry.content.get("syncro"), dict) else None
        fields = syncro_fields(content, zone=zone, origin=Side.SYNCRO, tech_syncro_user_id=syncro_user_id, kept=kept)
        record = deps.syncro.create_appointment({**fields, "email_customer": False})
        from storage.mirror import MirrorEntry
        from sync.poller import content_hash

        storage.mirror.put_entry(
            MirrorEntry(
                syncro_user_id,
                int(record["id"]),
                str(record.get("updated_at") or ""),
                content_hash(record),
                dict(record),
                deps.clock(),
            )
        )
        new_id = str(record["id"])
    else:
        link = storage.links.get_link(syncro_user_id)
        body = graph_fields(content, zone=zone, origin=Side.OUTLOOK, extras=None)
        event = deps.graph_for(syncro_user_id).create_event(
            link.calendar_id, body, transaction_id=f"restore-{entry.entry_id}", syncro_id="restored"
        )
        storage.outlook_mirror.upsert_entry(
            OutlookEntry(syncro_user_id, str(event["id"]), str(event.get("changeKey") or ""), event, deps.clock())
        )
        new_id = str(event["id"])
        kept = entry.content.get("syncro") if isinstance(entry.content.get("syncro"), dict) else None
        if kept:  # its job had a customer, ticket or type: the job the next sync makes carries them
            _intend_job(
                deps, syncro_user_id, Item(Side.OUTLOOK, new_id, str(event.get("changeKey") or ""), content, {}), kept
            )
    storage.recycle_bin.delete_entry(syncro_user_id, entry_id)
    return {"side": entry.origin, "id": new_id}
