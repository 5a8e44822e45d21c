"""Asking for a technician's sync, coalesced: a message on the sync-job queue.

Graph sends one change as several notifications (a create as one ``created`` and three
``updated``, reported), the Syncro webhook may see a creation the poller sees too, and the
reconcile timer fans out to every tech. These, linking, the settings page and "Sync now" ask
through `request_sync`; requests for one tech while the job they queued has not started yet make
one message. Two writers put jobs on the queue directly, uncoalesced: the poller
(`sync.poller.poll_once`, one job per tech whose appointments changed in that poll) and the
queue job's own delayed follow-ups (`realtime.jobs`: the recheck after a notification, the budget
deferral, the busy tech's follow-up), whose delay a coalescing row cannot stand for.

- a per-tech row in the ``syncrequests`` table says "a job is queued since <time>". It is written
  insert-if-absent (or replaced with its ETag once stale), so of N concurrent requests, in this
  process or any other, exactly one writes it and sends the message; the others see the row and
  return False.
- the queue job calls `sync_started` before it reads anything: the row goes, so a change made
  while the job runs is asked for again and gets its own job (never coalesced into a job that
  already read past it).
- a row older than the coalescing window no longer covers anything (its message may have been
  lost or poisoned): the next request replaces it and sends a new message.

Several techs at once (`request_syncs`, what the notification webhook's group commit calls):
one tech is asked for as above; several are named in one `FanOut` message, a single storage call
whatever their number, and the queue job asks for each of them through `fan_out`. Their rows then
go out together as entity-group transactions (`Table.create_each`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from storage.errors import ConcurrencyConflict, NotFound
from storage.sync_queue import FAN_OUT_LIMIT, FanOut, SyncJob

if TYPE_CHECKING:
    from storage.account import StorageAccount
    from storage.table import Entity, Table

log = logging.getLogger(__name__)

TABLE = "syncrequests"
_PARTITION = "pending"
_ATTEMPTS = 3  # a row can be taken by a job or a stale-row replacement between our read and write


def _row(syncro_user_id: int, reason: str, now: datetime) -> Entity:
    return {"PartitionKey": _PARTITION, "RowKey": str(syncro_user_id), "requested_at": now, "reason": reason}


def request_sync(
    account: StorageAccount,
    syncro_user_id: int,
    reason: str,
    *,
    now: datetime | None = None,
    window: timedelta | None = None,
    seal: Callable[[], None] | None = None,
) -> bool:
    """Ask for one sync job for the tech; True when a message was sent, False when a job queued
    within ``window`` (default: the SYNC_COALESCE_SECONDS setting) and not yet started covers it.

    ``reason`` says who asked ("graph-notification", "syncro-notification", "reconcile", ...).
    ``seal`` is called just before the message is sent (see `realtime.group_commit`).
    Raises StorageUnavailable (nothing was queued: the caller should answer so it is asked again).
    """
    now = account.clock() if now is None else now
    window = _window() if window is None else window
    # When this process wrote the tech's row within the window it most likely still stands: read
    # it first (one call) rather than be refused an insert (two, and an error to parse).
    row_likely = _written.get((id(account), syncro_user_id), now - window) > now - window
    if not _claim(account, syncro_user_id, reason, now, window, row_seen=row_likely):
        return False
    if seal is not None:
        seal()
    _send(account, SyncJob(syncro_user_id, reason, now.isoformat()))
    if len(_written) >= 10_000:
        _written.clear()
    _written[(id(account), syncro_user_id)] = now
    return True


# (id(account), tech) -> requested_at of the row this process last wrote: only a hint of which
# call to try first (`request_sync`); storage decides.
_written: dict[tuple[int, int], datetime] = {}


def request_syncs(
    account: StorageAccount,
    techs: Mapping[int, str],
    *,
    now: datetime | None = None,
    seal: Callable[[], None] | None = None,
) -> frozenset[int]:
    """Ask for a sync of each tech (tech -> reason) with as few storage calls as possible: one
    tech through `request_sync`, several in `FanOut` messages (one per reason, and per
    `FAN_OUT_LIMIT` techs). Returns the techs for which this call sent a message (calling ``seal``
    just before the first one); the others were covered by a job already queued. Raises
    StorageUnavailable: some messages may not have been sent, and the caller should answer so it
    is asked again."""
    now = account.clock() if now is None else now
    if len(techs) == 1:
        ((tech, reason),) = techs.items()
        return frozenset([tech]) if request_sync(account, tech, reason, now=now, seal=seal) else frozenset()
    by_reason: dict[str, list[int]] = {}
    for tech, reason in techs.items():
        by_reason.setdefault(reason, []).append(tech)
    if seal is not None:
        seal()
    for reason, ids in sorted(by_reason.items()):
        for at in range(0, len(ids), FAN_OUT_LIMIT):
            account.sync_queue.enqueue(FanOut(tuple(sorted(ids[at : at + FAN_OUT_LIMIT])), reason, now.isoformat()))
    return frozenset(techs)


def fan_out(account: StorageAccount, message: FanOut, *, now: datetime | None = None) -> int:
    """Ask for each tech ``message`` names, as `request_sync` would; returns the jobs queued. The
    rows are inserted together (one call per 100 techs); a tech whose row was already there is
    checked on its own (stale or not). Raises StorageUnavailable, having removed the rows it wrote
    without sending their messages: the host delivers the fan-out again, techs already queued
    coalesce, and the others are asked for afresh rather than left behind a row with no job."""
    now = account.clock() if now is None else now
    window = _window()
    techs = sorted(set(message.syncro_user_ids))
    unsent = set(techs)  # rows this call may hold without a message behind them
    try:
        inserted = _table(account).create_each([_row(tech, message.reason, now) for tech in techs])
        claimed = [
            tech
            for tech, was_inserted in zip(techs, inserted, strict=True)
            if was_inserted or _claim(account, tech, message.reason, now, window, row_seen=True)
        ]
        unsent = set(claimed)
        for tech in claimed:
            account.sync_queue.enqueue(SyncJob(tech, message.reason, now.isoformat()))
            unsent.discard(tech)
    except Exception:
        for tech in sorted(unsent):
            _forget(account, tech)
        raise
    return len(claimed)


def _claim(
    account: StorageAccount, syncro_user_id: int, reason: str, now: datetime, window: timedelta, *, row_seen: bool
) -> bool:
    """Make the tech's row ours, so that we send its message: True when we inserted it or replaced
    a stale one, False when a queued job that has not started yet covers the request.
    ``row_seen``: the row is most likely there (an insert just found it), so read it first."""
    table = _table(account)
    entity = _row(syncro_user_id, reason, now)
    for _ in range(_ATTEMPTS):
        if not row_seen:
            try:
                table.create(entity)
                return True
            except ConcurrencyConflict:
                pass
        row_seen = False
        try:
            current, etag = table.get(_PARTITION, str(syncro_user_id))
        except NotFound:
            continue  # the job just started and took the row: write ours
        if current["requested_at"] > now - window:
            return False  # a queued job that has not started yet will read this change too
        try:
            table.replace(entity, etag=etag)
            return True
        except ConcurrencyConflict:
            return False  # another request replaced the stale row first and sends the message
        except NotFound:
            continue
    return False  # the row kept changing under us: others are asking right now


def _send(account: StorageAccount, job: SyncJob) -> None:
    try:
        account.sync_queue.enqueue(job)
    except Exception:
        # No message went out: drop our row so the next request is not coalesced into nothing.
        _forget(account, job.syncro_user_id)
        raise


def sync_started(account: StorageAccount, syncro_user_id: int) -> None:
    """The queue job calls this before it reads either side: requests from now on queue a new job."""
    _forget(account, syncro_user_id)


def pending_since(account: StorageAccount, syncro_user_id: int) -> datetime | None:
    """When the tech's queued, not yet started job was asked for, or None when none is. A row
    older than the coalescing window no longer counts (its message may be lost; the next request
    queues afresh), so a page never says "waiting" for ever."""
    try:
        entity, _ = _table(account).get(_PARTITION, str(syncro_user_id))
    except NotFound:
        return None
    requested = entity["requested_at"]
    if account.clock() - requested > _window():
        return None
    return requested


def _table(account: StorageAccount) -> Table:
    return account.table(TABLE)


def _forget(account: StorageAccount, syncro_user_id: int) -> None:
    _written.pop((id(account), syncro_user_id), None)
    try:
        _table(account).delete(_PARTITION, str(syncro_user_id))
    except Exception:  # best effort: the row goes stale after the window anyway
        log.warning("could not clear the pending sync request of tech %s", syncro_user_id, exc_info=True)


def _window() -> timedelta:
    from settings import get_realtime_settings

    return timedelta(seconds=get_realtime_settings().sync_coalesce_seconds)
