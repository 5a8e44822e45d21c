"""What the planner remembers of a pair, the actions it decides, and how each action runs.

The planner (`sync/planner.py`) returns a list of these frozen actions; each runs itself with
``run(sides, store)`` against the two side interfaces and the pair rows of `sync.sides` (as
vdirsyncer's ``Upload``/``Update``/``Delete``), so the product (real clients) and the fast state
machine (in-memory sides) run the same rules:

- ``CreateOn``: skip unless the pair row is as the plan saw it (its id on ``side`` is still
  ``replaces``, its ``intent_at`` still ``intent_at``: otherwise another run did it); adopt what an
  interrupted earlier attempt left; write the pair as an intent (id on ``side`` empty,
  ``base=content``, the source's id and version, a fresh ``intent_at``) *before* creating, so an
  interrupted create is adopted by the next plan instead of made twice; after the create, record
  the new id and version (and clear ``intent_at``).
- ``UpdateOn``: write only if the item is still at ``expected_version`` (Graph ``If-Match``,
  Syncro: re-read ``updated_at``); afterwards, when ``in_sync_with`` is set, record the pair as in
  sync (``base=content``, the new version, ``in_sync_with`` for the other side); otherwise record
  nothing (the other side is being written too: the next plan sees both equal and records).
- ``DeleteOn``: delete (into the recycle bin, with ``content``) only if the item is still at
  ``expected_version``; afterwards forget the pair (its other side is already gone). A
  dispatcher's job other techs are on is never deleted for one tech's delete.
- ``Join``/``Leave``: add the tech to (take him off) the Syncro job of a meeting another linked
  tech organised, and record (forget) the passive pair between it and his invitation.
- ``Discard``: delete a copy of ours the pair no longer maps (no recycle-bin entry, row untouched).
- ``Forget``/``Record``: drop or replace the pair row. ``Conflict``: keep for the settings page.
  ``Verify``: re-read each id one by one; those really gone are passed to the next plan as
  ``verified_gone``.

A write records what the service *returned*: the row says "this version holds base" only when
what came back is what was sent. A failed precondition (`sync.errors.PreconditionFailed`) skips
the action and leaves the pair as it was: the next plan, from fresh snapshots, decides again.
That is what makes every action safe to retry or to run twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from storage.mappings import MappingState
from sync.errors import NotFound, PreconditionFailed
from sync.model import Appointment, Side
from sync.pairs import Pair, other

if TYPE_CHECKING:
    from sync.sides import Held, PairStore, Sides, Written

__all__ = ["Pair", "other"]  # read by the planner and the engine from here

# Recovery adopts only items created after the intent: the margin absorbs clock skew between us
# and Syncro (an item created that much earlier is ours only by coincidence).
INTENT_SKEW = timedelta(minutes=2)
DELETED_ELSEWHERE = "deleted on the other side"
GIVEN_AWAY = "the job was given to another technician; your edit is kept here"


def recorded(pair: Pair, side: Side, written: Written, sent: Appointment) -> Pair:
    """The pair with ``side`` at what a write returned: its version recorded only if the service
    kept what was sent (a side that rewrote a field is then seen as changed and carried over once,
    never back and forth)."""
    return pair.with_side(side, written.id, written.version if written.content == sent else "")


@dataclass(frozen=True)
class CreateOn:
    """Create ``content`` on ``side`` as the counterpart of ``source_id`` (whose version
    ``source_version`` holds ``content``). ``replaces`` is the id the pair had on ``side`` before
    the item vanished there (a re-create), None for a new pair or an intent. The planner has
    already looked for what an interrupted earlier attempt left behind and found nothing."""

    side: Side
    content: Appointment
    origin: Side
    pair_key: str
    source_id: str
    source_version: str
    replaces: str | None = None
    intent_at: datetime | None = None  # the intent this retries (None: no intent yet)

    def moved_on(self, before: Pair | None) -> bool:
        """Whether the row is no longer as the plan saw it (a retry or a second run did this)."""
        seen = (before.id_on(self.side), before.intent_at) if before is not None else (None, None)
        return seen != (self.replaces, self.intent_at)

    def intent(self, now: datetime) -> Pair:
        """The row written before the create: the source side known, this side empty."""
        pair = Pair(self.pair_key, self.origin, base=self.content, intent_at=now - INTENT_SKEW)
        return pair.with_side(other(self.side), self.source_id, self.source_version)

    def run(self, sides: Sides, store: PairStore) -> int:
        before = store.pair(self.pair_key)
        if self.moved_on(before):
            return 0
        if before is not None and before.id_on(self.side) is None:
            # An earlier attempt may have created it before failing: adopt, never duplicate.
            found = sides.on(self.side).adopt(before, store.claimed(self.side))
            if found is not None:
                version = found.version if found.content == before.base else ""
                adopted = before.with_side(self.side, found.id, version)
                store.save(replace(adopted, intent_at=None), state=MappingState.SYNCED)
                return 0
        if self.side is Side.SYNCRO and self.replaces is not None and before is not None:
            try:
                alive = sides.syncro.get(self.replaces)
            except NotFound:
                alive = None
            if alive is not None:  # not deleted: the job left this tech (reassigned)
                return self._left_tech(before, alive, sides, store)
        intent = self.intent(store.now())
        store.save(intent, state=MappingState.INTENT)  # before the create: a crash leaves a trace
        if self.side is Side.SYNCRO:
            # A re-create carries what the appointment it replaces held (or, for a restored event
            # of the tech's own, what its deleted job held: `engine.restore_entry`).
            kept = store.kept(self.pair_key) if before is not None else None
            written = sides.syncro.create(self.content, origin=self.origin, kept=kept)
        else:
            written = sides.outlook.create(
                self.content,
                origin=self.origin,
                pair_key=self.pair_key,
                source_id=self.source_id,
                replaces=self.replaces,
            )
        self.record(intent, written, store)
        return 1

    def record(self, intent: Pair, written: Written, store: PairStore) -> None:
        """The pair as synced once the create is made, and counted."""
        store.save(
            replace(recorded(intent, self.side, written, self.content), intent_at=None), state=MappingState.SYNCED
        )
        store.tally.created[self.side.value] += 1

    def _left_tech(self, before: Pair, alive: Held, sides: Sides, store: PairStore) -> int:
        """ "Edit beats delete" met an appointment that was not deleted but left this tech's
        listing (the dispatcher gave it to another tech while this one edited his copy):
        re-creating it would make a second job. A ``[S]`` copy leaves his calendar through the
        recycle bin, his edit kept there, with a conflict for the settings page; the tech's own
        event (an ``[O]`` job given to someone else) stays in Outlook, no longer synced."""
        store.tally.conflicts.append(
            {
                "pair": self.pair_key,
                "fields": ["assignment"],
                "winner": Side.SYNCRO.value,
                "summary": alive.content.summary,
            }
        )
        if before.origin is Side.OUTLOOK:
            store.save(replace(before, released=True), state=MappingState.RELEASED)
            return 0
        copy = DeleteOn(
            Side.OUTLOOK, self.source_id, self.source_version, self.pair_key, self.content, reason=GIVEN_AWAY
        )
        return copy.run(sides, store)


@dataclass(frozen=True)
class UpdateOn:
    """Write ``content`` over ``item_id`` on ``side`` if it is still at ``expected_version``.
    ``in_sync_with``: the other side's version that already holds ``content`` (None when the
    other side is written in the same plan)."""

    side: Side
    item_id: str
    content: Appointment
    expected_version: str
    pair_key: str
    in_sync_with: str | None = None

    def run(self, sides: Sides, store: PairStore) -> int:
        pair = store.pair(self.pair_key)
        if pair is None or pair.id_on(self.side) != self.item_id:
            return 0
        if self.side is Side.SYNCRO:
            written = sides.syncro.update(
                self.item_id, self.content, expected_version=self.expected_version, origin=pair.origin
            )
        else:
            written = sides.outlook.update(
                self.item_id,
                self.content,
                expected_version=self.expected_version,
                origin=pair.origin,
                syncro_id=pair.syncro_id,
            )
        store.tally.updated[self.side.value] += 1
        if self.in_sync_with is not None:
            done = recorded(pair, self.side, written, self.content)
            done = done.with_side(other(self.side), pair.id_on(other(self.side)), self.in_sync_with)
            store.save(replace(done, base=self.content), state=MappingState.SYNCED)
        return 1


@dataclass(frozen=True)
class DeleteOn:
    """Delete ``item_id`` on ``side`` if it is still at ``expected_version``; ``content`` is what
    goes to the recycle bin, ``reason`` what its entry says. The pair's other side is already gone."""

    side: Side
    item_id: str
    expected_version: str
    pair_key: str
    content: Appointment
    reason: str = DELETED_ELSEWHERE

    def run(self, sides: Sides, store: PairStore) -> int:
        pair = store.pair(self.pair_key)
        if pair is None or pair.id_on(self.side) != self.item_id:
            return 0  # done already (a retry or a second run)
        kept = None
        if self.side is Side.SYNCRO:
            held = sides.syncro.current(self.item_id, self.expected_version)
            shown, others = sides.syncro.others_on(held)
            if others and pair.origin is Side.SYNCRO:  # a dispatcher's shared job
                return _leave_shared(self, pair, held, sides, store, shown=shown, others=others)
            kept = sides.syncro.kept(self.item_id)
        entry = store.bin(
            side=self.side,
            item_id=self.item_id,
            origin=pair.origin,
            content=self.content,
            kept=kept or store.kept(self.pair_key),
            reason=self.reason,
        )
        try:
            if self.side is Side.SYNCRO:
                sides.syncro.delete(self.item_id)
            else:
                sides.outlook.delete(self.item_id, expected_version=self.expected_version)
        except PreconditionFailed:
            store.unbin(entry)  # nothing was deleted
            store.tally.stale += 1
            return 0
        except BaseException:
            store.unbin(entry)
            raise
        store.drop(self.pair_key)
        store.tally.deleted[self.side.value] += 1
        return 1


def _leave_shared(
    action: DeleteOn, pair: Pair, held: Held, sides: Sides, store: PairStore, *, shown: bool, others: set[int]
) -> int:
    """This tech deleted his copy of a job other techs are on: the job stays. When Syncro shows
    its techs, this one is taken off it (the others and the job keep everything); when it hides
    them, guessing the list could drop a tech, so his copy is put back."""
    sides.syncro.mirror(held)
    summary = held.content.summary
    if not shown:
        store.tally.notices.append(
            f"{summary}: other technicians are on this job, so it was put back in your calendar;"
            " ask the dispatcher to take you off it"
        )
        put_back = CreateOn(
            Side.OUTLOOK, held.content, pair.origin, pair.key, action.item_id, held.version, replaces=pair.outlook_id
        )
        return put_back.run(sides, store)
    owner = held.owner if held.owner in others else min(others)
    sides.syncro.assign(held, others, owner, origin=pair.origin)
    sides.syncro.forget(action.item_id)  # no longer this tech's
    store.drop(pair.key)
    store.tally.updated[Side.SYNCRO.value] += 1
    store.tally.notices.append(f"{summary}: you were taken off this job; the other technicians keep it")
    return 1


@dataclass(frozen=True)
class Discard:
    """Delete our copy ``item_id`` on ``side`` that the pair no longer maps (its replacement was
    just created, e.g. in the calendar the tech switched to), if still at ``expected_version``.
    No recycle-bin entry (the appointment lives on) and the pair row is left as it is."""

    side: Side
    item_id: str
    expected_version: str
    pair_key: str

    def run(self, sides: Sides, store: PairStore) -> int:
        if self.side is Side.SYNCRO:
            raise NotImplementedError("the planner discards Outlook copies only")
        sides.outlook.delete(self.item_id, expected_version=self.expected_version)
        return 1


MEETING_PREFIX = "meeting:"  # the key of a pair that joins a tech's invitation to the organiser's job


@dataclass(frozen=True)
class Join:
    """The tech's copy ``outlook_id`` of a meeting another linked tech organised, whose Syncro job
    ``syncro_id`` the organiser's sync made: add this tech to that job and remember the pair (key
    ``meeting:<outlook_id>``), never create a second job. ``organiser`` is the organising tech."""

    outlook_id: str
    outlook_version: str
    syncro_id: str
    organiser: int

    @property
    def pair_key(self) -> str:
        return MEETING_PREFIX + self.outlook_id

    def run(self, sides: Sides, store: PairStore) -> int:
        """Syncro's techs when it shows them; else the organiser, the linked techs whose listing
        holds the job, and this one (a tech the dispatcher added by hand and who is not linked
        would be dropped)."""
        if store.pair(self.pair_key) is not None:
            return 0
        syncro = sides.syncro
        try:
            held = syncro.get(self.syncro_id)
        except NotFound:
            return 0  # the organiser's job went meanwhile: the next plan decides again
        shown, others = syncro.others_on(held)
        owner = held.owner if shown and held.owner is not None else self.organiser
        writes = 0
        if not (shown and syncro.tech in held.techs):
            held = syncro.assign(held, {*others, self.organiser, syncro.tech}, owner, origin=Side.OUTLOOK)
            writes = 1
            store.tally.updated[Side.SYNCRO.value] += 1
        syncro.mirror(held)  # his listing shows it from now on: the pair claims it
        pair = Pair(
            self.pair_key,
            Side.OUTLOOK,
            syncro_id=self.syncro_id,
            outlook_id=self.outlook_id,
            syncro_version=held.version,
            outlook_version=self.outlook_version,
            base=held.content,
        )
        store.save(pair, state=MappingState.SYNCED)
        return writes


@dataclass(frozen=True)
class Leave:
    """The tech's copy of a joined meeting is gone, cancelled or declined: take the tech off the
    organiser's job ``syncro_id`` (which stays) and forget the pair."""

    pair_key: str
    syncro_id: str

    def run(self, sides: Sides, store: PairStore) -> int:
        syncro = sides.syncro
        try:
            held: Held | None = syncro.get(self.syncro_id)
        except NotFound:
            held = None
        writes = 0
        if held is not None:
            _, others = syncro.others_on(held)
            if others:
                owner = held.owner if held.owner in others else min(others)
                syncro.assign(held, others, owner, origin=Side.OUTLOOK)
                store.tally.updated[Side.SYNCRO.value] += 1
                writes = 1
        syncro.forget(self.syncro_id)
        store.drop(self.pair_key)
        return writes


@dataclass(frozen=True)
class Forget:
    """Drop the pair: both of its items are gone."""

    pair_key: str

    def run(self, sides: Sides, store: PairStore) -> int:
        store.drop(self.pair_key)
        return 0


@dataclass(frozen=True)
class Record:
    """Replace the pair row without writing to either side (an echo, a no-op edit, both sides
    already equal, an adopted item)."""

    pair: Pair

    @property
    def pair_key(self) -> str:
        return self.pair.key

    def run(self, sides: Sides, store: PairStore) -> int:
        store.save(self.pair, state=MappingState.RELEASED if self.pair.released else MappingState.SYNCED)
        return 0


@dataclass(frozen=True)
class Conflict:
    """The same field changed on both sides; ``winner``'s value was kept. For the settings page."""

    pair_key: str
    fields: tuple[str, ...]
    winner: Side
    syncro: Appointment
    outlook: Appointment

    def run(self, sides: Sides, store: PairStore) -> int:
        kept = self.syncro if self.winner is Side.SYNCRO else self.outlook
        store.tally.conflicts.append(
            {"pair": self.pair_key, "fields": list(self.fields), "winner": self.winner.value, "summary": kept.summary}
        )
        return 0


@dataclass(frozen=True)
class Verify:
    """Too many mapped items vanished from ``side`` at once to trust the listing: re-read these
    ids one by one before anything is deleted or re-created."""

    side: Side
    ids: tuple[str, ...]

    def run(self, sides: Sides, store: PairStore) -> int:
        gone = sides.on(self.side).verify(self.ids)
        store.tally.verified_gone.update((self.side, item_id) for item_id in gone)
        return 0


Action = CreateOn | UpdateOn | DeleteOn | Discard | Join | Leave | Forget | Record | Conflict | Verify
WRITES = (CreateOn, UpdateOn, DeleteOn, Discard, Join, Leave)
