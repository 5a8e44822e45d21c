"""Looking again when Graph's delta lags its notification: the notification job's own looks
(`look_again`) and the delayed ``graph-recheck`` jobs after them (`next_recheck`, one schedule
per tech: `recheck_later`, `superseded`). `realtime.jobs` runs them (docs/realtime-jobs.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from storage.job_status import JobStatusStore
from storage.sync_queue import SyncJob
from sync.job_reasons import JobReason
from sync.report import SyncStatus

if TYPE_CHECKING:
    from sync.deps import SyncDeps
    from sync.report import SyncReport

RECHECK_DELAYS = (1, 1, 2, 4)
SUPERSEDED = "superseded"  # a recheck a newer schedule (or another run of itself) made redundant


def next_recheck(job: SyncJob, report: SyncReport, now: datetime) -> tuple[SyncJob, int] | None:
    """The Graph recheck to queue after ``job`` ran, and its delay in seconds; None when none is due.

    Graph announced a change that its delta did not show yet (delta can lag a notification by
    seconds): a notification's job that synced and wrote nothing starts a schedule of rechecks
    (`RECHECK_DELAYS`), so the change still crosses in seconds rather than at the next
    reconciliation. Each recheck that still writes nothing asks for the next; the last asks for
    none. A schedule is named by its start (the rechecks' ``requested_at``), a recheck by that and
    its ``attempt``."""
    if report.status != SyncStatus.SYNCED or report.writes:
        return None
    if job.reason == JobReason.GRAPH_NOTIFICATION:
        done, schedule = 0, now.isoformat()
    elif job.reason == JobReason.GRAPH_RECHECK and 0 < job.attempt < len(RECHECK_DELAYS):
        done, schedule = job.attempt, job.requested_at
    else:
        return None
    return SyncJob(job.syncro_user_id, JobReason.GRAPH_RECHECK, schedule, done + 1), RECHECK_DELAYS[done]


# Within a notification's own job, before any queued recheck: delta lags a notification by seconds
# (2 s reported for live Graph), and a queued recheck cannot come sooner than about 1.5 s after the
# look before it (a queue delay is whole seconds, in Azure too, and the trigger polls at most every
# maxPollingInterval). So a notification's job whose sync wrote nothing looks again itself, a look
# starting every LOOK_AGAIN_EVERY seconds, until LOOK_AGAIN_FOR seconds after the webhook asked for
# it: a change delta shows within that window crosses within about LOOK_AGAIN_EVERY + one sync of
# showing. A job that starts later (a backlog) does not wait at all. The cost, per quiet
# notification (the echo of each of our own Outlook writes included): a worker held up to
# LOOK_AGAIN_FOR seconds and at most LOOK_AGAIN_MAX more delta rounds.
LOOK_AGAIN_EVERY = 0.5
LOOK_AGAIN_FOR = 3.0
LOOK_AGAIN_MAX = 6


def seconds_left(job: SyncJob, now: datetime, window: float) -> float:
    """Seconds left of ``window`` counted from when the job was asked for (0 when unreadable)."""
    try:
        asked = datetime.fromisoformat(job.requested_at)
    except ValueError:
        return 0.0
    if asked.tzinfo is None:
        asked = asked.replace(tzinfo=UTC)
    return max(0.0, min(window, window - (now - asked).total_seconds()))


def look_again(
    sync: Callable[[], SyncReport],
    report: SyncReport,
    seconds: float,
    *,
    every: float = LOOK_AGAIN_EVERY,
    most: int = LOOK_AGAIN_MAX,
    sleep: Callable[[float], None] | None = None,
    monotonic: Callable[[], float] | None = None,
) -> SyncReport:
    """Run ``sync`` again, a run starting every ``every`` seconds, while ``report`` (the job's own
    sync) and each run after it synced and wrote nothing, for at most ``seconds`` and ``most``
    runs. Returns the first run that wrote, else ``report``: the quiet job's report, so the queued
    rechecks (`next_recheck`) follow as before; a run that did not sync (busy, failed) ends the
    looks the same way, for the queued rechecks to try."""
    import time

    sleep = sleep or time.sleep
    monotonic = monotonic or time.monotonic
    began = monotonic()
    last_start = began
    for _ in range(most):
        if report.status != "synced" or report.writes:
            return report
        start = max(monotonic(), last_start + every)
        if start > began + seconds:
            break
        sleep(max(0.0, start - monotonic()))
        last_start = monotonic()
        again = sync()
        if again.status != "synced":
            break
        if again.writes:
            return again
    return report


def due(recheck: SyncJob) -> str:
    return f"{recheck.requested_at}#{recheck.attempt}"


def superseded(statuses: JobStatusStore, job: SyncJob) -> bool:
    """A recheck that is no longer the one its tech expects: a notification's job started a new
    schedule since (its rechecks look later than this one would), or another run of this message
    already ran and queued the next. It does nothing; the expected one looks instead."""
    if job.reason != JobReason.GRAPH_RECHECK or job.attempt <= 0:
        return False  # a job, or a recheck queued by an earlier version (one, unscheduled)
    return statuses.get_status(job.syncro_user_id).recheck_due != due(job)


def recheck_later(deps: SyncDeps, statuses: JobStatusStore, job: SyncJob, recheck: SyncJob, delay: int) -> None:
    """Queue ``recheck`` ``delay`` seconds from now, as the tech's one expected recheck: a new
    schedule replaces the running one (one schedule per tech); a recheck queues the next only
    while it is itself the one expected (so two runs of one message queue it once)."""
    after = None if recheck.attempt == 1 else due(job)
    if not statuses.advance_recheck(recheck.syncro_user_id, due(recheck), after=after):
        return
    try:
        deps.storage.sync_queue.enqueue(recheck, delay_seconds=delay)
    except Exception:
        if after is not None:  # nothing was queued: this recheck's retry must be able to queue it
            statuses.advance_recheck(recheck.syncro_user_id, after, after=due(recheck))
        raise
