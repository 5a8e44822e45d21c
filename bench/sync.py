"""The sync engine, counted and timed on the local stack (simulators over TLS with their strict
defaults, Azurite, the local host, in this process), for one linked tech (the demo's Alex):

- initial sync of N appointments made in Syncro: time, Graph and Syncro requests;
- a steady-state round (nothing changed): requests per poll and per sync;
- one change in Syncro, and one in Outlook: requests to carry it across.

Request counts come from the simulators' own counters. Prints one line per figure.

    .venv/bin/python bench/sync.py [--appointments 500]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local import demo
from local.azurite import start_azurite
from local.inprocess import Product, start_product
from local.tls import make_tls_files

ALEX = demo.TECHS[0]


def _counts(product: Product, session: Any) -> dict[str, int]:
    totals = {}
    for name in ("graph", "syncro"):
        counters = session.get(f"{product.sim_url(name)}/_sim/counters", timeout=30).json()
        counters = counters.get("counters", counters)
        prefix = "/v1.0/" if name == "graph" else "/api/v1/"
        totals[name] = sum(int(n) for route, n in counters.items() if prefix in route and isinstance(n, int))
    return totals


def _reset(product: Product, session: Any) -> None:
    for name in ("graph", "syncro"):
        session.delete(f"{product.sim_url(name)}/_sim/counters", timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appointments", type=int, default=500)
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        azurite = start_azurite()
        stack.callback(azurite.stop)
        product = start_product(stack, tls=make_tls_files(Path(tmp)), storage=azurite.connection_string)
        http = product.browser()
        token = secrets.token_hex(16)
        product.sim("syncro").seed({"tokens": [{"token": token, "user_id": ALEX.syncro_user_id}]})
        assert product.sign_in(product.browser(), ALEX.sign_in).status_code == 200
        links = product.storage().links
        links.update_link(links.get_link(ALEX.syncro_user_id).with_changes(two_way=True))

        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        for n in range(args.appointments):
            at = start + timedelta(days=n % 50 - 5, hours=8 + n % 9)
            body = {
                "summary": f"Visit {n}",
                "start_at": at.isoformat(),
                "end_at": (at + timedelta(hours=1)).isoformat(),
                "user_id": ALEX.syncro_user_id,
            }
            http.post(f"{product.sim_url('syncro')}/_sim/appointments", json=body, timeout=30).raise_for_status()

        from sync.budget import RequestBudget
        from sync.engine import default_deps, sync_tech
        from sync.poller import poll_once
        from sync.syncro import SyncroClient

        deps = default_deps()
        own = {
            ALEX.syncro_user_id: SyncroClient(
                f"{product.sim_url('syncro')}/api/v1", api_token=token, ca_bundle=str(product.tls.ca_bundle)
            )
        }

        def poll() -> None:
            storage = product.storage()
            poll_once(
                client=deps.syncro, mirror=storage.mirror, cursors=storage.cursors, queue=storage.sync_queue,
                budget=RequestBudget(10_000), clock=lambda: datetime.now(UTC), techs=sorted(own), tech_clients=own,
                zone=deps.account_zone(), slice_days=200,
            )  # fmt: skip

        def measured(label: str, action: Any) -> None:
            http.post(f"{product.sim_url('graph')}/_sim/clock", json={"advance_seconds": 3}, timeout=30)
            _reset(product, http)
            began = time.perf_counter()
            action()
            took = time.perf_counter() - began
            counts = _counts(product, http)
            print(f"{label:<46} {took * 1000:8.0f} ms   Graph {counts['graph']:4d}   Syncro {counts['syncro']:4d}")

        measured("poll (whole window)", poll)
        measured(f"initial sync, {args.appointments} appointments", lambda: sync_tech(ALEX.syncro_user_id, deps=deps))
        measured("steady state: poll", poll)
        measured("steady state: sync", lambda: sync_tech(ALEX.syncro_user_id, deps=deps))
        first = http.get(f"{product.sim_url('syncro')}/_sim/appointments", timeout=30).json()["appointments"][0]
        http.put(f"{product.sim_url('syncro')}/_sim/appointments/{first['id']}", json={"summary": "Moved"}, timeout=30)
        measured("one Syncro change: poll + sync", lambda: (poll(), sync_tech(ALEX.syncro_user_id, deps=deps)))


if __name__ == "__main__":
    main()
