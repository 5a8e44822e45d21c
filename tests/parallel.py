"""How `make test` deals the suite to its pytest-xdist workers (``-n N --dist loadfile``), and which
tests `make check` runs (those that need no stack).

Workers are processes: each starts its own Azurite (session fixture, free ports), its own
simulators and hosts (every server binds port 0), and writes under its own ``tmp_path``; they
share nothing but the machine.

- **One file, one worker.** A test file is dealt whole, so its module-scoped stack starts once.
  The files in `SPLIT` are the exception: their tests stand alone (each is one operation or one
  case on a module stack it does not change for the others) and together take minutes, so they
  are dealt in parts, each part starting the module's stack once on its worker.
- **Longest first.** Files are dealt in `LONGEST_FIRST` order, then in collection order; a worker
  holds two files at a time and takes the next when one is done. Started last, a three-minute
  file would end the run alone. Measured with ``--durations`` (docs/testing.md says how).
"""

from __future__ import annotations

from typing import Any

import pytest

# Modules, longest first: seconds each took in a 3-worker `make test` on our 2-core machine with
# other work beside it (its --durations, summed per file).
LONGEST_FIRST = (
    "tests/soak/test_soak.py",  # 60 s of chaos, then minutes of quiet while killed hosts' leases end
    "tests/realtime/test_shared_budget.py",  # 152: two hosts against one budget for 150 s of wall clock
    "tests/sync/test_engine_convergence.py",  # 118 at CONVERGENCE_EXAMPLES=50
    "tests/contract/test_fuzz.py",  # 400, in SPLIT parts
    "tests/app/test_status_pages.py",  # 62
    "tests/sync/test_engine_outside.py",  # 55
    "tests/realtime/test_end_to_end.py",  # 93 to start its stack, then about 50: whole (in two parts it started twice)
    "tests/sync/test_engine_scenarios.py",  # 47
    "tests/realtime/test_jobs.py",  # 38
    "tests/browser/test_linking_browser.py",  # 36
    "tests/ics/test_render.py",  # 32
    "tests/browser/test_first_day.py",  # 26
    "tests/realtime/test_graph_webhooks.py",  # 25
    "tests/infra/test_template.py",  # 24
    "tests/infra/test_azure_types.py",  # 22
    "tests/sync/test_convergence.py",  # 20
)

# Files dealt in this many parts (see above: tests that stand alone on their module's stack).
SPLIT = {
    "tests/contract/test_fuzz.py": 4,  # one test per operation of docs/openapi.yaml
}

# A test that uses any of these fixtures needs a stack (Azurite, a simulator, a host, a browser).
STACK_FIXTURES = frozenset({"azurite", "storage_connection_string", "tls_files", "served_app"})
# Files that start a stack of their own without those fixtures (a subprocess, a checkov run).
STACK_FILES = frozenset(
    {
        "tests/test_stack.py",  # `make run` as a process
        "tests/soak/test_soak.py",  # bench/soak.py as processes: Azurite, simulators, two hosts, the web front
        "tests/app/test_local_host_cli.py",  # `python -m local.host` as a process
        "tests/infra/test_template.py",  # checkov, from .venv-tools (`make tools`)
    }
)


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def rank(nodeid: str) -> int:
    path = file_of(nodeid)
    return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)


def units(collection: list[str]) -> dict[str, str]:
    """Each test's unit: its file, or for a file in `SPLIT` the part it is dealt in (its tests dealt
    round the parts in collection order, so the parts are even)."""
    seen: dict[str, int] = {}
    unit = {}
    for nodeid in collection:
        path = file_of(nodeid)
        if path in SPLIT:
            n = seen[path] = seen.get(path, -1) + 1
            unit[nodeid] = f"{path}#{n % SPLIT[path]}"
        else:
            unit[nodeid] = path
    return unit


LONGEST_FIRST_KEY = "tests_longest_first"  # in the workers' workerinput, set by `configure_node`


def configure_node(node: Any) -> None:
    """Tell a worker to sort as `make_scheduler` deals (xdist gives workers ``--dist no``)."""
    node.workerinput[LONGEST_FIRST_KEY] = node.config.getoption("dist") == "loadfile"


def in_dealt_order(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put ``items`` in the order `make_scheduler` deals them: `LONGEST_FIRST`, then as collected.
    Done in each worker (they must all report the same collection, and the scheduler names tests
    by their place in it), and only under ``--dist loadfile``; a serial run keeps pytest's order."""
    if getattr(config, "workerinput", {}).get(LONGEST_FIRST_KEY):
        items.sort(key=lambda item: rank(item.nodeid))  # stable


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False  # the workers' order (`in_dealt_order`), not by number of tests

    class FileScheduling(LoadScopeScheduling):
        """loadfile's scheduling with `units` for scopes."""

        _units: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self._units is None:
                self._units = units(list(self.collection or []))
            return self._units.get(nodeid) or file_of(nodeid)

    return FileScheduling(config, log)


def needs_stack(item: pytest.Item) -> bool:
    return bool(STACK_FIXTURES & set(getattr(item, "fixturenames", ()))) or file_of(item.nodeid) in STACK_FILES
