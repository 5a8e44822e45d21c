"""The one place that asks for a technician's sync: a message on the sync-job queue, coalesced.

Graph sends one change as several notifications (a create as one ``created`` and three
``updated``, reported), the Syncro webhook and the poller may see the same creation, and the
timers fan out to every tech. Each asks through `request_sync`; requests for one tech while the
job they queued has not started yet make one message:

- a per-tech row in the ``syncrequests`` table says "a job is queued since <time>". It is written
  insert-if-absent (or replaced with its ETag once stale), so of N concurrent requests exactly
  one writes it and sends the message; the others see the row and return False.
- the queue job calls `sync_started` before it reads anything: the row goes, so a change made
  while the job runs is asked for again and gets its own job (never coalesced into a job that
  already read past it).
- a row older than the coalescing window no longer covers anything (its message may have been
  lost or poisoned): the next request replaces it and sends a new message.

Within one process, concurrent requests for one tech also share storage round trips (a group
commit, `_Combiner`): a request arriving while another's check is under way waits, and is answered
by that check if it sent a message after the request arrived (the job cannot start before its
message exists), else by one more check shared by all who came meanwhile. A burst of a hundred
notifications for one tech costs one or two checks, not a hundred. Across techs, rows being
inserted at the same moment go out together as one entity-group transaction (`_Inserts`), and a
check for a tech whose row this instance wrote within the window reads it before trying to
insert; each tech's message is still sent on its own, after its row exists.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from storage.errors import ConcurrencyConflict, NotFound
from storage.sync_queue import SyncJob

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
) -> bool:
    """Ask for one sync job for the tech; True when a message was sent, False when a job queued
    within ``window`` (default: the SYNC_COALESCE_SECONDS setting) and not yet started covers it.

    ``reason`` says who asked ("graph-notification", "syncro-notification", "reconcile", ...).
    Raises StorageUnavailable (nothing was queued: the caller should answer so it is asked again).
    """
    now = account.clock() if now is None else now
    window = _window() if window is None else window
    return _combiner.run(
        (id(account), syncro_user_id), lambda seal: _request(account, syncro_user_id, reason, now, window, seal)
    )


def _request(
    account: StorageAccount,
    syncro_user_id: int,
    reason: str,
    now: datetime,
    window: timedelta,
    seal: Callable[[], None],
) -> bool:
    table = _table(account)
    entity = _row(syncro_user_id, reason, now)
    # When this process wrote the tech's row within the window, it most likely still stands: read
    # it first (one call) rather than try to create it and be refused (two, and an error to parse).
    row_likely = _written.get((id(account), syncro_user_id), now - window) > now - window
    for _ in range(_ATTEMPTS):
        if not row_likely and _inserts.create(table, entity):
            break
        row_likely = False
        try:
            current, etag = table.get(_PARTITION, str(syncro_user_id))
        except NotFound:
            continue  # the job just started and took the row: write ours
        if current["requested_at"] > now - window:
            return False  # a queued job that has not started yet will read this change too
        try:
            table.replace(entity, etag=etag)
            break
        except ConcurrencyConflict:
            return False  # another request replaced the stale row first and sends the message
        except NotFound:
            continue
    else:
        return False  # the row kept changing under us: others are asking right now
    seal()  # whoever asked before the message goes out is covered by it: the job starts after it
    try:
        account.sync_queue.enqueue(SyncJob(syncro_user_id, reason, now.isoformat()))
    except Exception:
        # No message went out: drop our row so the next request is not coalesced into nothing.
        _forget(account, syncro_user_id)
        raise
    _remember_written(account, syncro_user_id, now)
    return True


# (id(account), tech) -> requested_at of the row this process last wrote: only a hint of which
# call to try first (`_request`); storage decides.
_written: dict[tuple[int, int], datetime] = {}


def _remember_written(account: StorageAccount, syncro_user_id: int, requested_at: datetime) -> None:
    if len(_written) >= 10_000:
        _written.clear()
    _written[(id(account), syncro_user_id)] = requested_at


class _Slot:
    """One row waiting to be inserted by `_Inserts`."""

    def __init__(self, entity: Entity) -> None:
        self.entity = entity
        self.done = threading.Event()
        self.promoted = False  # set: this caller sends the next batch
        self.inserted = False
        self.error: BaseException | None = None

    def outcome(self) -> bool:
        if self.error is not None:
            raise self.error
        return self.inserted


class _Inserts:
    """Group commit of the coalescing rows across techs: a request whose insert would wait behind
    another's (a burst naming many techs) joins the next batch, which goes out as one
    entity-group transaction (`Table.create_each`): one storage call for up to 100 techs instead
    of one each. Each row is still inserted if absent, independently of the others; a caller learns
    whether its own row was inserted, exactly as from `Table.create`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[int, list[_Slot]] = {}
        self._leading: set[int] = set()

    def create(self, table: Table, entity: Entity) -> bool:
        """True when ``entity``'s row was inserted, False when it existed. Raises StorageError."""
        slot, key = _Slot(entity), id(table)
        with self._lock:
            self._waiting.setdefault(key, []).append(slot)
            lead = key not in self._leading
            self._leading.add(key)
        if not lead:
            slot.done.wait()
            if not slot.promoted:
                return slot.outcome()
        with self._lock:  # this caller's row and up to 99 that waited
            waiting = self._waiting[key]
            waiting.remove(slot)
            batch = [slot, *waiting[:99]]
            del waiting[:99]
        try:
            for each, inserted in zip(batch, table.create_each([s.entity for s in batch]), strict=True):
                each.inserted = inserted
        except BaseException as error:
            for each in batch:
                each.error = error
        finally:
            with self._lock:
                waiting = self._waiting.get(key) or []
                if waiting:  # the first who waited sends the next batch
                    waiting[0].promoted = True
                    waiting[0].done.set()
                else:
                    self._waiting.pop(key, None)
                    self._leading.discard(key)
            for each in batch:
                each.done.set()
        return slot.outcome()


_inserts = _Inserts()


@dataclass
class _Turns:
    """One key's group commit. Arrivals are numbered; a run covers every arrival before it began
    and, when it sent a message, every arrival before the message went out (``sealed``): the job
    cannot start before its message exists."""

    arrived: int = 0
    covered: int = 0  # arrivals up to this number were answered by a finished run
    sealed: int = 0  # arrivals up to this number came before the running run's message was sent
    running: bool = False
    failure: BaseException | None = None  # of the last run, re-raised to the arrivals it covered


class _Combiner:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._turns: dict[tuple[int, int], _Turns] = {}

    def run(self, key: tuple[int, int], work: Callable[[Callable[[], None]], bool]) -> bool:
        """``work(seal)`` for the first caller; ``work`` calls ``seal`` just before it sends a
        message. Callers arriving while it runs are answered by it when it sent a message and they
        came before ``seal``; the others share one later run. Returns the run's result for the
        caller that ran it, False for the callers it covered."""
        with self._lock:
            turns = self._turns.setdefault(key, _Turns())
            turns.arrived += 1
            ticket = turns.arrived
            while turns.running and turns.covered < ticket:
                self._lock.wait()
            if turns.covered >= ticket:  # answered by a run that began, or sent its message, after we came
                if turns.failure is not None:
                    raise turns.failure
                return False
            turns.running, mark = True, turns.arrived
            turns.sealed = mark

        def seal() -> None:
            with self._lock:
                turns.sealed = turns.arrived

        failure: BaseException | None = None
        sent = False
        try:
            sent = work(seal)
            return sent
        except BaseException as error:
            failure = error
            raise
        finally:
            with self._lock:
                turns.running, turns.failure = False, failure
                turns.covered = turns.sealed if sent else mark
                if turns.arrived == turns.covered:
                    del self._turns[key]  # nobody waits: forget the key
                self._lock.notify_all()


_combiner = _Combiner()


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


_tables: dict[int, tuple[StorageAccount, Table]] = {}


def _table(account: StorageAccount) -> Table:
    """The table client, built once per account (building one costs a millisecond per request)."""
    known = _tables.get(id(account))
    if known is None or known[0] is not account:
        known = _tables[id(account)] = (account, account.table(TABLE))
    return known[1]


def _forget(account: StorageAccount, syncro_user_id: int) -> None:
    _written.pop((id(account), syncro_user_id), None)
    try:
        _table(account).delete(_PARTITION, str(syncro_user_id))
    except Exception:  # best effort: the row goes stale after the window anyway
        log.warning("could not clear the pending sync request of tech %s", syncro_user_id, exc_info=True)


def _window() -> timedelta:
    from settings import get_realtime_settings

    return timedelta(seconds=get_realtime_settings().sync_coalesce_seconds)
