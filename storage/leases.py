"""Per-technician leases, so two function instances never sync the same tech at once.

A lease is a row with a holder and an expiry, written with ETags: acquiring a free or expired
lease and renewing one's own are conditional writes, so exactly one racer wins. A crashed
holder's lease simply expires. Holders are opaque strings (e.g. ``"<host>:<invocation id>"``).

`KeptLease` keeps a short lease alive while its holder works (a thread renews it every third of
its duration), so a holder that dies loses it within that short duration, however long its work
could have lasted: a killed instance blocks a tech's sync or a timer for a minute, not for the
function timeout.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from storage.errors import ConcurrencyConflict, LeaseHeld, NotFound, StorageError
from storage.keys import encode_key

if TYPE_CHECKING:
    from storage.table import Tables

_PARTITION = "lease"
KEPT_LEASE = timedelta(minutes=1)  # how long a dead holder blocks others (`KeptLease`)

log = logging.getLogger(__name__)


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

    def now(self) -> datetime:
        return self._clock()

    def _entity(self, name: str, holder: str, expires_at: datetime) -> dict:
        return {"PartitionKey": _PARTITION, "RowKey": encode_key(name), "holder": holder, "expires_at": expires_at}

    def read(self, name: str) -> Lease:
        """The lease ``name`` as stored (held or expired); NotFound when nobody took it."""
        current, etag = self._table.get(_PARTITION, encode_key(name))
        return Lease(name, current["holder"], current["expires_at"], etag)

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


class KeptLease:
    """A lease renewed by a daemon thread every third of ``duration`` while its holder works, until
    `release` or ``until`` (the longest the work may run, e.g. the function timeout: a hung
    holder is not kept alive past it). ``lost`` turns True when another holder took it (it
    expired while renewals failed); the holder checks it between steps of its work."""

    def __init__(self, store: LeaseStore, lease: Lease, duration: timedelta, *, until: datetime | None = None) -> None:
        self._store, self._lease, self._duration, self._until = store, lease, duration, until
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._keep, name=f"lease {lease.name}", daemon=True)
        self._thread.start()

    def beat(self) -> bool:
        """Renew now; False once the lease is lost. A storage error leaves the lease as it was
        (it lasts until its expiry) for the next beat to try again."""
        with self._lock:
            if self.lost or self._stop.is_set():
                return not self.lost
            try:
                self._lease = self._store.renew(self._lease, duration=self._duration)
            except ConcurrencyConflict:
                self.lost = True
            except StorageError as error:
                log.warning("lease %s not renewed (%s); trying again", self._lease.name, type(error).__name__)
            return not self.lost

    def _keep(self) -> None:
        while not self._stop.wait(self._duration.total_seconds() / 3):
            if self._until is not None and self._store.now() >= self._until:
                return  # past the longest the work may run: let the lease expire
            if not self.beat():
                return

    def release(self) -> None:
        """Stop renewing and give the lease up (left alone if it was lost)."""
        self._stop.set()
        with self._lock:
            if not self.lost:
                self._store.release(self._lease)
