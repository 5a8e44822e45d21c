"""sync/account_zone.py: the account's zone is read once an hour, kept through Syncro's failures,
and asked again a few minutes after one, never on every call."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from sync.account_zone import ZONE_RETRY_SECONDS, ZONE_TTL_SECONDS, AccountZones

LA = ZoneInfo("America/Los_Angeles")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_zone_is_read_once_an_hour_and_kept_when_syncro_fails() -> None:
    clock, calls = Clock(), []

    def syncro() -> str:
        calls.append(1)
        return "America/Los_Angeles"

    def down() -> str:
        calls.append(1)
        raise ConnectionError("Syncro is down")

    zones = AccountZones(clock)
    assert zones.get("acme", syncro) == LA
    assert zones.get("acme", down) == LA and len(calls) == 1  # cached for the hour
    clock.now += ZONE_TTL_SECONDS
    assert zones.get("acme", down) == LA and len(calls) == 2  # stale beats none
    assert zones.get("acme", down) == LA and len(calls) == 2  # and Syncro is not asked per call
    clock.now += ZONE_RETRY_SECONDS
    assert zones.get("acme", lambda: "Europe/Berlin") == ZoneInfo("Europe/Berlin")


def test_without_a_zone_read_the_failure_is_raised_until_the_retry() -> None:
    clock, calls = Clock(), []

    def down() -> str:
        calls.append(1)
        raise ConnectionError("Syncro is down")

    zones = AccountZones(clock)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            zones.get("acme", down)
    assert len(calls) == 1
    clock.now += ZONE_RETRY_SECONDS
    assert zones.get("acme", lambda: "America/Los_Angeles") == LA
    zones.clear()
    with pytest.raises(ConnectionError):
        zones.get("acme", down)
