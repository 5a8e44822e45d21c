"""Graph change-notification subscriptions we hold (one per linked technician, briefly two while
one replaces another), and each tech's subscription state for the status pages.

``clientState`` is a secret Graph echoes in every notification; only its SHA-256 is stored
and notifications are checked against it in constant time (see `client_state_matches`).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from storage.ids import id_from_property, id_property
from storage.keys import decode_key, encode_key

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from storage.table import Entity, Tables

_PARTITION = "subscription"
_STATUS_PARTITION = "status"


def hash_client_state(client_state: str) -> str:
    return hashlib.sha256(client_state.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SubscriptionRecord:
    subscription_id: str
    syncro_user_id: int
    resource: str
    expires_at: datetime
    client_state_hash: str
    created_at: datetime
    notification_url: str = ""  # where Graph sends it: a new PUBLIC_BASE_URL means a new subscription
    etag: str | None = None

    def client_state_matches(self, client_state: str | None) -> bool:
        """Constant-time check of a notification's clientState."""
        return hmac.compare_digest(hash_client_state(client_state or ""), self.client_state_hash)


def _to_entity(record: SubscriptionRecord) -> Entity:
    return {
        "PartitionKey": _PARTITION,
        "RowKey": encode_key(record.subscription_id),
        "syncro_user_id": id_property(record.syncro_user_id),
        "resource": record.resource,
        "expires_at": record.expires_at,
        "client_state_hash": record.client_state_hash,
        "created_at": record.created_at,
        "notification_url": record.notification_url,
    }


def _from_entity(entity: Entity, etag: str) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id=decode_key(entity["RowKey"]),
        syncro_user_id=id_from_property(entity["syncro_user_id"]),
        resource=entity["resource"],
        expires_at=entity["expires_at"],
        client_state_hash=entity["client_state_hash"],
        created_at=entity["created_at"],
        notification_url=entity.get("notification_url") or "",
        etag=etag,
    )


class SubscriptionState(StrEnum):
    ACTIVE = "active"  # Graph notifies us of the tech's calendar changes
    FAILED = "failed"  # the last attempt failed (``detail`` says why); the upkeep timer tries again
    UNSUPPORTED = "unsupported"  # the mailbox cannot be subscribed to: changes arrive by reconciliation
    NEEDS_RELINK = "needs_relink"  # Microsoft refused the tech's sign-in
    NONE = "none"  # no subscription: not linked, or no calendar chosen


@dataclass(frozen=True)
class SubscriptionStatus:
    """What the status pages show about one tech's subscription."""

    syncro_user_id: int
    state: SubscriptionState
    detail: str
    updated_at: datetime
    subscription_id: str = ""
    expires_at: datetime | None = None


class _Load:
    """One query of the whole partition, shared by the callers that wait for it."""

    def __init__(self) -> None:
        self.done = False
        self.error: BaseException | None = None


class _Snapshot:
    """Every subscription row, read in one query and kept in memory for the webhook (`lookup`):
    a burst of notifications for a hundred techs costs one read, not a hundred. This process's
    own writes update it at once; other processes' writes show after at most ``max_age``."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.rows: dict[str, SubscriptionRecord] = {}
        self.loaded_at = float("-inf")  # time.monotonic() when the query that filled ``rows`` began
        self.load: _Load | None = None  # the query under way, if any


class SubscriptionStore:
    def __init__(self, account: Tables) -> None:
        self._table = account.table("subscriptions")
        self._snapshot = _Snapshot()

    def get_subscription(self, subscription_id: str) -> SubscriptionRecord:
        """Raises NotFound."""
        return _from_entity(*self._table.get(_PARTITION, encode_key(subscription_id)))

    def lookup(
        self, subscription_id: str, *, max_age: float, unknown_refresh: float = 0.0
    ) -> SubscriptionRecord | None:
        """`lookup_many` of one id. Raises StorageUnavailable."""
        return self.lookup_many([subscription_id], max_age=max_age, unknown_refresh=unknown_refresh)[subscription_id]

    def lookup_many(
        self, subscription_ids: Iterable[str], *, max_age: float, unknown_refresh: float = 0.0
    ) -> dict[str, SubscriptionRecord | None]:
        """Each subscription as of at most ``max_age`` seconds ago, or None when it is not ours.
        For the notification webhooks: rows come from an in-memory copy of the whole partition,
        refreshed by one query when older than ``max_age`` (concurrent callers share it; when it
        fails, they all raise its error). Ids the copy lacks cost at most one more query of the
        partition for all of them together, and none when the copy began less than
        ``unknown_refresh`` seconds before the call: a row another instance wrote just before its
        first notification is still found, while a POST naming thousands of made-up ids costs no
        read per id, and a stream of such POSTs at most one query per ``unknown_refresh`` seconds.
        Raises StorageUnavailable."""
        ids = list(subscription_ids)
        arrived = time.monotonic()
        self._loaded_since(arrived - max_age)
        found = self._from_copy(ids)
        if any(record is None for record in found.values()):
            self._loaded_since(arrived - unknown_refresh)
            found = self._from_copy(ids)
        return found

    def _from_copy(self, ids: list[str]) -> dict[str, SubscriptionRecord | None]:
        with self._snapshot.lock:
            return {subscription_id: self._snapshot.rows.get(subscription_id) for subscription_id in ids}

    def _loaded_since(self, since: float) -> None:
        """Make sure the copy was read by a query that began at ``since`` or later, joining the
        query under way when there is one (and starting another if that one began too early)."""
        snapshot = self._snapshot
        while True:
            with snapshot.lock:
                if snapshot.loaded_at >= since:
                    return
                load = snapshot.load
                if load is None:
                    load = snapshot.load = _Load()
                    runs = True
                else:
                    runs = False
                    while not load.done:
                        snapshot.lock.wait()
            if runs:
                self._reload(load)  # raises its error to the caller that ran it
                return
            if load.error is not None:
                raise load.error

    def peek_many(
        self, subscription_ids: Iterable[str], *, max_age: float, unknown_refresh: float = 0.0
    ) -> dict[str, SubscriptionRecord | None] | None:
        """What `lookup_many` would answer when it can answer from the in-memory copy alone, else
        None (it would read storage). Never touches storage, so an event loop may call it."""
        snapshot = self._snapshot
        with snapshot.lock:
            age = time.monotonic() - snapshot.loaded_at
            if age >= max_age:
                return None
            found = {subscription_id: snapshot.rows.get(subscription_id) for subscription_id in subscription_ids}
        if age > unknown_refresh and any(record is None for record in found.values()):
            return None
        return found

    def _reload(self, load: _Load) -> None:
        snapshot = self._snapshot
        began = time.monotonic()
        try:
            rows = {record.subscription_id: record for record in self.list_subscriptions()}
        except BaseException as error:
            load.error = error
            raise
        else:
            with snapshot.lock:
                snapshot.rows, snapshot.loaded_at = rows, began
        finally:
            with snapshot.lock:
                load.done = True
                snapshot.load = None
                snapshot.lock.notify_all()

    def forget_cached(self) -> None:
        """Drop the in-memory copy (`lookup` reads storage again)."""
        with self._snapshot.lock:
            self._snapshot.rows, self._snapshot.loaded_at = {}, float("-inf")

    def list_subscriptions(self) -> Iterator[SubscriptionRecord]:
        for entity, etag in self._table.partition(_PARTITION):
            yield _from_entity(entity, etag)

    def list_for_tech(self, syncro_user_id: int) -> Iterator[SubscriptionRecord]:
        rows = self._table.query(
            "PartitionKey eq @pk and syncro_user_id eq @tech",
            parameters={"pk": _PARTITION, "tech": id_property(syncro_user_id)},
        )
        for entity, etag in rows:
            yield _from_entity(entity, etag)

    def upsert_subscription(self, record: SubscriptionRecord) -> SubscriptionRecord:
        """Insert or replace: a subscription id is Graph's, so only the instance that created it writes it."""
        written = replace(record, etag=self._table.upsert(_to_entity(record)))
        with self._snapshot.lock:
            self._snapshot.rows[record.subscription_id] = written
        return written

    def delete_subscription(self, subscription_id: str) -> None:
        with self._snapshot.lock:  # before the write: a lookup racing with it may find the row still
            self._snapshot.rows.pop(subscription_id, None)
        self._table.delete(_PARTITION, encode_key(subscription_id))
        with self._snapshot.lock:
            self._snapshot.rows.pop(subscription_id, None)

    def count(self) -> int:
        return self._table.count(_PARTITION)

    def get_status(self, syncro_user_id: int) -> SubscriptionStatus | None:
        """The tech's subscription state, or None when nothing was ever tried for them."""
        from storage.errors import NotFound

        try:
            entity, _ = self._table.get(_STATUS_PARTITION, id_property(syncro_user_id))
        except NotFound:
            return None
        return SubscriptionStatus(
            syncro_user_id=syncro_user_id,
            state=SubscriptionState(entity["state"]),
            detail=entity.get("detail") or "",
            updated_at=entity["updated_at"],
            subscription_id=entity.get("subscription_id") or "",
            expires_at=entity.get("expires_at"),
        )

    def set_status(self, status: SubscriptionStatus) -> None:
        """Last writer wins: the state is a report of the latest attempt, not a decision."""
        entity: Entity = {
            "PartitionKey": _STATUS_PARTITION,
            "RowKey": id_property(status.syncro_user_id),
            "state": status.state.value,
            "detail": status.detail,
            "updated_at": status.updated_at,
            "subscription_id": status.subscription_id,
        }
        if status.expires_at is not None:
            entity["expires_at"] = status.expires_at
        self._table.upsert(entity)

    def delete_status(self, syncro_user_id: int) -> None:
        self._table.delete(_STATUS_PARTITION, id_property(syncro_user_id))
