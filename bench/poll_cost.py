"""What the Syncro poll costs as the account grows, and how soon it sees an edit.

Syncro has no "changed since" filter, so a poll lists appointments by date and compares them
with the mirror. This bench seeds the Syncro simulator (over TLS, its 180-a-minute limit on,
owners shown) with N appointments spread as an MSP's calendar is ("mixed": a quarter in the past 60
days, half in the next 14, a quarter in days 15-60; "near": all in the next 15 days, the worst
case), then runs `sync.poller.poll_once` once a simulated
minute for ``--minutes`` minutes, within the poller's own budget (60 a minute by default, the
product's default). Every minute a dispatcher edits one appointment starting within the next 48
hours and one elsewhere in the window; the figure is how many minutes pass before the poll
records each edit in the mirror (the sync job it queues follows within seconds).

Printed per account size and window plan: Syncro requests a minute (mean, most), minutes a
whole pass takes, and the delay to see an edit (median, 95th percentile, most), near and other.

    .venv/bin/python bench/poll_cost.py [--sizes 500,2000,5000] [--minutes 45] [--plans current,previous]
        [--spreads mixed,near] [--per-minute 60]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local.azurite import start_azurite
from local.serve import serve_in_thread
from local.sims.control import SimClock, SimControl
from local.sims.syncro import SyncroSim
from local.tls import make_tls_files
from settings import StorageSettings
from storage import StorageAccount
from sync.budget import RequestBudget
from sync.poll_windows import NEAR_DAYS, SLICE_DAYS, runs_per_pass
from sync.poller import poll_once
from sync.syncro import SyncroClient

VERBOSE = False
TOKEN = "tok-bench"
TECHS = (1_300_101, 1_300_102, 1_300_103, 1_300_104, 1_300_105)
PLANS = {"current": (NEAR_DAYS, SLICE_DAYS), "previous": ((1, 14), 7)}  # before 2026-12: 16 near days a run


@dataclass
class Result:
    requests: list[int]
    near: list[int]
    other: list[int]
    unseen: int


def _day_offset(rng: random.Random, spread: str) -> int:
    if spread == "near":  # the worst case: everything in the next 15 days
        return rng.randint(-1, 14)
    roll = rng.random()
    if roll < 0.25:
        return -rng.randint(1, 60)
    if roll < 0.75:
        return rng.randint(0, 14)
    return rng.randint(15, 60)


def _seed(count: int, clock: SimClock, rng: random.Random, spread: str) -> dict:
    midnight = clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    appointments = []
    for n in range(count):
        at = midnight + timedelta(days=_day_offset(rng, spread), hours=7 + n % 10)
        tech = TECHS[n % len(TECHS)]
        appointments.append(
            {
                "summary": f"Visit {n}",
                "start_at": at.isoformat(),
                "end_at": (at + timedelta(hours=1)).isoformat(),
                "user_id": tech,
                "user_ids": [tech],
            }
        )
    users = [{"id": tech, "email": f"t{tech}@acme.test", "full_name": f"Tech {tech}"} for tech in TECHS]
    users[0]["admin"] = True
    return {
        "account": {"subdomain": "acme", "time_zone": "Etc/UTC"},
        "users": users,
        "tokens": [{"token": TOKEN, "user_id": TECHS[0]}],
        "appointments": appointments,
    }


def run(size: int, plan: str, spread: str, minutes: int, per_minute: int, storage: str, tls, seed: int) -> Result:
    rng = random.Random(seed)
    clock = SimClock()
    sim = SyncroSim(control=SimControl(clock=clock), ca_bundle=str(tls.ca_bundle))
    sim.seed(_seed(size, clock, rng, spread))
    sim.update_settings({"withhold_user_fields": False})
    server = serve_in_thread(sim.app, tls=tls, name="syncro-sim")
    prefix = "b" + uuid.uuid4().hex[:10]
    account = StorageAccount(
        StorageSettings(storage, None, None, table_prefix=prefix), sync_queue_name=f"{prefix}-jobs"
    )
    client = SyncroClient(f"{server.url}/api/v1", api_token=TOKEN, ca_bundle=str(tls.ca_bundle))
    budget = RequestBudget(per_minute, clock=clock.timestamp)
    near, slice_days = PLANS[plan]
    result = Result([], [], [], 0)
    pending: list[tuple[str, int, str, int]] = []  # (kind, id, new summary, minute edited)
    try:
        for minute in range(minutes):
            available = budget.available()
            if minute >= runs_per_pass(near=near, slice_days=slice_days) + 1:  # after the first pass
                pending += _edit(sim, clock, rng, minute)
            report = poll_once(
                client=client, mirror=account.mirror, cursors=account.cursors, queue=account.sync_queue,
                budget=budget, clock=clock.now, techs=TECHS, zone=UTC, near=near, slice_days=slice_days,
            )  # fmt: skip
            result.requests.append(report.requests_made)
            if VERBOSE:
                print(
                    f"    minute {minute} (budget {available}): {report.requests_made} requests, windows {report.windows}, pending {[(k, m) for k, _, _, m in pending]}"
                )
            still = []
            for kind, appointment_id, summary, edited in pending:
                if _mirrored(account, appointment_id, summary):
                    (result.near if kind == "near" else result.other).append(minute - edited + 1)
                else:
                    still.append((kind, appointment_id, summary, edited))
            pending = still
            clock.advance(60)
        result.unseen = len(pending)
    finally:
        client.close()
        server.stop()
    return result


def _mirrored(account: StorageAccount, appointment_id: int, summary: str) -> bool:
    for tech in TECHS:
        try:
            if account.mirror.get_entry(tech, appointment_id).appointment.get("summary") == summary:
                return True
        except Exception:  # not this tech's
            continue
    return False


def _edit(sim: SyncroSim, clock: SimClock, rng: random.Random, minute: int) -> list[tuple[str, int, str, int]]:
    now = clock.now()
    near, other = [], []
    for appointment in sim.store.all_appointments_json():
        start = datetime.fromisoformat(appointment["start_at"])
        within = now - timedelta(hours=1) <= start <= now + timedelta(hours=48)
        (near if within else other).append(appointment["id"])
    edits = []
    for kind, ids in (("near", near), ("other", other)):
        if not ids:
            continue
        appointment_id = rng.choice(ids)
        summary = f"edited {kind} at minute {minute}"
        sim.update_appointment(appointment_id, {"summary": summary})  # a dispatcher, in Syncro's UI
        edits.append((kind, appointment_id, summary, minute))
    return edits


def _figures(delays: list[int]) -> str:
    if not delays:
        return "n/a"
    ordered = sorted(delays)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.0f}, p95 {p95}, most {ordered[-1]} min"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="500,2000,5000")
    parser.add_argument("--minutes", type=int, default=45)
    parser.add_argument("--plans", default="current,previous")
    parser.add_argument(
        "--per-minute", type=int, default=60, help="the poller's budget (SYNCRO_POLL_REQUESTS_PER_MINUTE)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--spreads", default="mixed,near", help="mixed: a quarter past, half in 14 days; near: all in 15 days"
    )
    parser.add_argument("--verbose", action="store_true", help="print every run")
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    with tempfile.TemporaryDirectory() as tmp:
        tls = make_tls_files(Path(tmp))
        azurite = start_azurite()
        try:
            for plan in args.plans.split(","):
                near, slice_days = PLANS[plan]
                print(
                    f"plan {plan}: every minute {near[0]} day(s) back to {near[1]} ahead; the rest "
                    f"{slice_days} days a minute ({runs_per_pass(near=near, slice_days=slice_days)} minutes a pass)"
                )
                for spread, size in ((p, int(s)) for p in args.spreads.split(",") for s in args.sizes.split(",")):
                    r = run(
                        size, plan, spread, args.minutes, args.per_minute, azurite.connection_string, tls, args.seed
                    )
                    used = r.requests[runs_per_pass(near=near, slice_days=slice_days) + 1 :] or r.requests
                    print(
                        f"  {size:>5} appointments ({spread}): {statistics.mean(used):5.1f} requests a minute "
                        f"(most {max(used)}, budget {args.per_minute}); edit seen, next 48 h: {_figures(r.near)}; "
                        f"elsewhere: {_figures(r.other)}; unseen at the end: {r.unseen}"
                    )
        finally:
            azurite.stop()


if __name__ == "__main__":
    main()
