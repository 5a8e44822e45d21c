"""Notifications naming subscriptions this instance does not know yet, re-checked off the request path.

A subscription's row is written just after Graph creates it, perhaps by another instance, and its
first notification may come first. The webhook does not wait for a re-read of the subscriptions
table to tell: it answers 202 at once (as for any other notification, so the answer never tells
whether an id is known) and hands the notifications here. One re-check runs at a time per event
loop and storage account, for every notification handed over meanwhile: it reads the table (at most
once per `RecordCache`'s ``unknown_refresh``, shared with every caller), then checks each
notification exactly as the webhook does (subscription ours, clientState in constant time) and
asks for the syncs of those that pass. Nothing is acted on before that check.

Bounds: at most ``max_pending`` notifications wait (more are dropped and logged: made-up ids must
not grow memory); a re-check that cannot read storage is tried again after each of
``retry_delays`` seconds, then dropped and logged (the answer was already 202, so Graph will not
deliver again; the reconciliation timer carries the change).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from storage.errors import StorageUnavailable

if TYPE_CHECKING:
    from storage.account import StorageAccount

log = logging.getLogger(__name__)

MAX_PENDING = 10_000  # notifications waiting for a re-check, all accounts of a loop together
RETRY_DELAYS = (1.0, 4.0)  # seconds before each new try of a re-check storage refused

# (account, notifications) -> None: the re-check itself; raises StorageUnavailable to be retried
Recheck = Callable[["StorageAccount", list[dict[str, Any]]], Awaitable[None]]


@dataclass
class _Pending:
    items: list[dict[str, Any]] = field(default_factory=list)
    running: bool = False


class LateIds:
    def __init__(
        self, recheck: Recheck, *, max_pending: int = MAX_PENDING, retry_delays: tuple[float, ...] = RETRY_DELAYS
    ) -> None:
        self._recheck = recheck
        self._max_pending = max_pending
        self._retry_delays = retry_delays
        self._pending: dict[tuple[int, int], _Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # kept, so a running re-check is not collected

    def add(self, account: StorageAccount, items: list[dict[str, Any]]) -> None:
        """Queue ``items`` for the next re-check (from the event loop; never blocks, never raises)."""
        loop = asyncio.get_running_loop()
        key = (id(loop), id(account))
        pending = self._pending.setdefault(key, _Pending())
        room = self._max_pending - sum(len(p.items) for p in self._pending.values())
        if room < len(items):
            log.warning(
                "%d notifications for unknown subscriptions dropped: too many waiting", len(items) - max(room, 0)
            )
            items = items[: max(room, 0)]
        pending.items.extend(items)
        if not pending.running and pending.items:
            pending.running = True
            task = loop.create_task(self._run(key, account))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, key: tuple[int, int], account: StorageAccount) -> None:
        pending = self._pending[key]
        try:
            await asyncio.sleep(0)  # let the POSTs the loop already holds join this re-check
            while pending.items:
                batch, pending.items = pending.items, []
                await self._one(account, batch)
        finally:
            pending.running = False
            if not pending.items:
                del self._pending[key]

    async def _one(self, account: StorageAccount, batch: list[dict[str, Any]]) -> None:
        for delay in (*self._retry_delays, None):
            try:
                await self._recheck(account, batch)
                return
            except StorageUnavailable:
                if delay is None:
                    break
                await asyncio.sleep(delay)
            except Exception:
                log.exception("notifications for unknown subscriptions could not be re-checked")
                return
        log.error(
            "storage unavailable: %d notifications for unknown subscriptions dropped after %d tries; "
            "the reconciliation carries their changes",
            len(batch),
            len(self._retry_delays) + 1,
        )

    async def drain(self) -> None:
        """Wait for every re-check under way (tests, and a host shutting down)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
