"""In-memory Syncro and Outlook sides and pair rows, under the real actions.

The fast state machines run the product's own action code (`sync.actions`, through
`sync.executor.run_actions`) against these, as the product runs it against the real clients
(`sync.syncro_side`, `sync.outlook_side`, `sync.pair_store`): each side here implements
`sync.sides.SyncroSide` / `OutlookSide`, and `PairStore` keeps the rows in a dict. What is the
services' behaviour lives here: every write has a precondition (Graph's If-Match, Syncro's
re-read), a delete of something gone counts as done, Syncro also holds what is not content
(customer, ticket, type: ``Stored.kept``), and an appointment given to another tech still exists
(``FakeSyncro.away``). Faults are injected here: a write can fail before it happens or halfway
(written, not answered), a listing can come back empty, a round's actions can be applied twice.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any, Literal

from storage.mappings import MappingState
from sync.actions import Action, Pair
from sync.errors import NotFound, PreconditionFailed, ServiceError
from sync.executor import run_actions
from sync.model import Appointment, Item, ItemFlags, Side
from sync.planner import Policy, find_adoptable, plan
from sync.sides import Held, NewEvent, Sides, Tally, Written

Fault = Literal["before", "halfway"]
EPOCH = datetime(2026, 12, 1, tzinfo=UTC)
TECH, COLLEAGUE = 1, 2


def at(tick: int) -> datetime:
    """The shared clock's time at ``tick``: ten minutes a tick, so the executor's margin for clock
    skew (`sync.actions.INTENT_SKEW`) spans less than a tick, as it spans seconds of a real day."""
    return EPOCH + timedelta(minutes=10 * tick)


class InjectedFault(ServiceError):
    """A write that failed on purpose (the network, a crash)."""

    service = "the fake"

    def __init__(self, when: Fault) -> None:
        super().__init__(None, None, f"injected fault {when}")


@dataclass
class Faults:
    """The faults for the next sync: the nth write attempt (counted across both sides) fails."""

    plan: dict[int, Fault] = field(default_factory=dict)
    writes: int = 0

    def next(self) -> Fault | None:
        self.writes += 1
        fault = self.plan.pop(self.writes, None)
        if fault == "before":
            raise InjectedFault(fault)
        return fault


def _halfway(fault: Fault | None) -> None:
    if fault == "halfway":
        raise InjectedFault(fault)


def _gone(item_id: str) -> NotFound:
    return NotFound(404, None, f"{item_id} is gone")


def _stale(item_id: str) -> PreconditionFailed:
    return PreconditionFailed(412, None, f"{item_id} moved on")


@dataclass
class Stored:
    version: str
    content: Appointment
    extras: dict[str, object]
    # Outlook, an event we created: the pair its transactionId names, and whether its subject
    # carries "[S] " (a copy of a Syncro-born appointment). Read as the engine reads them (`item`).
    made_for: str | None = None
    syncro_tag: bool = False
    kept: dict[str, object] = field(default_factory=dict)  # Syncro: customer, ticket, type (not content)


@dataclass(frozen=True)
class Binned:
    """A recycle-bin entry: what was deleted, on which side, and what its Syncro appointment
    held beyond content."""

    side: Side
    origin: Side
    content: Appointment
    kept: dict[str, object]


class FakeSide:
    """One calendar: id -> (version, content, extras). Every write bumps the version and
    ``modified_at`` from a clock shared by both sides."""

    def __init__(self, side: Side, clock: count[int], faults: Faults) -> None:
        self.side = side
        self.items: dict[str, Stored] = {}
        self.recycle_bin: list[Appointment] = []  # what the sync deleted (its recycle-bin entries)
        self._clock, self._faults = clock, faults
        self._ids = count(1)

    def listing(self, pair_keys: Container[str] = ()) -> list[Item]:
        """Every item as the engine hands it to the planner. ``pair_keys``: the pairs the
        mapping table holds now (see `item`)."""
        return [self.item(item_id, pair_keys=pair_keys) for item_id in self.items]

    def item(self, item_id: str, *, pair_keys: Container[str] = ()) -> Item:
        s = self.items[item_id]
        return Item(self.side, item_id, s.version, s.content, ItemFlags(**s.extras))

    def _stamp(self, stored: Stored) -> Stored:
        tick = next(self._clock)
        stored.version = f"v{tick}"
        stored.extras["modified_at"] = tick
        stored.extras.setdefault("created_at", at(tick))
        return stored

    def _new_id(self) -> str:
        return f"{self.side.value[0]}{next(self._ids)}"

    def _written(self, item_id: str) -> Written:
        stored = self.items[item_id]
        return Written(item_id, stored.version, stored.content)

    # -- what a user does in the app (no preconditions) --

    def user_create(
        self, content: Appointment, *, preexisting: bool = False, kept: dict[str, object] | None = None
    ) -> str:
        item_id = self._new_id()
        extras: dict[str, object] = {"preexisting": True} if preexisting else {}
        self.items[item_id] = self._stamp(Stored("", content, extras, kept=dict(kept or {})))
        return item_id

    def user_update(self, item_id: str, content: Appointment) -> None:
        stored = self.items[item_id]
        stored.content = content
        self._stamp(stored)

    def user_delete(self, item_id: str) -> None:
        del self.items[item_id]

    # -- what the sync does to it (preconditions) --

    def _expect(self, item_id: str, version: str) -> Stored:
        stored = self.items.get(item_id)
        if stored is None or stored.version != version:
            raise _stale(item_id)
        return stored

    def _update(self, item_id: str, content: Appointment, expected_version: str) -> Written:
        fault = self._faults.next()
        stored = self._expect(item_id, expected_version)
        stored.content = content
        self._stamp(stored)
        _halfway(fault)
        return self._written(item_id)

    def adopt(self, pair: Pair, claimed: set[str]) -> Written | None:
        candidates = [self.item(item_id) for item_id in self.items if item_id not in claimed]
        found = find_adoptable(pair, self.side, candidates)
        return None if found is None else self._written(found.id)

    def verify(self, ids: tuple[str, ...]) -> set[str]:
        return {item_id for item_id in ids if item_id not in self.items}


class FakeSyncro(FakeSide):
    """One tech's Syncro appointments (`sync.sides.SyncroSide`). It shows who is on a job."""

    tech = TECH

    def __init__(self, clock: count[int], faults: Faults) -> None:
        super().__init__(Side.SYNCRO, clock, faults)
        self.away: dict[str, Stored] = {}  # appointments given to another tech (still there)

    def user_sets_kept(self, item_id: str, kept: dict[str, object]) -> None:
        """The dispatcher links the appointment to another ticket or customer: not content."""
        stored = self.items[item_id]
        stored.kept = dict(kept)
        self._stamp(stored)

    def give_away(self, item_id: str) -> None:
        """The dispatcher gives the appointment to another tech: gone from this tech's listing."""
        self.away[item_id] = self.items.pop(item_id)

    def get(self, item_id: str) -> Held:
        if item_id in self.items:
            stored, tech = self.items[item_id], TECH
        elif item_id in self.away:
            stored, tech = self.away[item_id], COLLEAGUE
        else:
            raise _gone(item_id)
        return Held(item_id, stored.version, stored.content, frozenset({tech}), tech)

    def current(self, item_id: str, expected_version: str) -> Held:
        self._expect(item_id, expected_version)
        return self.get(item_id)

    def others_on(self, held: Held) -> tuple[bool, set[int]]:
        return True, set(held.assigned - {TECH})

    def kept(self, item_id: str) -> dict[str, Any] | None:
        stored = self.items.get(item_id)
        return dict(stored.kept) if stored is not None and stored.kept else None

    def create(self, content: Appointment, *, origin: Side, kept: dict[str, Any] | None) -> Written:
        fault = self._faults.next()
        # Syncro has nowhere to keep a key, but an Outlook-born item created there carries the
        # "[O] " tag in its summary.
        extras: dict[str, object] = {"tagged": True} if origin is Side.OUTLOOK else {}
        item_id = self._new_id()
        self.items[item_id] = self._stamp(Stored("", content, extras, kept=dict(kept or {})))
        _halfway(fault)
        return self._written(item_id)

    def update(self, item_id: str, content: Appointment, *, expected_version: str, origin: Side) -> Written:
        return self._update(item_id, content, expected_version)

    def assign(self, held: Held, techs: set[int], owner: int, *, origin: Side) -> Held:
        raise AssertionError("the fake world has one linked tech: no job is shared")

    def delete(self, item_id: str) -> None:
        fault = self._faults.next()
        self.items.pop(item_id, None)  # gone already counts as done
        _halfway(fault)

    def mirror(self, held: Held) -> None:
        """The listing is the truth here: nothing to remember."""

    def forget(self, item_id: str) -> None:
        """The listing is the truth here: nothing to forget."""


class FakeOutlook(FakeSide):
    """The tech's Outlook calendars (`sync.sides.OutlookSide`): ``calendar`` is the synced one."""

    def __init__(self, clock: count[int], faults: Faults, replaced: dict[str, str]) -> None:
        super().__init__(Side.OUTLOOK, clock, faults)
        self.calendar = 1  # the tech may choose another
        self._replaced = replaced

    def item(self, item_id: str, *, pair_keys: Container[str] = ()) -> Item:
        """As `sync.engine.build_inputs`: an event of another calendar is marked ``elsewhere``
        (Graph answers it by id, with its ``parentFolderId``); an event we created is known as
        ours (``pair_key``) while its pair is in ``pair_keys``, and after that only if it is a
        ``[S]`` copy (an orphan of ours). A re-created copy of the tech's own event carries no
        tag: once its pair is gone it is his event like any other."""
        s = self.items[item_id]
        extras = dict(s.extras)
        if extras.pop("calendar", self.calendar) != self.calendar:
            extras["elsewhere"] = True
        if s.made_for is not None and (s.syncro_tag or s.made_for in pair_keys):
            extras["pair_key"] = s.made_for
        return Item(self.side, item_id, s.version, s.content, ItemFlags(**extras))

    def _stamp(self, stored: Stored) -> Stored:
        stored.extras.setdefault("calendar", self.calendar)
        return super()._stamp(stored)

    def create(
        self, content: Appointment, *, origin: Side, pair_key: str, source_id: str, replaces: str | None
    ) -> Written:
        if replaces is not None:
            self._replaced[replaces] = pair_key
        fault = self._faults.next()
        # Outlook keeps our pair key in the create's transactionId, and a copy of a Syncro-born
        # appointment carries "[S] " in its subject.
        stored = Stored("", content, {}, made_for=pair_key, syncro_tag=origin is Side.SYNCRO)
        item_id = self._new_id()
        self.items[item_id] = self._stamp(stored)
        _halfway(fault)
        return self._written(item_id)

    def send_creates(self, events: list[NewEvent]) -> list[Written | str]:
        results: list[Written | str] = []
        for event in events:
            try:
                made = self.create(
                    event.content,
                    origin=event.origin,
                    pair_key=event.pair_key,
                    source_id=event.source_id,
                    replaces=None,
                )
            except InjectedFault as fault:
                results.append(str(fault))
            else:
                results.append(made)
        return results

    def keep(self, written: Written) -> None:
        """The listing is the truth here: nothing to remember."""

    def update(
        self, item_id: str, content: Appointment, *, expected_version: str, origin: Side, syncro_id: str | None
    ) -> Written:
        return self._update(item_id, content, expected_version)

    def delete(self, item_id: str, *, expected_version: str) -> None:
        fault = self._faults.next()
        if item_id in self.items:  # gone already counts as done (Graph's 404)
            self._expect(item_id, expected_version)
            del self.items[item_id]
        _halfway(fault)

    def adopt(self, pair: Pair, claimed: set[str]) -> Written | None:
        """Graph finds an event by the Syncro id it carries (`find_by_syncro_id`)."""
        candidates = [
            self.item(item_id, pair_keys=(pair.key,))
            for item_id, stored in self.items.items()
            if item_id not in claimed and stored.made_for == pair.key
        ]
        found = find_adoptable(pair, self.side, candidates)
        return None if found is None else self._written(found.id)


@dataclass
class FakePairs:
    """The pair rows (`sync.sides.PairStore`) in a dict, with the recycle bin and the tally."""

    world: World
    rows: dict[str, Pair] = field(default_factory=dict)
    tally: Tally = field(default_factory=Tally)

    def now(self) -> datetime:
        return at(next(self.world.clock))

    def pair(self, key: str) -> Pair | None:
        return self.rows.get(key)

    def pairs(self) -> list[Pair]:
        return list(self.rows.values())

    def claimed(self, side: Side) -> set[str]:
        return {item_id for pair in self.rows.values() if (item_id := pair.id_on(side)) is not None}

    def save(self, pair: Pair, *, state: MappingState) -> None:
        """As a mapping row stores it: ``intent_at`` only on an intent; what the Syncro
        appointment holds beyond content from Syncro while it is there, else as last seen."""
        intent_at = (pair.intent_at or self.now()) if state is MappingState.INTENT else None
        self.rows[pair.key] = replace(pair, intent_at=intent_at, released=state is MappingState.RELEASED)
        held = self.world.syncro.kept(pair.syncro_id) if pair.syncro_id else None
        if held:
            self.world.kept[pair.key] = held

    def drop(self, key: str) -> None:
        self.rows.pop(key, None)

    def kept(self, key: str) -> dict[str, Any] | None:
        return self.world.kept.get(key)

    def bin(
        self, *, side: Side, item_id: str, origin: Side, content: Appointment, kept: dict[str, Any] | None, reason: str
    ) -> str:
        self.world.binned.append(Binned(side, origin, content, dict(kept or {})))
        self.world.sides[side].recycle_bin.append(content)
        return str(len(self.world.binned) - 1)

    def unbin(self, entry_id: str) -> None:
        entry = self.world.binned.pop(int(entry_id))
        self.world.sides[entry.side].recycle_bin.remove(entry.content)


@dataclass
class World:
    """Both sides and the pair rows, under the real actions."""

    policy: Policy
    clock: count[int] = field(default_factory=lambda: count(1))
    glitch: Side | None = None  # that side's first listing comes back empty
    run_twice: bool = False  # the first round's actions are applied twice
    replaced: dict[str, str] = field(default_factory=dict)  # an id re-created (e.g. moved) -> its pair key
    kept: dict[str, dict[str, object]] = field(default_factory=dict)  # pair key -> its Syncro item's, last seen
    binned: list[Binned] = field(default_factory=list)  # every recycle-bin entry, in order

    def __post_init__(self) -> None:
        self._faults = Faults()
        self.syncro = FakeSyncro(self.clock, self._faults)
        self.outlook = FakeOutlook(self.clock, self._faults, self.replaced)
        self.sides: dict[Side, FakeSide] = {Side.SYNCRO: self.syncro, Side.OUTLOOK: self.outlook}
        self.store = FakePairs(self)

    # what the tests read and set, by their old names
    @property
    def pairs(self) -> dict[str, Pair]:
        return self.store.rows

    @property
    def conflicts(self) -> list[dict[str, Any]]:
        return self.store.tally.conflicts

    @property
    def verified_gone(self) -> set[tuple[Side, str]]:
        return self.store.tally.verified_gone

    @verified_gone.setter
    def verified_gone(self, value: set[tuple[Side, str]]) -> None:
        self.store.tally.verified_gone = value

    @property
    def faults(self) -> dict[int, Fault]:
        return self._faults.plan

    @faults.setter
    def faults(self, value: dict[int, Fault]) -> None:
        self._faults.plan = value

    @property
    def writes(self) -> int:
        return self._faults.writes

    def plan(self) -> list[Action]:
        listings = {side: ([] if side is self.glitch else self.sides[side].listing(self.pairs)) for side in Side}
        self.glitch = None
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
        self._faults.writes = 0
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
        """The product's executor loop over these sides (a failed action is skipped: the next
        plan decides again from fresh listings)."""
        run_actions(actions, Sides(self.syncro, self.outlook), self.store)
