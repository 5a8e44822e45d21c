"""Graph webhook acknowledgement under load, on the local stack (Azurite, the local host serving
function_app.py over HTTP, in this process): rounds of N concurrent change-notification POSTs,
each answered 202 after its subscription and clientState are checked and its tech's sync job is
requested (coalesced). Graph counts an answer over 2,900 ms as slow; the target is p99 < 100 ms.

Four mixes, each POST a change of its own (event id and etag) unless said otherwise:
- copies: the same notification a hundred times (Graph's duplicates; answered from memory);
- one tech: every POST names the same tech (they coalesce into one job);
- 10 techs: ten subscriptions, a POST each in turn;
- distinct techs: every POST names a tech of its own (every one sends a queue message).

The POSTs come from a child process (threads, one keep-alive connection each), so the load
generator does not compete with the host for this process's interpreter lock. Prints
p50/p95/p99/max per mix and the jobs queued.

    .venv/bin/python bench/webhook_ack.py [--concurrency 100] [--rounds 5] [--same-process]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from local.azurite import start_azurite
from local.inprocess import start_product
from local.tls import make_tls_files

FIRST_TECH = 900_000_000_000


def _percentile(ms: list[float], q: float) -> float:
    ordered = sorted(ms)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(label: str, ms: list[float], jobs: int) -> str:
    return (
        f"{label:<16} p50 {statistics.median(ms):6.1f} ms   p95 {_percentile(ms, 0.95):6.1f} ms   "
        f"p99 {_percentile(ms, 0.99):6.1f} ms   max {max(ms):6.1f} ms   (n={len(ms)}, jobs queued {jobs})"
    )


def _subscriptions(account, count: int, first_tech: int) -> list[tuple[str, str]]:
    """``count`` subscription rows of our own making: (subscription id, clientState)."""
    from storage.subscriptions import SubscriptionRecord, hash_client_state

    now = datetime.now(UTC)
    made = []
    for index in range(count):
        sub_id, state = f"bench-{first_tech + index}", f"state-{index:04d}-" + "x" * 50
        account.subscriptions.upsert_subscription(
            SubscriptionRecord(
                sub_id, first_tech + index, "/me/events", now + timedelta(days=3), hash_client_state(state), now
            )
        )
        made.append((sub_id, state))
    return made


def _body(sub_id: str, state: str, change: int = 0) -> bytes:
    event = f"AAMkA{change:08d}="
    item = {
        "subscriptionId": sub_id,
        "subscriptionExpirationDateTime": "2030-01-01T00:00:00.0000000Z",
        "clientState": state,
        "changeType": "updated",
        "resource": f"Users/x/Events/{event}",
        "tenantId": "t",
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": f"Users/x/Events/{event}",
            "@odata.etag": f'W/"{change}"',
            "id": event,
        },
    }
    return json.dumps({"value": [item]}).encode()


def _round(url: str, bodies: list[bytes], pool: ThreadPoolExecutor, sessions: threading.local) -> list[float]:
    """Every body POSTed at once (the threads start together); each answer's time in ms."""
    start_together = threading.Barrier(len(bodies))

    def post(body: bytes) -> float:
        session = getattr(sessions, "s", None)
        if session is None:
            session = sessions.s = requests.Session()
        start_together.wait()
        started = time.perf_counter()
        answer = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
        elapsed = (time.perf_counter() - started) * 1000
        assert answer.status_code == 202, (answer.status_code, answer.text)
        return elapsed

    return list(pool.map(post, bodies))


class _ChildClient:
    """The load generator in a child process: one JSON line of bodies in, one of timings out."""

    def __init__(self, concurrency: int) -> None:
        self._child = subprocess.Popen(
            [sys.executable, __file__, "--client", str(concurrency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def round(self, url: str, bodies: list[bytes]) -> list[float]:
        assert self._child.stdin is not None and self._child.stdout is not None
        self._child.stdin.write(json.dumps({"url": url, "bodies": [b.decode() for b in bodies]}) + "\n")
        self._child.stdin.flush()
        return json.loads(self._child.stdout.readline())

    def close(self) -> None:
        assert self._child.stdin is not None
        self._child.stdin.close()
        self._child.wait(30)


def _client(concurrency: int) -> None:
    sessions = threading.local()
    with ThreadPoolExecutor(concurrency) as pool:
        for line in sys.stdin:
            job = json.loads(line)
            timings = _round(job["url"], [b.encode() for b in job["bodies"]], pool, sessions)
            print(json.dumps(timings), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--same-process", action="store_true", help="send from threads of this process")
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return _client(args.client)
    n = args.concurrency
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        azurite = start_azurite()
        stack.callback(azurite.stop)
        product = start_product(stack, tls=make_tls_files(Path(tmp)), storage=azurite.connection_string)
        account = product.storage()
        queue = account.queue(account.sync_queue.name)
        subs = _subscriptions(account, n * (args.rounds + 1) + 10, FIRST_TECH)
        url = f"{product.host_url}/api/graph/notifications"
        sessions = threading.local()
        with ThreadPoolExecutor(n) as pool:
            if args.same_process:
                send = lambda bodies: _round(url, bodies, pool, sessions)  # noqa: E731
            else:
                client = _ChildClient(n)
                stack.callback(client.close)
                send = lambda bodies: client.round(url, bodies)  # noqa: E731
            send([_body(*subs[i % 10]) for i in range(n)])  # warm-up: connections, tables, the row cache
            changes = iter(range(1, 10**9))
            mixes = {
                "copies": lambda r: [_body(*subs[0])] * n,
                "one tech": lambda r: [_body(*subs[0], next(changes)) for _ in range(n)],
                "10 techs": lambda r: [_body(*subs[i % 10], next(changes)) for i in range(n)],
                "distinct techs": lambda r: [_body(*subs[10 + r * n + i], next(changes)) for i in range(n)],
            }
            where = "this process" if args.same_process else "a child process"
            load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
            print(f"{n} concurrent notification POSTs per round from {where}, {args.rounds} rounds per mix")
            print(f"machine: {os.cpu_count()} CPUs, load average {load} (other work on it slows every figure)")
            for label, bodies_of in mixes.items():
                timings: list[float] = []
                queue.clear_messages()
                for r in range(args.rounds):
                    for tech in range(FIRST_TECH, FIRST_TECH + 10):  # as if their jobs had started
                        account.table("syncrequests").delete("pending", str(tech))
                    timings += send(bodies_of(r))
                jobs = queue.get_queue_properties().approximate_message_count
                print(_summary(label, timings, jobs))


if __name__ == "__main__":
    main()
