"""An unlink's last sync (`unlink`): delete our ``[S]`` events when the tech asked (each through
the recycle bin), then forget the tech's rows, mirror, cursor, subscription, token and link."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from storage.errors import NotFound
from storage.recycle_bin import RecycleEntry, new_entry_id
from sync.errors import NotFound as ServiceNotFound
from sync.errors import ServiceError
from sync.mapping import UnmappableItem, appointment_from_graph
from sync.model import Side
from sync.outlook_mirror import forget_outlook
from sync.report import SyncReport, SyncStatus

if TYPE_CHECKING:
    from storage.links import Link
    from sync.deps import SyncDeps


def unlink(link: Link, deps: SyncDeps, report: SyncReport) -> SyncReport:
    """Delete our ``[S]`` events (when asked; each through the recycle bin), then forget the
    tech's rows, mirror, cursor, token and link. A failure leaves the link unlinking, to retry."""
    tech, storage = link.syncro_user_id, deps.storage
    rows = list(storage.mappings.list_mappings(tech))
    if link.remove_outlook_events:
        graph = deps.graph_for(tech)
        events = {e.event_id: e.event for e in storage.outlook_mirror.list_entries(tech)}
        zone = deps.account_zone()
        for row in rows:
            if row.origin != Side.SYNCRO or not row.graph_id:
                continue
            content = content_of(events.get(row.graph_id), row.base, zone)
            entry = storage.recycle_bin.add_entry(
                RecycleEntry(
                    tech,
                    new_entry_id(deps.clock()),
                    "outlook",
                    row.graph_id,
                    "syncro",
                    content,
                    deps.clock(),
                    reason="unlinked with remove our events",
                )
            )
            try:
                graph.delete_event(link.calendar_id, row.graph_id)
            except ServiceNotFound:
                pass
            except ServiceError as error:
                storage.recycle_bin.delete_entry(tech, entry.entry_id)
                report.errors.append(str(error))
                continue
            report.deleted["outlook"] += 1
    if report.errors:
        report.status, report.detail = SyncStatus.FAILED, "some events could not be removed; the next sync tries again"
        return report
    for row in rows:
        storage.mappings.delete_mapping(tech, row.key)
    forget_outlook(tech, store=storage.outlook_mirror, cursors=storage.cursors)
    if deps.forget_subscriptions is not None:
        deps.forget_subscriptions(tech)  # while the token still works: Graph stops notifying us for this tech
    if deps.forget_tokens is not None:
        try:
            deps.forget_tokens(tech)
        except NotFound:
            pass
    storage.links.delete_link(tech)
    report.status, report.detail = SyncStatus.UNLINKED, "the link and its tokens are forgotten"
    return report


def content_of(event: dict[str, Any] | None, base: dict[str, Any] | None, zone: ZoneInfo) -> dict[str, Any]:
    if event is not None:
        try:
            return appointment_from_graph(event, zone=zone).to_json()
        except UnmappableItem:
            pass
    return base or {}
