"""Links: which Microsoft account and calendar each Syncro technician syncs with."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from storage.table import Entity, Tables

_PARTITION = "link"


class LinkStatus(StrEnum):
    ACTIVE = "active"
    NEEDS_RELINK = "needs_relink"  # Microsoft refused our refresh token: the tech must sign in again
    PAUSED = "paused"
    UNLINKING = "unlinking"  # the tech unlinked and asked us to remove our [S] events first (sync engine)


@dataclass(frozen=True)
class Link:
    syncro_user_id: int
    email: str
    ms_account_id: str  # MSAL home_account_id ("<oid>.<tid>"), the token cache's key
    ms_username: str
    ms_tenant_id: str
    calendar_id: str
    calendar_name: str
    two_way: bool
    status: LinkStatus
    linked_at: datetime
    status_detail: str = ""
    remove_outlook_events: bool = False  # with UNLINKING: delete our [S] events, then forget the link
    # Private Outlook events reach Syncro as "Busy" unless the tech lets their details through.
    share_private: bool = False
    # An admin confirmed that this Microsoft account is this Syncro user (the admin overview).
    match_confirmed_by: str = ""
    match_confirmed_at: datetime | None = None
    etag: str | None = None

    def with_changes(self, **changes: object) -> Link:
        return replace(self, **changes)


def _to_entity(link: Link) -> Entity:
    return {
        "PartitionKey": _PARTITION,
        "RowKey": str(link.syncro_user_id),
        "email": link.email,
        "ms_account_id": link.ms_account_id,
        "ms_username": link.ms_username,
        "ms_tenant_id": link.ms_tenant_id,
        "calendar_id": link.calendar_id,
        "calendar_name": link.calendar_name,
        "two_way": link.two_way,
        "status": link.status.value,
        "status_detail": link.status_detail,
        "remove_outlook_events": link.remove_outlook_events,
        "share_private": link.share_private,
        "linked_at": link.linked_at,
        "match_confirmed_by": link.match_confirmed_by,
        "match_confirmed_at": link.match_confirmed_at,
    }


def _from_entity(entity: Entity, etag: str) -> Link:
    return Link(
        syncro_user_id=int(entity["RowKey"]),
        email=entity["email"],
        ms_account_id=entity["ms_account_id"],
        ms_username=entity["ms_username"],
        ms_tenant_id=entity["ms_tenant_id"],
        calendar_id=entity["calendar_id"],
        calendar_name=entity["calendar_name"],
        two_way=bool(entity["two_way"]),
        status=LinkStatus(entity["status"]),
        status_detail=entity.get("status_detail", ""),
        remove_outlook_events=bool(entity.get("remove_outlook_events", False)),
        share_private=bool(entity.get("share_private", False)),
        linked_at=entity["linked_at"],
        match_confirmed_by=entity.get("match_confirmed_by", "") or "",
        match_confirmed_at=entity.get("match_confirmed_at"),
        etag=etag,
    )


class LinkStore:
    def __init__(self, account: Tables) -> None:
        self._table = account.table("links")

    def get_link(self, syncro_user_id: int) -> Link:
        """Raises NotFound."""
        return _from_entity(*self._table.get(_PARTITION, str(syncro_user_id)))

    def list_links(self) -> Iterator[Link]:
        for entity, etag in self._table.partition(_PARTITION):
            yield _from_entity(entity, etag)

    def create_link(self, link: Link) -> Link:
        """Raises ConcurrencyConflict if the tech is already linked."""
        return replace(link, etag=self._table.create(_to_entity(link)))

    def update_link(self, link: Link) -> Link:
        """Replace the row read as ``link``; raises ConcurrencyConflict if it changed meanwhile."""
        if link.etag is None:
            raise ValueError("update_link needs the link as read (with its etag)")
        return replace(link, etag=self._table.replace(_to_entity(link), etag=link.etag))

    def delete_link(self, syncro_user_id: int, *, etag: str | None = None) -> None:
        self._table.delete(_PARTITION, str(syncro_user_id), etag=etag)

    def count(self) -> int:
        return self._table.count(_PARTITION)
