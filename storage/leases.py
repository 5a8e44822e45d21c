"""Per-technician leases, so two function instances never sync the same tech at once.

A lease is a row with a holder and an expiry, written with ETags: acquiring a free or expired
lease and renewing one's own are conditional writes, so exactly one racer wins. A crashed
holder's lease simply expires. Holders are opaque strings (e.g. ``"<host>:<invocation id>"``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from storage.errors import ConcurrencyConflict, LeaseHeld, NotFound
from storage.keys import encode_key

if TYPE_CHECKING:
    from storage.table import Tables

_PARTITION = "lease"


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    expires_at: datetime
    etag: str


class LeaseStore:
    def __init__(self, account: Tables) -> None:
        self._table = account.table("leases")
        self._clock = account.clock

    def _entity(self, name: str, holder: str, expires_at: datetime) -> dict:
        return {"PartitionKey": _PARTITION, "RowKey": encode_key(name), "holder": holder, "expires_at": expires_at}

    def acquire(self, name: str, *, holder: str, duration: timedelta) -> Lease:
        """Take the lease ``name`` for ``duration``.

        Raises LeaseHeld if another holder's lease is live, ConcurrencyConflict if another
        instance took it between our read and our write. Re-acquiring one's own live lease renews it.
        """
        now = self._clock()
        expires_at = now + duration
        entity = self._entity(name, holder, expires_at)
        try:
            current, etag = self._table.get(_PARTITION, encode_key(name))
        except NotFound:
            return Lease(name, holder, expires_at, self._table.create(entity))
        if current["holder"] != holder and current["expires_at"] > now:
            raise LeaseHeld(name, holder=current["holder"], expires_at=current["expires_at"])
        return Lease(name, holder, expires_at, self._table.replace(entity, etag=etag))

    def renew(self, lease: Lease, *, duration: timedelta) -> Lease:
        """Extend a lease we hold. Raises ConcurrencyConflict if it was lost (expired and taken)."""
        expires_at = self._clock() + duration
        try:
            etag = self._table.replace(self._entity(lease.name, lease.holder, expires_at), etag=lease.etag)
        except NotFound:
            raise ConcurrencyConflict(self._table.name, lease.name, "was released or lost") from None
        return replace(lease, expires_at=expires_at, etag=etag)

    def release(self, lease: Lease) -> None:
        """Give the lease up; a lease that was already lost to another holder is left alone."""
        try:
            self._table.delete(_PARTITION, encode_key(lease.name), etag=lease.etag)
        except ConcurrencyConflict:
            pass
