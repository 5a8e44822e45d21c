"""The fast state machines run the product's real actions, so a broken action fails them.

Each test breaks one action the way a careless edit could, runs the two-way machine without
shrinking (the first failing example is proof enough) and expects it to fail: if it ever passes,
the machine no longer reaches the action code the product runs.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from sync.actions import CreateOn, DeleteOn, UpdateOn
from sync.sides import PairStore, Sides
from tests.sync.test_convergence import TwoWay

QUICK = settings(
    max_examples=200,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.generate,),
    report_multiple_bugs=False,
    suppress_health_check=list(HealthCheck),
)


def _fails(monkeypatch: pytest.MonkeyPatch, action: type, broken) -> None:
    monkeypatch.setattr(action, "run", broken)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(TwoWay, settings=QUICK)


def test_an_update_that_drops_the_location_fails_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    real = UpdateOn.run

    def drops_location(self: UpdateOn, sides: Sides, store: PairStore) -> int:
        return real(replace(self, content=replace(self.content, location="")), sides, store)

    _fails(monkeypatch, UpdateOn, drops_location)


def test_a_create_that_skips_its_intent_row_fails_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the intent written first, a create that fails halfway is made again: a duplicate."""
    real = CreateOn.run

    def no_intent(self: CreateOn, sides: Sides, store: PairStore) -> int:
        save = store.save
        store.save = lambda pair, *, state: None if state.value == "intent" else save(pair, state=state)  # type: ignore[method-assign]
        try:
            return real(self, sides, store)
        finally:
            store.save = save  # type: ignore[method-assign]

    _fails(monkeypatch, CreateOn, no_intent)


def test_a_delete_that_keeps_nothing_in_the_recycle_bin_fails_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    real = DeleteOn.run

    def no_bin(self: DeleteOn, sides: Sides, store: PairStore) -> int:
        bin_entry, unbin = store.bin, store.unbin
        store.bin, store.unbin = (lambda **entry: "none"), (lambda entry_id: None)  # type: ignore[method-assign]
        try:
            return real(self, sides, store)
        finally:
            store.bin, store.unbin = bin_entry, unbin  # type: ignore[method-assign]

    _fails(monkeypatch, DeleteOn, no_bin)
