"""Concurrent webhook requests share their storage calls: a group commit on the event loop.

A burst of Graph notifications arrives as many POSTs at once, and each may be answered 202 only
once its techs' syncs are asked for (a queue message exists). Asking once per request costs a
storage call or two each, and a hundred at once wait behind each other. Instead, a request joins
the next *round* and waits for it. One round runs at a time, in a worker thread
(`realtime.enqueue.request_syncs`: one message for one tech or for several); the next round takes
everyone who arrived meanwhile.

Which round answers a request: the job a round asks for must not have started before the
request's change, or it may have read past it. So a request is answered by

- the first round that *began* after it arrived, or
- the round running when it arrived, if that round then sent a message covering all its techs
  after it arrived (``seal``, called just before the send): a job cannot start before its
  message exists. A burst for one tech is thus mostly answered by one round, not two.

When a round fails, every request it was to answer gets the error (the webhook answers 503 and
Graph delivers again); the next round tries afresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.account import StorageAccount

log = logging.getLogger(__name__)

# (account, tech -> reason, seal) -> the techs for which a message was sent after calling seal()
Flush = Callable[["StorageAccount", dict[int, str], Callable[[], None]], frozenset[int]]


@dataclass
class _Request:
    ticket: int  # arrival order
    techs: frozenset[int]
    answered: asyncio.Future[None]


@dataclass
class _Rounds:
    """The rounds of one event loop and storage account."""

    waiting: list[_Request] = field(default_factory=list)  # for the next round
    arrivals: int = 0
    running: bool = False


class GroupCommit:
    """``await ask(account, techs)`` returns once a sync of each tech is asked for (with
    ``reason``) by a round that counts for this call (see the module docstring). Raises what the
    round raised (StorageUnavailable)."""

    def __init__(self, reason: str, flush: Flush | None = None) -> None:
        self._reason = reason
        self._flush = flush
        self._rounds: dict[tuple[int, int], _Rounds] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # kept, so a running round is not collected

    async def ask(self, account: StorageAccount, techs: Iterable[int]) -> None:
        loop = asyncio.get_running_loop()
        key = (id(loop), id(account))
        rounds = self._rounds.setdefault(key, _Rounds())
        rounds.arrivals += 1
        request = _Request(rounds.arrivals, frozenset(techs), loop.create_future())
        request.answered.add_done_callback(_retrieved)
        rounds.waiting.append(request)
        if not rounds.running:
            rounds.running = True
            task = loop.create_task(self._run(key, account))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # Shielded: a request whose client went away must not cancel the round others wait for.
        await asyncio.shield(request.answered)

    async def _run(self, key: tuple[int, int], account: StorageAccount) -> None:
        rounds = self._rounds[key]
        flush = self._flush_of()
        try:
            # Let requests the loop already holds join the first round (one loop pass: no time
            # when the loop is idle, a burst's worth when it is not).
            await asyncio.sleep(0)
            while rounds.waiting:
                batch, rounds.waiting = rounds.waiting, []
                techs = {tech: self._reason for request in batch for tech in request.techs}
                sealed = 0

                def seal() -> None:  # in the worker thread, just before the first message goes out
                    nonlocal sealed
                    sealed = rounds.arrivals  # an int read: arrivals up to here came before the send

                try:
                    sent = await asyncio.to_thread(flush, account, techs, seal)
                except Exception as error:
                    for request in batch:
                        request.answered.set_exception(error)
                    continue
                for request in batch:
                    request.answered.set_result(None)
                covered = [r for r in rounds.waiting if r.ticket <= sealed and r.techs <= sent]
                for request in covered:
                    request.answered.set_result(None)
                rounds.waiting = [r for r in rounds.waiting if not r.answered.done()]
        finally:
            rounds.running = False
            if not rounds.waiting:
                del self._rounds[key]

    def _flush_of(self) -> Flush:
        if self._flush is None:
            from realtime.enqueue import request_syncs

            return lambda account, techs, seal: request_syncs(account, techs, seal=seal)
        return self._flush


def _retrieved(future: asyncio.Future[None]) -> None:
    """Mark a round's error as seen even when every request waiting for it went away."""
    if not future.cancelled():
        future.exception()
