"""The ICS feed's cost in-process: render time and bytes for 500, 2,000 and 5,000 appointments,
and the 304 path. Storage is left out (the mirror entries are built in memory): this measures
what the app itself adds to a request.

Cases, each the median of ``--runs``:
- cold: a fresh process's first render (no event bytes cached): every VEVENT built by icalendar.
- one changed: the next poll changed one appointment; the other events' bytes come from the cache.
- 304: an unchanged mirror and a client with the current ETag (fingerprint, feed cache, decision).
Targets: 2,000 appointments under 100 ms, 304 under 5 ms.

    .venv/bin/python bench/ics_render.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ics.feed import FeedCache, rendered_feed
from ics.http import feed_response, last_modified
from ics.render import feed_window
from storage.mirror import MirrorEntry

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
        made.append(
            MirrorEntry(TECH, appointment["id"], appointment["updated_at"], "h", appointment, NOW, etag=f"W/{index}")
        )
    return made


def median_ms(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def render(mirror: list[MirrorEntry], cache: FeedCache) -> bytes:
    return rendered_feed(mirror, syncro_user_id=TECH, zone=ZONE, window=WINDOW, base_url=BASE, cache=cache).body


def measure(count: int, runs: int) -> tuple[int, float, float, float, float]:
    """bytes, cold ms, one-changed ms, 304 ms, cached 200 ms for ``count`` appointments."""
    mirror = entries(count)
    body = render(mirror, FeedCache())
    cold = median_ms(lambda: render(mirror, FeedCache()), runs)

    warm_cache = FeedCache()
    render(mirror, warm_cache)
    edits = iter(range(1, 10_000))

    def one_changed() -> bytes:
        n = next(edits)
        first = mirror[0]
        edited = {**first.appointment, "summary": f"edit {n}", "updated_at": f"2026-03-01T18:{n % 60:02d}:00Z"}
        return render([replace(first, appointment=edited, etag=f"W/edit{n}"), *mirror[1:]], warm_cache)

    changed_ms = median_ms(one_changed, runs)

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
    not_modified = median_ms(lambda: conditional(etag), max(runs, 50))
    cached_200 = median_ms(lambda: conditional(None), max(runs, 50))
    return len(body), cold, changed_ms, not_modified, cached_200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    print(f"ICS feed, in-process, median of {runs} runs (targets: 2,000 under 100 ms; 304 under 5 ms)")
    print(f"{'appointments':>12} {'bytes':>10} {'cold ms':>9} {'1 changed ms':>13} {'304 ms':>8} {'200 cached ms':>14}")
    for count in (500, 2000, 5000):
        size, cold, changed, not_modified, cached = measure(count, runs)
        print(f"{count:>12,} {size:>10,} {cold:>9.1f} {changed:>13.1f} {not_modified:>8.2f} {cached:>14.2f}")


if __name__ == "__main__":
    main()
