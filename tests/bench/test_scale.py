"""`bench/scale.py` at a tiny size, so the scale bench keeps running: 3 techs with 2 appointments
each, the poll timer every 5 s. It starts Azurite, the simulators and two host processes (one
after the other), hence the ``stack`` mark. Wall-clock figures are printed, never asserted."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _scale_module():
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "bench" / "scale.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_growth_is_read_as_an_exponent_of_the_size() -> None:
    growth = _scale_module()._growth
    assert growth(10, 30, 3) == "x3.00 (k=1.00, linear)"
    assert growth(10, 90, 3).endswith("WORSE than linear)")
    assert growth(10, 10, 3).endswith("sub-linear)")
    assert growth(0, 5, 3) == "0 -> 5"


@pytest.mark.stack
@pytest.mark.timeout(600)
def test_a_tiny_scale_run_prints_every_figure_and_the_growth_table() -> None:
    result = subprocess.run(
        [sys.executable, "bench/scale.py", "--poll-schedule", "*/5 * * * * *", "--timeout", "240"],
        cwd=ROOT,
        env={**os.environ, "SCALE_SIZES": "2,4", "SCALE_APPOINTMENTS": "2"},
        capture_output=True,
        text=True,
        timeout=580,
    )
    out = result.stdout
    assert result.returncode == 0, f"{out[-3000:]}\n{result.stderr[-3000:]}"
    for size in (2, 4):
        assert f"== {size} techs, 2 appointments each ==" in out
        assert f"in Outlook after the initial sync: {size * 2} of {size * 2} appointments" in out
    for figure in ("Syncro requests", "Graph requests", "storage calls", "host CPU", "peak resident", "queue: most"):
        assert out.count(figure) >= 4, figure  # both phases of both sizes
    busiest = [int(n) for n in re.findall(r"whole run \(simulator's count\): (\d+)", out)]
    assert len(busiest) == 2 and max(busiest) < 180, busiest
    assert "growth as techs grow (appointments 2):" in out
    assert re.search(r"^\| reconcile Graph requests \| \d+ \| \d+ \| x", out, re.M), out[-2000:]
