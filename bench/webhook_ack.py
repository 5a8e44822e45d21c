"""Graph webhook acknowledgement under load: rounds of N concurrent change-notification POSTs to a
``python -m local.host`` process (function_app.py, its queue trigger draining the sync-job queue,
timers parked), each answered 202 after its subscription and clientState are checked and its tech's
sync job is requested (coalesced). Graph counts an answer over 2,900 ms as slow; targets: p99
under 50 ms on a quiet host, under 100 ms beside a running sync backlog.

One run measures both, one after the other, each for known and for unknown subscription ids:

- quiet: the host has nothing else to do; each round waits until the jobs the last one queued
  have run;
- beside a backlog: ``--techs`` linked techs (default 150), each with a new Syncro appointment in
  the mirror, have one sync job each queued just before (a first sync: a full delta round and one
  Outlook create, Graph answering after ``--graph-latency`` s), and the host drains them while the
  rounds run; the queue's depth is printed before and after each mix, to show it was still there.

Mixes, each POST a change of its own (event id and etag):
- known: ten subscriptions of ours (ten techs), a POST each in turn;
- unknown: each POST names one subscription nobody has (answered from memory, nothing queued).
``--mix`` adds the older ones (quiet only): copies (one notification a hundred times), one tech,
distinct techs (every POST a tech of its own), made-up ids (ten techs, each POST also naming 99
subscriptions nobody has).

What a figure includes: from the moment a POST's bytes are written to its socket to the moment
its answer's last byte is read, with all N in flight at once. The sender is a child process running
one asyncio loop over N keep-alive connections, requests prepared as bytes before the round starts,
so it spends microseconds per request. Connection set-up is not included (Graph keeps connections
open too). The simulators run in this process and Azurite in its own; all share the machine's CPUs.

*Host CPU per POST* is the host process's own CPU time (``/proc/<pid>/stat`` utime + stime, every
thread, 10 ms ticks summed over all rounds) from the first POST written to the last answer read,
over the POSTs. Beside the backlog the host is also syncing: the CPU it spent in an equally long
window with no POSTs, right after each round, is subtracted (printed too), so that figure is an
estimate.

    .venv/bin/python bench/webhook_ack.py [--concurrency 100] [--rounds 10] [--techs 150] [--mix ...]
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from local.inprocess import Product
from storage.sync_queue import SyncJob
from tests.realtime.support import HostProcess, appointment, seed_fleet, start_fleet_product, start_host_process

FIRST_TECH = 900_000_000_000


def _percentile(ms: list[float], q: float) -> float:
    ordered = sorted(ms)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


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


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads, living and ended) from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # fields 14 and 15 of the whole line


@dataclass
class _Cell:
    """One mix in one condition: answer times, host CPU while answering and in a quiet window."""

    ms: list[float] = field(default_factory=list)
    cpu: float = 0.0
    idle_cpu: float = 0.0


class _Bench:
    def __init__(self, product: Product, host: HostProcess, client: _ChildClient, subs: list[tuple[str, str]]) -> None:
        self.product, self.host, self.client, self.subs = product, host, client, subs
        self.account = product.storage()
        self.url = f"{host.url}/api/graph/notifications"
        self.changes = iter(range(1, 10**9))

    def bodies(self, mix: str, round_number: int, n: int) -> list[bytes]:
        subs, changes = self.subs, self.changes
        if mix == "known":
            return [_body(*subs[i % 10], next(changes)) for i in range(n)]
        if mix == "unknown":
            return [_body(f"nobody-{change}", "guess", change) for change in (next(changes) for _ in range(n))]
        if mix == "copies":
            return [_body(*subs[0])] * n
        if mix == "one tech":
            return [_body(*subs[0], next(changes)) for _ in range(n)]
        if mix == "distinct techs":
            return [_body(*subs[10 + round_number * n + i], next(changes)) for i in range(n)]
        if mix == "made-up ids":
            return [_body(*subs[i % 10], next(changes), made_up=99) for i in range(n)]
        raise SystemExit(f"unknown mix {mix!r}")

    def round(self, bodies: list[bytes], cell: _Cell, *, idle_window: bool) -> None:
        for tech in range(FIRST_TECH, FIRST_TECH + 10):  # as if their jobs had started: each round asks anew
            self.account.table("syncrequests").delete("pending", str(tech))
        pid = self.host.process.pid
        began, cpu = time.perf_counter(), _cpu_seconds(pid)
        cell.ms += self.client.round(self.url, bodies)
        cell.cpu += _cpu_seconds(pid) - cpu
        if idle_window:  # as long again without POSTs: what the host spends on its backlog alone
            took, cpu = time.perf_counter() - began, _cpu_seconds(pid)
            time.sleep(took)
            cell.idle_cpu += _cpu_seconds(pid) - cpu

    def drained(self, timeout: float = 60.0) -> None:
        """Wait until the sync-job queue is empty and the jobs it held have had time to end."""
        deadline = time.monotonic() + timeout
        while self.account.sync_queue.depth() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)


def _row(condition: str, mix: str, cell: _Cell, backlog: bool) -> str:
    posts = len(cell.ms)
    cpu = (cell.cpu - cell.idle_cpu) if backlog else cell.cpu
    extra = f" (raw {cell.cpu * 1000 / posts:.2f}, backlog alone {cell.idle_cpu * 1000 / posts:.2f})" if backlog else ""
    return (
        f"{condition:<15} {mix:<15} {statistics.median(cell.ms):7.1f} {_percentile(cell.ms, 0.99):7.1f} "
        f"{max(cell.ms):7.1f} {posts:6d} {cpu * 1000 / posts:8.2f}{extra}"
    )


def _backlog(product: Product, techs: int) -> list[int]:
    """``techs`` linked techs, each with one new appointment in the mirror (their first sync will
    create it in Outlook). Returns their ids."""
    from sync.budget import RequestBudget
    from sync.poller import poll_once

    fleet = [tech.syncro_user_id for tech in seed_fleet(product, techs)]
    product.sim("syncro").seed({"appointments": [appointment(tech, "Backlog", days=2) for tech in fleet]})
    import services

    deps, storage = services.sync_deps(), product.storage()

    class KeptBack:  # the poll's own jobs: queued by the bench when the backlog is to start
        def enqueue(self, job: SyncJob, *, delay_seconds: int = 0) -> None:
            pass

    report = poll_once(
        client=deps.syncro,
        mirror=storage.mirror,
        cursors=storage.cursors,
        queue=KeptBack(),  # type: ignore[arg-type]
        budget=RequestBudget(100_000),
        clock=lambda: datetime.now(UTC),
        techs=fleet,
        zone=deps.account_zone(),
        slice_days=200,
    )
    assert len(report.changed_techs) == len(fleet), report
    return fleet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--techs", type=int, default=150, help="sync jobs in the backlog (one per linked tech)")
    parser.add_argument("--graph-latency", type=float, default=0.1, help="seconds the Graph simulator takes")
    parser.add_argument("--mix", action="append", default=[], help="older mixes to add (quiet only)")
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return asyncio.run(_client_loop(args.client))
    n = args.concurrency
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        product = start_fleet_product(stack, Path(tmp), graph_latency=args.graph_latency)
        # As many subscription rows as a tenant with the backlog's techs has (the webhook keeps a
        # copy of them all); "distinct techs" needs one per POST.
        rows = 10 + args.techs + (n * (args.rounds + 1) if "distinct techs" in args.mix else 0)
        subs = _subscriptions(product.storage(), rows, FIRST_TECH)
        fleet = _backlog(product, args.techs)
        host = start_host_process(product, Path(tmp), name="ack")  # after the rows: its copy holds them
        stack.callback(host.stop)
        client = _ChildClient(n)
        stack.callback(client.close)
        bench = _Bench(product, host, client, subs)
        bench.client.round(bench.url, bench.bodies("known", 0, n))  # warm-up: connections, tables, caches
        bench.client.round(bench.url, bench.bodies("unknown", 0, n))
        bench.drained()

        load = " ".join(f"{value:.2f}" for value in os.getloadavg())
        print(f"{n} concurrent notification POSTs per round from a child process, {args.rounds} rounds per mix")
        print(f"machine: {os.cpu_count()} CPUs, load average {load} (other work on it slows every figure)")
        print(f"{rows} subscription rows; host process {host.process.pid}")
        quiet: dict[str, _Cell] = {}
        for mix in ("known", "unknown", *args.mix):
            cell = quiet.setdefault(mix, _Cell())
            for r in range(args.rounds):
                bench.round(bench.bodies(mix, r, n), cell, idle_window=False)
                bench.drained()

        storage = product.storage()
        began = datetime.now(UTC).isoformat()
        for tech in fleet:
            storage.sync_queue.enqueue(SyncJob(tech, "backlog", began))
        time.sleep(2.0)  # the host is taking jobs
        beside: dict[str, _Cell] = {}
        depths = {}
        for mix in ("known", "unknown"):
            before = storage.sync_queue.depth()
            cell = beside.setdefault(mix, _Cell())
            for r in range(args.rounds):
                bench.round(bench.bodies(mix, r, n), cell, idle_window=True)
            depths[mix] = (before, storage.sync_queue.depth())
        bench.drained(timeout=600)
        synced = sum(1 for line in host.log_lines() if line.get("reason") == "backlog")
        load = " ".join(f"{value:.2f}" for value in os.getloadavg())

        print(
            f"\n{'condition':<15} {'ids':<15} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'POSTs':>6} {'host CPU ms/POST':>8}"
        )
        for mix, cell in quiet.items():
            print(_row("quiet", mix, cell, backlog=False))
        for mix, cell in beside.items():
            print(_row("beside backlog", mix, cell, backlog=True))
        print(
            f"\nbacklog: {len(fleet)} sync jobs queued {began[11:19]} UTC, Graph latency {args.graph_latency} s; "
            f"queue depth before/after each mix: "
            + ", ".join(f"{mix} {a} -> {b}" for mix, (a, b) in depths.items())
            + f"; backlog jobs logged by the host: {synced}"
        )
        print(f"load average after: {load}")
        targets = {"quiet": 50.0, "beside backlog": 100.0}
        for condition, cells in (("quiet", quiet), ("beside backlog", beside)):
            for mix in ("known", "unknown"):
                p99 = _percentile(cells[mix].ms, 0.99)
                verdict = "met" if p99 < targets[condition] else "NOT met"
                print(f"target {condition}, {mix}: p99 {p99:.1f} ms < {targets[condition]:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
