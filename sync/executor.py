"""Runs the planner's actions: each runs itself (`sync.actions`) against the two sides and the
pair rows (`sync.sides`); this module is the loop around them and the one bulk path.

The loop gives every action its own outcome: a failed precondition is counted as stale, a
service error or an unmappable item is recorded in the tally, and the run carries on with the
next action (the next plan, from fresh snapshots, decides again). Many new Outlook events at once
go through Graph ``$batch`` (`create_batch`) instead of one request each.

`Executor` builds the product's sides over the real clients and tables for one tech's run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ops.logs import log_event
from settings import SyncOptions
from storage.mappings import MappingState
from sync.actions import Action, CreateOn, Pair
from sync.errors import PreconditionFailed, ServiceError
from sync.graph import BATCH_LIMIT, MAILBOX_CONCURRENCY
from sync.mapping import UnmappableItem
from sync.model import Side
from sync.outlook_side import OutlookCalendar
from sync.pair_store import MappingPairStore
from sync.sides import NewEvent, PairStore, Sides, Tally, Written
from sync.syncro_side import SyncroAppointments

if TYPE_CHECKING:
    from storage.account import StorageAccount
    from sync.graph import GraphClient
    from sync.syncro import SyncroClient


# Table writes in flight at once when many rows change together (the intents and results of a
# batch of creates): one at a time, 500 creates cost 1,500 sequential round trips to storage.
STORAGE_WRITERS = 8

log = logging.getLogger(__name__)
Report = Callable[[Action, str, dict[str, Any]], None]


def _quiet(action: Action, outcome: str, fields: dict[str, Any]) -> None:
    return None


def run_actions(
    actions: list[Action], sides: Sides, store: PairStore, *, report: Report = _quiet, writers: int = 1
) -> int:
    """Perform ``actions`` in order; returns how many service writes were made. Consecutive new
    Outlook events (more than one) go out as one `create_batch`."""
    writes = 0
    batch: list[CreateOn] = []
    for action in [*actions, None]:
        if isinstance(action, CreateOn) and _batchable(action, store):
            batch.append(action)
            continue
        if len(batch) > 1:
            writes += create_batch(batch, sides, store, report=report, writers=writers)
        elif batch:
            writes += run_one(batch[0], sides, store, report=report)
        batch = []
        if action is not None:
            writes += run_one(action, sides, store, report=report)
    return writes


def run_one(action: Action, sides: Sides, store: PairStore, *, report: Report = _quiet) -> int:
    try:
        writes = action.run(sides, store)
    except PreconditionFailed:
        store.tally.stale += 1
        report(action, "stale", {})
    except (ServiceError, UnmappableItem) as error:
        store.tally.errors.append(f"{type(action).__name__} {getattr(action, 'pair_key', '')}: {error}")
        report(action, "failed", {"error": type(error).__name__, "status_code": getattr(error, "status", None)})
    else:
        report(action, "done", {"writes": writes})
        return writes
    return 0


def _batchable(action: CreateOn, store: PairStore) -> bool:
    return action.side is Side.OUTLOOK and action.replaces is None and store.pair(action.pair_key) is None


def create_batch(
    actions: list[CreateOn], sides: Sides, store: PairStore, *, report: Report = _quiet, writers: int = 1
) -> int:
    """New events in Outlook, a wave of `BATCH_LIMIT` x `MAILBOX_CONCURRENCY` at a time. Each
    wave's intent rows are written before it is sent (while the wave before is in flight), and
    its answers' rows while the next one is. A step that failed, or was left unrun (424) or
    throttled when the client's retries ran out, leaves its intent: the next round adopts what it
    finds (`find_by_syncro_id`) or creates it."""
    size = BATCH_LIMIT * MAILBOX_CONCURRENCY
    waves = [actions[start : start + size] for start in range(0, len(actions), size)]
    created = 0
    with _writers(writers) as submit:
        pending: list[Future[None]] = []

        def intents(wave: list[CreateOn]) -> list[tuple[CreateOn, Pair, Future[None]]]:
            made = [(action, action.intent(store.now())) for action in wave]
            return [(a, i, submit(store.save, i, state=MappingState.INTENT)) for a, i in made]

        ahead = intents(waves[0]) if waves else []
        for number, _wave in enumerate(waves):
            current = ahead
            for _, _, future in current:
                future.result()  # every intent of the wave is stored before it is sent
            ahead = intents(waves[number + 1]) if number + 1 < len(waves) else []
            pending += [future for _, _, future in ahead]
            try:
                results = sides.outlook.send_creates([_new_event(action) for action, _, _ in current])
            except ServiceError as error:  # every $batch of the wave failed: the intents stay
                store.tally.errors.append(f"$batch of {len(current)} creates: {error}")
                continue
            for (action, intent, _), result in zip(current, results, strict=True):
                if isinstance(result, str):
                    store.tally.errors.append(f"CreateOn {action.pair_key}: {result}")
                    report(action, "failed", {"batched": True})
                    continue
                report(action, "done", {"writes": 1, "batched": True})
                pending.append(submit(_keep_created, action, intent, result, sides, store))
                created += 1
        for future in pending:
            future.result()
    return created


def _new_event(action: CreateOn) -> NewEvent:
    return NewEvent(action.content, action.origin, action.pair_key, action.source_id)


def _keep_created(action: CreateOn, intent: Pair, written: Written, sides: Sides, store: PairStore) -> None:
    sides.outlook.keep(written)
    action.record(intent, written, store)


@contextmanager
def _writers(count: int) -> Iterator[Callable[..., Future[None]]]:
    """``submit`` for storage writes: a thread pool of ``count``, or at once in order for 1."""
    if count > 1:
        with ThreadPoolExecutor(max_workers=count, thread_name_prefix="sync-storage") as pool:
            yield pool.submit
        return

    def at_once(function: Callable[..., None], *args: Any, **kwargs: Any) -> Future[None]:
        future: Future[None] = Future()
        try:
            future.set_result(function(*args, **kwargs))
        except BaseException as error:  # handed to whoever waits on it, as a pool would
            future.set_exception(error)
        return future

    yield at_once


@dataclass
class Snapshot:
    """What each side holds now, as raw records by id (kept current by the sides' writes)."""

    syncro: dict[str, dict[str, Any]]
    outlook: dict[str, dict[str, Any]]


class Executor:
    """One tech's sync run against the real services: the sides over the clients and mirrors,
    the pair rows over the mappings table (read once here)."""

    def __init__(
        self,
        *,
        tech: int,
        calendar_id: str,
        storage: StorageAccount,
        graph: GraphClient,
        syncro: SyncroClient,
        zone: ZoneInfo,
        syncro_web_url: str,
        clock: Callable[[], datetime],
        snapshot: Snapshot,
        tally: Tally,
        options: SyncOptions | None = None,
        job_id: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        self.tech, self.job_id, self.correlation_id = tech, job_id, correlation_id
        self.tally = tally
        syncro_side = SyncroAppointments(
            tech=tech,
            client=syncro,
            storage=storage,
            records=snapshot.syncro,
            zone=zone,
            clock=clock,
            options=options or SyncOptions(),
        )
        outlook_side = OutlookCalendar(
            tech=tech,
            calendar_id=calendar_id,
            client=graph,
            storage=storage,
            events=snapshot.outlook,
            syncro_records=snapshot.syncro,
            zone=zone,
            syncro_web_url=syncro_web_url,
            clock=clock,
        )
        self.sides = Sides(syncro_side, outlook_side)
        self.store = MappingPairStore(tech=tech, storage=storage, clock=clock, kept_of=syncro_side.kept, tally=tally)

    def pairs(self) -> list[Pair]:
        return self.store.pairs()

    def run(self, actions: list[Action]) -> int:
        """Perform ``actions`` in order; returns how many service writes were made."""
        return run_actions(actions, self.sides, self.store, report=self._log, writers=STORAGE_WRITERS)

    def _log(self, action: Action, outcome: str, fields: dict[str, Any]) -> None:
        """One structured line per action (`ops.logs`): what, where and how it ended; never content."""
        log_event(
            log,
            "sync.action",
            tech=self.tech,
            job_id=self.job_id,
            correlation_id=self.correlation_id,
            action=type(action).__name__,
            side=getattr(getattr(action, "side", None), "value", None),
            pair=getattr(action, "pair_key", None),
            outcome=outcome,
            **fields,
        )
