from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from settings import StorageSettings
from storage import StorageAccount


class FakeClock:
    """A clock tests move by hand (leases, flow expiry)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def account(storage_connection_string: str, clock: FakeClock) -> StorageAccount:
    """A StorageAccount on Azurite whose tables and queue are private to this test."""
    prefix = "t" + uuid.uuid4().hex[:10]
    settings = StorageSettings(storage_connection_string, None, None, table_prefix=prefix)
    return StorageAccount(settings, clock=clock, sync_queue_name=f"{prefix}-jobs")
