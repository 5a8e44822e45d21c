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

Trials run one after another on a settled stack (no job queued). Graph's delta visibility lag is
off by default; ``--delta-lag`` keeps the demo's 2 s, which the notification-started sync misses
and its recheck (``realtime.jobs.RECHECK_SECONDS``, 5 s later) carries across.

    .venv/bin/python bench/propagation.py [--trials 20] [--poll-seconds 5] [--delta-lag]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local.azurite import start_azurite
from local.host import HostConfig
from local.tls import make_tls_files
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--poll-seconds", type=int, default=5, choices=(1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30))
    parser.add_argument("--delta-lag", action="store_true", help="keep the demo's 2 s delta visibility lag")
    args = parser.parse_args()

    paths = {
        "Outlook create -> Syncro": (outlook_create, 2.0),
        "Syncro create -> Outlook": (syncro_create, 2.0),
        "Syncro update -> Outlook": (syncro_update, args.poll_seconds + 2.0),
    }
    results: dict[str, list[float | None]] = {label: [] for label in paths}
    azurite = start_azurite()
    try:
        tls = make_tls_files(Path(os.environ.get("TMPDIR", "/tmp")) / f"propagation-tls-{os.getpid()}")
        with end_to_end(azurite.connection_string, tls, poll_seconds=args.poll_seconds) as sides:
            if args.delta_lag:
                sides.graph_settings(delta_quirks=True)
            graph = sides.product.sim("graph").settings
            syncro = sides.product.sim("syncro").settings
            queues = HostConfig.from_host_json(Path(__file__).resolve().parent.parent / "host.json")
            print(
                f"poll: every {args.poll_seconds} s (SYNCRO_POLL_SCHEDULE */{args.poll_seconds} * * * * *); "
                f"reconcile parked; notification delay: Graph {graph.notification_delay_seconds} s, "
                f"Syncro {syncro.notification_delay_seconds} s; Graph delta lag {graph.delta_visibility_lag_seconds} s "
                f"(replayed {graph.delta_replay_items}, duplicated {graph.delta_duplicate_items}, empty pages "
                f"{graph.delta_empty_pages}, occurrence stubs {graph.delta_occurrence_stubs}); "
                f"Graph request latency {graph.request_latency_seconds} s; queue maxPollingInterval "
                f"{queues.queue_max_polling_interval} s, batchSize {queues.queue_batch_size}; "
                f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
                flush=True,
            )
            for trial in range(args.trials):  # the paths interleaved, so load drifts hit them alike
                for label, (run, _) in paths.items():
                    sides.settled()
                    results[label].append(run(sides))
                print(f"trial {trial + 1}/{args.trials} done", file=sys.stderr, flush=True)
    finally:
        azurite.stop()

    for label, values in results.items():
        print(f"{label}: " + " ".join("missed" if v is None else f"{v:.2f}" for v in values), file=sys.stderr)
    print(f"\n{args.trials} trials per path; load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'path':<28} {'p50':>7} {'p95':>7} {'max':>7} {'missed':>7}  target")
    for label, (_, target) in paths.items():
        seen = [value for value in results[label] if value is not None]
        missed = len(results[label]) - len(seen)
        if not seen:
            print(f"{label:<28} {'-':>7} {'-':>7} {'-':>7} {missed:>7}  under {target:.0f} s")
            continue
        p50, p95 = statistics.median(seen), _percentile(seen, 0.95)
        verdict = "met" if p95 < target and not missed else "NOT met"
        print(
            f"{label:<28} {p50:>6.2f}s {p95:>6.2f}s {max(seen):>6.2f}s {missed:>7}  p95 under {target:.0f} s: {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
