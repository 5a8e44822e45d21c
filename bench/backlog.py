"""Draining a backlog of sync jobs with one local host process, then with two on the same storage
account and queue (what Azure does when it scales out).

The product's simulators and Azurite run in this process (`local.inprocess`); the hosts are
``python -m local.host`` processes serving function_app.py with every timer parked. N techs are
linked (default 200); for each round every tech gets one new Syncro appointment, a poll puts it in
the mirror (untimed, its jobs kept back), then one job per tech is queued and the clock runs until
every tech's job has synced and the queue is empty. Each job reads the tech's calendar delta and
creates one Outlook event.

The Graph simulator answers every request after ``--graph-latency`` seconds (default 0.5 s, the
slow end of real Graph's 50-500 ms), so a job waits on I/O as it does in Azure rather than on
this machine's two cores, which other work shares (at 0.1 s the two processes only competed for
CPU: 1.04x). Each host runs host.json's queue settings (batchSize 4, newBatchThreshold 2).

    .venv/bin/python bench/backlog.py [--techs 200] [--graph-latency 0.1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local.inprocess import Product
from storage.job_status import JobStatusStore
from storage.sync_queue import SyncJob
from tests.realtime.support import (
    FleetTech,
    HostProcess,
    appointment,
    job_lines,
    seed_fleet,
    start_fleet_product,
    start_host_process,
)


class _KeptBack:
    """A queue for the untimed poll: the round's jobs are queued by the clock, not by the poll."""

    def enqueue(self, job: SyncJob, *, delay_seconds: int = 0) -> None:
        pass


def _fill_mirror(product: Product, fleet: list[FleetTech], round_number: int) -> None:
    from services import sync_deps
    from sync.budget import RequestBudget
    from sync.poller import poll_once

    product.sim("syncro").seed(
        {"appointments": [appointment(t.syncro_user_id, f"Round {round_number}", days=1 + round_number) for t in fleet]}
    )
    deps = sync_deps()
    storage = product.storage()
    report = poll_once(
        client=deps.syncro,
        mirror=storage.mirror,
        cursors=storage.cursors,
        queue=_KeptBack(),  # type: ignore[arg-type]
        budget=RequestBudget(100_000),
        clock=lambda: datetime.now(UTC),
        techs=[t.syncro_user_id for t in fleet],
        zone=deps.account_zone(),
        slice_days=200,
    )
    assert len(report.changed_techs) == len(fleet), report


def _drain(product: Product, fleet: list[FleetTech], hosts: list[HostProcess]) -> float:
    storage = product.storage()
    statuses = JobStatusStore(storage)
    began_at = datetime.now(UTC)
    began = time.perf_counter()
    for tech in fleet:
        storage.sync_queue.enqueue(SyncJob(tech.syncro_user_id, "backlog", began_at.isoformat()))
    waiting = {t.syncro_user_id for t in fleet}
    while waiting:
        for tech in list(waiting):
            status = statuses.get_status(tech)
            if (
                status.last_job_at is not None
                and status.last_job_at >= began_at
                and status.last_job_outcome == "synced"
            ):
                waiting.discard(tech)
        if time.perf_counter() - began > 900:
            raise SystemExit(f"{len(waiting)} techs not synced after 15 minutes")
        time.sleep(0.5)
    while storage.sync_queue.depth():
        time.sleep(0.2)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--techs", type=int, default=200)
    parser.add_argument("--graph-latency", type=float, default=0.5)
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        product = start_fleet_product(stack, Path(tmp), graph_latency=args.graph_latency)
        began = time.perf_counter()
        fleet = seed_fleet(product, args.techs)
        print(f"{args.techs} techs linked in {time.perf_counter() - began:.1f} s; Graph latency {args.graph_latency} s")
        _fill_mirror(product, fleet, 0)  # the first sync of each tech is not what we measure: warm up
        results = {}
        for round_number, processes in enumerate((2, 1, 2), start=1):
            hosts = [start_host_process(product, Path(tmp), name=f"r{round_number}-h{n}") for n in range(processes)]
            try:
                if round_number == 1:
                    _drain(product, fleet, hosts)  # the warm-up round: every tech's first sync
                    continue
                _fill_mirror(product, fleet, round_number)
                took = _drain(product, fleet, hosts)
            finally:
                for host in hosts:
                    host.stop()
            lines = job_lines(hosts)
            per_host = [sum(1 for line in host.log_lines() if line.get("logger") == "realtime.jobs") for host in hosts]
            results[processes] = took
            print(
                f"{processes} host process(es): {args.techs} jobs drained in {took:6.1f} s "
                f"({args.techs / took:5.1f} jobs/s); jobs per process {per_host}; "
                f"outcomes {sorted({line['outcome'] for line in lines})}"
            )
        print(f"speed-up with 2 processes: {results[1] / results[2]:.2f}x")


if __name__ == "__main__":
    main()
