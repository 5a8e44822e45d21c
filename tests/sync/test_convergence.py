"""Convergence, property-tested: a user edits both calendars at random, faults strike the sync,
and after every sync both sides agree with what a user would expect.

The model (`tests/sync/convergence_model.py`) knows only what the user did (per appointment: the
last synced content and what the user left on each side) and states the expected outcome in the
user's terms; the fake world runs the real planner and the reference executor. Checked after every sync:

- every live appointment exists exactly once on each side, with the expected content: a field
  changed on one side takes that change, the same field changed on both goes to the policy's
  winner, an edit beats a deletion on the other side (no user edit is lost);
- the sync deleted exactly the counterparts of what a user deleted, into the recycle bin
  (nothing is deleted that no user deleted);
- every pair maps one live item on each side, a plan right after is empty (quiet), and a
  conflict is noted (for the settings page) exactly when the user's edits collided;
- events from before the link and (one way) Outlook's own events stay only where they are;
- no appointment loses a field it had except by a person's edit: what a person set on a Syncro
  appointment beyond content (customer, ticket, type) is on it after every sync, through
  re-creates ("edit beats delete") and restores;
- an appointment the dispatcher gives to another tech leaves this one: never a second job.

Besides users editing and deleting on both sides, the rules are issue 17's: the tech switches
calendar, the dispatcher changes an appointment's ticket or customer or gives it to another tech
(while the tech edits his copy, or not), a user deletes on one side while the other edits, and
the admin restores a recycle-bin entry.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from sync.model import Appointment, Side
from sync.planner import Policy
from tests.sync.convergence_model import Fate, O, S, Thing, expected, keep_edited_own_given_away, settled
from tests.sync.fakes import World

DAY = datetime(2026, 12, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)
# Small value sets, so both sides often pick the same value (agreeing edits, echoes, collisions).
UNIT_VALUES: dict[str, st.SearchStrategy[dict[str, object]]] = {
    "summary": st.sampled_from(["Visit", "Call", "Patch"]).map(lambda v: {"summary": v}),
    "description": st.sampled_from(["", "notes", "bring cable"]).map(lambda v: {"description": v}),
    "location": st.sampled_from(["", "Site A", "Office"]).map(lambda v: {"location": v}),
    "when": st.sampled_from(
        [
            {"start": DAY + 9 * HOUR, "end": DAY + 10 * HOUR, "all_day": False},
            {"start": DAY + 9 * HOUR, "end": DAY + 11 * HOUR, "all_day": False},
            {"start": DAY + 14 * HOUR, "end": DAY + 15 * HOUR, "all_day": False},
            {"start": DAY, "end": DAY + 24 * HOUR, "all_day": True},
        ]
    ),
}

changes = st.lists(st.sampled_from(sorted(UNIT_VALUES)), min_size=1, unique=True).flatmap(
    lambda names: st.tuples(*(UNIT_VALUES[name] for name in names)).map(
        lambda parts: {k: v for p in parts for k, v in p.items()}
    )
)
appointments = st.tuples(*UNIT_VALUES.values()).map(
    lambda parts: Appointment(**{k: v for p in parts for k, v in p.items()})  # type: ignore[arg-type]
)
sides = st.sampled_from([S, O])
# What a dispatcher sets on a Syncro appointment beyond content (customer, ticket, type).
kepts = st.fixed_dictionaries(
    {},
    optional={
        "customer_id": st.sampled_from([7, 8]),
        "ticket_id": st.sampled_from([101, 102]),
        "appointment_type_id": st.just(3),
    },
)


class Convergence(RuleBasedStateMachine):
    two_way = True

    @initialize(
        conflict=st.sampled_from(["latest", "syncro", "outlook"]),
        old_syncro=st.lists(appointments, max_size=2),
        old_outlook=st.lists(appointments, max_size=2),
    )
    def link(self, conflict: str, old_syncro: list[Appointment], old_outlook: list[Appointment]) -> None:
        self.policy = Policy(two_way=self.two_way, conflict=conflict, guard_count=3, guard_fraction=0.5)  # type: ignore[arg-type]
        self.world = World(self.policy)
        self.things: list[Thing] = []
        self.released = 0  # pairs whose Outlook event was left in an old calendar, or its job given away
        self.restored: set[int] = set()  # recycle-bin entries (World.binned) restored
        for side, olds in ((S, old_syncro), (O, old_outlook)):
            for content in olds:
                self._add(side, content, preexisting=True)

    # -- the user ---------------------------------------------------------------------------------

    def _add(
        self, side: Side, content: Appointment, *, preexisting: bool = False, kept: dict[str, object] | None = None
    ) -> None:
        kept = dict(kept or {}) if side is S else {}
        item_id = self.world.sides[side].user_create(content, preexisting=preexisting, kept=kept)
        local = preexisting or (side is O and not self.two_way)
        thing = Thing(origin=side, only_on=side if local else None, kept=kept)
        thing.ids[side], thing.now[side] = item_id, content
        thing.touched[side] = self._tick(side, item_id)
        self.things.append(thing)

    def _tick(self, side: Side, item_id: str) -> int:
        return self.world.sides[side].items[item_id].extras["modified_at"]  # type: ignore[return-value]

    def _live(self, side: Side) -> list[Thing]:
        return [t for t in self.things if t.now[side] is not None]

    @rule(side=sides, content=appointments, kept=kepts)
    def user_creates(self, side: Side, content: Appointment, kept: dict[str, object]) -> None:
        self._add(side, content, kept=kept)

    @precondition(lambda self: self.things)
    @rule(data=st.data(), side=sides, change=changes)
    def user_edits(self, data: st.DataObject, side: Side, change: dict[str, object]) -> None:
        live = self._live(side)
        if not live:
            return
        thing = data.draw(st.sampled_from(live))
        content = replace(thing.now[side], **change)  # type: ignore[type-var]
        item_id = thing.ids[side]
        assert item_id is not None
        self.world.sides[side].user_update(item_id, content)
        thing.now[side], thing.touched[side] = content, self._tick(side, item_id)

    @precondition(lambda self: self.things)
    @rule(data=st.data(), side=sides)
    def user_deletes(self, data: st.DataObject, side: Side) -> None:
        live = self._live(side)
        if not live:
            return
        thing = data.draw(st.sampled_from(live))
        self.world.sides[side].user_delete(thing.ids[side])  # type: ignore[arg-type]
        thing.now[side] = None

    @precondition(lambda self: self.things)
    @rule(data=st.data(), mine=changes, theirs=changes)
    def user_edits_both_sides(self, data: st.DataObject, mine: dict[str, object], theirs: dict[str, object]) -> None:
        """The same appointment edited in Syncro and in Outlook between two syncs."""
        both = [t for t in self.things if t.now[S] is not None and t.now[O] is not None]
        if not both:
            return
        thing = data.draw(st.sampled_from(both))
        for side, change in ((S, mine), (O, theirs)) if data.draw(st.booleans()) else ((O, theirs), (S, mine)):
            content = replace(thing.now[side], **change)  # type: ignore[type-var]
            self.world.sides[side].user_update(thing.ids[side], content)  # type: ignore[arg-type]
            thing.now[side], thing.touched[side] = content, self._tick(side, thing.ids[side])  # type: ignore[arg-type]

    @precondition(lambda self: self.things)
    @rule(data=st.data(), edit_first=st.booleans(), change=changes)
    def user_deletes_while_the_other_side_edits(
        self, data: st.DataObject, edit_first: bool, change: dict[str, object]
    ) -> None:
        """One side deletes the appointment while the other edits it, before a sync (issue 17:
        the edit wins, and a Syncro re-create keeps the customer and ticket)."""
        both = [t for t in self.things if t.now[S] is not None and t.now[O] is not None]
        if not both:
            return
        thing = data.draw(st.sampled_from(both))
        deleting = data.draw(sides)
        editing = O if deleting is S else S
        steps = [self._edit_step(thing, editing, change), self._delete_step(thing, deleting)]
        for run in steps if edit_first else reversed(steps):
            run()

    def _edit_step(self, thing: Thing, side: Side, change: dict[str, object]) -> Callable[[], None]:
        def run() -> None:
            content = replace(thing.now[side], **change)  # type: ignore[type-var]
            self.world.sides[side].user_update(thing.ids[side], content)  # type: ignore[arg-type]
            thing.now[side], thing.touched[side] = content, self._tick(side, thing.ids[side])  # type: ignore[arg-type]

        return run

    def _delete_step(self, thing: Thing, side: Side) -> Callable[[], None]:
        def run() -> None:
            self.world.sides[side].user_delete(thing.ids[side])  # type: ignore[arg-type]
            thing.now[side] = None

        return run

    @precondition(lambda self: self.things)
    @rule(data=st.data(), kept=kepts)
    def dispatcher_changes_ticket_or_customer(self, data: st.DataObject, kept: dict[str, object]) -> None:
        """Not content (Outlook shows it only in its header), but a person's edit in Syncro."""
        live = self._live(S)
        if not live:
            return
        thing = data.draw(st.sampled_from(live))
        self.world.syncro.user_sets_kept(thing.ids[S], kept)  # type: ignore[arg-type]
        thing.kept, thing.touched[S] = dict(kept), self._tick(S, thing.ids[S])  # type: ignore[arg-type]

    @precondition(lambda self: self.things)
    @rule(data=st.data())
    def dispatcher_gives_it_to_another_tech(self, data: st.DataObject) -> None:
        """Gone from this tech's Syncro listing, not deleted: whatever he does to his copy next
        (edit it, delete it, nothing), there is never a second job (issue 17)."""
        live = self._live(S)
        if not live:
            return
        thing = data.draw(st.sampled_from(live))
        self.world.syncro.give_away(thing.ids[S])  # type: ignore[arg-type]
        thing.now[S], thing.given_away = None, True

    @precondition(lambda self: self.world.binned)
    @rule(data=st.data())
    def admin_restores_from_the_bin(self, data: st.DataObject) -> None:
        """An entry comes back once, as a new item on the side it was born, whole: a Syncro one
        with the customer, ticket and type it had (`sync.recycle.restore_entry`)."""
        waiting = [i for i in range(len(self.world.binned)) if i not in self.restored]
        if not waiting:
            return
        index = data.draw(st.sampled_from(waiting))
        entry = self.world.binned[index]
        self.restored.add(index)
        self._add(entry.origin, entry.content, kept=entry.kept)
        if entry.origin is O and entry.kept and self.two_way:  # the job the sync makes of it: whole
            thing = self.things[-1]
            self.world.kept[f"{O}:{thing.ids[O]}"] = dict(entry.kept)
            thing.kept = dict(entry.kept)

    @rule()
    def user_switches_calendar(self) -> None:
        """The tech chooses another (new) Outlook calendar on the settings page: what is in the
        old one stays there. Our copies of Syncro's appointments move to the new one; the tech's
        own events stay behind, no longer synced, and their Syncro copies stay (issue 17)."""
        self.world.outlook.calendar += 1

    def _elsewhere(self, thing: Thing) -> bool:
        outlook_id = thing.ids[O]
        stored = self.world.outlook.items.get(outlook_id) if outlook_id else None
        return stored is not None and stored.extras.get("calendar") != self.world.outlook.calendar

    def _his_own_given_away(self) -> None:
        """Before a sync: the user model's rule (`keep_edited_own_given_away`); an event left in
        an old calendar is no longer synced anyway (`_left_behind`)."""
        released = keep_edited_own_given_away(self.things, two_way=self.two_way, elsewhere=self._elsewhere)
        self.conflicted = self.conflicted or released > 0
        self.released += released

    def _left_behind(self) -> None:
        """Before a sync: the tech's own events left in an old calendar are no longer synced. A
        synced one becomes two unsynced appointments (its Syncro copy, his event); one never
        synced stays his alone."""
        things: list[Thing] = []
        for thing in self.things:
            if thing.origin is not O or thing.only_on is not None or not self._elsewhere(thing):
                things.append(thing)
                continue
            mine = Thing(origin=O, only_on=O)
            mine.ids[O], mine.now[O], mine.touched[O] = thing.ids[O], thing.now[O], thing.touched[O]
            things.append(mine)
            if thing.base is not None and thing.now[S] is not None:
                copy = Thing(origin=S, only_on=S, kept=thing.kept)
                copy.ids[S], copy.now[S], copy.touched[S] = thing.ids[S], thing.now[S], thing.touched[S]
                things.append(copy)
            self.released += thing.base is not None
        self.things = things

    # -- faults for the next sync -----------------------------------------------------------------

    @rule(
        fault=st.sampled_from(["before", "halfway", "run twice", "empty syncro", "empty outlook"]),
        nth=st.integers(1, 4),
    )
    def a_fault_will_strike(self, fault: str, nth: int) -> None:
        """The nth write fails before it is made or halfway (made, not recorded); or a round's
        actions run twice; or a side's listing comes back empty once."""
        if fault in ("before", "halfway"):
            self.world.faults[nth] = fault  # type: ignore[assignment]
        elif fault == "run twice":
            self.world.run_twice = True
        else:
            self.world.glitch = S if fault == "empty syncro" else O

    # -- the sync ---------------------------------------------------------------------------------

    @rule()
    def sync(self) -> None:
        self.conflicted = False  # set when the user's edits collide (convergence_model.expected)
        self._his_own_given_away()
        self._left_behind()
        fates = [self._expected(thing) for thing in self.things]
        noted = len(self.world.conflicts)
        binned = {side: len(self.world.sides[side].recycle_bin) for side in Side}

        self.world.sync()

        for side in Side:
            wanted = Counter(
                content
                for t, (content, _) in zip(self.things, fates, strict=True)
                if content and t.only_on in (None, side)
            )
            held = Counter(stored.content for stored in self.world.sides[side].items.values())
            assert held == wanted, f"{side} holds {held}, expected {wanted}"
            deleted = Counter(self.world.sides[side].recycle_bin[binned[side] :])
            assert deleted == Counter(gone[side] for _, gone in fates if side in gone), f"{side} deleted {deleted}"
        self.world.verified_gone = set()  # as the next sync starts: what a Verify found held for one sync
        assert self.world.plan() == [], "a plan right after a sync must be empty"
        assert (len(self.world.conflicts) > noted) == self.conflicted, "conflicts are noted for the settings page"
        synced_pairs = [pair for pair in self.world.pairs.values() if not pair.released]
        for pair in synced_pairs:
            assert pair.syncro_id in self.world.syncro.items and pair.outlook_id in self.world.outlook.items
            assert not self.world.outlook.item(pair.outlook_id).flags.elsewhere, "a pair left behind"
        synced = [t for t, (content, _) in zip(self.things, fates, strict=True) if content and t.only_on is None]
        assert len(synced_pairs) == len(synced)
        assert len(self.world.pairs) - len(synced_pairs) <= self.released
        self._learn(fates)
        self._check_kept()

    def _check_kept(self) -> None:
        """No appointment lost or changed a field a person set, except by that person's edit."""
        for thing in self.things:
            syncro_id = thing.ids[S]
            if thing.now[S] is None or syncro_id is None:
                continue
            held = self.world.syncro.items[syncro_id].kept
            assert held == thing.kept, f"{syncro_id} holds {held}, a person set {thing.kept}"

    def teardown(self) -> None:
        if hasattr(self, "world"):
            self.sync()  # every run ends converged

    def _expected(self, t: Thing) -> tuple[Appointment | None, dict[Side, Appointment]]:
        outcome = expected(t, two_way=self.two_way, conflict=self.policy.conflict)
        self.conflicted |= outcome.conflicted
        return outcome.content, outcome.deletes

    def _learn(self, fates: list[Fate]) -> None:
        pairs = {(side, p.id_on(side)): (p.syncro_id, p.outlook_id) for p in self.world.pairs.values() for side in Side}
        for old, key in self.world.replaced.items():  # an item re-created (a moved copy): its old id
            pair = self.world.pairs.get(key)
            if pair is not None and old.startswith("o"):
                pairs[O, old] = (pair.syncro_id, pair.outlook_id)
        self.things = settled(self.things, fates, pairs)


class TwoWay(Convergence):
    two_way = True


class OneWay(Convergence):
    two_way = False


# As the engine's machine: CI runs the same 200 examples each time, so a landing never depends on
# luck; CONVERGENCE_SEED=random explores new ones (and found the calendar-switch case in issue 17's
# note, which the fixed examples do not reach).
SETTINGS = settings(
    max_examples=200,
    stateful_step_count=30,
    deadline=None,
    derandomize=os.environ.get("CONVERGENCE_SEED") != "random",
)
TestTwoWayConvergence = TwoWay.TestCase
TestTwoWayConvergence.settings = SETTINGS
TestOneWayConvergence = OneWay.TestCase
TestOneWayConvergence.settings = SETTINGS
