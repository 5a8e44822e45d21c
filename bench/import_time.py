"""Cold import of function_app, as the Functions worker does on a cold start.

Runs ``python -X importtime -c "import function_app"`` in fresh processes and prints the
cumulative import time of ``function_app`` (and of ``azure.functions`` inside it), plus the
slowest modules of the median run. The target is under 200 ms on the project's 2-core machine.

    .venv/bin/python bench/import_time.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_run() -> dict[str, int]:
    """Cumulative microseconds per module for one fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import function_app"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    cumulative: dict[str, int] = {}
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cum, name = (part.strip() for part in line.split(":", 1)[1].split("|"))
        if cum.isdigit():
            cumulative[name] = int(cum)
    return cumulative


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    one_run()  # warm the page cache, as a second cold start in Azure would find it
    runs = [one_run() for _ in range(args.runs)]
    totals = [run["function_app"] / 1000 for run in runs]
    sdk = [run.get("azure.functions", 0) / 1000 for run in runs]
    median_run = sorted(runs, key=lambda r: r["function_app"])[len(runs) // 2]
    heavy = ("azure.data.tables", "azure.storage.queue", "msal", "requests", "icalendar", "azure.identity")
    loaded = [name for name in heavy if name in median_run]
    print(f"import function_app over {args.runs} fresh interpreters (python {sys.version.split()[0]})")
    print(
        f"  total:           median {statistics.median(totals):6.1f} ms   min {min(totals):6.1f}   max {max(totals):6.1f}"
    )
    print(f"  azure.functions: median {statistics.median(sdk):6.1f} ms")
    print(f"  our own modules: median {statistics.median(t - s for t, s in zip(totals, sdk, strict=True)):6.1f} ms")
    print(f"  heavy libraries imported eagerly: {', '.join(loaded) if loaded else 'none'}")
    print("  target: under 200 ms ->", "met" if statistics.median(totals) < 200 else "NOT met")


if __name__ == "__main__":
    main()
