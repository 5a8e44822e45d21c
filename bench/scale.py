"""The product at scale: N linked techs with A Syncro appointments each, on the simulators.

For each size (default 100, 300 and 1,000 techs, 200 appointments each; ``--sizes`` and
``--appointments``, or ``SCALE_SIZES`` and ``SCALE_APPOINTMENTS``, make a quick run smaller):

1. **Initial sync.** Azurite and the simulators start (in this process, `start_fleet_product`:
   Syncro shows owners and does not throttle, so what keeps Syncro's load down is the product's
   own shared budget), N techs are linked (`seed_fleet`), and each gets A appointments in Syncro
   within the next three days (the near window the poller lists every run: the worst case for
   the poll, and no waiting for its 12-minute pass over the far days). Then one
   ``python -m local.host`` process serving function_app.py starts with its poll timer on
   (``--poll-schedule``, default every minute as deployed) and its other timers parked. Timed
   until every tech's Outlook calendar holds their A events and the queue is empty.
2. **A reconcile pass.** That host stops and a fresh one starts with every timer parked; the
   reconcile timer's function (`realtime.timers.reconcile`) queues one job per tech, and the pass
   is timed until every tech's job has run and the queue is empty. Nothing changed, so this is the
   steady-state cost per tech of a reconcile.
3. **A steady-state poll.** One poll run (`realtime.timers.poll_links`, the poll timer's body, in
   this process), within the poller's 60 requests a minute.

Measured, per phase: wall time; Syncro API requests (the simulator's count) and the busiest 60 s
of them, against Syncro's 180 a minute and the app's shared budget (`SYNCRO_REQUESTS_PER_MINUTE`,
150); Graph HTTP requests (a ``$batch`` once; its steps apart); the host process's Azure Storage
calls (counted inside it by ``bench/scale_hooks/sitecustomize.py``); the host's CPU time and peak
resident memory (``VmHWM``, /proc); the queue's depth over time (its most, and when it drained).
Then a growth table: how each figure grows from one size to the next (``k`` = log(growth) /
log(techs' growth): 1 is linear, above 1 worse).

Not counted: the Graph webhook (the in-process host in this process answers Graph's
notifications of our own writes and queues their jobs; the host process runs those jobs, so their
sync costs are counted), and this process's own storage reads while it samples (each 2 s).

    .venv/bin/python bench/scale.py [--sizes 100,300,1000] [--appointments 200] [--graph-latency 0.02]
        [--poll-schedule "0 * * * * *"] [--timeout 5400]
    SCALE_SIZES=5 SCALE_APPOINTMENTS=3 .venv/bin/python bench/scale.py --poll-schedule "*/5 * * * * *"
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from local.inprocess import Product  # noqa: E402
from tests.realtime.support import (  # noqa: E402
    FleetTech,
    HostProcess,
    appointment,
    seed_fleet,
    start_fleet_product,
    start_host_process,
)

HOOKS = Path(__file__).resolve().parent / "scale_hooks"
SYNCRO_LIMIT = 180  # a minute, per account, for every integration (docs/budget.md)
STEP = "STEP /v1.0/$batch"  # local/sims/graph/batch.py: a step run inside a $batch
NEAR_DAYS = 3  # appointments go to today and the next two days: the poller's near window
SAMPLE_SECONDS = 2.0


# -- what one look at the running product sees ---------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    at: float  # seconds since the phase began
    depth: int  # the sync queue's approximate count (delayed messages included)
    syncro: int  # Syncro API requests the simulator has received
    graph: int  # Graph HTTP requests ($batch once)
    steps: int  # requests run inside $batch requests
    routes: dict[str, int]  # both simulators' requests by route ("graph GET /v1.0/me/...")
    storage: dict[str, int]  # the host process's storage calls by service
    cpu: float  # the host process's user + system CPU seconds
    rss_mb: float
    peak_mb: float  # the host process's VmHWM: its largest resident set so far


def _host_figures(pid: int) -> tuple[float, float, float]:
    """CPU seconds (utime + stime, all threads), resident MB and peak resident MB of ``pid``."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(stat[11]) + int(stat[12])) / ticks  # fields 14 and 15 of proc(5), after "pid (comm)"
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return cpu, int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def _services(connection_string: str) -> dict[str, str]:
    """Azurite's endpoints (``host:port``) by service name, from the product's connection string."""
    parts = dict(item.split("=", 1) for item in connection_string.split(";") if "=" in item)
    return {
        urlsplit(parts[key]).netloc: name
        for key, name in (("TableEndpoint", "table"), ("QueueEndpoint", "queue"), ("BlobEndpoint", "blob"))
        if key in parts
    }


@dataclass
class Meter:
    """Reads the figures of one host process and of the simulators the product uses."""

    product: Product
    host: HostProcess
    counts_file: Path
    began: float = field(default_factory=time.perf_counter)

    def storage(self) -> dict[str, int]:
        try:
            counts = json.loads(self.counts_file.read_text())
        except (OSError, ValueError):
            return {}
        services = _services(self.product.env["AzureWebJobsStorage"])
        by_service: dict[str, int] = {}
        for key, count in counts.items():
            service = services.get(key.split(" ", 1)[1], "other")
            by_service[service] = by_service.get(service, 0) + count
        return by_service

    def snapshot(self) -> Snapshot:
        graph = self.product.sim("graph").control.counters.snapshot()
        syncro = self.product.sim("syncro").control.counters.snapshot()
        steps = graph.get(STEP, 0)
        cpu, rss, peak = _host_figures(self.host.process.pid)
        return Snapshot(
            at=time.perf_counter() - self.began,
            depth=self.product.storage().sync_queue.depth(),
            syncro=sum(n for route, n in syncro.items() if "/api/v1/" in route),
            graph=sum(n for route, n in graph.items() if "/v1.0/" in route and route != STEP) - steps,
            steps=steps,
            routes={
                f"{name} {route}": n
                for name, counts in (("graph", graph), ("syncro", syncro))
                for route, n in counts.items()
            },
            storage=self.storage(),
            cpu=cpu,
            rss_mb=rss,
            peak_mb=peak,
        )


# -- one phase: watched until its goal holds and the queue is empty ------------------------------


@dataclass
class Phase:
    name: str
    snapshots: list[Snapshot]
    done: bool

    @property
    def seconds(self) -> float:
        return self.snapshots[-1].at

    def spent(self, name: str) -> float:
        first, last = self.snapshots[0], self.snapshots[-1]
        if name == "storage":
            return sum(last.storage.values()) - sum(first.storage.values())
        return getattr(last, name) - getattr(first, name)

    def top_routes(self, simulator: str, count: int = 4) -> str:
        first, last = self.snapshots[0].routes, self.snapshots[-1].routes
        spent = {route: n - first.get(route, 0) for route, n in last.items() if route.startswith(simulator + " ")}
        top = sorted(((n, route) for route, n in spent.items() if n), reverse=True)[:count]
        return ", ".join(f"{route.split(' ', 1)[1]} {n}" for n, route in top) or "none"

    @property
    def peak_mb(self) -> float:
        return max(s.peak_mb for s in self.snapshots)

    @property
    def max_depth(self) -> tuple[int, float]:
        deepest = max(self.snapshots, key=lambda s: s.depth)
        return deepest.depth, deepest.at

    def drained_at(self) -> float | None:
        """When the queue last became empty (None: it never held anything, or never emptied)."""
        if self.snapshots[-1].depth or not any(s.depth for s in self.snapshots):
            return None
        last_busy = max(i for i, s in enumerate(self.snapshots) if s.depth)
        return self.snapshots[last_busy + 1].at

    def busiest_syncro_minute(self) -> int:
        """The most Syncro requests between two snapshots at most 60 s apart."""
        best, start = 0, 0
        for snap in self.snapshots:
            while snap.at - self.snapshots[start].at > 60:
                start += 1
            best = max(best, snap.syncro - self.snapshots[start].syncro)
        return best

    def depth_timeline(self, points: int = 12) -> str:
        step = max(1, len(self.snapshots) // points)
        chosen = self.snapshots[::step]
        if chosen[-1] is not self.snapshots[-1]:
            chosen.append(self.snapshots[-1])
        return " ".join(f"{s.at:.0f}s:{s.depth}" for s in chosen)


def watch(meter: Meter, name: str, goal: Callable[[], bool], *, timeout: float) -> Phase:
    """Snapshots every `SAMPLE_SECONDS` until ``goal()`` holds with an empty queue, or ``timeout``."""
    snapshots = [meter.snapshot()]
    done = False
    while snapshots[-1].at < timeout:
        time.sleep(SAMPLE_SECONDS)
        snapshots.append(meter.snapshot())
        if snapshots[-1].depth == 0 and goal():
            done = True
            break
    time.sleep(1.2)  # the hook writes its counts each second
    snapshots.append(meter.snapshot())
    return Phase(name, snapshots, done)


# -- the product at one size ---------------------------------------------------------------------


@dataclass
class SizeResult:
    techs: int
    appointments: int
    link_seconds: float
    initial: Phase
    in_outlook: int  # events in the techs' calendars when the initial sync ended (of techs x appointments)
    reconcile: Phase
    poll_requests: int
    poll_seconds: float
    poll_complete: bool
    pages_per_listing: int
    syncro_busiest: int  # the simulator's own count: the most requests in any 60 s of the run
    bench_peak_mb: float  # this process: the simulators, Azurite's client side, the webhook host


def _seed_appointments(product: Product, fleet: list[FleetTech], per_tech: int) -> None:
    batch: list[dict] = []
    for tech in fleet:
        for n in range(per_tech):
            batch.append(appointment(tech.syncro_user_id, f"Visit {n}", days=n % NEAR_DAYS, hour=(n // NEAR_DAYS) % 24))
            if len(batch) >= 5000:
                product.sim("syncro").seed({"appointments": batch})
                batch = []
    if batch:
        product.sim("syncro").seed({"appointments": batch})


def _all_in_outlook(product: Product, fleet: list[FleetTech], per_tech: int) -> Callable[[], bool]:
    sim = product.sim("graph")

    def check() -> bool:
        with sim.store.lock:
            return all(
                (box := sim.store.mailboxes.get(t.oid)) is not None and len(box.events) >= per_tech for t in fleet
            )

    return check


def _events_in_outlook(product: Product, fleet: list[FleetTech]) -> int:
    sim = product.sim("graph")
    with sim.store.lock:
        return sum(len(box.events) for t in fleet if (box := sim.store.mailboxes.get(t.oid)) is not None)


def _all_jobs_ran_since(product: Product, began: datetime, techs: int) -> Callable[[], bool]:
    from storage.job_status import JobStatusStore

    statuses = JobStatusStore(product.storage())

    def check() -> bool:
        ran = sum(1 for s in statuses.list_statuses() if s.last_job_at is not None and s.last_job_at >= began)
        return ran >= techs

    return check


def _host(product: Product, tmp: Path, name: str, **settings: str) -> tuple[HostProcess, Path]:
    counts = tmp / f"{name}-storage.json"
    path = os.pathsep.join(p for p in (str(HOOKS), os.environ.get("PYTHONPATH", "")) if p)
    host = start_host_process(product, tmp, name=name, PYTHONPATH=path, SCALE_STORAGE_COUNTS=str(counts), **settings)
    return host, counts


def run_size(techs: int, per_tech: int, args: argparse.Namespace) -> SizeResult:
    import services
    from realtime.timers import poll_links, reconcile

    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        product = start_fleet_product(stack, tmp, graph_latency=args.graph_latency)
        began = time.perf_counter()
        fleet = seed_fleet(product, techs)
        link_seconds = time.perf_counter() - began
        _seed_appointments(product, fleet, per_tech)
        say(f"  {techs} techs linked in {link_seconds:.1f} s; {techs * per_tech} appointments in Syncro")

        host, counts = _host(product, tmp, "initial", SYNCRO_POLL_SCHEDULE=args.poll_schedule)
        stack.callback(host.stop)
        initial = watch(
            Meter(product, host, counts), "initial", _all_in_outlook(product, fleet, per_tech), timeout=args.timeout
        )
        host.stop()
        in_outlook = _events_in_outlook(product, fleet)
        say(f"  initial sync: {'done' if initial.done else 'NOT DONE'} in {initial.seconds:.0f} s")

        host, counts = _host(product, tmp, "reconcile")
        stack.callback(host.stop)
        meter = Meter(product, host, counts)
        since = datetime.now(UTC)
        reconcile()
        passed = watch(meter, "reconcile", _all_jobs_ran_since(product, since, techs), timeout=args.timeout)
        host.stop()
        say(f"  reconcile pass: {'done' if passed.done else 'NOT DONE'} in {passed.seconds:.0f} s")

        syncro = product.sim("syncro")
        before = sum(n for route, n in syncro.control.counters.snapshot().items() if "/api/v1/" in route)
        began = time.perf_counter()
        report = poll_links(services.sync_deps())
        poll_seconds = time.perf_counter() - began
        after = sum(n for route, n in syncro.control.counters.snapshot().items() if "/api/v1/" in route)
        per_page = syncro.settings.per_page
        _, busiest, _ = syncro.rate_limiter.busiest()
        return SizeResult(
            techs=techs,
            appointments=per_tech,
            link_seconds=link_seconds,
            initial=initial,
            in_outlook=in_outlook,
            reconcile=passed,
            poll_requests=after - before,
            poll_seconds=poll_seconds,
            poll_complete=report.round_complete and not report.throttled,
            pages_per_listing=math.ceil(techs * per_tech / per_page),
            syncro_busiest=busiest,
            bench_peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        )


# -- printing ------------------------------------------------------------------------------------


def say(text: str) -> None:
    print(text, flush=True)


def _phase_lines(phase: Phase, techs: int) -> list[str]:
    depth, depth_at = phase.max_depth
    drained = phase.drained_at()
    minutes = max(phase.seconds / 60, 1e-9)
    storage = phase.snapshots[-1].storage
    per_service = ", ".join(f"{name} {n}" for name, n in sorted(storage.items()))
    return [
        f"  {phase.name}: {phase.seconds:.1f} s{'' if phase.done else ' (TIMED OUT)'}",
        f"    Syncro requests {phase.spent('syncro'):.0f} ({phase.spent('syncro') / minutes:.1f} a minute on average, "
        f"busiest 60 s {phase.busiest_syncro_minute()}; Syncro allows {SYNCRO_LIMIT}): {phase.top_routes('syncro')}",
        f"    Graph requests {phase.spent('graph'):.0f} (+{phase.spent('steps'):.0f} steps inside $batch); "
        f"{phase.spent('graph') / techs:.2f} a tech: {phase.top_routes('graph')}",
        f"    storage calls {phase.spent('storage'):.0f} ({per_service or 'not counted'}); "
        f"{phase.spent('storage') / techs:.1f} a tech",
        f"    host CPU {phase.spent('cpu'):.1f} s ({phase.spent('cpu') * 1000 / techs:.0f} ms a tech); "
        f"peak resident {phase.peak_mb:.0f} MB",
        f"    queue: most {depth} at {depth_at:.0f} s; "
        + (f"drained at {drained:.0f} s" if drained is not None else "never held a message after the first look")
        + f"; depth over time {phase.depth_timeline()}",
    ]


def report_size(result: SizeResult) -> None:
    say(f"== {result.techs} techs, {result.appointments} appointments each ==")
    expected = result.techs * result.appointments
    say(f"  in Outlook after the initial sync: {result.in_outlook} of {expected} appointments")
    for line in _phase_lines(result.initial, result.techs) + _phase_lines(result.reconcile, result.techs):
        say(line)
    say(
        f"  steady-state poll run: {result.poll_requests} Syncro requests in {result.poll_seconds:.1f} s "
        f"({'round complete' if result.poll_complete else 'round not complete: continues next run'}); "
        f"listing every appointment takes {result.pages_per_listing} pages"
    )
    say(
        f"  Syncro's busiest 60 s over the whole run (simulator's count): {result.syncro_busiest} "
        f"(limit {SYNCRO_LIMIT}: {'under' if result.syncro_busiest < SYNCRO_LIMIT else 'OVER'})"
    )
    say(f"  this process (simulators and webhook host) peak resident {result.bench_peak_mb:.0f} MB")


FIGURES: dict[str, Callable[[SizeResult], float]] = {
    "initial sync, s": lambda r: r.initial.seconds,
    "initial Syncro requests": lambda r: r.initial.spent("syncro"),
    "initial Graph requests": lambda r: r.initial.spent("graph"),
    "initial storage calls": lambda r: r.initial.spent("storage"),
    "initial host CPU, s": lambda r: r.initial.spent("cpu"),
    "reconcile pass, s": lambda r: r.reconcile.seconds,
    "reconcile Graph requests": lambda r: r.reconcile.spent("graph"),
    "reconcile Syncro requests": lambda r: r.reconcile.spent("syncro"),
    "reconcile storage calls": lambda r: r.reconcile.spent("storage"),
    "reconcile host CPU, s": lambda r: r.reconcile.spent("cpu"),
    "steady poll run, Syncro requests": lambda r: r.poll_requests,
    "busiest Syncro 60 s": lambda r: r.syncro_busiest,
    "peak host memory, MB": lambda r: max(r.initial.peak_mb, r.reconcile.peak_mb),
    "most jobs queued": lambda r: max(r.initial.max_depth[0], r.reconcile.max_depth[0]),
}


def _growth(before: float, after: float, scale: float) -> str:
    if before <= 0 or after <= 0:
        return f"{before:g} -> {after:g}"
    k = math.log(after / before) / math.log(scale)
    verdict = "sub-linear" if k < 0.85 else "linear" if k <= 1.15 else "WORSE than linear"
    return f"x{after / before:.2f} (k={k:.2f}, {verdict})"


def growth_table(results: list[SizeResult], axis: str) -> list[str]:
    """Markdown rows: each figure at each size, and its growth from one size to the next along
    ``axis`` (``techs`` or ``appointments``; the other held)."""
    size = (lambda r: r.techs) if axis == "techs" else (lambda r: r.appointments)
    ordered = sorted(results, key=size)
    head = " | ".join(f"{size(r):,} {axis}" for r in ordered)
    steps = " | ".join(f"{size(a):,} -> {size(b):,}" for a, b in itertools.pairwise(ordered))
    lines = [f"| figure | {head} | {steps} |", "|---" * (1 + 2 * len(ordered) - 1) + "|"]
    for name, read in FIGURES.items():
        values = [read(r) for r in ordered]
        shown = " | ".join(f"{v:,.1f}" if v % 1 else f"{v:,.0f}" for v in values)
        grew = " | ".join(
            _growth(values[i], values[i + 1], size(ordered[i + 1]) / size(ordered[i])) for i in range(len(values) - 1)
        )
        lines.append(f"| {name} | {shown} | {grew} |")
    return lines


def summary(results: list[SizeResult]) -> list[str]:
    lines = [
        "| techs | appointments | initial sync | Syncro (busiest 60 s) | Graph | storage | reconcile pass "
        "| per tech: Graph / Syncro / storage / CPU | peak host memory | most queued (drained at) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        i, c = r.initial, r.reconcile
        drained = c.drained_at()
        lines.append(
            f"| {r.techs:,} | {r.appointments} | {i.seconds:.0f} s | {i.spent('syncro'):.0f} ({r.syncro_busiest}) "
            f"| {i.spent('graph'):,.0f} | {i.spent('storage'):,.0f} | {c.seconds:.0f} s "
            f"| {c.spent('graph') / r.techs:.2f} / {c.spent('syncro') / r.techs:.2f} / "
            f"{c.spent('storage') / r.techs:.1f} / {c.spent('cpu') * 1000 / r.techs:.0f} ms "
            f"| {max(i.peak_mb, c.peak_mb):.0f} MB "
            f"| {i.max_depth[0]} ({i.drained_at() or 0:.0f} s) / {c.max_depth[0]} ({drained or 0:.0f} s) |"
        )
    return lines


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_numbers, default=_numbers(os.environ.get("SCALE_SIZES", "100,300,1000")))
    parser.add_argument("--appointments", type=_numbers, default=_numbers(os.environ.get("SCALE_APPOINTMENTS", "200")))
    parser.add_argument("--graph-latency", type=float, default=0.02, help="seconds a Graph request takes")
    parser.add_argument("--poll-schedule", default="0 * * * * *", help="the poll timer's NCRONTAB schedule")
    parser.add_argument("--timeout", type=float, default=5400.0, help="seconds a phase may take")
    args = parser.parse_args()
    load = os.getloadavg()
    say(
        f"bench/scale.py {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average "
        f"{load[0]:.1f}; Graph latency {args.graph_latency} s; poll schedule {args.poll_schedule!r}"
    )
    results = []
    for per_tech in args.appointments:
        for techs in args.sizes:
            started = time.perf_counter()
            results.append(run_size(techs, per_tech, args))
            report_size(results[-1])
            say(f"  ({time.perf_counter() - started:.0f} s for this size; load average {os.getloadavg()[0]:.1f})")
            tables(results)  # after every size: a run cut short still leaves its tables
    return 0 if all(r.initial.done and r.reconcile.done for r in results) else 1


def tables(results: list[SizeResult]) -> None:
    say("")
    for line in summary(results):
        say(line)
    for axis, held in (("techs", "appointments"), ("appointments", "techs")):
        groups: dict[int, list[SizeResult]] = {}
        for r in results:
            groups.setdefault(getattr(r, held), []).append(r)
        for value, group in groups.items():
            if len(group) > 1:
                say("")
                say(f"growth as {axis} grow ({held} {value}):")
                for line in growth_table(group, axis):
                    say(line)
    say("")


if __name__ == "__main__":
    sys.exit(main())
