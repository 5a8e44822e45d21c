"""In-memory Syncro and Outlook sides and the reference executor of planned actions.

`World.apply` is the semantics the real executor follows (see `sync.actions`): every write has a
precondition, a failed precondition skips the action, and the pair row is written around each
write so a crash between the two is recovered by the next plan. Syncro also holds what is not
content (customer, ticket, type: ``Stored.kept``), which the executor keeps per pair from the last
Syncro version it saw and sends again with a re-create (`sync.executor`); an appointment given to
another tech still exists (``FakeSide.away``) and a re-create of it is refused as the executor does.
Faults are injected here:
a write can fail before it happens or halfway (written, not recorded), a listing can come back
empty, a round's actions can be applied twice.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Literal

from sync.actions import (
    WRITES,
    Action,
    Conflict,
    CreateOn,
    DeleteOn,
    Discard,
    Forget,
    Pair,
    Record,
    UpdateOn,
    Verify,
    other,
)
from sync.model import Appointment, Item, ItemFlags, Side
from sync.planner import Policy, plan

Fault = Literal["before", "halfway"]
EPOCH = datetime(2026, 12, 1, tzinfo=UTC)


def at(tick: int) -> datetime:
    return EPOCH + timedelta(seconds=tick)


class PreconditionFailed(Exception):
    """The item is gone or moved on since the plan read it."""


class InjectedFault(Exception):
    """A write that failed on purpose (the network, a crash)."""


@dataclass
class Stored:
    version: str
    content: Appointment
    extras: dict[str, object]
    # Outlook, an event we created: the pair its transactionId names, and whether its subject
    # carries "[S] " (a copy of a Syncro-born appointment). Read as the engine reads them (`get`).
    made_for: str | None = None
    syncro_tag: bool = False
    kept: dict[str, object] = field(default_factory=dict)  # Syncro: customer, ticket, type (not content)


@dataclass(frozen=True)
class Binned:
    """A recycle-bin entry: what was deleted, on which side, and (as `sync.executor._kept`) what
    its Syncro appointment held beyond content."""

    side: Side
    origin: Side
    content: Appointment
    kept: dict[str, object]


class FakeSide:
    """One calendar: id -> (version, content, extras). Every write bumps the version and
    ``modified_at`` from a clock shared by both sides."""

    def __init__(self, side: Side, clock: count[int]) -> None:
        self.side = side
        self.calendar = 1  # Outlook: the synced calendar (the tech may choose another)
        self.items: dict[str, Stored] = {}
        self.away: dict[str, Stored] = {}  # Syncro: appointments given to another tech (still there)
        self.recycle_bin: list[Appointment] = []  # what the sync deleted
        self._clock = clock
        self._ids = count(1)

    def listing(self, pair_keys: Container[str] = ()) -> list[Item]:
        """Every item; in Outlook, those of another calendar marked ``elsewhere`` (Graph answers
        them by id, with their ``parentFolderId``, as the engine reads mapped ones). ``pair_keys``:
        the pairs the mapping table holds now (see `get`)."""
        return [self.get(item_id, pair_keys=pair_keys) for item_id in self.items]

    def _stamp(self, stored: Stored) -> Stored:
        if self.side is Side.OUTLOOK:
            stored.extras.setdefault("calendar", self.calendar)
        tick = next(self._clock)
        stored.version = f"v{tick}"
        stored.extras["modified_at"] = tick
        stored.extras.setdefault("created_at", at(tick))
        return stored

    # -- what a user does in the app (no preconditions) --

    def user_create(
        self, content: Appointment, *, preexisting: bool = False, kept: dict[str, object] | None = None
    ) -> str:
        item_id = f"{self.side.value[0]}{next(self._ids)}"
        extras: dict[str, object] = {"preexisting": True} if preexisting else {}
        self.items[item_id] = self._stamp(Stored("", content, extras, kept=dict(kept or {})))
        return item_id

    def user_sets_kept(self, item_id: str, kept: dict[str, object]) -> None:
        """The dispatcher links the appointment to another ticket or customer: not content."""
        stored = self.items[item_id]
        stored.kept = dict(kept)
        self._stamp(stored)

    def give_away(self, item_id: str) -> None:
        """The dispatcher gives the appointment to another tech: gone from this tech's listing."""
        self.away[item_id] = self.items.pop(item_id)

    def user_update(self, item_id: str, content: Appointment) -> None:
        stored = self.items[item_id]
        stored.content = content
        self._stamp(stored)

    def user_delete(self, item_id: str) -> None:
        del self.items[item_id]

    # -- what the executor does (preconditions) --

    def create(
        self, content: Appointment, *, pair_key: str, origin: Side | None = None, kept: dict[str, object] | None = None
    ) -> Item:
        item_id = f"{self.side.value[0]}{next(self._ids)}"
        # Outlook keeps our pair key in the create's transactionId, and a copy of a Syncro-born
        # appointment carries "[S] " in its subject; Syncro has nowhere to keep a key, but an
        # Outlook-born item created there carries the "[O] " tag in its summary.
        extras: dict[str, object] = {}
        stored = Stored("", content, extras, kept=dict(kept or {}))
        if self.side is Side.OUTLOOK:
            stored.made_for, stored.syncro_tag = pair_key, origin is Side.SYNCRO
        if self.side is Side.SYNCRO and origin is Side.OUTLOOK:
            extras["tagged"] = True
        self.items[item_id] = self._stamp(stored)
        return self.get(item_id, pair_keys=(pair_key,))

    def update(self, item_id: str, content: Appointment, *, expected_version: str) -> Item:
        stored = self._expect(item_id, expected_version)
        stored.content = content
        self._stamp(stored)
        return self.get(item_id)

    def delete(self, item_id: str, *, expected_version: str) -> None:
        stored = self._expect(item_id, expected_version)
        self.recycle_bin.append(stored.content)
        del self.items[item_id]

    def discard(self, item_id: str, *, expected_version: str) -> None:
        """A copy of ours replaced elsewhere: gone, and not into the recycle bin."""
        self._expect(item_id, expected_version)
        del self.items[item_id]

    def get(self, item_id: str, *, pair_keys: Container[str] = ()) -> Item:
        """The item as the engine hands it to the planner (`sync.engine.build_inputs`): an event
        we created is known as ours (``pair_key``) while its pair is in ``pair_keys``, and after
        that only if it is a ``[S]`` copy (an orphan of ours). A re-created copy of the tech's own
        event carries no tag: once its pair is gone it is his event like any other."""
        s = self.items[item_id]
        extras = dict(s.extras)
        if extras.pop("calendar", self.calendar) != self.calendar:
            extras["elsewhere"] = True
        if s.made_for is not None and (s.syncro_tag or s.made_for in pair_keys):
            extras["pair_key"] = s.made_for
        return Item(self.side, item_id, s.version, s.content, ItemFlags(**extras))

    def _expect(self, item_id: str, version: str) -> Stored:
        stored = self.items.get(item_id)
        if stored is None or stored.version != version:
            raise PreconditionFailed(item_id)
        return stored


@dataclass
class World:
    """Both sides, the pair rows, and the executor."""

    policy: Policy
    clock: count[int] = field(default_factory=lambda: count(1))
    pairs: dict[str, Pair] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    verified_gone: set[tuple[Side, str]] = field(default_factory=set)
    # faults for the next sync
    faults: dict[int, Fault] = field(default_factory=dict)  # nth write of the sync -> how it fails
    glitch: Side | None = None  # that side's first listing comes back empty
    run_twice: bool = False  # the first round's actions are applied twice
    writes: int = 0
    replaced: dict[str, str] = field(default_factory=dict)  # an id re-created (e.g. moved) -> its pair key
    kept: dict[str, dict[str, object]] = field(default_factory=dict)  # pair key -> its Syncro item's, last seen
    binned: list[Binned] = field(default_factory=list)  # every recycle-bin entry, in order

    def __post_init__(self) -> None:
        self.sides = {side: FakeSide(side, self.clock) for side in Side}

    @property
    def syncro(self) -> FakeSide:
        return self.sides[Side.SYNCRO]

    @property
    def outlook(self) -> FakeSide:
        return self.sides[Side.OUTLOOK]

    def plan(self) -> list[Action]:
        listings = {side: ([] if side is self.glitch else self.sides[side].listing(self.pairs)) for side in Side}
        self.glitch = None
        for pair in self.pairs.values():  # the executor writes them on the row from the Syncro mirror
            held = self.syncro.items.get(pair.syncro_id or "")
            if held is not None:
                self.kept[pair.key] = dict(held.kept)
        return plan(
            self.pairs.values(),
            listings[Side.SYNCRO],
            listings[Side.OUTLOOK],
            policy=self.policy,
            verified_gone=self.verified_gone,
        )

    def sync(self, max_rounds: int = 8) -> int:
        """Plan and apply until the plan is empty; returns the rounds it took (AssertionError if
        it does not settle)."""
        self.writes = 0
        self.verified_gone = set()  # what a Verify found holds for one sync, as the engine's tally
        for rounds in range(max_rounds):
            glitched = self.glitch is not None  # an empty plan from a bad listing proves nothing
            actions = self.plan()
            if not actions and not glitched:
                self.faults.clear()
                return rounds
            self.apply(actions)
            if self.run_twice:
                self.run_twice = False
                self.apply(actions)
        raise AssertionError(f"no quiet plan after {max_rounds} rounds: {self.plan()}")

    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            fault = None
            if isinstance(action, WRITES):
                self.writes += 1
                fault = self.faults.pop(self.writes, None)
            try:
                self._run(action, fault)
            except (PreconditionFailed, InjectedFault):
                pass  # skipped: the next plan decides again from fresh listings

    def _run(self, action: Action, fault: Fault | None) -> None:
        match action:
            case CreateOn():
                self._create(action, fault)
            case UpdateOn(side=side, item_id=item_id, content=content, pair_key=key):
                pair = self.pairs.get(key)
                if pair is None or pair.id_on(side) != item_id:
                    raise PreconditionFailed(key)
                _fail_if(fault, "before")
                written = self.sides[side].update(item_id, content, expected_version=action.expected_version)
                _fail_if(fault, "halfway")
                if action.in_sync_with is not None:
                    pair = pair.with_side(side, item_id, written.version).with_side(
                        other(side), pair.id_on(other(side)), action.in_sync_with
                    )
                    self.pairs[key] = replace(pair, base=content)
            case DeleteOn():
                self._delete(action, fault)
            case Discard(side=side, item_id=item_id):
                _fail_if(fault, "before")
                self.sides[side].discard(item_id, expected_version=action.expected_version)
            case Forget(pair_key=key):
                self.pairs.pop(key, None)
            case Record(pair=pair):
                self.pairs[pair.key] = pair
            case Conflict():
                self.conflicts.append(action)
            case Verify(side=side, ids=ids):
                self.verified_gone.update((side, item_id) for item_id in ids if item_id not in self.sides[side].items)

    def _delete(self, action: DeleteOn, fault: Fault | None) -> None:
        side, key = action.side, action.pair_key
        pair = self.pairs.get(key)
        held = self.syncro.items.get(action.item_id) if side is Side.SYNCRO else None
        kept = dict(held.kept) if held is not None else dict(self.kept.get(key, {}))
        _fail_if(fault, "before")
        self.sides[side].delete(action.item_id, expected_version=action.expected_version)
        self.binned.append(Binned(side, pair.origin if pair else side, action.content, kept))
        _fail_if(fault, "halfway")
        self.pairs.pop(key, None)

    def _create(self, action: CreateOn, fault: Fault | None) -> None:
        side, key = action.side, action.pair_key
        before = self.pairs.get(key)
        if before is None:
            if action.replaces is not None or action.intent_at is not None:
                raise PreconditionFailed(key)
        elif before.id_on(side) != action.replaces or before.intent_at != action.intent_at:
            raise PreconditionFailed(key)  # the row moved on: a retry or a second run did it
        if side is Side.SYNCRO and before is not None and action.replaces in self.syncro.away:
            self._left_tech(action, before, fault)  # not deleted: given to another tech
            return
        intent = Pair(key, action.origin, base=action.content, intent_at=at(next(self.clock))).with_side(
            other(side), action.source_id, action.source_version
        )
        self.pairs[key] = intent  # written before the create, so a crash leaves a trace to adopt
        if action.replaces is not None:
            self.replaced[action.replaces] = key
        _fail_if(fault, "before")
        # a re-create in Syncro carries what the appointment it replaces held (or, for a restored
        # event of the tech's own, what its deleted job held: `sync.engine.restore_entry`)
        kept = self.kept.get(key) if side is Side.SYNCRO else None
        created = self.sides[side].create(action.content, pair_key=key, origin=action.origin, kept=kept)
        _fail_if(fault, "halfway")
        self.pairs[key] = replace(intent.with_side(side, created.id, created.version), intent_at=None)

    def _left_tech(self, action: CreateOn, before: Pair, fault: Fault | None) -> None:
        """As `sync.executor.Executor._left_tech`: a conflict on the assignment; a ``[S]`` copy
        goes to the recycle bin with the tech's edit, the tech's own event stays, released."""
        self.conflicts.append(Conflict(action.pair_key, ("assignment",), Side.SYNCRO, action.content, action.content))
        if before.origin is Side.OUTLOOK:
            self.pairs[action.pair_key] = replace(before, released=True)
            return
        copy = DeleteOn(Side.OUTLOOK, action.source_id, action.source_version, action.pair_key, action.content)
        self._delete(copy, fault)


def _fail_if(fault: Fault | None, when: Fault) -> None:
    if fault == when:
        raise InjectedFault(when)
