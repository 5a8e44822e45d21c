"""The timers' work: Syncro poll, reconciliation, subscription upkeep, daily cleanup.

Each runs as a singleton across instances: `run_singleton` takes the lease ``timer:<name>``
(`storage.leases`, a conditional write on Table Storage that exactly one racer wins). A run that
finds it held (the previous run still going, here or on another instance) skips, and says so in
the log. Azure already runs a timer function on one instance at a time; the lease also holds on
the local host, across hosts sharing one storage account, and for a run that outlasts its
interval. The lease is kept alive while the run works (`storage.leases.KeptLease`, never past the
function timeout in host.json), so a run that crashed without releasing it blocks that timer for
a minute, not for the function timeout.

- `poll_syncro` (SYNCRO_POLL_SCHEDULE, every minute): one `poll_links` (the poller's `poll_once`
  for the account within the request budget, with the techs' own Syncro tokens when Syncro hides
  owners); each tech whose appointments changed gets one job. The outcome goes to
  `storage.job_status` for the settings page.
- `reconcile` (RECONCILE_SCHEDULE, every 15 minutes): one job per linked tech (active, or unlinking
  so an interrupted unlink finishes); what a dropped notification missed is caught here.
- `subscription_upkeep` (SUBSCRIPTION_UPKEEP_SCHEDULE, hourly): `sync.subscriptions.upkeep`.
- `cleanup` (CLEANUP_SCHEDULE, daily): recycle-bin entries past their retention for every tech
  (linked or not), and OAuth flows that expired unused.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from realtime.enqueue import request_syncs
from storage.errors import ConcurrencyConflict, LeaseHeld
from storage.job_status import JobStatusStore, PollStatus
from storage.leases import KEPT_LEASE, KeptLease
from storage.links import LinkStatus
from storage.recycle_bin import RETENTION
from sync.job_reasons import JobReason

if TYPE_CHECKING:
    from storage.account import StorageAccount
    from sync.budget import RequestBudget
    from sync.engine import SyncDeps
    from sync.poller import PollReport
    from sync.syncro_tokens import SyncroTokenService

log = logging.getLogger("realtime.timers")
T = TypeVar("T")

HOST_JSON = Path(__file__).resolve().parent.parent / "host.json"
POLL, RECONCILE, UPKEEP, CLEANUP = "syncro-poll", "reconcile", "subscription-upkeep", "cleanup"
RECONCILE_REASON = JobReason.RECONCILE


def _function_timeout(path: Path = HOST_JSON) -> timedelta:
    """host.json's ``functionTimeout`` (no run lasts longer), else the Consumption default of 5 min."""
    try:
        text = str(json.loads(path.read_text()).get("functionTimeout", "00:05:00"))
        hours, minutes, seconds = (float(part) for part in text.split(":"))
        return timedelta(hours=hours, minutes=minutes, seconds=seconds)
    except (OSError, ValueError, TypeError):
        return timedelta(minutes=5)


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def check_schedules() -> str | None:
    """Log (and return) the error of a malformed schedule setting: the app was indexed with the
    default schedules instead (blueprints/background.py), which nobody would notice otherwise."""
    from settings import SettingsError, load_timer_schedules

    try:
        load_timer_schedules()
    except SettingsError as error:
        log.error("%s; the timers run on their default schedules until it is fixed", error)
        return str(error)
    return None


def run_singleton(
    name: str, account: StorageAccount, work: Callable[[], T], *, lease: timedelta | None = None
) -> T | None:
    """Run ``work`` under the lease ``timer:<name>``; None (and a log line) when a run of it is
    still going. The lease is released when ``work`` ends, however it ends."""
    check_schedules()
    leases = account.leases
    duration = lease or KEPT_LEASE
    try:
        held = leases.acquire(f"timer:{name}", holder=_holder(), duration=duration)
    except ConcurrencyConflict as busy:  # LeaseHeld, or another instance took it as we looked
        if isinstance(busy, LeaseHeld):
            why = f"lease held until {busy.expires_at.isoformat()}"
        else:
            why = "another instance started it at the same moment"
        log.warning(
            "timer %s skipped: its previous run is still going (%s)", name, why, extra={"timer": name, "skipped": True}
        )
        return None
    started = account.clock()
    kept = KeptLease(leases, held, duration, until=started + _function_timeout())
    try:
        return work()
    finally:
        finished = account.clock()  # inside the lease: runs' [started, finished] never overlap
        kept.release()
        log.info(
            "timer %s ran in %.1f s",
            name,
            (finished - started).total_seconds(),
            extra={"timer": name, "started_at": started.isoformat(), "finished_at": finished.isoformat()},
        )


# -- the Syncro poll ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PollRun:
    report: PollReport | None
    error: str = ""


def poll_syncro(*, account: StorageAccount | None = None) -> PollRun | None:
    """The poll timer's run: one `poll_once` for the account; None when the previous run is still
    going. A Syncro failure is recorded and logged, not raised (the next minute tries again).
    Raises StorageError and SettingsError."""
    import services

    account = account or services.storage_account()
    return run_singleton(POLL, account, lambda: _poll(account))


def poll_now(account: StorageAccount, *, wait: float = 10.0, pause: float = 0.25) -> PollRun | None:
    """The poll timer's run, now: when the timer's own run is going (it may have begun before a
    link or token that matters now existed), wait for it to end (it takes a second or two) and
    poll again, for at most ``wait`` seconds. None when no run of ours got the lease by then."""
    import time

    deadline = time.monotonic() + wait
    while (run := poll_syncro(account=account)) is None and time.monotonic() < deadline:
        time.sleep(pause)
    return run


def poll_links(
    deps: SyncDeps,
    *,
    budget: RequestBudget | None = None,
    tokens: SyncroTokenService | None = None,
    slice_days: int | None = None,
) -> PollReport:
    """One Syncro poll for every active link, within ``budget`` (default: the process's share,
    `services.poll_budget`); each tech's own token from ``tokens`` (default: the stored ones) is
    used when Syncro hides owners. Queues one sync job per tech whose appointments changed.
    Raises SyncroError (other than 429) and StorageError."""
    import services
    from sync.poll_windows import SLICE_DAYS
    from sync.poller import poll_once

    budget = budget or services.poll_budget()
    tokens = tokens or services.syncro_token_service()
    storage = deps.storage
    techs = [link.syncro_user_id for link in storage.links.list_links() if link.status is LinkStatus.ACTIVE]
    clients = tokens.clients(techs)
    try:
        return poll_once(
            client=deps.syncro,
            mirror=storage.mirror,
            cursors=storage.cursors,
            queue=storage.sync_queue,
            ask_syncs=lambda asked: request_syncs(storage, asked),
            budget=budget,
            clock=deps.clock,
            techs=techs,
            tech_clients=clients,
            zone=deps.account_zone(),
            past_days=deps.past_days,
            future_days=deps.future_days,
            slice_days=slice_days or SLICE_DAYS,
            feed_base_url=deps.public_base_url or None,
            feed_ticket_base=deps.syncro_web_url,
        )
    finally:
        for client in clients.values():
            client.close()


def _poll(account: StorageAccount) -> PollRun:
    import services
    from sync.budget import Caller, spending_as
    from sync.errors import ServiceError, SyncroBudgetExhausted

    deps = services.sync_deps()
    now = deps.clock()
    statuses = JobStatusStore(account)
    try:
        # The account-wide listing, or each tech's own with their stored Syncro token when Syncro
        # hides owners, inside the poller's budget and share of the app's; one job per tech that changed.
        with spending_as(Caller.POLL) as spending:
            report = poll_links(deps)
    except SyncroBudgetExhausted as error:  # before the poll began (the account's time zone): a pause
        statuses.record_poll(PollStatus(last_poll_at=now, outcome="partial", detail=str(error)))
        return PollRun(None, str(error))
    except ServiceError as error:
        log.warning("Syncro poll failed: %s", error, extra={"timer": POLL})
        statuses.record_poll(PollStatus(last_poll_at=now, outcome="failed", detail=str(error)))
        return PollRun(None, str(error))
    finished = report.round_complete and not report.throttled
    detail = report.ownership_unknown.explanation if report.ownership_unknown else ""
    if report.throttled and spending.refusals:
        detail = (
            "The app's shared Syncro budget (SYNCRO_REQUESTS_PER_MINUTE) ran out for the poller; "
            f"the next poll resumes. {detail}"
        ).strip()
    elif report.throttled:
        detail = f"Syncro answered 429 (too many requests); the next poll resumes. {detail}".strip()
    statuses.record_poll(
        PollStatus(
            last_poll_at=now,
            outcome="ok" if finished else "partial",
            detail=detail,
            requests=report.requests_made,
            changed_techs=len(report.changed_techs),
        )
    )
    log.info(
        "Syncro poll: %d requests, %d techs changed",
        report.requests_made,
        len(report.changed_techs),
        extra={"timer": POLL, "round_complete": report.round_complete, "throttled": report.throttled},
    )
    return PollRun(report)


# -- reconciliation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReconcileRun:
    queued: tuple[int, ...]  # techs that got a message
    coalesced: tuple[int, ...]  # techs whose queued, unstarted job already covers it


def reconcile(*, account: StorageAccount | None = None, now: datetime | None = None) -> ReconcileRun | None:
    """One job per linked tech (active, or unlinking); None when the previous run is still going.
    Raises StorageError."""
    import services

    account = account or services.storage_account()
    return run_singleton(RECONCILE, account, lambda: _reconcile(account, now or account.clock()))


def _reconcile(account: StorageAccount, now: datetime) -> ReconcileRun:
    from realtime.enqueue import request_sync

    wanted = (LinkStatus.ACTIVE, LinkStatus.UNLINKING)
    queued, coalesced = [], []
    for link in account.links.list_links():
        if link.status not in wanted:
            continue
        sent = request_sync(account, link.syncro_user_id, RECONCILE_REASON, now=now)
        (queued if sent else coalesced).append(link.syncro_user_id)
    log.info("reconcile: %d jobs queued, %d already queued", len(queued), len(coalesced), extra={"timer": RECONCILE})
    return ReconcileRun(tuple(queued), tuple(coalesced))


# -- subscription upkeep -------------------------------------------------------------------------


def subscription_upkeep(*, account: StorageAccount | None = None) -> Any:
    """`sync.subscriptions.upkeep` as a singleton; its report, or None when the previous run is
    still going. Raises StorageError and SettingsError."""
    import services
    from sync.subscriptions import upkeep

    account = account or services.storage_account()
    return run_singleton(UPKEEP, account, lambda: upkeep(deps=services.subscription_deps()))


# -- daily cleanup -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CleanupRun:
    recycle_entries: int  # purged past their retention
    oauth_flows: int  # expired unused


def cleanup(*, account: StorageAccount | None = None) -> CleanupRun | None:
    """Purge recycle-bin entries past retention (every tech that has any) and expired OAuth flows;
    None when the previous run is still going. Raises StorageError."""
    import services

    account = account or services.storage_account()
    return run_singleton(CLEANUP, account, lambda: _cleanup(account))


def _cleanup(account: StorageAccount) -> CleanupRun:
    purged = account.recycle_bin.purge_all(older_than=RETENTION)  # every tech's, linked or not
    flows = account.oauth_states.purge_expired()
    log.info("cleanup: %d recycle-bin entries, %d expired sign-in flows", purged, flows, extra={"timer": CLEANUP})
    return CleanupRun(purged, flows)
