"""The sync loop: one technician's sync, read -> plan -> execute, until both sides agree.

`sync_tech` reads the link (only an active one syncs; an unlinking one ends in `sync.unlink`),
brings the Outlook mirror up to date with one delta round, reads the Syncro mirror the poller
keeps, maps both into `sync.model.Item`s (`sync.inputs`: an item that cannot be mapped is skipped
with its reason and its pair left alone: never a deletion), and loops `sync.planner.plan` (with
`sync.repairs.tag_repairs`) and `sync.executor.Executor` until the plan is empty (or
`SyncDeps.max_rounds`). It runs under the tech's lease (kept alive while it runs, one minute after
a crash: `storage.leases.KeptLease`), so two instances never sync the same tech
at once. See ``docs/sync.md``. What a sync needs is `sync.deps.SyncDeps`; what it did,
`sync.report.SyncReport`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from storage.conflicts import ConflictRecord
from storage.errors import ConcurrencyConflict, LeaseHeld, NotFound
from storage.leases import KeptLease
from storage.links import LinkStatus
from storage.recycle_bin import RETENTION
from sync.actions import WRITES
from sync.deps import SyncDeps
from sync.errors import ServiceError
from sync.executor import Executor, Snapshot
from sync.inputs import build_inputs, invitations, other_calendars
from sync.outlook_mirror import Window, refresh_outlook
from sync.planner import Policy, plan
from sync.repairs import tag_repairs
from sync.report import SyncReport, SyncStatus
from sync.sides import Tally
from sync.unlink import unlink

if TYPE_CHECKING:
    from storage.links import Link
    from sync.graph import GraphClient

__all__ = ["SyncDeps", "SyncReport", "SyncStatus", "recheck_series", "sync_tech"]

log = logging.getLogger(__name__)


def sync_tech(
    syncro_user_id: int,
    *,
    deps: SyncDeps,
    series_check: bool = False,
    job_id: str | None = None,
    correlation_id: str | None = None,
) -> SyncReport:
    """Sync one technician now and say what changed.

    ``series_check``: Outlook told us something changed (a Graph notification), or a person or the
    reconciliation asked for a full check. The recurring series in the mirror are expanded again
    (one request a series), because a deleted occurrence gets no tombstone in delta and its
    notification names only the series master (`recheck_series`); the delta round may bring other
    changes beside it.

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
        report.status, report.detail = SyncStatus.NOT_LINKED, "this technician has not linked a calendar"
        return report
    if link.status not in (LinkStatus.ACTIVE, LinkStatus.UNLINKING):
        report.status, report.detail = SyncStatus.INACTIVE, f"the link is {link.status.value}"
        return report
    try:
        lease = storage.leases.acquire(f"sync:{syncro_user_id}", holder=uuid.uuid4().hex, duration=deps.lease)
    except (LeaseHeld, ConcurrencyConflict):  # held, or taken by another instance as we took it
        report.status, report.detail = SyncStatus.BUSY, "another sync of this technician is running"
        return report
    keeper = KeptLease(storage.leases, lease, deps.lease, until=deps.clock() + deps.longest_run)
    from oauth.tokens import TokenError

    try:
        if link.status is LinkStatus.UNLINKING:
            return unlink(link, deps, report)
        _sync(
            link,
            deps,
            report,
            series_check=series_check,
            keep_alive=lambda: _still_held(keeper),
            log_ids={"job_id": job_id, "correlation_id": correlation_id},
        )
    except TokenError as error:
        report.status = SyncStatus.FAILED
        report.detail = "no Microsoft token to work with" if link.status is LinkStatus.UNLINKING else ""
        report.errors.append(str(error))
    except ServiceError as error:
        # Nothing to plan from (Graph failed before the plan): the next sync retries.
        report.status = SyncStatus.FAILED
        report.errors.append(str(error))
    except _LeaseLost:
        report.status, report.detail = (
            SyncStatus.BUSY,
            "the sync ran past its lease and stopped; another instance carries on",
        )
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


def _still_held(keeper: KeptLease) -> None:
    """Between rounds: renew the tech's lease (its thread renews it meanwhile too); stop when lost."""
    if not keeper.beat():
        raise _LeaseLost


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
    # A deleted occurrence shows in delta as nothing at all, even beside other changes the same
    # round brings: when Outlook said something changed, expand the series again (a full round
    # listed them already).
    if series_check and not refreshed.full_round:
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
