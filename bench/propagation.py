"""Propagation: from a change on one side to the change visible on the other, end to end.

The stack of ``tests/realtime/test_end_to_end.py`` (the product with its queue triggers and timers
as ``make run`` runs them, host.json's queue settings, Azurite, the simulators over TLS, a tech
linked through the pages with two-way on), both simulators' notification delay at zero. Each
trial makes one change and reads the other side in-process every 20 ms until it shows:

- Outlook create -> Syncro: the tech creates an event with Graph; until its ``[O]`` appointment
  exists (Graph's notification, a sync job);
- Syncro create -> Outlook: a dispatcher creates an appointment in Syncro's UI; until its ``[S]``
  event exists (the Notification Center's POST, a sync job);
- Syncro update -> Outlook: a dispatcher renames an appointment already in Outlook; until the
  event has the new subject (Syncro sends nothing for updates: the poll timer, then a job).

Two presets of Graph's delta quirks in one run, trials interleaved so load drifts hit them alike:
delta visibility lag 0 (every path) and lag ``--lag`` (2 s by default, the preset's, as reported
for live Graph: Outlook create -> Syncro only, the path the lag delays). With a lag the
notification's first look finds nothing; the job looks again every 0.5 s until 3 s after the
notification (``realtime.jobs.look_again``), then ``graph-recheck`` jobs (``RECHECK_DELAYS``, 1, 1,
2 and 4 s apart) look. Each trial starts on a settled stack with no message left on the
queue (delayed rechecks included) and ends when none is left again; it counts the delta requests
the change cost (the Graph simulator's counters) and, for Outlook changes, which job carried it.

    .venv/bin/python bench/propagation.py [--trials 20] [--poll-seconds 5] [--lag 2]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local.azurite import start_azurite
from local.host import HostConfig
from local.sims.graph.settings import DELTA_QUIRKS
from local.tls import make_tls_files
from realtime.jobs import LOOK_AGAIN_EVERY, LOOK_AGAIN_FOR, RECHECK_DELAYS
from tests.realtime.test_end_to_end import EndToEnd, _name, end_to_end

MISSED_AFTER = 30.0  # seconds: a trial slower than this counts as missed


def _seconds_until(check: Callable[[], bool], started: float) -> float | None:
    while not check():
        if time.monotonic() - started > MISSED_AFTER:
            return None
        time.sleep(0.02)
    return time.monotonic() - started


def outlook_create(sides: EndToEnd) -> float | None:
    name = _name("Outlook create")
    started = time.monotonic()
    sides.outlook_create(name)
    return _seconds_until(lambda: f"[O] {name}" in sides.syncro_summaries(), started)


def syncro_create(sides: EndToEnd) -> float | None:
    name = _name("Syncro create")
    started = time.monotonic()
    sides.syncro_create(name)
    return _seconds_until(lambda: f"[S] {name}" in sides.outlook_subjects(), started)


def syncro_update(sides: EndToEnd) -> float | None:
    name = _name("Syncro update")
    appointment = sides.syncro_create(name)
    if _seconds_until(lambda: f"[S] {name}" in sides.outlook_subjects(), time.monotonic()) is None:
        return None
    sides.settled()
    started = time.monotonic()
    sides.syncro_update(appointment, f"{name} (renamed)")
    return _seconds_until(lambda: f"[S] {name} (renamed)" in sides.outlook_subjects(), started)


def _percentile(values: list[float], share: float) -> float:
    """Nearest rank: the p95 of 20 values is the 19th smallest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _delta_requests(sides: EndToEnd) -> int:
    counters = sides.graph_control("GET", "/counters").json()["counters"]
    return sum(int(n) for route, n in counters.items() if "delta" in route and isinstance(n, int))


def _timeline(sides: EndToEnd, since: int, began: datetime) -> str:
    """The tech's sync jobs since record ``since``: reason (recheck), start-end in seconds after
    ``began``, writes."""
    lines = []
    for record in sides.records.records[since:]:
        if record.name == "realtime.jobs" and hasattr(record, "started_at"):
            start = (datetime.fromisoformat(record.started_at) - began).total_seconds()
            end = (datetime.fromisoformat(record.finished_at) - began).total_seconds()
            attempt = f" {record.attempt}" if getattr(record, "attempt", 0) else ""
            lines.append(f"{record.reason}{attempt} {start:.2f}-{end:.2f} s w={getattr(record, 'writes', '-')}")
    return "; ".join(lines)


def _carrier(sides: EndToEnd, since: int) -> str:
    """The first job since record ``since`` that wrote something: its reason (and recheck)."""
    for record in sides.records.records[since:]:
        if record.name == "realtime.jobs" and getattr(record, "writes", 0):
            attempt = getattr(record, "attempt", 0)
            return f"{record.reason} {attempt}" if attempt else str(record.reason)
    return "none"


@dataclass
class Trials:
    preset: str
    label: str
    run: Callable[[EndToEnd], float | None]
    target: float
    lag: float
    seconds: list[float | None] = field(default_factory=list)
    deltas: list[int] = field(default_factory=list)
    carriers: Counter[str] = field(default_factory=Counter)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--poll-seconds", type=int, default=5, choices=(1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30))
    parser.add_argument("--lag", type=float, default=DELTA_QUIRKS["delta_visibility_lag_seconds"])
    parser.add_argument("--verbose", action="store_true", help="print each trial's sync jobs, timed")
    parser.add_argument("--only", choices=("lag", "zero"), help="run one preset's paths only")
    args = parser.parse_args()

    lagged = f"lag {args.lag:g} s"
    paths = [
        Trials("lag 0 s", "Outlook create -> Syncro", outlook_create, 2.0, 0.0),
        Trials("lag 0 s", "Syncro create -> Outlook", syncro_create, 2.0, 0.0),
        Trials("lag 0 s", "Syncro update -> Outlook", syncro_update, args.poll_seconds + 2.0, 0.0),
        Trials(lagged, "Outlook create -> Syncro", outlook_create, args.lag + 1.5, args.lag),
    ]
    if args.only:
        paths = [path for path in paths if (path.lag > 0) == (args.only == "lag")]
    azurite = start_azurite()
    try:
        tls = make_tls_files(Path(os.environ.get("TMPDIR", "/tmp")) / f"propagation-tls-{os.getpid()}")
        with end_to_end(azurite.connection_string, tls, poll_seconds=args.poll_seconds) as sides:
            graph = sides.product.sim("graph").settings
            syncro = sides.product.sim("syncro").settings
            queues = HostConfig.from_host_json(Path(__file__).resolve().parent.parent / "host.json")
            print(
                f"poll: every {args.poll_seconds} s (SYNCRO_POLL_SCHEDULE */{args.poll_seconds} * * * * *); "
                f"reconcile parked; notification delay: Graph {graph.notification_delay_seconds} s, "
                f"Syncro {syncro.notification_delay_seconds} s; Graph delta quirks: replayed "
                f"{graph.delta_replay_items}, duplicated {graph.delta_duplicate_items}, empty pages "
                f"{graph.delta_empty_pages}, occurrence stubs {graph.delta_occurrence_stubs}; "
                f"Graph request latency {graph.request_latency_seconds} s; queue maxPollingInterval "
                f"{queues.queue_max_polling_interval} s, batchSize {queues.queue_batch_size}; looks again every "
                f"{LOOK_AGAIN_EVERY} s until {LOOK_AGAIN_FOR} s, then rechecks after "
                f"{', '.join(str(d) for d in RECHECK_DELAYS)} s; {os.cpu_count()} CPUs; "
                f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
                flush=True,
            )
            for trial in range(args.trials):  # the paths interleaved, so load drifts hit them alike
                for path in paths:
                    sides.graph_settings(delta_visibility_lag_seconds=path.lag)
                    sides.settled(quiet=True)
                    sides.graph_control("DELETE", "/counters")
                    mark, began = sides.mark(), datetime.now(UTC)
                    path.seconds.append(path.run(sides))
                    sides.settled(quiet=True)  # the rechecks it queued have run
                    if args.verbose:
                        print(f"  {path.preset} {path.label}: {_timeline(sides, mark, began)}", file=sys.stderr)
                    path.deltas.append(_delta_requests(sides))
                    path.carriers[_carrier(sides, mark)] += 1
                print(f"trial {trial + 1}/{args.trials} done", file=sys.stderr, flush=True)
    finally:
        azurite.stop()

    for path in paths:
        values = " ".join("missed" if v is None else f"{v:.2f}" for v in path.seconds)
        print(f"{path.preset} {path.label}: {values}", file=sys.stderr)
    print(f"\n{args.trials} trials per path; load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'preset':<9} {'path':<26} {'p50':>7} {'p95':>7} {'max':>7} {'missed':>6} {'delta req':>9}  target")
    for path in paths:
        seen = [value for value in path.seconds if value is not None]
        missed = len(path.seconds) - len(seen)
        deltas = f"{statistics.median(path.deltas):g}"
        if not seen:
            print(f"{path.preset:<9} {path.label:<26} {'-':>7} {'-':>7} {'-':>7} {missed:>6} {deltas:>9}")
            continue
        p50, p95 = statistics.median(seen), _percentile(seen, 0.95)
        verdict = "met" if p95 < path.target and not missed else "NOT met"
        print(
            f"{path.preset:<9} {path.label:<26} {p50:>6.2f}s {p95:>6.2f}s {max(seen):>6.2f}s {missed:>6} "
            f"{deltas:>9}  p95 under {path.target:g} s: {verdict}"
        )
    print("\ncarried by (Outlook paths):")
    for path in paths:
        if path.run is outlook_create:
            print(f"  {path.preset}: " + ", ".join(f"{who} x{n}" for who, n in path.carriers.most_common()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
