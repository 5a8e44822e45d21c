"""The recycle bin's restore (`restore_entry`): what a sync deleted comes back on the side it was
born, as a new item the next sync carries across. See `storage.recycle_bin`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from storage.mappings import Mapping, MappingState
from storage.outlook_mirror import OutlookEntry
from sync.mapping import graph_fields, syncro_fields
from sync.model import Appointment, Item, Side

if TYPE_CHECKING:
    from sync.deps import SyncDeps


def _intend_job(deps: SyncDeps, tech: int, event: Item, kept: dict[str, Any]) -> None:
    """An intent row for the Syncro copy of a restored event of the tech's own, holding what its
    deleted job held beyond content: the sync creates the job from it (as it retries any intent)
    and sends those fields with the create."""
    from sync.actions import INTENT_SKEW
    from sync.planner import new_pair_key

    now = deps.clock()
    row = Mapping(
        syncro_user_id=tech,
        key=new_pair_key(event),
        origin=Side.OUTLOOK.value,
        state=MappingState.INTENT,
        synced_at=now,
        intent_at=now - INTENT_SKEW,
        graph_id=event.id,
        graph_version=event.version,
        base=event.content.to_json(),
        syncro_kept=dict(kept),
    )
    deps.storage.mappings.create_mapping(row)


def restore_entry(syncro_user_id: int, entry_id: str, *, deps: SyncDeps) -> dict[str, str]:
    """Bring back what a sync deleted: the appointment is re-created on the side it was born
    (``entry.origin``), without a tag, as a new item there; the next sync carries it to the other
    side as it would any new item (Syncro always; Outlook with two-way on). Then the entry is
    dropped. Returns ``{"side", "id"}`` of the new item.

    Raises storage NotFound (no such entry, or no link for an Outlook restore), ServiceError when
    the create fails (the entry stays)."""
    storage = deps.storage
    entry = storage.recycle_bin.get_entry(syncro_user_id, entry_id)
    content = Appointment.from_json(entry.content)
    zone = deps.account_zone()
    if entry.origin == Side.SYNCRO.value:
        kept = entry.content.get("syncro") if isinstance(entry.content.get("syncro"), dict) else None
        fields = syncro_fields(content, zone=zone, origin=Side.SYNCRO, tech_syncro_user_id=syncro_user_id, kept=kept)
        record = deps.syncro.create_appointment({**fields, "email_customer": False})
        from storage.mirror import MirrorEntry
        from sync.poll_diff import content_hash

        storage.mirror.put_entry(
            MirrorEntry(
                syncro_user_id,
                int(record["id"]),
                str(record.get("updated_at") or ""),
                content_hash(record),
                dict(record),
                deps.clock(),
            )
        )
        new_id = str(record["id"])
    else:
        link = storage.links.get_link(syncro_user_id)
        body = graph_fields(content, zone=zone, origin=Side.OUTLOOK, extras=None)
        event = deps.graph_for(syncro_user_id).create_event(
            link.calendar_id, body, transaction_id=f"restore-{entry.entry_id}", syncro_id="restored"
        )
        storage.outlook_mirror.upsert_entry(
            OutlookEntry(syncro_user_id, str(event["id"]), str(event.get("changeKey") or ""), event, deps.clock())
        )
        new_id = str(event["id"])
        kept = entry.content.get("syncro") if isinstance(entry.content.get("syncro"), dict) else None
        if kept:  # its job had a customer, ticket or type: the job the next sync makes carries them
            _intend_job(
                deps, syncro_user_id, Item(Side.OUTLOOK, new_id, str(event.get("changeKey") or ""), content), kept
            )
    storage.recycle_bin.delete_entry(syncro_user_id, entry_id)
    return {"side": entry.origin, "id": new_id}
