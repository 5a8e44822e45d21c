"""The planner's input: both mirrors' raw items mapped into `sync.model.Item`s with their typed
flags (`sync.model.ItemFlags`), and the pairs to plan over (`build_inputs`); and what the flags
need from elsewhere: the mailbox's other calendars (`other_calendars`) and the tech's invitations
to meetings another linked tech organised (`invitations`). Pure but for those two reads."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from settings import SyncOptions
from storage.links import LinkStatus
from storage.mappings import MappingState
from sync.actions import Pair
from sync.executor import Snapshot
from sync.mapping import SYNCRO_TAG, UnmappableItem, appointment_from_graph, appointment_from_syncro
from sync.model import Item, ItemFlags, Side
from sync.outlook_side import transaction_id
from sync.syncro_side import carries_outlook_tag
from sync.times import parse_time

if TYPE_CHECKING:
    from storage.account import StorageAccount
    from storage.links import Link
    from sync.graph import GraphClient


@dataclass
class Inputs:
    pairs: list[Pair]
    syncro: list[Item]
    outlook: list[Item]
    skipped: list[dict[str, str]]


PRIVATE = frozenset({"private", "confidential"})  # Graph's sensitivity values Outlook shows as private
BUSY = "Busy"


def build_inputs(
    snapshot: Snapshot,
    pairs: list[Pair],
    *,
    tech: int,
    link: Link,
    zone: ZoneInfo,
    options: SyncOptions | None = None,
    now: datetime | None = None,
    meetings: dict[str, tuple[str, int]] | None = None,
    other_calendars: frozenset[str] = frozenset(),
) -> Inputs:
    """Items of both sides and the pairs to plan over. An item that cannot be mapped is skipped
    with its reason, and so are its pair and the pair's other item: an unreadable item is never
    taken for a deleted one (nor its counterpart for a new one).

    The policies of ``options`` and the link become the item flags the planner reads (see
    `sync.planner.plan`): events from before the link are ``preexisting`` unless the import of
    existing events is on and they start inside its window; occurrences of recurring events do
    not start pairs when recurring sync is off; meetings the tech did not organise and private
    events are ``outlook_only`` (private ones reach Syncro as "Busy" unless the tech opted in);
    cancelled and declined meetings are ``withdrawn``. ``meetings`` (`invitations`) marks the
    tech's invitations to meetings another linked tech organised (``meeting_of``); an event whose
    ``parentFolderId`` is one of ``other_calendars`` (the mailbox's other calendars) is
    ``elsewhere``."""
    options = options or SyncOptions()
    import_from = import_to = None
    if options.import_existing and now is not None:
        today = now.astimezone(zone).date()
        import_from = datetime.combine(today, datetime.min.time(), zone)
        import_to = import_from + timedelta(days=options.import_existing_days)
    syncro_born = {pair.outlook_id for pair in pairs if pair.origin is Side.SYNCRO and pair.outlook_id}
    mapped_outlook = {pair.outlook_id for pair in pairs if pair.outlook_id}
    skipped: list[dict[str, str]] = []
    bad: set[tuple[Side, str]] = set()

    def skip(side: Side, item_id: str, error: UnmappableItem, title: str) -> None:
        bad.add((side, item_id))
        skipped.append({"side": side.value, "id": item_id, "reason": error.reason, "summary": title})

    syncro_items: dict[str, Item] = {}
    for item_id, record in snapshot.syncro.items():
        try:
            content = appointment_from_syncro(record, zone=zone)
        except UnmappableItem as error:
            skip(Side.SYNCRO, item_id, error, _title(record, "summary"))
            continue
        flags = ItemFlags(
            modified_at=parse_time(record.get("updated_at")),
            created_at=parse_time(record.get("created_at")),
            tagged=carries_outlook_tag(record),
        )
        syncro_items[item_id] = Item(Side.SYNCRO, item_id, str(record.get("updated_at") or ""), content, flags)
    ours = {}
    for pair in pairs:
        for replaces in {None, pair.outlook_id}:
            ours[transaction_id(tech, pair.key, replaces)] = pair.key
    outlook_items: dict[str, Item] = {}
    for item_id, event in snapshot.outlook.items():
        if event.get("type") == "seriesMaster":
            continue  # occurrences sync one by one
        withdrawn = bool(event.get("isCancelled")) or _response(event) == "declined"
        if withdrawn and item_id not in mapped_outlook:
            continue
        try:
            content = appointment_from_graph(event, zone=zone)
        except UnmappableItem as error:
            skip(Side.OUTLOOK, item_id, error, _title(event, "subject"))
            continue
        created = parse_time(event.get("createdDateTime"))
        # Graph answers an event by id whatever calendar holds it: where it lives is its
        # parentFolderId, never the path it was read through (the tech switched calendars).
        elsewhere = event.get("parentFolderId") in other_calendars
        importable = import_from is not None and import_to is not None and import_from <= content.start < import_to
        txn = event.get("transactionId")
        pair_key: str | None = None
        if txn in ours:
            pair_key = ours[txn]
        elif txn and str(event.get("subject") or "").startswith(SYNCRO_TAG):
            pair_key = f"orphan:{txn}"  # ours, left by a pair that is gone: never imported back
        if elsewhere and item_id not in mapped_outlook and pair_key is None:
            continue  # another calendar's event, not ours: nothing to do with it
        outlook_only, meeting_of = False, None
        if item_id not in syncro_born and pair_key is None:
            private = str(event.get("sensitivity") or "normal").lower() in PRIVATE and not link.share_private
            if private:
                content = replace(content, summary=BUSY, description="", location="")
            outlook_only = private or event.get("isOrganizer") is False
            if event.get("isOrganizer") is False and meetings and item_id in meetings:
                meeting_of = meetings[item_id]
        recurring = event.get("type") in ("occurrence", "exception")
        flags = ItemFlags(
            modified_at=parse_time(event.get("lastModifiedDateTime")),
            created_at=created,
            elsewhere=elsewhere,
            preexisting=created is not None and created < link.linked_at and not importable,
            pair_key=pair_key,
            withdrawn=withdrawn,
            no_import="recurring events are not synced (SYNC_RECURRING_EVENTS)"
            if not options.recurring and recurring
            else "",
            outlook_only=outlook_only,
            meeting_of=meeting_of,
        )
        outlook_items[item_id] = Item(Side.OUTLOOK, item_id, str(event.get("changeKey") or ""), content, flags)
    kept: list[Pair] = []
    for pair in pairs:
        ids = [(side, item_id) for side in Side if (item_id := pair.id_on(side))]
        if any(key in bad for key in ids):
            for side, item_id in ids:
                (syncro_items if side is Side.SYNCRO else outlook_items).pop(item_id, None)
            continue
        kept.append(pair)
    return Inputs(kept, list(syncro_items.values()), list(outlook_items.values()), skipped)


def other_calendars(graph: GraphClient, calendar_id: str, events: dict[str, dict[str, Any]]) -> frozenset[str]:
    """The mailbox's calendars other than the synced one, asked of Graph only when an event
    says it lives elsewhere (``parentFolderId``): Graph answers an event by id whatever
    calendar holds it, so only its parent tells. A parent that is no calendar of the mailbox
    (an id in another form) is not taken for elsewhere: such an event stays where it was.
    Raises GraphError."""
    parents = {str(e.get("parentFolderId")) for e in events.values() if e.get("parentFolderId")}
    if not parents - {calendar_id}:
        return frozenset()
    return frozenset(c.id for c in graph.calendars() if c.id != calendar_id) & parents


def invitations(
    storage: StorageAccount, tech: int, events: dict[str, dict[str, Any]], mapped: set[str]
) -> dict[str, tuple[str, int]]:
    """The tech's unmapped invitations (``isOrganizer`` false) to meetings another active,
    two-way linked tech organised (his link's address is the organiser's): event id ->
    (the Syncro id of the organiser's job, or "" while his sync has not made it; the organiser).
    The organiser's event is found in his Outlook mirror by ``iCalUId``, which every copy of a
    meeting shares. Reads only when there is such an invitation. Raises StorageError."""
    wanted = {
        event_id: event
        for event_id, event in events.items()
        if event_id not in mapped and event.get("isOrganizer") is False and event.get("iCalUId")
    }
    if not wanted:
        return {}
    organisers: dict[str, int] = {}
    for other in storage.links.list_links():
        if other.syncro_user_id != tech and other.status is LinkStatus.ACTIVE and other.two_way:
            for address in (other.email, other.ms_username):
                if address:
                    organisers[address.strip().lower()] = other.syncro_user_id
    known: dict[int, tuple[dict[str, str], dict[str, str]]] = {}
    found: dict[str, tuple[str, int]] = {}
    for event_id, event in wanted.items():
        organizer = event.get("organizer") if isinstance(event.get("organizer"), dict) else {}
        email = organizer.get("emailAddress") if isinstance(organizer.get("emailAddress"), dict) else {}
        organiser = organisers.get(str(email.get("address") or "").strip().lower())
        if organiser is None:
            continue
        if organiser not in known:
            by_uid = {
                str(entry.event.get("iCalUId")): entry.event_id
                for entry in storage.outlook_mirror.list_entries(organiser)
                if entry.event.get("isOrganizer") is not False
            }
            jobs = {
                row.graph_id: str(row.syncro_id)
                for row in storage.mappings.list_mappings(organiser)
                if row.graph_id and row.syncro_id is not None and row.state is MappingState.SYNCED
            }
            known[organiser] = (by_uid, jobs)
        by_uid, jobs = known[organiser]
        found[event_id] = (jobs.get(by_uid.get(str(event["iCalUId"]), ""), ""), organiser)
    return found


def _title(record: Any, name: str) -> str:
    """An unreadable item's title as far as it reads, one short line, for the tech to find it by."""
    value = record.get(name) if isinstance(record, dict) else None
    if not isinstance(value, str):
        return ""
    line = " ".join("".join(c if c.isprintable() else " " for c in value).split())
    return line[:57] + "..." if len(line) > 60 else line


def _response(event: dict[str, Any]) -> str:
    status = event.get("responseStatus")
    return str(status.get("response") or "").lower() if isinstance(status, dict) else ""
