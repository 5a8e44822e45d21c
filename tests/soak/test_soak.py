"""The soak, as CI runs it: `bench/soak.py` for 60 seconds of chaos (users on both sides with
timed, all-day, two-tech and recurring appointments, every simulator's faults and storage's, the
web front and both host processes killed and restarted), then its quiet, in a process of its
own. It must end with its counts line, all four problem counts zero, and exit 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(
    r"^soak: techs=(\d+) edits=(\d+) faults=(\d+) kills=(\d+) "
    r"duplicates=(\d+) lost=(\d+) unintended_deletions=(\d+) unconverged=(\d+)$"
)


@pytest.mark.timeout(1800)  # 60 s of chaos, then minutes of quiet (a killed host's lease lasts one)
def test_a_60_second_soak_ends_converged_with_nothing_duplicated_lost_or_deleted() -> None:
    env = {**os.environ, "SOAK_SECONDS": "60"}
    result = subprocess.run(
        [sys.executable, "bench/soak.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1700
    )
    lines = result.stdout.strip().splitlines()
    found = LINE.match(lines[-1]) if lines else None
    assert found, f"no counts line:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    techs, edits, faults, kills, *problems = (int(n) for n in found.groups())
    # the first kill of each process (web front, two hosts) comes within 40 s of the chaos starting
    assert techs >= 3 and edits > 0 and faults > 0 and kills >= 3, found.group(0)
    assert problems == [0, 0, 0, 0], f"{found.group(0)}\n{result.stderr[-6000:]}"
    assert result.returncode == 0, result.stderr[-4000:]
