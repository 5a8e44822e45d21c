"""The ICS feed's cost in-process: render time and bytes for 500, 2,000 and 5,000 appointments,
and the 304 path. The storage round trip is left out (the mirror rows are built in memory, in
the form `MirrorStore.list_entries` returns them): this measures what the app itself adds.

Cases, each the median of ``--runs``:
- first ever: no event's bytes exist anywhere yet (the first request after a deployment, or
  for appointments no feed request has seen): every VEVENT built by icalendar, in a fresh process.
- cold: a fresh process (a new instance) whose caches are empty, reading rows that hold the
  event bytes an earlier request stored (`ics.fragments`): the steady state of a new instance.
  Timed from the rows in hand to the body and ETag: spans, keys, fingerprint, join, SHA-256.
  Module imports are not included; decoding the rows (JSON, done by the storage layer for any
  reader of the mirror) is shown in its own column.
- warm, 1 changed: an instance that served the feed before; the next poll changed one
  appointment (icalendar renders that one, the rest come from the instance's cache).
- 304: an unchanged mirror and a client with the current ETag (fingerprint, feed cache, decision).
- 200 cached: the same without If-None-Match.
Targets: 2,000 appointments under 100 ms, 304 under 5 ms.

    .venv/bin/python bench/ics_render.py [--runs 5]
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ics.feed import CALENDAR_NAME, FeedCache, rendered_feed
from ics.feed_http import feed_response, last_modified
from ics.fragments import FragmentCache, assemble
from ics.render import feed_window

# The mirror's own row mapping: the entries are exactly what MirrorStore.list_entries yields.
from storage.mirror import MirrorEntry, _from_entity, _to_entity

ZONE = ZoneInfo("America/Los_Angeles")
NOW = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
WINDOW = feed_window(NOW, days_back=60, days_ahead=60)
BASE = "https://sync.example.com"
TECH = 5560138523


def entries(count: int) -> list[MirrorEntry]:
    """``count`` appointments spread over the window, with the text a real account has."""
    made = []
    for index in range(count):
        start = NOW - timedelta(days=59) + timedelta(minutes=(index * 97) % (118 * 24 * 60))
        all_day = index % 25 == 0
        appointment = {
            "id": 5_000_000_000 + index,
            "summary": f"Onsite: replace switch, rack {index % 40}; check UPS",
            "description": "Customer reports intermittent outages.\nBring spare SFPs, console cable.\n" * 2,
            "location": f"{100 + index % 900} Main Street, Suite {index % 12}, Springfield",
            "start_at": start.astimezone(ZONE).isoformat(timespec="milliseconds"),
            "end_at": (start + timedelta(hours=1 + index % 3)).astimezone(ZONE).isoformat(timespec="milliseconds"),
            "updated_at": (NOW - timedelta(days=index % 90)).isoformat(timespec="milliseconds"),
            "all_day": all_day,
            "customer": {"business_name": f"Customer {index % 300} LLC"},
            "ticket": {"number": str(10_000 + index), "subject": "Network down"},
        }
        made.append(MirrorEntry(TECH, appointment["id"], appointment["updated_at"], "h", appointment, NOW))
    return made


def rows(mirror: list[MirrorEntry], *, with_fragments: bool) -> list[dict]:
    """The table entities for ``mirror``; with the event bytes a served feed stores in them."""
    if not with_fragments:
        return [_to_entity(entry) for entry in mirror]
    made = assemble(mirror, zone=ZONE, calendar_name=CALENDAR_NAME, window=WINDOW, base_url=BASE, cache=FragmentCache())
    assert len(made.fresh) == len(mirror), "every event of the bench is in the window"
    # What MirrorStore.attach_fragment writes.
    return [
        _to_entity(replace(entry, feed_fragment=fragment, feed_fragment_key=key)) for entry, key, fragment in made.fresh
    ]


def render(mirror: list[MirrorEntry], cache: FeedCache) -> bytes:
    return rendered_feed(mirror, syncro_user_id=TECH, zone=ZONE, window=WINDOW, base_url=BASE, cache=cache).body


def median_ms(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def child(path: str) -> None:
    """In a fresh process: decode the rows, then the first render; print both times in ms."""
    with open(path, "rb") as source:
        entities = pickle.load(source)
    started = time.perf_counter()
    mirror = [_from_entity(entity, f'W/"{index}"') for index, entity in enumerate(entities)]
    decoded = time.perf_counter()
    feed = rendered_feed(mirror, syncro_user_id=TECH, zone=ZONE, window=WINDOW, base_url=BASE, cache=FeedCache())
    done = time.perf_counter()
    print((decoded - started) * 1000, (done - decoded) * 1000, len(feed.body), feed.etag)


def fresh_process(entities: list[dict], runs: int) -> tuple[float, float, int, str]:
    """Median decode ms and first-render ms over ``runs`` fresh interpreters; bytes and ETag."""
    with tempfile.NamedTemporaryFile(suffix=".pickle") as handle:
        pickle.dump(entities, handle)
        handle.flush()
        results = []
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, __file__, "--child", handle.name], capture_output=True, text=True, check=True
            ).stdout.split()
            results.append((float(out[0]), float(out[1]), int(out[2]), out[3]))
    etags = {etag for *_, etag in results}
    assert len(etags) == 1
    return (
        statistics.median(r[0] for r in results),
        statistics.median(r[1] for r in results),
        results[0][2],
        etags.pop(),
    )


def measure(count: int, runs: int) -> dict[str, float]:
    mirror = entries(count)
    bare = rows(mirror, with_fragments=False)
    stored = rows(mirror, with_fragments=True)
    _, first_ever, size, first_etag = fresh_process(bare, max(1, runs // 2))
    decode, cold, cold_size, cold_etag = fresh_process(stored, runs)
    assert (size, first_etag) == (cold_size, cold_etag), "stored event bytes give the same feed"

    warm_cache = FeedCache()
    render(mirror, warm_cache)
    edits = iter(range(1, 10_000))

    def one_changed() -> bytes:
        n = next(edits)
        first = mirror[0]
        edited = {**first.appointment, "summary": f"edit {n}", "updated_at": f"2026-03-01T18:{n % 60:02d}:00Z"}
        return render([replace(first, appointment=edited), *mirror[1:]], warm_cache)

    changed = median_ms(one_changed, runs)

    cache = FeedCache()
    etag = rendered_feed(mirror, syncro_user_id=TECH, zone=ZONE, window=WINDOW, base_url=BASE, cache=cache).etag

    def conditional(if_none_match: str | None) -> int:
        # What serve_feed does after storage: fingerprint, feed cache, the HTTP decision.
        current = rendered_feed(mirror, syncro_user_id=TECH, zone=ZONE, window=WINDOW, base_url=BASE, cache=cache)
        return feed_response(
            current.body,
            etag=current.etag,
            modified=last_modified(current.newest_change, NOW),
            method="GET",
            if_none_match=if_none_match,
        ).status

    assert conditional(etag) == 304 and conditional(None) == 200
    return {
        "bytes": size,
        "first": first_ever,
        "decode": decode,
        "cold": cold,
        "changed": changed,
        "304": median_ms(lambda: conditional(etag), max(runs, 50)),
        "cached": median_ms(lambda: conditional(None), max(runs, 50)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments.child)
        return
    runs = arguments.runs
    print(f"ICS feed, in-process, median of {runs} runs (targets: 2,000 under 100 ms; 304 under 5 ms)")
    header = ("appointments", "bytes", "first ever", "rows decode", "cold", "warm 1 changed", "304", "200 cached")
    print(" ".join(f"{name:>14}" for name in header) + "   (ms)")
    for count in (500, 2000, 5000):
        m = measure(count, runs)
        figures = (m["first"], m["decode"], m["cold"], m["changed"], m["304"], m["cached"])
        print(f"{count:>14,} {m['bytes']:>14,} " + " ".join(f"{value:>14.2f}" for value in figures))


if __name__ == "__main__":
    main()
