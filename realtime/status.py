"""What the settings page and the admin overview show about a tech's background work, in one read:
the Graph subscription's state and expiry, the last notification, the last Syncro poll, the last
job and whether it was poisoned, and whether a job is waiting. `describe` puts it in words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from storage.job_status import JobOutcome, JobStatusStore, PollStatus, TechJobStatus

if TYPE_CHECKING:
    from storage.account import StorageAccount
    from storage.subscriptions import SubscriptionStatus


@dataclass(frozen=True)
class BackgroundStatus:
    syncro_user_id: int
    job: TechJobStatus
    poll: PollStatus
    subscription: SubscriptionStatus | None
    job_waiting_since: datetime | None  # a job is queued for the tech and has not started


@dataclass(frozen=True)
class QueueStatus:
    waiting: int  # Azure's approximate count, delayed follow-ups included
    poisoned: int
    poisoned_techs: tuple[int, ...]  # from a peek at the poison queue (at most 32 messages)


def background_status(account: StorageAccount, syncro_user_id: int) -> BackgroundStatus:
    """Raises StorageError."""
    from realtime.enqueue import pending_since

    statuses = JobStatusStore(account)
    return BackgroundStatus(
        syncro_user_id=syncro_user_id,
        job=statuses.get_status(syncro_user_id),
        poll=statuses.get_poll_status(),
        subscription=account.subscriptions.get_status(syncro_user_id),
        job_waiting_since=pending_since(account, syncro_user_id),
    )


def queue_status(account: StorageAccount) -> QueueStatus:
    """For the admin overview. Raises StorageError."""
    queue = account.sync_queue
    poisoned = queue.peek_jobs(poison=True)
    return QueueStatus(
        waiting=queue.depth(),
        poisoned=queue.poison_depth(),
        poisoned_techs=tuple(sorted({job.syncro_user_id for job in poisoned})),
    )


def describe(status: BackgroundStatus) -> list[str]:
    """Sentences for the page, most important first; times are left to the page to format."""
    lines: list[str] = []
    job = status.job
    if job.poisoned:
        from realtime.jobs import max_dequeue_count

        lines.append(
            f"The last sync job failed {_times(max_dequeue_count())} in a row and was set aside; the next sync "
            f"(at the latest the 15-minute reconciliation) tries again. Its last error: {job.last_job_detail or 'unknown'}"
        )
    elif job.last_job_outcome in (JobOutcome.FAILED, JobOutcome.PARTIAL):
        lines.append(f"The last sync had a problem and will be retried: {job.last_job_detail}")
    if status.job_waiting_since is not None:
        lines.append("A sync is waiting to run.")
    subscription = status.subscription
    if subscription is not None and subscription.state.value != "active":
        reason = subscription.detail or "the subscription is not active; it is renewed within the hour"
        lines.append(f"Outlook changes are not announced right now: {reason}")
    if status.poll.outcome == "failed":
        lines.append(f"The last Syncro poll failed: {status.poll.detail}")
    return lines


def _times(count: int) -> str:
    words = {1: "once", 2: "twice", 3: "three times", 4: "four times", 5: "five times"}
    return words.get(count, f"{count} times")
