"""The planner's rules, one example each (pure: no I/O), plus the reference executor in fakes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from sync.actions import Conflict, CreateOn, DeleteOn, Forget, Pair, Record, UpdateOn, Verify
from sync.merge import merge
from sync.model import Appointment, Item, Side
from sync.planner import (
    DuplicateItemError,
    DuplicatePairError,
    EmptyPairError,
    ItemMappedTwiceError,
    PlanError,
    Policy,
    WrongSideError,
    plan,
)
from tests.sync.fakes import World

S, O = Side.SYNCRO, Side.OUTLOOK  # noqa: E741 (short names keep the tables of cases readable)
NINE = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
BASE = Appointment("Printer visit", NINE, NINE + timedelta(hours=1), location="Site A")
TWO_WAY = Policy(two_way=True)
ONE_WAY = Policy(two_way=False)


def item(side: Side, item_id: str, version: str, content: Appointment = BASE, **extras: object) -> Item:
    return Item(side, item_id, version, content, dict(extras))


def synced(origin: Side = S, base: Appointment = BASE) -> Pair:
    return Pair("p", origin, syncro_id="s1", outlook_id="o1", syncro_version="sv1", outlook_version="ov1", base=base)


def decide(pair: Pair | None, s: Item | None, o: Item | None, policy: Policy = TWO_WAY) -> list:
    """Plan one pair. A lone vanished item always trips the deletion guard (it is everything
    the side had), so here it counts as verified; the guard has its own tests below."""
    verified = {(side, pair.id_on(side)) for side in Side if pair and pair.id_on(side)}
    return plan([pair] if pair else [], [s] if s else [], [o] if o else [], policy=policy, verified_gone=verified)


moved = replace(BASE, start=NINE + timedelta(hours=2), end=NINE + timedelta(hours=3))
retitled = replace(BASE, summary="Printer visit (bring toner)")


# -- new items ----------------------------------------------------------------------------------


def test_a_new_syncro_appointment_is_created_in_outlook() -> None:
    assert decide(None, item(S, "s1", "sv1"), None) == [CreateOn(O, BASE, S, "syncro:s1", "s1", "sv1")]


def test_a_new_syncro_appointment_is_created_in_outlook_even_one_way() -> None:
    assert decide(None, item(S, "s1", "sv1"), None, ONE_WAY) == [CreateOn(O, BASE, S, "syncro:s1", "s1", "sv1")]


def test_a_new_outlook_event_is_created_in_syncro_when_two_way_is_on() -> None:
    assert decide(None, None, item(O, "o1", "ov1")) == [CreateOn(S, BASE, O, "outlook:o1", "o1", "ov1")]


def test_a_new_outlook_event_is_ignored_when_two_way_is_off() -> None:
    assert decide(None, None, item(O, "o1", "ov1"), ONE_WAY) == []


def test_events_that_existed_before_the_link_are_skipped_unless_import_is_requested() -> None:
    old = item(O, "o1", "ov1", preexisting=True)
    assert decide(None, None, old) == []
    assert decide(None, None, old, Policy(import_existing=True)) == [CreateOn(S, BASE, O, "outlook:o1", "o1", "ov1")]


def test_our_own_event_left_without_a_pair_is_never_imported_back() -> None:
    assert decide(None, None, item(O, "o9", "ov1", pair_key="syncro:gone")) == []


# -- echoes and changes on one side -------------------------------------------------------------


def test_an_echo_of_our_own_write_plans_nothing() -> None:
    assert decide(synced(), item(S, "s1", "sv1"), item(O, "o1", "ov1")) == []


def test_a_save_that_changed_nothing_is_only_recorded() -> None:
    assert decide(synced(), item(S, "s1", "sv2"), item(O, "o1", "ov1")) == [
        Record(replace(synced(), syncro_version="sv2"))
    ]


def test_a_change_in_syncro_updates_outlook() -> None:
    actions = decide(synced(), item(S, "s1", "sv2", moved), item(O, "o1", "ov1"))
    assert actions == [UpdateOn(O, "o1", moved, "ov1", "p", in_sync_with="sv2")]


def test_a_change_in_outlook_updates_syncro() -> None:
    actions = decide(synced(), item(S, "s1", "sv1"), item(O, "o1", "ov2", retitled))
    assert actions == [UpdateOn(S, "s1", retitled, "sv1", "p", in_sync_with="ov2")]


# -- changes on both sides ----------------------------------------------------------------------


def test_a_time_moved_in_syncro_and_a_title_edited_in_outlook_both_survive() -> None:
    both = replace(moved, summary=retitled.summary)
    actions = decide(synced(), item(S, "s1", "sv2", moved), item(O, "o1", "ov2", retitled))
    assert actions == [UpdateOn(S, "s1", both, "sv2", "p"), UpdateOn(O, "o1", both, "ov2", "p")]


def test_the_same_field_edited_on_both_sides_goes_to_the_latest_edit() -> None:
    mine, theirs = replace(BASE, location="Site B"), replace(BASE, location="Site C")
    actions = decide(synced(), item(S, "s1", "sv2", mine, modified_at=5), item(O, "o1", "ov2", theirs, modified_at=7))
    assert actions == [
        Conflict("p", ("location",), O, mine, theirs),
        UpdateOn(S, "s1", theirs, "sv2", "p", in_sync_with="ov2"),
    ]


@pytest.mark.parametrize("winner", [S, O])
def test_a_fixed_winner_settles_a_conflict_whoever_edited_last(winner: Side) -> None:
    mine, theirs = replace(BASE, location="Site B"), replace(BASE, location="Site C")
    s, o = item(S, "s1", "sv2", mine, modified_at=9), item(O, "o1", "ov2", theirs, modified_at=1)
    actions = decide(synced(), s, o, Policy(conflict=winner.value))
    kept = mine if winner is S else theirs
    assert actions[0] == Conflict("p", ("location",), winner, mine, theirs)
    assert [a.content for a in actions[1:]] == [kept]


def test_both_sides_edited_to_the_same_content_are_only_recorded() -> None:
    actions = decide(synced(), item(S, "s1", "sv2", moved), item(O, "o1", "ov2", moved))
    assert actions == [Record(replace(synced(), base=moved, syncro_version="sv2", outlook_version="ov2"))]


def test_without_a_base_every_disagreement_is_a_conflict() -> None:
    merged, conflicts = merge(None, moved, retitled, winner=O)
    assert merged == retitled
    assert conflicts == ("summary", "start", "end", "all_day")


# -- deletions ----------------------------------------------------------------------------------


def test_deleted_in_syncro_and_unchanged_in_outlook_is_deleted_in_outlook_with_its_content() -> None:
    assert decide(synced(), None, item(O, "o1", "ov1")) == [DeleteOn(O, "o1", "ov1", "p", BASE)]


def test_deleted_in_outlook_and_unchanged_in_syncro_is_deleted_in_syncro() -> None:
    assert decide(synced(), item(S, "s1", "sv1"), None) == [DeleteOn(S, "s1", "sv1", "p", BASE)]


def test_deleted_in_outlook_but_edited_in_syncro_is_recreated_in_outlook() -> None:
    actions = decide(synced(), item(S, "s1", "sv2", moved), None)
    assert actions == [CreateOn(O, moved, S, "p", "s1", "sv2", replaces="o1")]


def test_deleted_in_syncro_but_edited_in_outlook_is_recreated_in_syncro() -> None:
    actions = decide(synced(), None, item(O, "o1", "ov2", retitled))
    assert actions == [CreateOn(S, retitled, S, "p", "o1", "ov2", replaces="s1")]


def test_a_pair_gone_on_both_sides_is_forgotten() -> None:
    assert decide(synced(), None, None) == [Forget("p")]


# -- one way (two-way off) ----------------------------------------------------------------------


def test_one_way_puts_outlook_edits_back_to_the_syncro_version() -> None:
    actions = decide(synced(), item(S, "s1", "sv1"), item(O, "o1", "ov2", retitled), ONE_WAY)
    assert actions == [UpdateOn(O, "o1", BASE, "ov2", "p", in_sync_with="sv1")]


def test_one_way_lets_syncro_win_when_both_sides_were_edited() -> None:
    actions = decide(synced(), item(S, "s1", "sv2", moved), item(O, "o1", "ov2", retitled), ONE_WAY)
    assert actions == [UpdateOn(O, "o1", moved, "ov2", "p", in_sync_with="sv2")]


def test_one_way_recreates_a_syncro_event_deleted_in_outlook() -> None:
    actions = decide(synced(), item(S, "s1", "sv1"), None, ONE_WAY)
    assert actions == [CreateOn(O, BASE, S, "p", "s1", "sv1", replaces="o1")]


def test_one_way_deletes_in_outlook_what_syncro_deleted_even_if_edited() -> None:
    actions = decide(synced(), None, item(O, "o1", "ov2", retitled), ONE_WAY)
    assert actions == [DeleteOn(O, "o1", "ov2", "p", retitled)]


def test_one_way_ignores_outlook_born_pairs() -> None:
    assert decide(synced(origin=O), None, item(O, "o1", "ov2", retitled), ONE_WAY) == []


# -- deletion guard -----------------------------------------------------------------------------


def _many(n: int) -> tuple[list[Pair], list[Item], list[Item]]:
    pairs = [Pair(f"p{i}", S, f"s{i}", f"o{i}", syncro_version="v", outlook_version="v", base=BASE) for i in range(n)]
    return pairs, [item(S, f"s{i}", "v") for i in range(n)], [item(O, f"o{i}", "v") for i in range(n)]


def test_an_empty_listing_where_data_was_deletes_nothing_and_asks_to_verify() -> None:
    pairs, syncro, _ = _many(3)
    assert plan(pairs, syncro, [], policy=TWO_WAY) == [Verify(O, ("o0", "o1", "o2"))]


def test_a_mass_vanishing_is_verified_before_anything_is_deleted() -> None:
    pairs, syncro, outlook = _many(20)
    actions = plan(pairs, syncro[8:], outlook, policy=Policy(guard_count=5, guard_fraction=0.3))
    assert actions == [Verify(S, tuple(sorted(f"s{i}" for i in range(8))))]


def test_a_few_deletions_go_through_without_verification() -> None:
    pairs, syncro, outlook = _many(20)
    actions = plan(pairs, syncro[2:], outlook, policy=Policy(guard_count=5, guard_fraction=0.3))
    assert actions == [DeleteOn(O, f"o{i}", "v", f"p{i}", BASE) for i in (0, 1)]


def test_verified_deletions_go_through() -> None:
    pairs, syncro, _ = _many(2)
    verified = {(O, "o0"), (O, "o1")}
    actions = plan(pairs, syncro, [], policy=TWO_WAY, verified_gone=verified)
    assert actions == [DeleteOn(S, "s0", "v", "p0", BASE), DeleteOn(S, "s1", "v", "p1", BASE)]


# -- interrupted creates ------------------------------------------------------------------------


def test_an_interrupted_outlook_create_is_adopted_by_its_pair_key_not_duplicated() -> None:
    intent = Pair("syncro:s1", S, syncro_id="s1", syncro_version="sv1", base=BASE)
    left = item(O, "o7", "ov1", pair_key="syncro:s1")
    assert decide(intent, item(S, "s1", "sv1"), left) == [
        Record(replace(intent, outlook_id="o7", outlook_version="ov1"))
    ]


def test_an_interrupted_syncro_create_is_adopted_by_its_summary_and_times() -> None:
    intent = Pair("outlook:o1", O, outlook_id="o1", outlook_version="ov1", base=BASE, intent_at=NINE)
    left = item(S, "s4", "sv1", created_at=NINE + timedelta(seconds=1), tagged=True)
    assert decide(intent, left, item(O, "o1", "ov1")) == [
        Record(replace(intent, syncro_id="s4", syncro_version="sv1", intent_at=None))
    ]


def test_an_interrupted_create_that_left_nothing_is_retried() -> None:
    intent = Pair("syncro:s1", S, syncro_id="s1", syncro_version="sv1", base=BASE)
    assert decide(intent, item(S, "s1", "sv1"), None) == [CreateOn(O, BASE, S, "syncro:s1", "s1", "sv1")]


def test_an_interrupted_create_whose_source_is_gone_is_forgotten() -> None:
    intent = Pair("syncro:s1", S, syncro_id="s1", syncro_version="sv1", base=BASE)
    assert decide(intent, None, None) == [Forget("syncro:s1")]


# -- impossible inputs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "syncro", "outlook", "error"),
    [
        ([], [item(S, "s1", "v"), item(S, "s1", "v")], [], DuplicateItemError),
        ([], [item(O, "o1", "v")], [], WrongSideError),
        ([synced(), synced()], [], [], DuplicatePairError),
        ([synced(), replace(synced(), key="q", outlook_id="o2")], [], [], ItemMappedTwiceError),
        ([Pair("p", S)], [], [], EmptyPairError),
    ],
)
def test_impossible_inputs_raise_a_plan_error(pairs: list, syncro: list, outlook: list, error: type) -> None:
    with pytest.raises(error) as raised:
        plan(pairs, syncro, outlook, policy=TWO_WAY)
    assert isinstance(raised.value, PlanError)


# -- the reference executor ---------------------------------------------------------------------


def test_a_create_that_crashed_halfway_and_ran_twice_leaves_one_copy() -> None:
    world = World(TWO_WAY)
    world.syncro.user_create(BASE)
    world.outlook.user_create(retitled)
    world.faults = {1: "halfway", 2: "halfway"}
    world.run_twice = True
    world.sync()
    assert sorted(s.content.summary for s in world.syncro.items.values()) == sorted([BASE.summary, retitled.summary])
    assert sorted(s.content.summary for s in world.outlook.items.values()) == sorted([BASE.summary, retitled.summary])
    assert len(world.pairs) == 2


def test_an_edit_racing_the_write_skips_it_and_the_next_plan_merges() -> None:
    world = World(TWO_WAY)
    sid = world.syncro.user_create(BASE)
    world.sync()
    world.syncro.user_update(sid, moved)
    actions = world.plan()
    (oid,) = world.outlook.items
    world.outlook.user_update(oid, retitled)  # lands between the plan and its write
    world.apply(actions)
    world.sync()
    both = replace(moved, summary=retitled.summary)
    assert [s.content for s in world.syncro.items.values()] == [both]
    assert [s.content for s in world.outlook.items.values()] == [both]


def test_a_policy_refuses_an_unknown_conflict_rule() -> None:
    with pytest.raises(ValueError, match="conflict"):
        Policy(conflict="newest")  # type: ignore[arg-type]


def test_an_interrupted_syncro_create_never_adopts_a_dispatchers_untagged_twin() -> None:
    intent = Pair("outlook:o1", O, outlook_id="o1", outlook_version="ov1", base=BASE, intent_at=NINE)
    twin = item(S, "s4", "sv1", created_at=NINE + timedelta(seconds=1))  # same content, no "[O] ": theirs
    assert decide(intent, twin, item(O, "o1", "ov1")) == [
        CreateOn(S, BASE, O, "outlook:o1", "o1", "ov1", intent_at=NINE),
        CreateOn(O, BASE, S, "syncro:s4", "s4", "sv1"),
    ]


def test_an_interrupted_syncro_create_never_adopts_the_users_own_older_twin() -> None:
    intent = Pair("outlook:o1", O, outlook_id="o1", outlook_version="ov1", base=BASE, intent_at=NINE)
    twin = item(S, "s4", "sv1", created_at=NINE - timedelta(minutes=5))
    assert decide(intent, twin, item(O, "o1", "ov1")) == [
        CreateOn(S, BASE, O, "outlook:o1", "o1", "ov1", intent_at=NINE),  # retries only that intent
        CreateOn(O, BASE, S, "syncro:s4", "s4", "sv1"),
    ]


def test_two_interrupted_creates_never_take_each_others_leftovers() -> None:
    longer = replace(BASE, location="Office")  # same summary and times as BASE
    first = Pair("outlook:o1", O, outlook_id="o1", outlook_version="ov1", base=BASE, intent_at=NINE)
    second = Pair("outlook:o2", O, outlook_id="o2", outlook_version="ov1", base=longer, intent_at=NINE)
    left = item(S, "s1", "sv1", longer, created_at=NINE, tagged=True)  # only the second create got through
    actions = plan([first, second], [left], [item(O, "o1", "ov1"), item(O, "o2", "ov1", longer)], policy=TWO_WAY)
    assert actions == [
        CreateOn(S, BASE, O, "outlook:o1", "o1", "ov1", intent_at=NINE),
        Record(replace(second, syncro_id="s1", syncro_version="sv1", intent_at=None)),
    ]


def test_a_create_whose_intent_moved_on_is_not_made_twice() -> None:
    world = World(TWO_WAY)
    world.syncro.user_create(BASE)
    actions = world.plan()
    world.faults = {1: "before"}
    world.apply(actions)  # the intent is written, the create fails
    world.apply(actions)  # the same action again: the row moved on, it is skipped
    assert world.outlook.items == {}
    world.sync()
    assert [s.content for s in world.outlook.items.values()] == [BASE]


# -- the tech chose another calendar (issue 17) ---------------------------------------------------


def test_our_copy_left_in_another_calendar_is_recreated_then_discarded_and_nothing_deleted_in_syncro() -> None:
    from sync.actions import Discard

    actions = decide(synced(S), item(S, "s1", "sv1"), item(O, "o1", "ov1", elsewhere=True))
    assert actions == [CreateOn(O, BASE, S, "p", "s1", "sv1", replaces="o1"), Discard(O, "o1", "ov1", "p")]


def test_an_edit_of_our_copy_before_the_switch_moves_with_it_and_reaches_syncro() -> None:
    from sync.actions import Discard

    actions = decide(synced(S), item(S, "s1", "sv1"), item(O, "o1", "ov2", retitled, elsewhere=True))
    assert actions == [UpdateOn(S, "s1", retitled, "sv1", "p", in_sync_with="ov2")]  # Syncro first: nothing lost
    actions = decide(synced(S), item(S, "s1", "sv2", retitled), item(O, "o1", "ov2", retitled, elsewhere=True))
    assert actions == [
        CreateOn(O, retitled, S, "p", "s1", "sv2", replaces="o1"),
        Discard(O, "o1", "ov2", "p"),
    ]


def test_the_techs_own_event_left_in_another_calendar_is_released_and_its_syncro_copy_kept() -> None:
    pair = synced(O)
    assert decide(pair, item(S, "s1", "sv1"), item(O, "o1", "ov1", elsewhere=True)) == [
        Record(replace(pair, released=True))
    ]
    released = replace(pair, released=True)
    assert decide(released, item(S, "s1", "sv2", retitled), item(O, "o1", "ov2", moved, elsewhere=True)) == []
    assert decide(released, item(S, "s1", "sv1"), None) == []  # deleted in the old calendar: the copy stays
    assert decide(released, item(S, "s1", "sv1"), item(O, "o1", "ov1")) == [Record(pair)]  # back: synced again
    assert decide(released, None, item(O, "o1", "ov1", elsewhere=True)) == [Forget("p")]


def test_the_techs_own_event_whose_job_went_to_another_tech_is_never_imported_again() -> None:
    released = replace(synced(O), released=True)
    assert decide(released, None, item(O, "o1", "ov2", retitled)) == []
    assert decide(released, item(S, "s1", "sv2"), item(O, "o1", "ov2", retitled)) == [Record(synced(O))]


def test_a_released_pair_whose_job_went_to_another_tech_is_forgotten_only_once_its_event_is_verified_gone() -> None:
    # Found by the convergence machine (issue 17's reassignment): the tech's own event, edited as
    # the dispatcher gave its job away, is released; with the job gone from his listing only the
    # row keeps the event from import. An Outlook listing that came back short must not make the
    # row go, or the event becomes a second job in Syncro.
    released = replace(synced(O), released=True)
    glitch = plan([released], [], [], policy=TWO_WAY, verified_gone={(S, "s1")})
    assert glitch == [Verify(O, ("o1",))]
    assert decide(released, None, None) == [Forget("p")]  # verified gone: forgotten
    assert plan([released], [], [item(O, "o1", "ov2", retitled)], policy=TWO_WAY, verified_gone={(S, "s1")}) == []


def test_a_released_pair_whose_job_went_to_another_tech_trips_no_guard_sync_after_sync() -> None:
    # Found by the engine's state machine: the tech's only mapped Syncro item is the job given
    # away from under his edited event, so "everything vanished" and every sync re-read it
    # (a round each time, never quiet). Its absence decides nothing: the guard leaves it out.
    released = replace(synced(O), released=True)
    event = item(O, "o1", "ov2", retitled)
    assert plan([released], [], [event], policy=TWO_WAY) == []
    # its event elsewhere (a calendar switch), a vanished Syncro copy is still verified first
    away = item(O, "o1", "ov2", retitled, elsewhere=True)
    assert plan([released], [], [away], policy=TWO_WAY) == [Verify(S, ("s1",))]


def test_the_techs_own_event_we_put_back_stays_in_the_old_calendar_when_its_syncro_copy_goes() -> None:
    # Found by the convergence machine: an event we re-created ("edit beats delete") of the tech's
    # own is his like any other once its pair is gone (untagged, as the engine reads it), never a
    # copy of ours left behind by a move.
    world = World(TWO_WAY)
    oid = world.outlook.user_create(BASE)
    world.sync()
    (sid,) = world.syncro.items
    world.syncro.user_update(sid, retitled)
    world.outlook.user_delete(oid)
    world.sync()  # the dispatcher's edit beats his delete: his event is put back
    assert [s.content for s in world.outlook.items.values()] == [retitled]
    world.outlook.calendar += 1  # he chooses another calendar
    world.syncro.user_delete(sid)
    world.sync()
    assert [s.content for s in world.outlook.items.values()] == [retitled]  # stays, no longer synced
    assert world.pairs == {} and world.syncro.items == {}


def test_a_delete_applied_twice_keeps_one_recycle_bin_entry() -> None:
    """The same plan run twice (a retried job): the second delete finds the row gone and skips."""
    world = World(TWO_WAY)
    sid = world.syncro.user_create(BASE)
    world.sync()
    world.syncro.user_delete(sid)
    actions = world.plan()
    while not any(isinstance(action, DeleteOn) for action in actions):  # the guard verifies first
        world.apply(actions)
        actions = world.plan()
    world.apply(actions)
    world.apply(actions)
    assert world.outlook.items == {} and world.pairs == {}
    assert world.outlook.recycle_bin == [BASE] and len(world.binned) == 1
