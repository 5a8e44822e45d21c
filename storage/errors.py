"""Storage errors, translated once at the boundary from azure-core's exceptions.

StorageError                  root: anything storage could not do
├── NotFound                  get_ of a row that does not exist
├── ConcurrencyConflict       a lost race: the row changed (ETag) or already exists
│   └── LeaseHeld             another holder owns the lease until ``expires_at``
├── ValueTooLarge             a value does not fit in one table row (1 MiB)
└── StorageUnavailable        the account cannot be reached or refused our credentials
"""

from __future__ import annotations

from datetime import datetime


class StorageError(Exception):
    """Root of every storage failure."""


class NotFound(StorageError):
    """Raised by ``get_`` methods when the row does not exist."""

    def __init__(self, table: str, key: str) -> None:
        super().__init__(f"no row {key!r} in table {table}")
        self.table = table
        self.key = key


class ConcurrencyConflict(StorageError):
    """Raised when a conditional write loses a race: re-read the row and decide again."""

    def __init__(self, table: str, key: str, detail: str = "changed since it was read") -> None:
        super().__init__(f"row {key!r} in table {table} {detail}")
        self.table = table
        self.key = key


class LeaseHeld(ConcurrencyConflict):
    """Raised by acquire when another holder owns a live lease; try again after ``expires_at``."""

    def __init__(self, name: str, *, holder: str, expires_at: datetime) -> None:
        super().__init__("leases", name, f"is leased by {holder} until {expires_at.isoformat()}")
        self.holder = holder
        self.expires_at = expires_at


class ValueTooLarge(StorageError):
    """Raised when a value exceeds what one table row can hold."""


class StorageUnavailable(StorageError):
    """Raised when the storage account cannot be reached (network, DNS, auth)."""
