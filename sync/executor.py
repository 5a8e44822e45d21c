"""Performs the planner's actions with the real clients, following the contract in `sync.actions`.

Every write has a precondition (Graph ``If-Match`` on the changeKey; Syncro: ``updated_at``
re-read just before the PUT or DELETE); a failed precondition skips the action and leaves the
pair as it was, so the next plan decides again from fresh snapshots. Each action writes its own
mapping row right after its write, recording the version and content of what the service
*returned* (a side that rewrote a field is then seen as changed and carried over once, never
back and forth). Creates are idempotent on retry: Graph creates carry a ``transactionId``
derived from the pair key, and a Syncro create writes an intent row first and adopts what an
interrupted attempt left behind (`sync.planner.find_adoptable`). Deletions go to the recycle bin
first. The mirrors (what the planner reads next round) are updated with each write.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from settings import SyncOptions
from storage.mappings import Mapping, MappingState, Origin
from storage.mirror import MirrorEntry
from storage.outlook_mirror import OutlookEntry
from storage.recycle_bin import RecycleEntry, new_entry_id
from sync.actions import (
    Action,
    Conflict,
    CreateOn,
    DeleteOn,
    Discard,
    Forget,
    Join,
    Leave,
    Pair,
    Record,
    UpdateOn,
    Verify,
    other,
)
from sync.errors import NotFound, PreconditionFailed, ServiceError
from sync.graph import BATCH_LIMIT, MAILBOX_CONCURRENCY, SYNCRO_ID_PROPERTY, BatchRequest
from sync.mapping import (
    OUTLOOK_TAG,
    SyncroContext,
    UnmappableItem,
    appointment_from_graph,
    appointment_from_syncro,
    graph_fields,
    syncro_fields,
    syncro_kept,
)
from sync.model import Appointment, Item, ItemFlags, Side
from sync.planner import find_adoptable
from sync.poller import content_hash as syncro_record_hash

if TYPE_CHECKING:
    from storage.account import StorageAccount
    from sync.graph import GraphClient
    from sync.syncro import SyncroClient

INTENT_SKEW = timedelta(minutes=2)
# Table writes in flight at once when many rows change together (the intents and results of a
# batch of creates): one at a time, 500 creates cost 1,500 sequential round trips to storage.
STORAGE_WRITERS = 8
TRANSACTION_NAMESPACE = uuid.UUID("5d0e6f0c-3b7a-4c55-9a55-0f3c1f6a9b21")


log = logging.getLogger(__name__)


def transaction_id(tech: int, pair_key: str, replaces: str | None) -> str:
    """The Graph ``transactionId`` of the create for a pair: stable across retries of the same
    create, different for a re-create (which replaces an event that is gone)."""
    return str(uuid.uuid5(TRANSACTION_NAMESPACE, f"{tech}|{pair_key}|{replaces or ''}"))


def carries_outlook_tag(record: dict[str, Any]) -> bool:
    """Whether a Syncro record's summary starts with ``[O] `` (only our creates of Outlook-born
    items do: recovery adopts nothing else for them)."""
    inner = record.get("appointment") if isinstance(record.get("appointment"), dict) else record
    return str(inner.get("summary") or "").startswith(OUTLOOK_TAG)


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:  # Graph writes seven fractional digits; Python reads up to six
        head, _, rest = text.partition(".")
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def pair_of(row: Mapping) -> Pair:
    return Pair(
        key=row.key,
        origin=Side(row.origin.value),
        syncro_id=None if row.syncro_id is None else str(row.syncro_id),
        outlook_id=row.graph_id,
        syncro_version=row.syncro_version,
        outlook_version=row.graph_version,
        base=Appointment.from_json(row.base) if row.base else None,
        intent_at=row.intent_at if row.state is MappingState.INTENT else None,
        released=row.state is MappingState.RELEASED,
    )


@dataclass
class Snapshot:
    """What each side holds now, as raw records by id (kept current by the executor's writes)."""

    syncro: dict[str, dict[str, Any]]
    outlook: dict[str, dict[str, Any]]


@dataclass
class Tally:
    created: dict[str, int] = field(default_factory=lambda: {"syncro": 0, "outlook": 0})
    updated: dict[str, int] = field(default_factory=lambda: {"syncro": 0, "outlook": 0})
    deleted: dict[str, int] = field(default_factory=lambda: {"syncro": 0, "outlook": 0})
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stale: int = 0  # writes skipped because the item moved on since it was read
    notices: list[str] = field(default_factory=list)  # what a tech should know (a shared job kept)
    verified_gone: set[tuple[Side, str]] = field(default_factory=set)


class Executor:
    """Runs actions for one technician; one instance per sync run (it holds the rows as read)."""

    def __init__(
        self,
        *,
        tech: int,
        calendar_id: str,
        storage: StorageAccount,
        graph: GraphClient,
        syncro: SyncroClient,
        zone: ZoneInfo,
        syncro_web_url: str,
        clock: Callable[[], datetime],
        snapshot: Snapshot,
        tally: Tally,
        options: SyncOptions | None = None,
        job_id: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        self.tech, self.calendar_id = tech, calendar_id
        self.job_id, self.correlation_id = job_id, correlation_id
        self.options = options or SyncOptions()
        self.storage, self.graph, self.syncro = storage, graph, syncro
        self.zone, self.web_url, self.clock = zone, syncro_web_url, clock
        self.snapshot, self.tally = snapshot, tally
        self.rows: dict[str, Mapping] = {row.key: row for row in storage.mappings.list_mappings(tech)}

    def pairs(self) -> list[Pair]:
        return [pair_of(row) for row in self.rows.values()]

    # -- running --------------------------------------------------------------------------------

    def run(self, actions: list[Action]) -> int:
        """Perform ``actions`` in order; returns how many service writes were made. A failing
        action is recorded in the tally and the run carries on with the next."""
        writes = 0
        batch: list[CreateOn] = []
        for action in [*actions, None]:
            if action is not None and self._batchable(action):
                batch.append(action)  # type: ignore[arg-type]
                continue
            if len(batch) > 1:
                writes += self._create_batch(batch)
            elif batch:
                writes += self._guarded(batch[0])
            batch = []
            if action is not None:
                writes += self._guarded(action)
        return writes

    def _guarded(self, action: Action) -> int:
        try:
            writes = self._run(action)
        except PreconditionFailed:
            self.tally.stale += 1
            self._log(action, "stale")
        except (ServiceError, UnmappableItem) as error:
            self.tally.errors.append(f"{type(action).__name__} {getattr(action, 'pair_key', '')}: {error}")
            self._log(action, "failed", error=type(error).__name__, status_code=getattr(error, "status", None))
        else:
            self._log(action, "done", writes=writes)
            return writes
        return 0

    def _log(self, action: Action, outcome: str, **fields: Any) -> None:
        """One structured line per action (`ops.logs`): what, where and how it ended; never content."""
        from ops.logs import log_event

        log_event(
            log,
            "sync.action",
            tech=self.tech,
            job_id=self.job_id,
            correlation_id=self.correlation_id,
            action=type(action).__name__,
            side=getattr(getattr(action, "side", None), "value", None),
            pair=getattr(action, "pair_key", None),
            outcome=outcome,
            **fields,
        )

    def _run(self, action: Action) -> int:
        match action:
            case CreateOn():
                return self._create(action)
            case UpdateOn():
                return self._update(action)
            case DeleteOn():
                return self._delete(action)
            case Discard():
                return self._discard(action)
            case Join():
                return self._join(action)
            case Leave():
                return self._leave(action)
            case Forget(pair_key=key):
                self._drop_row(key)
            case Record(pair=pair):
                self._save(pair, state=MappingState.RELEASED if pair.released else MappingState.SYNCED)
            case Conflict():
                kept = action.syncro if action.winner is Side.SYNCRO else action.outlook
                self.tally.conflicts.append(
                    {
                        "pair": action.pair_key,
                        "fields": list(action.fields),
                        "winner": action.winner.value,
                        "summary": kept.summary,
                    }
                )
            case Verify(side=side, ids=ids):
                self._verify(side, ids)
        return 0

    # -- rows -----------------------------------------------------------------------------------

    def _save(self, pair: Pair, *, state: MappingState, hashes: dict[Side, str] | None = None) -> None:
        old = self.rows.get(pair.key)
        now = self.clock()
        row = Mapping(
            syncro_user_id=self.tech,
            key=pair.key,
            origin=Origin(pair.origin.value),
            state=state,
            synced_at=now,
            intent_at=(pair.intent_at or now) if state is MappingState.INTENT else None,
            syncro_id=None if pair.syncro_id is None else int(pair.syncro_id),
            graph_id=pair.outlook_id,
            syncro_version=pair.syncro_version,
            graph_version=pair.outlook_version,
            syncro_hash=(hashes or {}).get(Side.SYNCRO, old.syncro_hash if old else ""),
            graph_hash=(hashes or {}).get(Side.OUTLOOK, old.graph_hash if old else ""),
            base=pair.base.to_json() if pair.base else None,
            syncro_kept=self._kept(pair.syncro_id, old),
            etag=old.etag if old else None,
        )
        mappings = self.storage.mappings
        self.rows[pair.key] = mappings.update_mapping(row) if old else mappings.create_mapping(row)

    def _kept(self, syncro_id: str | None, old: Mapping | None) -> dict[str, Any] | None:
        """The Syncro appointment's customer, ticket, type and techs as last seen: from the
        mirror while it is there, else as the row remembered them (it was deleted meanwhile)."""
        record = self.snapshot.syncro.get(syncro_id) if syncro_id is not None else None
        kept = syncro_kept(record) if record is not None else None
        return kept or (old.syncro_kept if old else None)

    def _drop_row(self, key: str) -> None:
        old = self.rows.pop(key, None)
        if old is not None:
            self.storage.mappings.delete_mapping(self.tech, key)

    # -- mirrors --------------------------------------------------------------------------------

    def _mirror_syncro(self, record: dict[str, Any]) -> None:
        self.snapshot.syncro[str(record["id"])] = record
        self.storage.mirror.put_entry(
            MirrorEntry(
                self.tech,
                int(record["id"]),
                str(record.get("updated_at") or ""),
                syncro_record_hash(record),
                dict(record),
                self.clock(),
            )
        )

    def _mirror_outlook(self, event: dict[str, Any]) -> None:
        self.snapshot.outlook[str(event["id"])] = event
        self.storage.outlook_mirror.upsert_entry(
            OutlookEntry(self.tech, str(event["id"]), str(event.get("changeKey") or ""), event, self.clock())
        )

    def _unmirror(self, side: Side, item_id: str) -> None:
        if side is Side.SYNCRO:
            self.snapshot.syncro.pop(item_id, None)
            self.storage.mirror.delete_entry(self.tech, int(item_id))
        else:
            self.snapshot.outlook.pop(item_id, None)
            self.storage.outlook_mirror.delete_entry(self.tech, item_id)

    # -- the services ---------------------------------------------------------------------------

    def read_back(self, side: Side, record: dict[str, Any]) -> Appointment:
        if side is Side.SYNCRO:
            return appointment_from_syncro(record, zone=self.zone)
        return appointment_from_graph(record, zone=self.zone)

    def _context(self, pair: Pair | None, origin: Side, syncro_id: str | None) -> SyncroContext | None:
        if origin is not Side.SYNCRO or syncro_id is None:
            return None
        raw = self.snapshot.syncro.get(syncro_id)
        return SyncroContext.from_syncro(raw, syncro_web_url=self.web_url) if raw else None

    def _write_syncro(
        self, item_id: str | None, content: Appointment, origin: Side, *, kept: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if item_id is None:
            fields = syncro_fields(
                content,
                zone=self.zone,
                origin=origin,
                tech_syncro_user_id=self.tech,
                appointment_type_id=self.options.appointment_type_id,
                customer_id=self.options.customer_id,
                kept=kept,
            )
            return self.syncro.create_appointment({**fields, "email_customer": False})
        fields = syncro_fields(content, zone=self.zone, origin=origin, tech_syncro_user_id=None)
        return self.syncro.update_appointment(int(item_id), {**fields, "email_customer": False})

    def _syncro_at(self, item_id: str, expected_version: str) -> dict[str, Any]:
        """Syncro's precondition: the appointment as it is now, if still at ``expected_version``."""
        current = self.syncro.get_appointment(int(item_id))
        if str(current.get("updated_at") or "") != expected_version:
            self._mirror_syncro(current)  # the next plan sees what it is now
            raise _Stale
        return current

    # -- actions --------------------------------------------------------------------------------

    def _create(self, action: CreateOn) -> int:
        side, key = action.side, action.pair_key
        before = self.rows.get(key)
        before_pair = pair_of(before) if before else None
        if (before_pair.id_on(side) if before_pair else None) != action.replaces:
            return 0  # done already (a retry or a second run)
        if before_pair is not None and before_pair.id_on(side) is None:
            # An earlier attempt may have created it before failing: adopt, never duplicate.
            found = self._adoptable(before_pair, side)
            if found is not None:
                version = found.version if found.content == before_pair.base else ""
                self._save(
                    replace(before_pair.with_side(side, found.id, version), intent_at=None), state=MappingState.SYNCED
                )
                return 0
        if side is Side.SYNCRO and action.replaces is not None and before is not None:
            alive = self._still_in_syncro(action.replaces)
            if alive is not None:  # not deleted: the job left this tech (reassigned)
                return self._left_tech(action, before, alive)
        intent = self._intent(action)
        self._save(intent, state=MappingState.INTENT)  # before the create: a crash leaves a trace
        if side is Side.SYNCRO:  # a re-create carries what the appointment it replaces held
            # (or, for a restored event of the tech's own, what its deleted job held: `engine.restore_entry`)
            kept = before.syncro_kept if before is not None else None
            record = self._write_syncro(None, action.content, action.origin, kept=kept)
        else:
            record = self.graph.create_event(
                self.calendar_id,
                self._graph_body(action),
                transaction_id=transaction_id(self.tech, key, action.replaces),
                syncro_id=action.source_id,
            )
        self._created(action, intent, record)
        return 1

    def _still_in_syncro(self, appointment_id: str) -> dict[str, Any] | None:
        try:
            return self.syncro.get_appointment(int(appointment_id))
        except NotFound:
            return None

    def _left_tech(self, action: CreateOn, row: Mapping, alive: dict[str, Any]) -> int:
        """ "Edit beats delete" met an appointment that was not deleted but left this tech's listing
        (the dispatcher gave it to another tech while this one edited his copy): re-creating it
        would make a second job. A ``[S]`` copy leaves his calendar through the recycle bin, his
        edit kept there, with a conflict for the settings page; the tech's own event (an ``[O]``
        job given to someone else) stays in Outlook, no longer synced (the pair is released)."""
        summary = self.read_back(Side.SYNCRO, alive).summary
        self.tally.conflicts.append(
            {"pair": action.pair_key, "fields": ["assignment"], "winner": Side.SYNCRO.value, "summary": summary}
        )
        if row.origin is Origin.OUTLOOK:
            self._save(replace(pair_of(row), released=True), state=MappingState.RELEASED)
            return 0
        copy = DeleteOn(Side.OUTLOOK, action.source_id, action.source_version, action.pair_key, action.content)
        return self._delete(copy, reason="the job was given to another technician; your edit is kept here")

    def _intent(self, action: CreateOn) -> Pair:
        # Recovery adopts only items created after the intent: the margin absorbs clock skew
        # between us and Syncro (an item created that much earlier is ours only by coincidence).
        intent_at = self.clock() - INTENT_SKEW
        return Pair(action.pair_key, action.origin, base=action.content, intent_at=intent_at).with_side(
            other(action.side), action.source_id, action.source_version
        )

    def _graph_body(self, action: CreateOn) -> dict[str, Any]:
        """The event for a create in Outlook; ``action.source_id`` is the Syncro id."""
        context = self._context(None, action.origin, action.source_id)
        return graph_fields(action.content, zone=self.zone, origin=action.origin, extras=context)

    def _created(self, action: CreateOn, intent: Pair, record: dict[str, Any]) -> None:
        """Mirror what the service returned and record the pair as synced."""
        self._store_created(action, intent, record)
        self.tally.created[action.side.value] += 1

    def _store_created(self, action: CreateOn, intent: Pair, record: dict[str, Any]) -> None:
        side = action.side
        if side is Side.SYNCRO:
            self._mirror_syncro(record)
            new_id, version = str(record["id"]), str(record.get("updated_at") or "")
        else:
            self._mirror_outlook(record)
            new_id, version = str(record["id"]), str(record.get("changeKey") or "")
        returned = self.read_back(side, record)
        # The row says "this version holds base": only if what came back is what we sent.
        recorded = version if returned == action.content else ""
        done = replace(intent.with_side(side, new_id, recorded), intent_at=None)
        self._save(done, state=MappingState.SYNCED, hashes={side: returned.content_hash()})

    # -- many new events at once: chained $batch requests (20 steps each, 4 in flight) ----------

    def _batchable(self, action: Action) -> bool:
        return (
            isinstance(action, CreateOn)
            and action.side is Side.OUTLOOK
            and action.replaces is None
            and action.pair_key not in self.rows
        )

    def _create_batch(self, actions: list[CreateOn]) -> int:
        """New events in Outlook through ``$batch``: the creates (each with its transactionId and
        Syncro id property, as `GraphClient.create_event` sends them) as ``dependsOn`` chains of
        20, one chain per ``$batch``, four in flight (Exchange's concurrent requests per
        mailbox), a wave of four at a time. Each wave's intent rows are written before it is
        sent (while the wave before is in flight), and its answers' rows while the next one is.
        A step that failed, or was left unrun (424) or throttled when the client's retries ran
        out, leaves its intent: the next round adopts what it finds (`find_by_syncro_id`) or
        creates it."""
        steps: list[tuple[CreateOn, Pair, BatchRequest]] = []
        path = f"/me/calendars/{quote(self.calendar_id, safe='')}/events"
        for index, action in enumerate(actions):
            try:
                body = self._graph_body(action)
            except UnmappableItem as error:
                self.tally.errors.append(f"CreateOn {action.pair_key}: {error}")
                continue
            payload = {
                **body,
                "transactionId": transaction_id(self.tech, action.pair_key, None),
                "singleValueExtendedProperties": [{"id": SYNCRO_ID_PROPERTY, "value": str(action.source_id)}],
            }
            steps.append((action, self._intent(action), BatchRequest(str(index), "POST", path, payload)))
        wave = BATCH_LIMIT * MAILBOX_CONCURRENCY
        waves = [steps[start : start + wave] for start in range(0, len(steps), wave)]
        created = 0
        with ThreadPoolExecutor(max_workers=STORAGE_WRITERS, thread_name_prefix="sync-storage") as pool:
            writes: list[Future[None]] = []

            def intents(group: list[tuple[CreateOn, Pair, BatchRequest]]) -> list[Future[None]]:
                return [pool.submit(self._save, intent, state=MappingState.INTENT) for _, intent, _ in group]

            ahead = intents(waves[0]) if waves else []
            for number, group in enumerate(waves):
                for future in ahead:
                    future.result()  # every intent of the wave is stored before it is sent
                ahead = intents(waves[number + 1]) if number + 1 < len(waves) else []
                writes += ahead
                for action, intent, record in self._send_wave(group):
                    writes.append(pool.submit(self._store_created, action, intent, record))
                    created += 1
            for future in writes:
                future.result()
        self.tally.created[Side.OUTLOOK.value] += created
        return created

    def _send_wave(
        self, group: list[tuple[CreateOn, Pair, BatchRequest]]
    ) -> list[tuple[CreateOn, Pair, dict[str, Any]]]:
        """The creates of one wave; the ones Graph made, with the event it answered."""
        try:
            answers = self.graph.batch([request for _, _, request in group], chained=True, lanes=MAILBOX_CONCURRENCY)
        except ServiceError as error:  # every $batch of the wave failed: the intents stay for recovery
            self.tally.errors.append(f"$batch of {len(group)} creates: {error}")
            return []
        made = []
        for (action, intent, _request), answer in zip(group, answers, strict=True):
            failure = answer.error()
            if failure is not None or not isinstance(answer.body, dict):
                self.tally.errors.append(f"CreateOn {action.pair_key}: {failure or 'no event in the answer'}")
                self._log(action, "failed", status_code=answer.status, batched=True)
                continue
            self._log(action, "done", writes=1, batched=True)
            made.append((action, intent, answer.body))
        return made

    def _adoptable(self, pair: Pair, side: Side) -> Item | None:
        claimed = {r.graph_id if side is Side.OUTLOOK else str(r.syncro_id) for r in self.rows.values()}
        if side is Side.OUTLOOK:
            found = self.graph.find_by_syncro_id(self.calendar_id, pair.syncro_id or "")
            items = []
            for event in found:
                if str(event["id"]) in claimed:
                    continue
                try:
                    content = appointment_from_graph(event, zone=self.zone)
                except UnmappableItem:
                    continue
                items.append(
                    Item(
                        Side.OUTLOOK,
                        str(event["id"]),
                        str(event.get("changeKey") or ""),
                        content,
                        ItemFlags(pair_key=pair.key),
                    )
                )
                self._mirror_outlook(event)
            return find_adoptable(pair, side, items)
        if pair.base is None:
            return None
        day = pair.base.start.astimezone(self.zone).date()
        window = {"date_from": day - timedelta(days=1), "date_to": day + timedelta(days=2)}
        records = {str(r["id"]): r for r in self.syncro.iter_appointments(**window) if str(r["id"]) not in claimed}
        items = []
        for record_id, record in records.items():
            try:
                content = appointment_from_syncro(record, zone=self.zone)
            except UnmappableItem:
                continue
            created = parse_time(record.get("created_at"))
            extras: dict[str, object] = {"created_at": created} if created else {}
            extras["tagged"] = carries_outlook_tag(record)
            items.append(
                Item(Side.SYNCRO, record_id, str(record.get("updated_at") or ""), content, ItemFlags(**extras))
            )
        found_item = find_adoptable(pair, side, items)
        if found_item is not None:
            self._mirror_syncro(records[found_item.id])
        return found_item

    def _update(self, action: UpdateOn) -> int:
        side, key = action.side, action.pair_key
        row = self.rows.get(key)
        pair = pair_of(row) if row else None
        if pair is None or pair.id_on(side) != action.item_id:
            return 0
        try:
            if side is Side.SYNCRO:
                self._syncro_at(action.item_id, action.expected_version)
                record = self._write_syncro(action.item_id, action.content, pair.origin)
                self._mirror_syncro(record)
                version = str(record.get("updated_at") or "")
            else:
                body = graph_fields(
                    action.content,
                    zone=self.zone,
                    origin=pair.origin,
                    extras=self._context(pair, pair.origin, pair.syncro_id),
                )
                record = self.graph.update_event(
                    self.calendar_id, action.item_id, body, if_match=f'W/"{action.expected_version}"'
                )
                self._mirror_outlook(record)
                version = str(record.get("changeKey") or "")
        except _Stale:
            self.tally.stale += 1
            return 0
        self.tally.updated[side.value] += 1
        if action.in_sync_with is not None:
            returned = self.read_back(side, record)
            recorded = version if returned == action.content else ""
            done = pair.with_side(side, action.item_id, recorded).with_side(
                other(side), pair.id_on(other(side)), action.in_sync_with
            )
            self._save(
                replace(done, base=action.content), state=MappingState.SYNCED, hashes={side: returned.content_hash()}
            )
        return 1

    def _delete(self, action: DeleteOn, *, reason: str = "deleted on the other side") -> int:
        side, key = action.side, action.pair_key
        row = self.rows.get(key)
        origin = row.origin.value if row else side.value
        if side is Side.SYNCRO:
            try:
                current = self._syncro_at(action.item_id, action.expected_version)
            except _Stale:
                self.tally.stale += 1
                return 0
            shown, others = self._others_on(current, action.item_id)
            if others and row is not None and row.origin is Origin.SYNCRO:  # a dispatcher's shared job
                return self._leave_shared(action, row, current, shown=shown, others=others)
        kept = self._kept(action.item_id if side is Side.SYNCRO else None, row)
        entry = self.storage.recycle_bin.add_entry(
            RecycleEntry(
                syncro_user_id=self.tech,
                entry_id=new_entry_id(self.clock()),
                side=side.value,
                original_id=action.item_id,
                origin=origin,
                content={**action.content.to_json(), **({"syncro": kept} if kept else {})},
                deleted_at=self.clock(),
                reason=reason,
            )
        )
        try:
            if side is Side.SYNCRO:
                try:
                    self.syncro.delete_appointment(int(action.item_id))
                except NotFound:
                    pass  # gone either way
            else:
                try:
                    self.graph.delete_event(
                        self._calendar_of(action.item_id), action.item_id, if_match=f'W/"{action.expected_version}"'
                    )
                except NotFound:
                    pass
        except (_Stale, PreconditionFailed):
            self.storage.recycle_bin.delete_entry(self.tech, entry.entry_id)  # nothing was deleted
            self.tally.stale += 1
            return 0
        except BaseException:
            self.storage.recycle_bin.delete_entry(self.tech, entry.entry_id)
            raise
        self._unmirror(side, action.item_id)
        self._drop_row(key)
        self.tally.deleted[side.value] += 1
        return 1

    # -- one tech's delete of a job other techs are on ------------------------------------------

    def _others_on(self, record: dict[str, Any], appointment_id: str) -> tuple[bool, set[int]]:
        """The other techs on a Syncro appointment, read just before a delete: from its
        ``user_id``/``user_ids`` when Syncro shows them (``True``), else the other active links
        whose own Syncro listing (the poller's mirror) holds it (``False``: a lower bound)."""
        inner = record.get("appointment") if isinstance(record.get("appointment"), dict) else record
        users = syncro_kept(record).get("user_ids", [])
        owner = inner.get("user_id")
        if users or isinstance(owner, int):
            assigned = {*users, *([owner] if isinstance(owner, int) and not isinstance(owner, bool) else [])}
            return True, assigned - {self.tech}
        from storage.errors import NotFound as NotStored
        from storage.links import LinkStatus

        seen: set[int] = set()
        for link in self.storage.links.list_links():
            if link.syncro_user_id == self.tech or link.status is not LinkStatus.ACTIVE:
                continue
            try:
                self.storage.mirror.get_entry(link.syncro_user_id, int(appointment_id))
            except NotStored:
                continue
            seen.add(link.syncro_user_id)
        return False, seen

    def _leave_shared(
        self, action: DeleteOn, row: Mapping, current: dict[str, Any], *, shown: bool, others: set[int]
    ) -> int:
        """This tech deleted his copy of a job other techs are on: the job stays. When Syncro
        shows its techs, this one is taken off it (the others and the job keep everything);
        when it hides them, guessing the list could drop a tech, so his copy is put back."""
        content = self.read_back(Side.SYNCRO, current)
        origin = Side(row.origin.value)
        self._mirror_syncro(current)
        if not shown:
            self.tally.notices.append(
                f"{content.summary}: other technicians are on this job, so it was put back in your calendar;"
                " ask the dispatcher to take you off it"
            )
            put_back = CreateOn(
                Side.OUTLOOK, content, origin, action.pair_key, action.item_id, str(current.get("updated_at") or "")
            )
            return self._create(replace(put_back, replaces=row.graph_id))
        inner = current.get("appointment") if isinstance(current.get("appointment"), dict) else current
        owner = inner.get("user_id")
        fields = syncro_fields(content, zone=self.zone, origin=origin, tech_syncro_user_id=None)
        fields["user_ids"] = sorted(others)
        fields["user_id"] = owner if owner in others else min(others)
        self.syncro.update_appointment(int(action.item_id), {**fields, "email_customer": False})
        self._unmirror(Side.SYNCRO, action.item_id)  # no longer this tech's
        self._drop_row(action.pair_key)
        self.tally.updated[Side.SYNCRO.value] += 1
        self.tally.notices.append(f"{content.summary}: you were taken off this job; the other technicians keep it")
        return 1

    # -- a meeting between linked techs: one job, the organiser's ----------------------------------

    def _assign(self, appointment_id: str, record: dict[str, Any], techs: set[int], owner: int) -> dict[str, Any]:
        """PUT the whole form of ``record`` (as Syncro holds it) with ``techs`` on it."""
        content = self.read_back(Side.SYNCRO, record)
        fields = syncro_fields(content, zone=self.zone, origin=Side.OUTLOOK, tech_syncro_user_id=None)
        fields["user_ids"], fields["user_id"] = sorted(techs), owner
        return self.syncro.update_appointment(int(appointment_id), {**fields, "email_customer": False})

    def _join(self, action: Join) -> int:
        """Add this tech to the organiser's job and record the passive pair. Syncro's techs when
        it shows them; else the organiser, the linked techs whose listing holds the job, and this
        one (a tech the dispatcher added by hand and who is not linked would be dropped)."""
        if action.pair_key in self.rows:
            return 0
        try:
            current = self.syncro.get_appointment(int(action.syncro_id))
        except NotFound:
            return 0  # the organiser's job went meanwhile: the next plan decides again
        shown, others = self._others_on(current, action.syncro_id)
        inner = current.get("appointment") if isinstance(current.get("appointment"), dict) else current
        owner = inner.get("user_id") if shown and isinstance(inner.get("user_id"), int) else action.organiser
        writes = 0
        if not (shown and self.tech in syncro_kept(current).get("user_ids", [])):
            current = self._assign(action.syncro_id, current, {*others, action.organiser, self.tech}, owner)
            writes = 1
            self.tally.updated[Side.SYNCRO.value] += 1
        self._mirror_syncro(current)  # his listing shows it from now on: the pair claims it
        content = self.read_back(Side.SYNCRO, current)
        pair = Pair(
            action.pair_key,
            Side.OUTLOOK,
            syncro_id=action.syncro_id,
            outlook_id=action.outlook_id,
            syncro_version=str(current.get("updated_at") or ""),
            outlook_version=action.outlook_version,
            base=content,
        )
        self._save(pair, state=MappingState.SYNCED)
        return writes

    def _leave(self, action: Leave) -> int:
        """This tech's invitation went (deleted, declined): off the organiser's job, which stays."""
        try:
            current = self.syncro.get_appointment(int(action.syncro_id))
        except NotFound:
            current = None
        writes = 0
        if current is not None:
            _, others = self._others_on(current, action.syncro_id)
            if others:
                inner = current.get("appointment") if isinstance(current.get("appointment"), dict) else current
                owner = inner.get("user_id") if inner.get("user_id") in others else min(others)
                self._assign(action.syncro_id, current, others, owner)
                self.tally.updated[Side.SYNCRO.value] += 1
                writes = 1
        self._unmirror(Side.SYNCRO, action.syncro_id)
        self._drop_row(action.pair_key)
        return writes

    def _discard(self, action: Discard) -> int:
        """Delete a copy of ours the pair no longer maps (replaced in the synced calendar): the
        appointment lives on, so no recycle-bin entry, and the row stays as the create left it."""
        if action.side is Side.SYNCRO:
            raise NotImplementedError("the planner discards Outlook copies only")
        try:
            self.graph.delete_event(
                self._calendar_of(action.item_id), action.item_id, if_match=f'W/"{action.expected_version}"'
            )
        except NotFound:
            pass  # gone either way
        self._unmirror(action.side, action.item_id)
        return 1

    def _calendar_of(self, event_id: str) -> str:
        """The calendar that holds an event (its ``parentFolderId``), the synced one when unknown:
        an event left in another calendar is addressed where it is."""
        event = self.snapshot.outlook.get(event_id) or {}
        return str(event.get("parentFolderId") or self.calendar_id)

    def _verify(self, side: Side, ids: tuple[str, ...]) -> None:
        if side is Side.OUTLOOK:  # several at once in chained $batch requests
            for item_id, event in self.graph.get_events(self.calendar_id, list(ids)).items():
                if event is None:
                    self._unmirror(side, item_id)
                    self.tally.verified_gone.add((side, item_id))
                else:
                    self._mirror_outlook(event)
            return
        for item_id in ids:
            try:
                record = self.syncro.get_appointment(int(item_id))
            except NotFound:
                self._unmirror(side, item_id)
                self.tally.verified_gone.add((side, item_id))
                continue
            if self._given_away(record, item_id):
                self.tally.verified_gone.add((side, item_id))  # gone from this tech: never put back in his mirror
            else:
                self._mirror_syncro(record)  # his listing glitched: it is his still

    def _given_away(self, record: dict[str, Any], appointment_id: str) -> bool:
        """An appointment that exists but is no longer this tech's: its techs say so when Syncro
        shows them; else the poller, which took it out of his mirror only on evidence (his own
        listing, another tech's, or a change to it), while a mirror that still holds it only
        read back short."""
        inner = record.get("appointment") if isinstance(record.get("appointment"), dict) else record
        users, owner = syncro_kept(record).get("user_ids", []), inner.get("user_id")
        if users or (isinstance(owner, int) and not isinstance(owner, bool)):
            return self.tech not in {*users, owner}
        from storage.errors import NotFound as NotStored

        try:
            self.storage.mirror.get_entry(self.tech, int(appointment_id))
        except NotStored:
            return True
        return False


class _Stale(Exception):
    """A Syncro precondition failed: the appointment moved on since the plan read it."""
