"""Scale-out, as Azure does it: two local host processes (``python -m local.host``) serving
function_app.py on the same storage account and queue, with the simulators and Azurite of the
in-process product. A backlog of jobs (every tech queued twice, as at-least-once delivery and
overlapping triggers produce) is drained by both: each tech's work is done once, nothing is
created twice, and both processes take part. Both also run the poll timer
every second: its runs never overlap, and the process that finds it running skips. The drain
times, 1 process against 2, are `bench/backlog.py`'s (tests do not assert on wall-clock time, nor
on how many timer ticks fit in one: the hosts run until the poll has run and skipped, however
long that takes on a busy machine)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest

from local.inprocess import Product
from storage.job_status import JobStatusStore
from storage.sync_queue import SyncJob
from sync.budget import RequestBudget
from tests.realtime.support import (
    FleetTech,
    HostProcess,
    appointment,
    job_lines,
    outlook_subjects,
    private_queue,
    seed_fleet,
    start_host_process,
    wait_for,
)

pytest_plugins = ["tests.app.linking_support"]

TECHS = 24
PER_TECH = 2  # new Syncro appointments per tech: each tech's job creates this many Outlook events


@dataclass
class Drained:
    product: Product
    fleet: list[FleetTech]
    hosts: list[HostProcess]
    lines: list[dict]


def _summary(tech: FleetTech, n: int) -> str:
    return f"Visit {n} for {tech.syncro_user_id}"


@pytest.fixture(scope="module")
def drained(linking_stack: Product, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drained]:
    from realtime.timers import poll_links
    from services import sync_deps

    product = linking_stack
    product.sim("syncro").update_settings({"withhold_user_fields": False, "notification_urls": []})
    private_queue(product)
    fleet = seed_fleet(product, TECHS, first_id=1_800_000)
    product.sim("syncro").seed(
        {
            "appointments": [
                appointment(t.syncro_user_id, _summary(t, n), days=1 + n, hour=10)
                for t in fleet
                for n in range(PER_TECH)
            ]
        }
    )
    storage = product.storage()
    report = poll_links(sync_deps(), budget=RequestBudget(10_000), slice_days=200)  # one job per tech (fanned out)
    assert set(report.changed_techs) == {t.syncro_user_id for t in fleet}
    for tech in fleet:  # and each a second time
        storage.sync_queue.enqueue(SyncJob(tech.syncro_user_id, "duplicate", datetime.now(UTC).isoformat()))
    logs = Path(tmp_path_factory.mktemp("hosts"))
    hosts: list[HostProcess] = []
    try:
        for name in ("host-a", "host-b"):
            # and both run the poll timer every second: one poll at a time between them
            hosts.append(start_host_process(product, logs, name=name, SYNCRO_POLL_SCHEDULE="* * * * * *"))
        statuses = JobStatusStore(storage)

        def all_synced() -> bool:
            return all(statuses.get_status(t.syncro_user_id).last_job_outcome == "synced" for t in fleet)

        wait_for(all_synced, timeout=240, every=1, what="every tech's job")
        wait_for(lambda: storage.sync_queue.depth() == 0, timeout=120, every=1, what="the queue (and follow-ups)")
        # Enough of the poll timer to judge its order: a few runs, and a tick that found one going.
        wait_for(lambda: _poll_seen(hosts), timeout=180, every=0.5, what="five poll runs and a skipped tick")
    finally:
        for host in hosts:
            host.stop()
    # Each tech's job lines (the poll asks for many techs' syncs in fan-out messages, whose lines name none).
    yield Drained(product, fleet, hosts, [line for line in job_lines(hosts) if "syncro_user_id" in line])


def test_two_hosts_drain_the_backlog_and_nothing_is_created_twice(drained: Drained) -> None:
    for tech in drained.fleet:
        subjects = outlook_subjects(drained.product, tech.oid)
        for n in range(PER_TECH):
            assert subjects.count(f"[S] {_summary(tech, n)}") == 1, (tech, subjects)
    assert drained.product.storage().sync_queue.poison_depth() == 0


def test_each_techs_work_is_done_once_however_many_messages_asked_for_it(drained: Drained) -> None:
    writes: dict[str, int] = defaultdict(int)
    handled: Counter[str] = Counter()
    for line in drained.lines:
        handled[line["syncro_user_id"]] += 1
        writes[line["syncro_user_id"]] += int(line.get("writes", 0))
    for tech in drained.fleet:
        key = str(tech.syncro_user_id)
        assert handled[key] >= 2, (key, handled[key])  # both messages ran (a busy one left a follow-up)
        assert writes[key] == PER_TECH, (key, writes[key])  # but the events were created by one sync only
    assert {line["outcome"] for line in drained.lines} <= {"synced", "busy"}


def test_both_processes_took_jobs_from_the_one_queue(drained: Drained) -> None:
    per_host = [sum(1 for line in host.log_lines() if line.get("logger") == "realtime.jobs") for host in drained.hosts]
    assert all(count > 0 for count in per_host), per_host
    assert len({line["pid"] for line in drained.lines}) == 2


def _poll_lines(host: HostProcess) -> list[dict]:
    return [
        line
        for line in host.log_lines()
        if line.get("logger") == "realtime.timers" and line.get("timer") == "syncro-poll"
    ]


def _poll_seen(hosts: list[HostProcess]) -> bool:
    lines = [line for host in hosts for line in _poll_lines(host)]
    return sum("started_at" in line for line in lines) >= 5 and any(line.get("skipped") for line in lines)


def test_the_poll_timer_runs_on_one_process_at_a_time_and_the_other_skips(drained: Drained) -> None:
    runs = sorted(
        (datetime.fromisoformat(line["started_at"]), datetime.fromisoformat(line["finished_at"]), host.log_path.stem)
        for host in drained.hosts
        for line in _poll_lines(host)
        if "started_at" in line
    )
    assert len(runs) >= 2, runs  # the fixture waited for five
    # Order: every run, on either process, began after the one before it had finished.
    for (_, finished, before), (started, _, after) in pairwise(runs):
        assert started >= finished, (before, finished, after, started)
    # Exclusion: a process never overlaps its own runs (the host runs a timer's ticks one after
    # another), so a skipped tick means the lease was held by the other process's run, or taken
    # by it at the same moment; each skip says which.
    skipped = [line for host in drained.hosts for line in _poll_lines(host) if line.get("skipped")]
    assert skipped
    for line in skipped:
        assert "lease held until" in line["msg"] or "at the same moment" in line["msg"], line
