"""The product's Syncro side of the actions (`sync.syncro_side`) against the Syncro simulator over
real TLS and Azurite: its precondition, the re-read Syncro offers in place of If-Match."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from settings import StorageSettings, SyncOptions
from storage import StorageAccount
from storage.errors import NotFound as NotStored
from sync.errors import PreconditionFailed
from sync.mapping import appointment_from_syncro
from sync.model import Side
from sync.syncro_side import SyncroAppointments
from tests.sims.test_syncro import TINA, Stack
from tests.sync.client_support import Sleeps, syncro_client_for
from tests.sync.test_syncro_appointments_client import seed_march

pytest_plugins = ["tests.sims.test_syncro", "tests.sync.client_support"]

ZONE = ZoneInfo("America/Los_Angeles")


@pytest.fixture
def storage(storage_connection_string: str) -> StorageAccount:
    prefix = "s" + uuid.uuid4().hex[:10]
    return StorageAccount(StorageSettings(storage_connection_string, None, None, table_prefix=prefix))


def test_a_write_to_an_appointment_deleted_since_the_plan_is_stale_not_an_error(
    stack: Stack, sleeps: Sleeps, storage: StorageAccount
) -> None:
    """The dispatcher deleted it between the plan and our write: the precondition fails (counted
    as stale by the executor, the next plan sees it gone), it is forgotten from the tech's mirror,
    and nothing is written."""
    (appointment_id,) = seed_march(stack, 1)
    with syncro_client_for(stack, sleeps) as client:
        side = SyncroAppointments(
            tech=TINA,
            client=client,
            storage=storage,
            records={},
            zone=ZONE,
            clock=lambda: datetime.now(UTC),
            options=SyncOptions(),
        )
        record = client.get_appointment(appointment_id)
        side.mirror_record(record)
        content = appointment_from_syncro(record, zone=ZONE)
        client.delete_appointment(appointment_id)
        with pytest.raises(PreconditionFailed):
            side.update(str(appointment_id), content, expected_version=str(record["updated_at"]), origin=Side.OUTLOOK)
        with pytest.raises(PreconditionFailed):
            side.current(str(appointment_id), str(record["updated_at"]))
    with pytest.raises(NotStored):
        storage.mirror.get_entry(TINA, appointment_id)
    assert str(appointment_id) not in side.records
