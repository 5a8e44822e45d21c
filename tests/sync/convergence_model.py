"""What a user expects of a sync, in the user's terms: the model both convergence state machines
check against (`test_convergence.py` over the planner and a fake world, `test_engine_convergence.py`
over the real engine, the simulators and Azurite).

Per appointment the model knows the last synced content (``base``) and what the user left on each
side. After a sync: a field changed on one side takes that change, the same field changed on both
goes to the policy's winner, and an edit beats a deletion on the other side (no user edit is lost).
One way, Syncro is the truth and Outlook's copy follows it. An appointment the dispatcher gave to
another tech leaves this tech: his ``[S]`` copy goes to the recycle bin (with his edit, and a
conflict on the assignment, if he had edited it); his own event, edited, stays his, no longer synced.

What a person set on a Syncro appointment beyond content (customer, ticket, type: ``kept``) is
the model's too: no sync may clear or change it, whatever it re-creates or restores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from sync.model import Appointment, Side

S, O = Side.SYNCRO, Side.OUTLOOK  # noqa: E741 (short names keep the tables of cases readable)

# What a user means by "the same field": the time is one thing (start, end and all-day together).
MODEL_UNITS = {"summary": ("summary",), "description": ("description",), "location": ("location",)}
MODEL_UNITS["when"] = ("start", "end", "all_day")


@dataclass
class Thing:
    """One appointment as the user knows it."""

    origin: Side
    ids: dict[Side, str | None] = field(default_factory=lambda: {S: None, O: None})
    now: dict[Side, Appointment | None] = field(default_factory=lambda: {S: None, O: None})
    touched: dict[Side, int] = field(default_factory=lambda: {S: -1, O: -1})  # the user's last write
    base: Appointment | None = None  # after the last sync; None: never synced
    only_on: Side | None = None  # never synced: from before the link, or Outlook's own when one way
    kept: dict[str, object] = field(default_factory=dict)  # what a person set in Syncro beyond content
    given_away: bool = False  # the dispatcher gave it to another tech: it leaves this one


@dataclass(frozen=True)
class Expected:
    content: Appointment | None  # after the sync; None: gone from both sides
    deletes: dict[Side, Appointment]  # what the sync must delete on each side for it
    conflicted: bool = False  # the user's edits collided: a conflict must be noted


def expected(t: Thing, *, two_way: bool, conflict: str) -> Expected:
    """The outcome of a sync for ``t`` under ``conflict`` ("latest", "syncro" or "outlook")."""
    s, o = t.now[S], t.now[O]
    if t.given_away:
        if t.only_on is not None or t.base is None or o is None:
            return Expected(None, {})
        edited = two_way and o != t.base
        # (his own event, edited, stays his: the machines make it an unsynced thing of his first)
        assert not (edited and t.origin is O), "released before the sync"
        return Expected(None, {O: o}, conflicted=edited)
    if t.only_on is not None or t.base is None:
        return Expected(t.now[t.origin], {})
    if not two_way:  # Syncro is the truth; Outlook's copy follows it
        if s is None:
            return Expected(None, {O: o} if o is not None else {})
        return Expected(s, {})
    if s is None and o is None:
        return Expected(None, {})
    if s is None or o is None:
        there, side = (o, O) if s is None else (s, S)
        assert there is not None
        return Expected(None, {side: there}) if there == t.base else Expected(there, {})
    return _merge(t.base, s, o, winner=_winner(t, conflict))


def _winner(t: Thing, conflict: str) -> Side:
    if conflict == "latest":
        return O if t.touched[O] > t.touched[S] else S
    return Side(conflict)


def _merge(base: Appointment, s: Appointment, o: Appointment, *, winner: Side) -> Expected:
    result, conflicted = {}, False
    for names in MODEL_UNITS.values():
        base_v, s_v, o_v = ([getattr(a, n) for n in names] for a in (base, s, o))
        if s_v == base_v:
            take = o_v  # changed in Outlook only (or nowhere)
        elif o_v in (base_v, s_v):
            take = s_v  # changed in Syncro only, or both made the same change
        else:
            take = s_v if winner is S else o_v
            conflicted = True
        result.update(zip(names, take, strict=True))
    return Expected(replace(s, **result), {}, conflicted)


T = TypeVar("T", bound=Thing)
Fate = tuple[Appointment | None, dict[Side, Appointment]]  # `expected`'s content and deletes


def settled(things: list[T], fates: list[Fate], pairs: Mapping[tuple[Side, str | None], tuple[str, str]]) -> list[T]:
    """What the user knows after a quiet sync: the things still alive, the synced ones now holding
    their expected content on both sides under their pair's ids. ``pairs``: (side, id on that
    side) -> (Syncro id, Outlook id), for every pair the sync keeps."""
    kept = []
    for thing, (content, _) in zip(things, fates, strict=True):
        if content is None:
            continue
        kept.append(thing)
        if thing.only_on is not None:
            continue
        side = next(side for side in Side if thing.now[side] is not None)  # an item the sync kept
        syncro_id, outlook_id = pairs[side, thing.ids[side]]
        thing.ids = {S: syncro_id, O: outlook_id}
        thing.now = {S: content, O: content}
        thing.touched = {S: -1, O: -1}
        thing.base = content
    return kept


def keep_edited_own_given_away(things: list[T], *, two_way: bool, elsewhere: Callable[[T], bool]) -> int:
    """The user model, before a sync: the tech's own event whose job was given to another tech,
    edited by him since, stays his and is no longer synced (a conflict on the assignment says
    so). ``elsewhere``: whether the event sits in a calendar other than the synced one (left
    there, it is no longer synced anyway). Replaces each such thing in ``things``; how many."""
    released = 0
    for index, thing in enumerate(things):
        o = thing.now[O]
        if not (thing.given_away and thing.origin is O and thing.only_on is None and thing.base is not None):
            continue
        if o is None or o == thing.base or not two_way or elsewhere(thing):
            continue
        mine = type(thing)(origin=O, only_on=O)  # a machine's own kind of Thing, with its defaults
        mine.ids[O], mine.now[O], mine.touched[O] = thing.ids[O], o, thing.touched[O]
        things[index] = mine
        released += 1
    return released
