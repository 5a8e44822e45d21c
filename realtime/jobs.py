"""The queue-triggered sync job: one message on the sync-job queue syncs one technician.

A `FanOut` message (several techs asked for at once by the notification webhook) syncs nobody
itself: it asks for each tech's own job (`realtime.enqueue.fan_out`, coalesced like any request),
so the techs are spread over instances as usual. Failing, it is retried and poisoned like a job.

Delivery is at least once (a message can run twice, or on two instances at once), so the job is
built to be run again at any point:

- **Parse.** A message that is not a sync job (not JSON, wrong shape, no positive tech id) is
  logged by its id and length and dropped: retrying cannot make it readable, and the poison queue
  is kept for jobs that failed.
- **Start.** `realtime.enqueue.sync_started` drops the tech's "job queued" row before anything is
  read, so a change that arrives while this job runs queues a job of its own.
- **Lease.** `sync.engine.sync_tech` takes the ``sync:<id>`` lease itself and answers ``busy``
  when another instance holds it; the job needs no lease of its own. A busy job must not be lost
  (the running sync may have read both sides before this job's change), nor retried through the
  queue (that would count towards ``maxDequeueCount`` and poison a job that never failed). It
  queues one *delayed follow-up* (`BUSY_RETRY_SECONDS`) and completes. Busy jobs share one
  follow-up while it has not started: the tech's status row holds a marker, claimed with its ETag,
  that the follow-up clears when it starts (before it reads anything, so a job busy during its
  sync queues the next one); a marker older than `FOLLOW_UP_STALE` (its message lost) no longer
  counts.
- **Outcome.** Recorded per tech in `storage.job_status` (time, outcome, reason, a short detail,
  the items the sync skipped). `record_report` records a sync run outside the queue the same way.
  ``failed`` (the sync could not run: Graph, Microsoft's token endpoint or storage failed) raises
  `JobFailed`, so the host retries after ``visibilityTimeout``; on the last attempt
  (``dequeue_count`` = host.json's ``maxDequeueCount``) the tech is marked ``poisoned`` first, and
  the host moves the message to ``<queue>-poison``. A sync that ran but had item errors
  (``partial``) is not retried: the next job or the reconciliation timer tries those items again,
  and a permanently bad item would otherwise poison every job of that tech.
- **Recheck** (`realtime.rechecks`). A Graph notification's job that writes nothing may have outrun delta: it looks
  again itself every half second until 3 s after the notification (`look_again`), then queues
  delayed ``graph-recheck`` jobs, one after another while they still write nothing, 1, 1, 2 and
  4 s apart (`next_recheck`). One schedule per tech: the status row names the recheck expected next,
  and any other (replaced by a newer schedule, or a second delivery) does nothing.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from realtime.rechecks import (
    LOOK_AGAIN_FOR,
    RECHECK_DELAYS,
    SUPERSEDED,
    look_again,
    next_recheck,
    recheck_later,
    seconds_left,
    superseded,
)
from storage.account import utc_now
from storage.job_status import JobOutcome, JobStatusStore
from storage.sync_queue import FanOut, SyncJob, parse_message
from sync.budget import Caller, spending_as
from sync.job_reasons import JobReason
from sync.report import SyncStatus
from sync.times import parse_time

if TYPE_CHECKING:
    from sync.engine import SyncDeps, SyncReport

log = logging.getLogger("realtime.jobs")

HOST_JSON = Path(__file__).resolve().parent.parent / "host.json"
BUSY_RETRY_SECONDS = 15  # syncs take seconds; a lease left by a crashed instance lasts a minute
FOLLOW_UP_STALE = timedelta(minutes=10)
_ENGINE_OUTCOMES = {
    SyncStatus.NOT_LINKED: JobOutcome.NOT_LINKED,
    SyncStatus.INACTIVE: JobOutcome.INACTIVE,
    SyncStatus.UNLINKED: JobOutcome.UNLINKED,
}


class JobFailed(Exception):
    """Raised so the host retries the message after ``visibilityTimeout`` (and moves it to the
    poison queue after ``maxDequeueCount`` attempts): the sync could not run."""

    def __init__(self, syncro_user_id: int, detail: str) -> None:
        super().__init__(f"sync of tech {syncro_user_id} failed: {detail}")
        self.syncro_user_id = syncro_user_id


@dataclass(frozen=True)
class Delivery:
    """One delivery of a queue message, as the trigger sees it."""

    body: bytes
    message_id: str
    dequeue_count: int


@functools.cache
def max_dequeue_count(path: Path = HOST_JSON) -> int:
    """host.json's ``extensions.queues.maxDequeueCount`` (the host's default, 5, when absent)."""
    try:
        return int(json.loads(path.read_text())["extensions"]["queues"].get("maxDequeueCount", 5))
    except (OSError, KeyError, TypeError, ValueError):
        return 5


def parse_job(body: bytes) -> SyncJob | FanOut | None:
    """The sync job (or fan-out) in a message body, or None when it is not one."""
    try:
        return parse_message(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def run_job(
    delivery: Delivery,
    *,
    deps_factory: Callable[[], SyncDeps] | None = None,
    attempts: int | None = None,
    clock: Callable[[], datetime] = utc_now,
    look_again_for: float = 0.0,
) -> str:
    """Run one delivery; returns the outcome recorded (``dropped`` for a message that is not a job).
    ``look_again_for``: seconds after a notification was answered during which its quiet job looks
    again itself (`look_again`; the trigger passes `LOOK_AGAIN_FOR`).

    Raises JobFailed when the sync could not run, and whatever failed before it could (StorageError,
    SettingsError, a bug): the host then retries the message. ``deps_factory`` defaults to
    `services.sync_deps`; ``attempts`` to host.json's ``maxDequeueCount``."""
    job = parse_job(delivery.body)
    if job is None:
        log.warning(
            "dropped a queue message that is not a sync job",
            extra={"message_id": delivery.message_id, "bytes": len(delivery.body)},
        )
        return "dropped"
    last_attempt = delivery.dequeue_count >= (attempts or max_dequeue_count())
    if isinstance(job, FanOut):
        return _fan_out(delivery, job, deps_factory, last_attempt=last_attempt, clock=clock)
    tech = job.syncro_user_id
    statuses: JobStatusStore | None = None
    started = clock()
    try:
        if deps_factory is None:
            import services

            deps_factory = services.sync_deps
        deps = deps_factory()
        statuses = JobStatusStore(deps.storage)
        if superseded(statuses, job):
            detail = "a newer recheck replaced this one"
            _log(delivery, job, SUPERSEDED, started, clock(), detail=detail)
            return SUPERSEDED
        _started(deps, statuses, job)
        with spending_as(Caller.JOB) as spending:
            report = _sync(tech, deps, reason=job.reason, delivery=delivery, series_check=_series_check(job))
            if job.reason == JobReason.GRAPH_NOTIFICATION and look_again_for > 0:
                window = seconds_left(job, clock(), look_again_for)
                report = look_again(lambda: _sync(tech, deps, reason=job.reason, delivery=delivery), report, window)
        outcome, detail = _outcome(report)
        if spending.refusals and outcome in (JobOutcome.FAILED, JobOutcome.PARTIAL):
            # The app's Syncro budget sent it away before Syncro was asked: not a failure to
            # retry towards poison, but work to do again once a request frees up.
            outcome, detail = JobOutcome.PARTIAL, _defer(deps, tech, spending.retry_after, clock())
        elif outcome == JobOutcome.BUSY:
            detail = _follow_up(deps, statuses, tech, clock())
        elif (recheck := next_recheck(job, report, clock())) is not None:
            recheck_later(deps, statuses, job, *recheck)  # announced, yet nothing to carry: delta may lag
        if outcome == JobOutcome.FAILED and last_attempt:
            outcome = JobOutcome.POISONED
        if outcome == JobOutcome.UNLINKED:
            statuses.delete_status(tech)  # the link and its tokens are forgotten: so is this row
        else:
            statuses.record_job(
                tech,
                outcome=outcome,
                reason=job.reason,
                detail=detail,
                at=clock(),
                skipped=report.skipped,
                notices=report.notices,
            )
    except Exception as error:
        if last_attempt:
            _mark_poisoned(statuses, tech, job.reason, f"{type(error).__name__}: {error}", clock())
        _log(delivery, job, "error", started, clock(), detail=type(error).__name__)
        raise
    _log(delivery, job, outcome, started, clock(), detail=detail, report=report)
    if outcome in (JobOutcome.FAILED, JobOutcome.POISONED):
        raise JobFailed(tech, detail)
    return outcome


def handle_queue_message(message: Any) -> str:
    """The trigger's entry point: a ``func.QueueMessage`` in, `run_job` on it."""
    delivery = Delivery(message.get_body(), str(message.id or ""), int(message.dequeue_count or 1))
    return run_job(delivery, look_again_for=LOOK_AGAIN_FOR)


# -- steps ---------------------------------------------------------------------------------------


def _fan_out(
    delivery: Delivery,
    message: FanOut,
    deps_factory: Callable[[], SyncDeps] | None,
    *,
    last_attempt: bool,
    clock: Callable[[], datetime],
) -> str:
    """Ask for each tech's own job. Raises StorageError (the host retries the message; techs
    already asked for coalesce, so a retry queues no job twice); on the last attempt the techs it
    names are marked set aside first, as a sync job's tech would be."""
    from realtime.enqueue import fan_out

    statuses: JobStatusStore | None = None
    try:
        if deps_factory is None:
            import services

            account = services.storage_account()
        else:
            account = deps_factory().storage
        statuses = JobStatusStore(account)
        queued = fan_out(account, message)
    except Exception as error:
        if last_attempt:
            for tech in message.syncro_user_ids:
                detail = f"its sync could not be asked for: {type(error).__name__}: {error}"
                _mark_poisoned(statuses, tech, message.reason, detail, clock())
        raise
    log.info(
        "fanned out sync requests: %d techs, %d jobs queued",
        len(message.syncro_user_ids),
        queued,
        extra={"message_id": delivery.message_id, "reason": message.reason, "dequeue_count": delivery.dequeue_count},
    )
    return "fanned-out"


def _started(deps: SyncDeps, statuses: JobStatusStore, job: SyncJob) -> None:
    """Before anything is read: requests from now on queue a job of their own, and a follow-up
    that starts lets the next busy job queue another."""
    from realtime.enqueue import sync_started

    sync_started(deps.storage, job.syncro_user_id)
    if job.reason == JobReason.BUSY_FOLLOW_UP:
        statuses.clear_follow_up(job.syncro_user_id)
    if job.reason == JobReason.GRAPH_NOTIFICATION:
        # Recorded here rather than in the webhook, which must answer Graph at once: the job's
        # request time is the (first, when several were coalesced) notification's.
        at = parse_time(job.requested_at, naive=UTC)
        if at is None:
            return
        statuses.record_notification(job.syncro_user_id, at=at)


# Jobs Outlook asked for (or that stand in for one): a deleted occurrence shows only as a change of
# its series master, so these syncs expand series when delta brings nothing (sync_tech).
# Seconds before each recheck, counted from the end of the job before it: delta's lag behind a
# notification is seconds (2 s reported), so look again every second or so at first, then less
# often. A queue delay is whole seconds and the trigger's polling adds up to maxPollingInterval, so
# looks come about 1.5 s apart at best. The schedule covers a lag of about 10 s; the
# reconciliation anything later.
# Syncs that expand Outlook's series again (a deleted occurrence leaves no trace in delta): what
# Outlook announced, and the reconciliation, the safety net for what a notification missed.
SERIES_CHECK_REASONS = frozenset(
    {
        JobReason.GRAPH_NOTIFICATION,
        JobReason.GRAPH_MISSED,
        JobReason.BUSY_FOLLOW_UP,
        JobReason.GRAPH_RECHECK,
        JobReason.RECONCILE,
    }
)
# A new link or a new Syncro token: Syncro is polled first (the timer's run, taken early under its
# lease), so the tech's appointments are in the mirror when this first sync runs, seconds after
# linking instead of at the next poll (docs/linking.md).
FIRST_SYNC_REASONS = frozenset({JobReason.LINKED, JobReason.SYNCRO_TOKEN})


def _series_check(job: SyncJob) -> bool:
    """Whether the job's sync expands series when delta is quiet (`sync.engine.sync_tech`). Of a
    recheck schedule only the last does: the expansion reads each series directly, one request a
    series, so repeating it every second or two buys nothing that the notification's own job and
    the last recheck do not."""
    if job.reason == JobReason.GRAPH_RECHECK and 0 < job.attempt < len(RECHECK_DELAYS):
        return False
    return job.reason in SERIES_CHECK_REASONS


def _sync(
    tech: int, deps: SyncDeps, *, reason: str = "", delivery: Delivery | None = None, series_check: bool = False
) -> SyncReport:
    from storage.errors import ConcurrencyConflict
    from sync.engine import SyncReport, sync_tech

    # The log lines of the sync carry the message id, and the attempt, to tell retries apart.
    job_id = delivery.message_id if delivery else None
    attempt = f"{delivery.message_id}/{delivery.dequeue_count}" if delivery else None
    if reason in FIRST_SYNC_REASONS:
        _poll_first(deps)
    try:
        return sync_tech(tech, deps=deps, series_check=series_check, job_id=job_id, correlation_id=attempt)
    except ConcurrencyConflict:
        # Another instance won a race on one of the tech's rows (first of all the lease: two
        # instances creating it at once lose as ConcurrencyConflict, not LeaseHeld): it is busy.
        return SyncReport(tech, status=SyncStatus.BUSY, detail="another instance took this technician's sync first")


FIRST_POLL_WAIT = 10.0  # seconds a first sync waits for the timer's running poll to end


def _poll_first(deps: SyncDeps) -> None:
    """One poll of our own before a first sync (`realtime.timers.poll_now`): a poll the timer is
    running may have begun before this tech's link or token existed; after ``FIRST_POLL_WAIT``
    the sync goes on and the next poll brings the rest."""
    from realtime.timers import poll_now

    poll_now(deps.storage, wait=FIRST_POLL_WAIT)


def _outcome(report: SyncReport) -> tuple[str, str]:
    if report.status == SyncStatus.SYNCED:
        counts = f"created {_sides(report.created)}, updated {_sides(report.updated)}, deleted {_sides(report.deleted)}"
        if report.errors:
            return JobOutcome.PARTIAL, f"{len(report.errors)} item(s) failed, first: {report.errors[0]}; {counts}"
        return JobOutcome.SYNCED, counts
    if report.status == SyncStatus.BUSY:
        return JobOutcome.BUSY, report.detail
    if report.status == SyncStatus.FAILED:
        return JobOutcome.FAILED, "; ".join(report.errors) or report.detail
    return _ENGINE_OUTCOMES.get(report.status, report.status), report.detail


def record_report(statuses: JobStatusStore, report: SyncReport, *, reason: str, at: datetime) -> str:
    """Record a sync run outside the queue (the settings page's "Sync now") as a job would, so the
    status pages show it; returns the outcome. A busy sync leaves the row to the sync that runs,
    an unlink that finished forgets it. Raises StorageError."""
    outcome, detail = _outcome(report)
    if outcome == JobOutcome.UNLINKED:
        statuses.delete_status(report.syncro_user_id)
    elif outcome != JobOutcome.BUSY:
        statuses.record_job(
            report.syncro_user_id,
            outcome=outcome,
            reason=reason,
            detail=detail,
            at=at,
            skipped=report.skipped,
            notices=report.notices,
        )
    return outcome


def _sides(counts: dict[str, int]) -> str:
    return f"{counts.get('outlook', 0)} in Outlook and {counts.get('syncro', 0)} in Syncro"


def _defer(deps: SyncDeps, tech: int, retry_after: float, now: datetime) -> str:
    """Queue the tech's sync again for when the shared Syncro budget has a request for it."""
    delay = max(2, min(120, int(retry_after) + 1))
    deps.storage.sync_queue.enqueue(SyncJob(tech, JobReason.BUDGET_FOLLOW_UP, now.isoformat()), delay_seconds=delay)
    return f"the app's Syncro request budget ran out; this sync runs again in {delay} s"


def _follow_up(deps: SyncDeps, statuses: JobStatusStore, tech: int, now: datetime) -> str:
    """Queue one delayed follow-up for a busy tech, unless a queued one will still run."""
    if not statuses.claim_follow_up(tech, stale_after=FOLLOW_UP_STALE):
        return "another sync was running; a follow-up job was already queued"
    try:
        deps.storage.sync_queue.enqueue(
            SyncJob(tech, JobReason.BUSY_FOLLOW_UP, now.isoformat()), delay_seconds=BUSY_RETRY_SECONDS
        )
    except Exception:
        statuses.clear_follow_up(tech)  # nothing was queued: the next busy job must queue one
        raise
    return f"another sync was running; a follow-up job runs in {BUSY_RETRY_SECONDS} s"


def _mark_poisoned(statuses: JobStatusStore | None, tech: int, reason: str, detail: str, now: datetime) -> None:
    """Best effort: storage itself may be what failed."""
    if statuses is None:
        try:
            import services

            statuses = JobStatusStore(services.storage_account())
        except Exception:
            log.warning("could not mark tech %s poisoned: no storage", tech)
            return
    try:
        statuses.record_job(tech, outcome=JobOutcome.POISONED, reason=reason, detail=detail, at=now)
    except Exception:
        log.warning("could not mark tech %s poisoned", tech, exc_info=True)


def _log(
    delivery: Delivery,
    job: SyncJob,
    outcome: str,
    started: datetime,
    finished: datetime,
    *,
    detail: str = "",
    report: SyncReport | None = None,
) -> None:
    """One line per job: ids, times and counts, never an event's content or a token."""
    fields: dict[str, Any] = {
        "syncro_user_id": str(job.syncro_user_id),
        "reason": job.reason,
        "outcome": outcome,
        "message_id": delivery.message_id,
        "dequeue_count": delivery.dequeue_count,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "pid": os.getpid(),
    }
    if job.attempt:
        fields["attempt"] = job.attempt  # which recheck of its schedule
    if report is not None:
        fields["writes"] = report.writes
    level = (
        logging.INFO
        if outcome in (JobOutcome.SYNCED, JobOutcome.BUSY, SUPERSEDED, *_ENGINE_OUTCOMES.values())
        else logging.WARNING
    )
    log.log(level, "sync job %s: %s", outcome, detail[:200], extra=fields)
