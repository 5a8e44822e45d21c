"""`docs/simulators.md` lists every simulator setting with its default, so a reader can tell what
the simulators assume about the real services and how to change it."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from local.sims.graph.settings import GraphSettings
from local.sims.identity.settings import IdentitySettings
from local.sims.syncro.settings import SyncroSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulators.md"
SETTINGS = {"identity": IdentitySettings, "graph": GraphSettings, "syncro": SyncroSettings}


def _table_rows(section: str) -> dict[str, str]:
    """Setting name -> default cell, from the rows of the section's settings table."""
    text = DOC.read_text()
    match = re.search(rf"^### {section} settings$(.*?)(?=^#|\Z)", text, flags=re.M | re.S | re.I)
    assert match, f"docs/simulators.md has no '### {section} settings' section"
    rows = {}
    for line in match.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1]
    return rows


def _doc_default(value: object) -> str:
    return f"`{json.dumps(value)}`"


@pytest.mark.parametrize("sim", sorted(SETTINGS))
def test_every_setting_is_documented_with_its_current_default(sim: str) -> None:
    rows = _table_rows(sim)
    defaults = dataclasses.asdict(SETTINGS[sim]())
    missing = sorted(set(defaults) - set(rows))
    assert not missing, f"settings missing from docs/simulators.md ({sim}): {missing}"
    stale = sorted(set(rows) - set(defaults))
    assert not stale, f"docs/simulators.md lists settings that no longer exist ({sim}): {stale}"
    wrong = {
        name: (rows[name], _doc_default(value)) for name, value in defaults.items() if rows[name] != _doc_default(value)
    }
    assert not wrong, f"documented defaults differ from the code ({sim}): {wrong}"
