"""Table and Queue Storage for the app: one `StorageAccount`, one repository per table family.

Rows that two function instances can race on are written with ETags; a lost race raises
`ConcurrencyConflict`. See `storage.errors` for the error tree.
"""

from storage.account import StorageAccount
from storage.errors import ConcurrencyConflict, LeaseHeld, NotFound, StorageError, StorageUnavailable, ValueTooLarge

__all__ = [
    "ConcurrencyConflict",
    "LeaseHeld",
    "NotFound",
    "StorageAccount",
    "StorageError",
    "StorageUnavailable",
    "ValueTooLarge",
]
