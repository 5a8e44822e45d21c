"""What the background work last did, per technician and for the Syncro poll: read by the settings
page and the admin overview, written by the queue job, the poll timer and the Graph webhook.

One row per tech (partition ``tech``): the last job's time, outcome, reason and detail, whether
its last job was poisoned (failed ``maxDequeueCount`` times and moved to the poison queue), the
time of the last Graph notification, the busy follow-up marker (see `claim_follow_up`) and the
Graph recheck expected next (`advance_recheck`). One row for the account's Syncro poll (partition
``poll``). Several instances write these rows (a job, a webhook, a busy job's follow-up), so
every write is a read-merge-replace with the row's ETag, retried on a lost race: a writer never
drops fields another one set.

A job that synced also keeps the time of the last successful sync (``last_success_at``, which a
later failed job leaves alone) and the items it had to skip (at most `SKIPPED_KEPT`, each its side,
id and reason in words), so the settings page can say which appointment could not be synced and why.
It also keeps the last `NOTICES_KEPT` notices syncs left for the tech (`sync.engine.SyncReport.notices`,
e.g. "you were taken off this job"), newest first, each with its time: a notice is said once, by the
sync that did it, so it must outlive the quiet syncs after it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from storage.errors import NotFound

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from storage.table import Entity, Tables

_TECH = "tech"
_POLL = "poll"
_POLL_ROW = "syncro"
_ATTEMPTS = 8
DETAIL_CHARS = 500  # a detail is a sentence or an error message, never a body: kept short
SKIPPED_KEPT = 10  # skipped items kept per tech (the count says how many there were)
_SKIPPED_SUMMARY_CHARS = 60
_SKIPPED_ID_CHARS = 200  # a Graph event id is about 150 characters
_SKIPPED_REASON_CHARS = 200
NOTICES_KEPT = 10  # notices kept per tech, newest first
_NOTICE_CHARS = 300


class JobOutcome:
    """The words `record_job` stores as ``outcome`` (the engine's statuses, plus the job's own)."""

    SYNCED = "synced"
    PARTIAL = "partial"  # synced, but some items failed: the next sync tries them again
    FAILED = "failed"  # the sync could not run: the queue retries the message
    POISONED = "poisoned"  # the last attempt failed too: the message is in the poison queue
    BUSY = "busy"  # another sync of the tech was running: a follow-up job is queued
    NOT_LINKED = "not_linked"
    INACTIVE = "inactive"
    UNLINKED = "unlinked"


@dataclass(frozen=True)
class SkippedItem:
    """An item a sync could not map and left alone (`sync.engine.SyncReport.skipped`)."""

    side: str  # "syncro" or "outlook"
    id: str
    reason: str  # in words, from `sync.mapping.UnmappableItem`
    summary: str = ""  # its title as it reads there, cut short, so the tech can find it


@dataclass(frozen=True)
class SyncNotice:
    """Something a sync did that the tech should know (a shared job kept, taken off a job)."""

    at: datetime
    text: str  # one sentence in plain words, naming the appointment


@dataclass(frozen=True)
class TechJobStatus:
    syncro_user_id: int
    last_job_at: datetime | None = None
    last_job_outcome: str = ""
    last_job_reason: str = ""
    last_job_detail: str = ""
    poisoned: bool = False
    poisoned_at: datetime | None = None
    last_notification_at: datetime | None = None
    follow_up_at: datetime | None = None  # a busy job queued a delayed follow-up then
    last_success_at: datetime | None = None  # the last job that synced (``synced`` or ``partial``)
    last_job_skipped: tuple[SkippedItem, ...] = ()  # from the last job that synced, at most SKIPPED_KEPT
    last_job_skipped_count: int = 0  # how many it skipped in all
    recheck_due: str = ""  # the Graph recheck expected next (see `advance_recheck`), "" when none
    notices: tuple[SyncNotice, ...] = ()  # what syncs told the tech, newest first, at most NOTICES_KEPT


@dataclass(frozen=True)
class PollStatus:
    last_poll_at: datetime | None = None
    outcome: str = ""  # "ok", "partial" (budget or throttling stopped it), "failed"
    detail: str = ""
    requests: int = 0
    changed_techs: int = 0


def _tech_status(syncro_user_id: int, entity: Entity) -> TechJobStatus:
    return TechJobStatus(
        syncro_user_id=syncro_user_id,
        last_job_at=entity.get("last_job_at"),
        last_job_outcome=entity.get("last_job_outcome", ""),
        last_job_reason=entity.get("last_job_reason", ""),
        last_job_detail=entity.get("last_job_detail", ""),
        poisoned=bool(entity.get("poisoned", False)),
        poisoned_at=entity.get("poisoned_at"),
        last_notification_at=entity.get("last_notification_at"),
        follow_up_at=entity.get("follow_up_at"),
        last_success_at=entity.get("last_success_at"),
        last_job_skipped=_skipped_from(entity.get("last_job_skipped")),
        last_job_skipped_count=int(entity.get("last_job_skipped_count", 0)),
        recheck_due=str(entity.get("recheck_due", "")),
        notices=_notices_from(entity.get("notices")),
    )


def _skipped_to(items: Sequence[Mapping[str, str]]) -> str:
    kept = [
        {
            "side": str(item.get("side", ""))[:10],
            "id": str(item.get("id", ""))[:_SKIPPED_ID_CHARS],
            "reason": str(item.get("reason", ""))[:_SKIPPED_REASON_CHARS],
            "summary": str(item.get("summary", ""))[:_SKIPPED_SUMMARY_CHARS],
        }
        for item in items[:SKIPPED_KEPT]
    ]
    return json.dumps(kept, separators=(",", ":"))


def _skipped_from(raw: object) -> tuple[SkippedItem, ...]:
    """Tolerant: a row written by another version reads as nothing skipped rather than failing a page."""
    try:
        items = json.loads(raw) if isinstance(raw, str) else []
        return tuple(
            SkippedItem(str(i["side"]), str(i["id"]), str(i["reason"]), str(i.get("summary", "")))
            for i in items[:SKIPPED_KEPT]
        )
    except (ValueError, TypeError, KeyError):
        return ()


def _notices_to(notices: Sequence[SyncNotice]) -> str:
    kept = [{"at": n.at.isoformat(), "text": n.text[:_NOTICE_CHARS]} for n in notices[:NOTICES_KEPT]]
    return json.dumps(kept, separators=(",", ":"))


def _notices_from(raw: object) -> tuple[SyncNotice, ...]:
    """Tolerant, as `_skipped_from`: a row it cannot read shows no notices rather than failing a page."""
    try:
        items = json.loads(raw) if isinstance(raw, str) else []
        return tuple(SyncNotice(datetime.fromisoformat(i["at"]), str(i["text"])) for i in items[:NOTICES_KEPT])
    except (ValueError, TypeError, KeyError):
        return ()


class JobStatusStore:
    def __init__(self, account: Tables) -> None:
        self._table = account.table("jobstatus")
        self._clock = account.clock

    # -- reading --------------------------------------------------------------------------------

    def get_status(self, syncro_user_id: int) -> TechJobStatus:
        """The tech's status; a tech no job has touched yet gets an empty one (never raises NotFound)."""
        try:
            entity, _ = self._table.get(_TECH, str(syncro_user_id))
        except NotFound:
            return TechJobStatus(syncro_user_id)
        return _tech_status(syncro_user_id, entity)

    def list_statuses(self) -> Iterator[TechJobStatus]:
        """Every tech's status (for the admin overview)."""
        for entity, _ in self._table.partition(_TECH):
            yield _tech_status(int(entity["RowKey"]), entity)

    def get_poll_status(self) -> PollStatus:
        try:
            entity, _ = self._table.get(_POLL, _POLL_ROW)
        except NotFound:
            return PollStatus()
        return PollStatus(
            last_poll_at=entity.get("last_poll_at"),
            outcome=entity.get("outcome", ""),
            detail=entity.get("detail", ""),
            requests=int(entity.get("requests", 0)),
            changed_techs=int(entity.get("changed_techs", 0)),
        )

    # -- writing --------------------------------------------------------------------------------

    def record_job(
        self,
        syncro_user_id: int,
        *,
        outcome: str,
        reason: str,
        detail: str = "",
        at: datetime,
        skipped: Sequence[Mapping[str, str]] = (),
        notices: Sequence[str] = (),
    ) -> None:
        """What a job for the tech just did. A success (``synced``/``partial``) clears ``poisoned``,
        sets ``last_success_at`` and replaces the skipped items with ``skipped`` (each ``side``,
        ``id``, ``reason``; the first `SKIPPED_KEPT` are kept); a poisoned job sets ``poisoned``.
        ``notices`` (the sync's, any outcome) go before the ones kept, at ``at``. Raises StorageError."""
        changes: dict[str, Any] = {
            "last_job_at": at,
            "last_job_outcome": outcome,
            "last_job_reason": reason[:100],
            "last_job_detail": detail[:DETAIL_CHARS],
        }
        if outcome in (JobOutcome.SYNCED, JobOutcome.PARTIAL):
            changes["poisoned"], changes["last_success_at"] = False, at
            changes["last_job_skipped"] = _skipped_to(skipped)
            changes["last_job_skipped_count"] = len(skipped)
        elif outcome == JobOutcome.POISONED:
            changes["poisoned"], changes["poisoned_at"] = True, at

        def change(current: Entity) -> dict[str, Any]:
            if not notices:
                return changes
            new = [SyncNotice(at, text) for text in notices]
            return {**changes, "notices": _notices_to(new + list(_notices_from(current.get("notices"))))}

        self._merge(_TECH, str(syncro_user_id), change)

    def record_notification(self, syncro_user_id: int, *, at: datetime) -> None:
        """A Graph notification for the tech arrived (the webhook calls this). Raises StorageError."""
        self._merge(_TECH, str(syncro_user_id), lambda current: {"last_notification_at": at})

    def record_poll(self, status: PollStatus) -> None:
        """The Syncro poll just ran (the poll timer calls this). Raises StorageError."""
        changes = {
            "last_poll_at": status.last_poll_at,
            "outcome": status.outcome,
            "detail": status.detail[:DETAIL_CHARS],
            "requests": status.requests,
            "changed_techs": status.changed_techs,
        }
        self._merge(_POLL, _POLL_ROW, lambda current: changes)

    def claim_follow_up(self, syncro_user_id: int, *, stale_after: timedelta) -> bool:
        """Mark that a busy job queues a delayed follow-up for the tech; False when a follow-up
        queued less than ``stale_after`` ago has not started yet (it will cover this change too).
        Exactly one of several concurrent callers gets True. Raises StorageError."""
        now = self._clock()
        claimed = False

        def change(current: Entity) -> dict[str, Any] | None:
            nonlocal claimed
            queued = current.get("follow_up_at")
            if queued is not None and queued > now - stale_after:
                claimed = False
                return None
            claimed = True
            return {"follow_up_at": now}

        self._merge(_TECH, str(syncro_user_id), change)
        return claimed

    def clear_follow_up(self, syncro_user_id: int) -> None:
        """The tech's follow-up is starting: a busy job from now on queues the next one."""

        def change(current: Entity) -> dict[str, Any] | None:
            return {"follow_up_at": None} if current.get("follow_up_at") is not None else None

        self._merge(_TECH, str(syncro_user_id), change)

    def advance_recheck(self, syncro_user_id: int, due: str, *, after: str | None = None) -> bool:
        """Name ``due`` as the tech's Graph recheck expected next (`realtime.jobs`): always when
        ``after`` is None (a new schedule replaces the running one), else only while ``after`` is
        the one expected, so of two runs of one recheck only one queues the next. True when
        written. Raises StorageError."""
        written = False

        def change(current: Entity) -> dict[str, Any] | None:
            nonlocal written
            written = after is None or current.get("recheck_due") == after
            return {"recheck_due": due} if written else None

        self._merge(_TECH, str(syncro_user_id), change)
        return written

    def delete_status(self, syncro_user_id: int) -> None:
        """Forget the tech's row (after an unlink); succeeds when there is none."""
        self._table.delete(_TECH, str(syncro_user_id))

    def _merge(self, partition: str, row: str, change: Callable[[Entity], dict[str, Any] | None]) -> None:
        """Read the row, apply ``change`` (None: nothing to write; a None value removes a field),
        write it back with its ETag; retried when another writer got there first."""

        def merged(current: Entity | None) -> tuple[Entity | None, None]:
            current = current or {"PartitionKey": partition, "RowKey": row}
            changes = change(dict(current))
            if changes is None:
                return None, None
            return {key: value for key, value in {**current, **changes}.items() if value is not None}, None

        self._table.update(partition, row, merged, attempts=_ATTEMPTS)
