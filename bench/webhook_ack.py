"""Graph webhook acknowledgement under load, on the local stack (Azurite, the local host serving
function_app.py over HTTP, in this process): rounds of N concurrent change-notification POSTs,
each answered 202 after its subscription and clientState are checked and its tech's sync job is
requested (coalesced). Graph counts an answer over 2,900 ms as slow; the target is p99 < 100 ms.

Four mixes, each POST a change of its own (event id and etag) unless said otherwise:
- copies: the same notification a hundred times (Graph's duplicates; answered from memory);
- one tech: every POST names the same tech (they coalesce into one job);
- 10 techs: ten subscriptions, a POST each in turn;
- distinct techs: every POST names a tech of its own (every one sends a queue message);
- made-up ids: 10 techs, each POST also naming 99 subscriptions nobody has (an anonymous caller
  padding genuine-looking traffic): no storage read per made-up id.

What a figure includes: from the moment a POST's bytes are written to its socket to the moment
its answer's last byte is read, with all N in flight at once. The sender is a child process (its
own interpreter lock) running one asyncio loop over N keep-alive connections, requests prepared
as bytes before the round starts, so it spends microseconds per request: the figures are the
host's (uvicorn's HTTP parsing, the route, the worker thread pool, the function, its storage calls
to Azurite) and the machine's (Azurite and the host share its CPUs with the sender and anything
else running). Connection set-up is not included (Graph keeps connections open too).
Prints p50/p95/p99/max per mix, the jobs queued, the host process's CPU time per POST (this
process: the host, the simulators idling; less sensitive to other load than the latencies), and
the load average before and after.

    .venv/bin/python bench/webhook_ack.py [--concurrency 100] [--rounds 5] [--mix copies ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


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


def _body(sub_id: str, state: str, change: int = 0, *, made_up: int = 0) -> bytes:
    """One notification; with ``made_up``, that many more naming subscriptions nobody has."""
    item = _item(sub_id, state, change)
    forged = [_item(f"made-up-{change}-{i}", "guess", change) for i in range(made_up)]
    return json.dumps({"value": [item, *forged]}).encode()


def _item(sub_id: str, state: str, change: int) -> dict:
    event = f"AAMkA{change:08d}="
    return {
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


class _Connection(asyncio.Protocol):
    """One keep-alive connection that sends a prepared request and timestamps the answer's last byte."""

    def __init__(self) -> None:
        self._buffer = b""
        self._sent = 0.0
        self._done: asyncio.Future[tuple[int, float]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def send(self, request: bytes) -> asyncio.Future[tuple[int, float]]:
        self._done = asyncio.get_running_loop().create_future()
        self._sent = time.perf_counter()
        self.transport.write(request)  # type: ignore[attr-defined]
        return self._done

    def data_received(self, data: bytes) -> None:
        arrived = time.perf_counter()
        self._buffer += data
        head, separator, rest = self._buffer.partition(b"\r\n\r\n")
        if not separator:
            return
        lines = head.lower().split(b"\r\n")
        if b"transfer-encoding: chunked" in lines:  # what uvicorn sends when the app sets no length
            end = _chunked_end(rest)
            if end is None:
                return
        else:
            length = next((int(line.split(b":", 1)[1]) for line in lines if line.startswith(b"content-length:")), 0)
            if len(rest) < length:
                return
            end = length
        self._buffer = rest[end:]
        if self._done is not None and not self._done.done():
            self._done.set_result((int(lines[0].split()[1]), (arrived - self._sent) * 1000))


def _chunked_end(body: bytes) -> int | None:
    """Where a chunked body ends, or None while it is incomplete."""
    at = 0
    while True:
        size_line, separator, _ = body[at:].partition(b"\r\n")
        if not separator:
            return None
        size = int(size_line.split(b";", 1)[0], 16)
        at += len(size_line) + 2 + size + 2
        if len(body) < at:
            return None
        if size == 0:
            return at


def _request_bytes(url: str, body: bytes) -> bytes:
    parts = urlsplit(url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


async def _client_loop(concurrency: int) -> None:
    """Reads one JSON line per round (url and bodies), writes one line of timings (ms) back."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    connections: list[_Connection] = []
    while line := await reader.readline():
        job = json.loads(line)
        parts = urlsplit(job["url"])
        while len(connections) < concurrency:
            _, connection = await loop.create_connection(_Connection, parts.hostname, parts.port)
            connections.append(connection)
        requests = [_request_bytes(job["url"], body.encode()) for body in job["bodies"]]
        answers = await asyncio.gather(*(c.send(r) for c, r in zip(connections, requests, strict=False)))
        bad = [status for status, _ in answers if status != 202]
        assert not bad, f"answers other than 202: {bad[:5]}"
        print(json.dumps([ms for _, ms in answers]), flush=True)


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mix", action="append", help="run only these mixes (copies, one tech, ...)")
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return asyncio.run(_client_loop(args.client))
    n = args.concurrency
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        azurite = start_azurite()
        stack.callback(azurite.stop)
        product = start_product(stack, tls=make_tls_files(Path(tmp)), storage=azurite.connection_string)
        account = product.storage()
        queue = account.queue(account.sync_queue.name)
        subs = _subscriptions(account, n * (args.rounds + 1) + 10, FIRST_TECH)
        url = f"{product.host_url}/api/graph/notifications"
        client = _ChildClient(n)
        stack.callback(client.close)
        client.round(url, [_body(*subs[i % 10]) for i in range(n)])  # warm-up: connections, tables
        changes = iter(range(1, 10**9))
        mixes = {
            "copies": lambda r: [_body(*subs[0])] * n,
            "one tech": lambda r: [_body(*subs[0], next(changes)) for _ in range(n)],
            "10 techs": lambda r: [_body(*subs[i % 10], next(changes)) for i in range(n)],
            "distinct techs": lambda r: [_body(*subs[10 + r * n + i], next(changes)) for i in range(n)],
            # Each POST: a genuine change and 99 subscription ids nobody has (answered from memory).
            "made-up ids": lambda r: [_body(*subs[i % 10], next(changes), made_up=99) for i in range(n)],
        }
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"{n} concurrent notification POSTs per round from a child process, {args.rounds} rounds per mix")
        print(f"machine: {os.cpu_count()} CPUs, load average {load} (other work on it slows every figure)")
        for label, bodies_of in mixes.items():
            if args.mix and label not in args.mix:
                continue
            timings: list[float] = []
            queue.clear_messages()
            cpu = 0.0
            for r in range(args.rounds):
                for tech in range(FIRST_TECH, FIRST_TECH + 10):  # as if their jobs had started
                    account.table("syncrequests").delete("pending", str(tech))
                bodies = bodies_of(r)
                started = time.process_time()
                timings += client.round(url, bodies)
                cpu += time.process_time() - started
            jobs = queue.get_queue_properties().approximate_message_count
            print(_summary(label, timings, jobs) + f", host CPU {cpu * 1000 / len(timings):.2f} ms/POST")
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"load average after: {load}")


if __name__ == "__main__":
    main()
