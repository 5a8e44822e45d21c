"""Throughput of the Graph simulator: small authenticated GETs over loopback TLS with keep-alive.

The simulator runs in this process (uvicorn on a thread, as the local stack runs it); the load
comes from a second process with one keep-alive session per thread, each thread acting as its own
user so the per-mailbox concurrency limit (4) is not what is measured. Prints requests/second.

    .venv/bin/python bench/graph_sim_throughput.py [--requests 4000] [--threads 8] [--path /me/events/{id}]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local.serve import serve_in_thread
from local.sims.control import SimControl
from local.sims.graph import GraphSettings, GraphSim
from local.sims.tokens import TokenIssuer
from local.tls import make_tls_files

TENANT = "11111111-2222-3333-4444-555555555555"


def drive(
    url: str, ca_bundle: str, tokens: list[str], paths: list[str], per_thread: int, out: multiprocessing.Queue
) -> None:
    """Runs in the second process: threads with keep-alive sessions, each a different user."""
    import threading

    import requests

    errors: list[int] = []
    barrier = threading.Barrier(len(tokens) + 1)

    def worker(token: str, path: str) -> None:
        session = requests.Session()
        session.trust_env = False
        session.verify = ca_bundle
        session.headers["Authorization"] = f"Bearer {token}"
        session.get(url + path)  # open the TLS connection before the clock starts
        barrier.wait()
        for _ in range(per_thread):
            status = session.get(url + path).status_code
            if status != 200:
                errors.append(status)

    threads = [threading.Thread(target=worker, args=(t, p)) for t, p in zip(tokens, paths, strict=True)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    out.put((time.perf_counter() - started, len(errors)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="total GETs (bounded)")
    parser.add_argument("--threads", type=int, default=8, help="client threads, one user each")
    parser.add_argument("--kind", choices=["event", "calendars", "me"], default="event", help="what to GET")
    args = parser.parse_args()

    control, issuer = SimControl(), TokenIssuer()
    with tempfile.TemporaryDirectory() as tmp:
        tls = make_tls_files(Path(tmp))
        # The simulator's own overhead is measured, not the latency it adds on purpose (20 ms by default).
        quick = GraphSettings(request_latency_seconds=0)
        sim = GraphSim(control=control, issuer=issuer, settings=quick, ca_bundle=str(tls.ca_bundle))
        server = serve_in_thread(sim.app, tls=tls, name="graph-sim")
        try:
            tokens, paths = [], []
            for n in range(args.threads):
                oid = f"bench-user-{n}"
                seeded = sim.seed(
                    {
                        "mailboxes": [
                            {"oid": oid, "email": f"u{n}@bench.example", "tenant_id": TENANT, "events": [_event(n)]}
                        ]
                    }
                )
                event_id = seeded["mailboxes"][0]["events"][0]
                paths.append(
                    {"event": f"/v1.0/me/events/{event_id}", "calendars": "/v1.0/me/calendars", "me": "/v1.0/me"}[
                        args.kind
                    ]
                )
                tokens.append(
                    issuer.issue(
                        tenant_id=TENANT,
                        object_id=oid,
                        username=f"u{n}@bench.example",
                        name=f"User {n}",
                        scopes=["Calendars.ReadWrite", "User.Read"],
                        client_id="bench",
                        now=control.clock.timestamp(),
                        lifetime_seconds=3600,
                    )
                )
            per_thread = max(1, args.requests // args.threads)
            spawn = multiprocessing.get_context("spawn")  # a clean process, not a fork of the server's threads
            out = spawn.Queue()
            client = spawn.Process(target=drive, args=(server.url, str(tls.ca_bundle), tokens, paths, per_thread, out))
            client.start()
            elapsed, errors = out.get(timeout=600)
            client.join(30)
        finally:
            server.stop()
            sim.close()
    total = per_thread * args.threads
    print(
        f"graph simulator: {total} GET {args.kind} over TLS keep-alive, {args.threads} threads "
        f"(second process): {total / elapsed:.0f} requests/s, {errors} non-200"
    )


def _event(n: int) -> dict:
    return {
        "subject": f"Bench {n}",
        "start": {"dateTime": "2030-01-07T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-07T11:00:00", "timeZone": "UTC"},
    }


if __name__ == "__main__":
    main()
