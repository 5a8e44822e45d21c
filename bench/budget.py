"""The shared Syncro budget under contention: what a request costs in Table Storage, and that the
limit holds across instances.

Azurite runs locally; ``--instances`` processes' worth of `SharedBudget` (each its own storage
client) share one ledger row, each with a poller thread and ``--jobs`` job threads asking for
requests as fast as they are granted, for ``--seconds`` of real time (no Syncro: a grant is the
request). Prints the grants per caller, the most granted in any 60 s, storage round trips and
ETag races per request, and how long a grant took (median, 95th percentile).

    .venv/bin/python bench/budget.py [--instances 2] [--jobs 2] [--seconds 70] [--per-minute 150]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local.azurite import start_azurite
from local.sims.syncro.rate_limit import busiest_minute
from settings import StorageSettings
from storage import StorageAccount
from storage.errors import ConcurrencyConflict
from storage.syncro_budget import Ledger, SyncroBudgetStore
from sync.budget import Caller, SharedBudget, spending_as
from sync.errors import SyncroBudgetExhausted


class CountingStore:
    """The real store, counting its round trips and lost races."""

    def __init__(self, store: SyncroBudgetStore) -> None:
        self.store, self.reads, self.writes, self.races = store, 0, 0, 0

    def read(self) -> tuple[Ledger, str | None]:
        self.reads += 1
        return self.store.read()

    def write(self, ledger: Ledger, *, etag: str | None) -> None:
        self.writes += 1
        try:
            self.store.write(ledger, etag=etag)
        except ConcurrencyConflict:
            self.races += 1
            raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2, help="job threads per instance")
    parser.add_argument("--seconds", type=float, default=70.0)
    parser.add_argument("--per-minute", type=int, default=150)
    args = parser.parse_args()
    azurite = start_azurite()
    try:
        settings = StorageSettings(azurite.connection_string, None, None, "bench")
        stores = [CountingStore(SyncroBudgetStore(StorageAccount(settings))) for _ in range(args.instances)]
        budgets = [SharedBudget(store, args.per_minute) for store in stores]
        grants: list[tuple[float, str]] = []
        waits: list[float] = []
        lock = threading.Lock()
        stop = time.time() + args.seconds

        def spend(budget: SharedBudget, caller: Caller) -> None:
            with spending_as(caller):
                while time.time() < stop:
                    asked = time.monotonic()
                    try:
                        budget.acquire()
                    except SyncroBudgetExhausted as refused:
                        time.sleep(min(refused.retry_after or 1.0, max(0.0, stop - time.time())))
                        continue
                    with lock:
                        grants.append((time.time(), caller.value))
                        waits.append(time.monotonic() - asked)

        threads = [
            threading.Thread(target=spend, args=(budget, caller))
            for budget in budgets
            for caller in [Caller.POLL] + [Caller.JOB] * args.jobs
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        total = len(grants)
        most, _ = busiest_minute(sorted(at for at, _ in grants))
        per_caller = {caller.value: sum(1 for _, c in grants if c == caller.value) for caller in Caller}
        reads, writes, races = (sum(getattr(s, name) for s in stores) for name in ("reads", "writes", "races"))
        quick = [w for w in waits if w < 1.0]  # grants that did not wait for the window to move
        print(
            f"{args.instances} instances x (1 poller + {args.jobs} jobs), {args.seconds:.0f} s, limit {args.per_minute}"
        )
        print(f"granted {total} ({per_caller}); most in any 60 s: {most}")
        print(
            f"storage: {reads} reads, {writes} writes, {races} lost races: {(reads + writes) / max(1, total):.2f} round trips a request"
        )
        if quick:
            cuts = statistics.quantiles(quick, n=20) if len(quick) > 1 else [quick[0]] * 19
            print(
                f"a grant without waiting: median {statistics.median(quick) * 1000:.1f} ms, p95 {cuts[18] * 1000:.1f} ms"
            )
    finally:
        azurite.stop()


if __name__ == "__main__":
    main()
