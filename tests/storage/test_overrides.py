"""The admin's overrides (Microsoft account -> Syncro user) on Azurite."""

from __future__ import annotations

import pytest

from storage import NotFound, StorageAccount
from storage.overrides import OverrideStore

BIG = 5_560_138_523  # above 2^32, the size of a live Syncro account's ids


@pytest.fixture
def overrides(account: StorageAccount) -> OverrideStore:
    return OverrideStore(account)


def test_an_override_with_a_large_id_round_trips(overrides: OverrideStore) -> None:
    overrides.set_override("tina@acme.test", BIG)
    assert overrides.all_overrides() == {"tina@acme.test": BIG}
    assert overrides.get_override("tina@acme.test") == BIG


def test_emails_are_keyed_trimmed_and_lower_case(overrides: OverrideStore) -> None:
    overrides.set_override("  Tina@ACME.test ", BIG)
    assert overrides.all_overrides() == {"tina@acme.test": BIG}
    assert overrides.get_override("TINA@acme.TEST") == BIG


def test_setting_again_replaces(overrides: OverrideStore) -> None:
    overrides.set_override("tina@acme.test", 1)
    overrides.set_override("Tina@Acme.test", BIG)
    assert overrides.all_overrides() == {"tina@acme.test": BIG}


def test_remove_then_remove_again(overrides: OverrideStore) -> None:
    overrides.set_override("tina@acme.test", BIG)
    overrides.set_override("joe@acme.test", 1_300_101)
    overrides.remove_override("TINA@acme.test")
    overrides.remove_override("tina@acme.test")  # already gone: still fine
    assert overrides.all_overrides() == {"joe@acme.test": 1_300_101}
    with pytest.raises(NotFound):
        overrides.get_override("tina@acme.test")


def test_keys_with_characters_tables_forbid_round_trip(overrides: OverrideStore) -> None:
    odd = "o'brien/#?%x@acme.test"
    overrides.set_override(odd, BIG)
    assert overrides.all_overrides() == {odd: BIG}


def test_object_ids_can_be_keys(overrides: OverrideStore) -> None:
    overrides.set_override("AAAAAAAA-0000-0000-0000-000000000001", BIG)
    assert overrides.all_overrides() == {"aaaaaaaa-0000-0000-0000-000000000001": BIG}


def test_bad_input_changes_nothing(overrides: OverrideStore) -> None:
    with pytest.raises(ValueError):
        overrides.set_override("   ", BIG)
    with pytest.raises(TypeError):
        overrides.set_override("tina@acme.test", "5560138523")  # type: ignore[arg-type]
    assert overrides.all_overrides() == {}


def test_an_empty_table_has_no_overrides(overrides: OverrideStore) -> None:
    assert overrides.all_overrides() == {}
