"""The sync engine, counted and timed on the local stack (simulators over TLS as ``make run`` starts
them: 20 ms a Graph request, 4 concurrent requests per mailbox, Graph's delta quirks; Azurite; the
local host, in this process), for one linked tech (the demo's Alex, two-way on; Syncro's webhooks
off, since they are not what is measured):

- the initial sync of N appointments made in Syncro: time, Graph and Syncro requests;
- the sync after it, whose delta round brings back the N events we created (Graph reports the
  app's own writes);
- the steady state (nothing changed): a poll, and a sync, with the Graph simulator's delta-quirks
  preset (an empty page with a nextLink in every round, replays, duplicates, a lag: what
  ``local/stack.py`` runs, and what the other figures use) and without it;
- one change carried across, each way, without the preset and with it: a Syncro edit to Outlook
  (the poll that finds it is measured apart: it lists the whole account's window, whatever
  changed) and an Outlook edit to Syncro; then the sync after each, which reads our own write
  back once.

Request counts come from the simulators' counters. "Graph" counts HTTP requests (a ``$batch`` is
one), "steps" the requests run inside ``$batch`` requests (the simulator counts each step under
its route and under ``STEP /v1.0/$batch``). ``--routes`` prints each figure's requests by route.

    .venv/bin/python bench/sync.py [--appointments 500] [--routes]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local import demo
from local.azurite import start_azurite
from local.inprocess import Product, start_product
from local.tls import make_tls_files

ALEX = demo.TECHS[0]
STEP = "STEP /v1.0/$batch"  # local/sims/graph/batch.py: every step run inside a $batch


@dataclass(frozen=True)
class Counts:
    graph: int  # HTTP requests to Graph ($batch counts once)
    steps: int  # requests run inside $batch requests
    syncro: int
    routes: dict[str, dict[str, int]]


def _counts(product: Product, session: Any) -> Counts:
    routes = {}
    for name, prefix in (("graph", "/v1.0/"), ("syncro", "/api/v1/")):
        counters = session.get(f"{product.sim_url(name)}/_sim/counters", timeout=30).json()["counters"]
        routes[name] = {route: int(n) for route, n in counters.items() if prefix in route and isinstance(n, int)}
    steps = routes["graph"].pop(STEP, 0)
    return Counts(sum(routes["graph"].values()) - steps, steps, sum(routes["syncro"].values()), routes)


def _reset(product: Product, session: Any) -> None:
    for name in ("graph", "syncro"):
        session.delete(f"{product.sim_url(name)}/_sim/counters", timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appointments", type=int, default=500)
    parser.add_argument("--routes", action="store_true", help="print each figure's requests by route")
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
        link = links.get_link(ALEX.syncro_user_id)
        links.update_link(link.with_changes(two_way=True))
        graph_url, syncro_url = product.sim_url("graph"), product.sim_url("syncro")
        # Syncro's notifications (a webhook per new appointment, step 5) are not what this measures.
        quiet = {"notification_urls": [], "user_notification_urls": {}}
        http.patch(f"{syncro_url}/_sim/settings", json=quiet, timeout=30).raise_for_status()

        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        for n in range(args.appointments):
            at = start + timedelta(days=n % 50 - 5, hours=8 + n % 9)
            body = {
                "summary": f"Visit {n}",
                "start_at": at.isoformat(),
                "end_at": (at + timedelta(hours=1)).isoformat(),
                "user_id": ALEX.syncro_user_id,
            }
            http.post(f"{syncro_url}/_sim/appointments", json=body, timeout=30).raise_for_status()

        import services
        from services import sync_deps
        from sync.budget import RequestBudget
        from sync.engine import sync_tech
        from sync.poller import poll_once
        from sync.syncro import SyncroClient

        deps = sync_deps()
        own = {
            ALEX.syncro_user_id: SyncroClient(
                f"{syncro_url}/api/v1", api_token=token, ca_bundle=str(product.tls.ca_bundle)
            )
        }

        def poll() -> None:
            storage = product.storage()
            poll_once(
                client=deps.syncro, mirror=storage.mirror, cursors=storage.cursors, queue=storage.sync_queue,
                budget=RequestBudget(10_000), clock=lambda: datetime.now(UTC), techs=sorted(own), tech_clients=own,
                zone=deps.account_zone(), slice_days=200,
            )  # fmt: skip

        def sync() -> None:
            report = sync_tech(ALEX.syncro_user_id, deps=deps)
            assert report.status == "synced" and not report.errors, report

        def measured(label: str, action: Callable[[], None], note: str = "") -> Counts:
            http.post(f"{graph_url}/_sim/clock", json={"advance_seconds": 3}, timeout=30)
            _reset(product, http)
            began = time.perf_counter()
            action()
            took = time.perf_counter() - began
            counts = _counts(product, http)
            steps = f" ({counts.steps} in $batch)" if counts.steps else ""
            graph = f"{counts.graph}{steps}"
            print(f"{label:<52} {took * 1000:8.0f} ms   Graph {graph:>17}   Syncro {counts.syncro:4d}   {note}")
            if args.routes:
                for routes in counts.routes.values():
                    for route, n in sorted(routes.items()):
                        print(f"{'':8}{n:5d}  {route}")
            return counts

        def as_tech(method: str, path: str, **kwargs: Any) -> Any:
            bearer = services.token_service().access_token_for(ALEX.syncro_user_id)
            headers = {"Authorization": f"Bearer {bearer}", "Prefer": 'outlook.timezone="UTC", IdType="ImmutableId"'}
            answer = http.request(method, f"{graph_url}/v1.0{path}", headers=headers, timeout=30, **kwargs)
            answer.raise_for_status()
            return answer.json()

        def quirks(on: bool) -> None:
            http.patch(f"{graph_url}/_sim/settings", json={"delta_quirks": on}, timeout=30).raise_for_status()

        measured("poll (whole window)", poll)
        measured(f"initial sync, {args.appointments} appointments", sync)
        measured("next sync (delta brings back our creates)", sync)
        measured("steady state: poll", poll, "(the window's pages)")
        measured("steady state: sync", sync, "(delta-quirks preset on, as local/stack.py runs)")
        measured("steady state: sync, again", sync)
        quirks(False)
        measured("steady state: sync, delta-quirks preset off", sync)
        measured("steady state: sync, delta-quirks preset off, again", sync)

        listed = http.get(f"{syncro_url}/_sim/appointments", timeout=30).json()["appointments"]
        appointments = [a for a in listed if str(a.get("summary")).startswith("Visit ")]  # Alex's, ours
        path = f"/me/calendars/{link.calendar_id}/events"
        events = as_tech("GET", f"{path}?$top=2&$orderby=start/dateTime")["value"]
        for index, preset in enumerate((False, True)):
            quirks(preset)
            label = "preset on" if preset else "preset off"
            http.put(
                f"{syncro_url}/_sim/appointments/{appointments[index]['id']}",
                json={"summary": f"Moved {index}"},
                timeout=30,
            )
            measured(f"Syncro edit -> Outlook ({label}): poll", poll, "(excluded: the window's pages)")
            change = measured(f"Syncro edit -> Outlook ({label}): sync", sync)
            print(f"{'':52} {'':11}   in all: {change.graph + change.syncro} requests (poll excluded)")
            measured("  then the next sync (our PATCH read back)", sync)
            as_tech("PATCH", f"{path}/{events[index]['id']}", json={"location": {"displayName": f"Lab {index}"}})
            change = measured(f"Outlook edit -> Syncro ({label}): sync", sync)
            print(f"{'':52} {'':11}   in all: {change.graph + change.syncro} requests")
            measured("  then the next poll (our PUT read back)", poll, "(the window's pages)")
            measured("  then the next sync", sync)


if __name__ == "__main__":
    main()
