"""The sync decision: from the pairs the mapping table remembers and what each side holds now,
the list of actions that brings both sides together. Pure: no I/O, no clock, deterministic.

One small decision per pair, then one per item no pair claims (modelled on vdirsyncer's
``_get_actions``). The action types and the executor's contract are in `sync.actions`; the
field-by-field merge in `sync.merge`.

Errors (raised only for inputs that cannot happen, i.e. a bug upstream)::

    PlanError                 root
    ├── WrongSideError        an item was listed under the other side
    ├── DuplicateItemError    one side listed the same id twice
    ├── DuplicatePairError    two pairs share a key
    ├── ItemMappedTwiceError  two pairs map the same item
    └── EmptyPairError        a pair with no id on either side
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from sync.actions import (
    MEETING_PREFIX,
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
from sync.merge import merge
from sync.model import Appointment, Item, Side


@dataclass(frozen=True)
class Policy:
    """How one technician's link syncs.

    ``conflict``: who wins a field changed on both sides: ``latest`` (the side modified last, by
    ``Item.flags.modified_at``; Syncro on a tie), or always ``syncro`` / ``outlook``.
    Deletion guard: when at least ``guard_count`` mapped items, and more than ``guard_fraction``
    of them, vanish from one side in one listing, or all of them do (an empty page where data
    was), nothing is deleted or re-created for them: a `Verify` is planned instead.
    """

    two_way: bool = True
    conflict: Literal["latest", "syncro", "outlook"] = "latest"
    import_existing: bool = False
    guard_count: int = 10
    guard_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.conflict not in ("latest", "syncro", "outlook"):
            raise ValueError(f"conflict must be latest, syncro or outlook, not {self.conflict!r}")
        if self.guard_count < 1 or not 0 <= self.guard_fraction < 1:
            raise ValueError("guard_count must be at least 1 and guard_fraction in [0, 1)")


class PlanError(Exception):
    """Root: the planner was handed inputs that cannot happen."""


class WrongSideError(PlanError):
    def __init__(self, *, side: Side, item_id: str) -> None:
        self.side, self.item_id = side, item_id
        super().__init__(f"item {item_id!r} of the other side was listed as a {side} item")


class DuplicateItemError(PlanError):
    def __init__(self, *, side: Side, item_id: str) -> None:
        self.side, self.item_id = side, item_id
        super().__init__(f"{side} listed item {item_id!r} twice")


class DuplicatePairError(PlanError):
    def __init__(self, *, pair_key: str) -> None:
        self.pair_key = pair_key
        super().__init__(f"two pairs have the key {pair_key!r}")


class ItemMappedTwiceError(PlanError):
    def __init__(self, *, side: Side, item_id: str, pair_keys: tuple[str, str]) -> None:
        self.side, self.item_id, self.pair_keys = side, item_id, pair_keys
        super().__init__(f"{side} item {item_id!r} is mapped by both {pair_keys[0]!r} and {pair_keys[1]!r}")


class EmptyPairError(PlanError):
    def __init__(self, *, pair_key: str) -> None:
        self.pair_key = pair_key
        super().__init__(f"pair {pair_key!r} has no id on either side")


def new_pair_key(item: Item) -> str:
    """The key of the pair a new item starts (stable, so a retried plan names the same pair)."""
    return f"{item.side}:{item.id}"


def _adoptable(pair: Pair, side: Side, candidates: Iterable[Item], *, loose: bool) -> Item | None:
    """The item an interrupted create on ``side`` for ``pair`` left behind, if any.

    Outlook items we create carry the pair key (a Graph extended property). Syncro cannot carry
    one, so a Syncro item created (``flags.created_at``) after the intent was written is
    recognised by its content: exactly ``base`` first, and in a ``loose`` second pass (the
    round trip through Syncro may have reshaped a field) by summary, start and end, as the
    design's recovery rule says; for an Outlook-born pair only an item whose summary carries the
    ``[O] `` tag (``flags.tagged``). The user's own twins and pre-existing items are not ours.
    """
    for item in sorted(candidates, key=lambda item: item.id):
        if item.flags.preexisting or item.flags.elsewhere:
            continue  # not ours, or a copy left in a calendar no longer synced (a move's old one)
        if item.flags.pair_key is not None:
            if item.flags.pair_key == pair.key:
                return item
            continue
        if side is not Side.SYNCRO or pair.base is None:
            continue
        if pair.origin is Side.OUTLOOK and not item.flags.tagged:
            continue  # our creates of Outlook-born items carry "[O] ": an untagged twin is the dispatcher's
        created = item.flags.created_at
        if pair.intent_at is not None and created is not None and created < pair.intent_at:  # type: ignore[operator]
            continue
        if item.content == pair.base or (
            loose
            and (item.content.summary, item.content.start, item.content.end)
            == (pair.base.summary, pair.base.start, pair.base.end)
        ):
            return item
    return None


def find_adoptable(pair: Pair, side: Side, candidates: Iterable[Item]) -> Item | None:
    """For one intent: what its interrupted create on ``side`` left behind among ``candidates``
    (items no pair maps), exact matches before loose ones (see `_adoptable`). The planner itself
    matches all intents at once, so two intents never take each other's items."""
    candidates = list(candidates)
    return _adoptable(pair, side, candidates, loose=False) or _adoptable(pair, side, candidates, loose=True)


def _adopt(snap: _Snapshot, pairs: list[Pair]) -> None:
    """Match every intent with what its interrupted create left behind: exact matches for all
    intents first, so a loose match never takes another intent's item."""
    intents = [pair for pair in pairs if pair.syncro_id is None or pair.outlook_id is None]
    for loose in (False, True):
        for pair in intents:
            missing = Side.SYNCRO if pair.syncro_id is None else Side.OUTLOOK
            if pair.key in snap.adopted:
                continue
            unclaimed = [item for item in snap.items[missing].values() if (missing, item.id) not in snap.claimed]
            found = _adoptable(pair, missing, unclaimed, loose=loose)
            if found is not None:
                snap.adopted[pair.key] = found
                snap.claimed.add((missing, found.id))


def plan(
    pairs: Iterable[Pair],
    syncro_items: Iterable[Item],
    outlook_items: Iterable[Item],
    *,
    policy: Policy,
    verified_gone: Collection[tuple[Side, str]] = (),
) -> list[Action]:
    """Decide what brings Syncro and Outlook together.

    ``pairs``: the mapping rows; ``*_items``: what each side holds now (the whole sync window);
    ``verified_gone``: ``(side, id)`` a `Verify` confirmed deleted. Returns the actions in
    order; an empty list means both sides agree and every pair is recorded.

    ``Item.flags`` read here: ``modified_at`` (the ``latest`` policy), ``preexisting`` (existed
    before the link), ``pair_key`` (our Graph extended property), ``created_at`` and ``tagged``
    (adoption: a Syncro summary that starts with ``[O] ``),
    ``no_import`` (a reason this item never starts a pair, e.g. recurring sync is off),
    ``outlook_only`` (an Outlook item that flows to Syncro only: a meeting the tech did not
    organise, a private event shown as Busy), ``meeting_of`` (``(syncro id or "", organiser)``:
    an invitation to a meeting another linked tech organised, joined to his job, never a new
    one; "" while his sync has not made it), ``elsewhere`` (a mapped event now in a calendar
    other than the synced one: see `_left_calendar`) and ``withdrawn`` (a cancelled or declined meeting:
    its Syncro copy goes, whatever was edited there).

    Raises a `PlanError` subclass for impossible inputs (duplicate ids, an item mapped twice).
    """
    snapshot = _Snapshot(
        policy=policy,
        items={Side.SYNCRO: _index(Side.SYNCRO, syncro_items), Side.OUTLOOK: _index(Side.OUTLOOK, outlook_items)},
        verified=verified_gone,
    )
    ordered = _check_pairs(pairs)
    snapshot.claimed = {(side, item_id) for pair in ordered for side in Side if (item_id := pair.id_on(side))}
    for side in Side:
        mapped = [pair for pair in ordered if not _unguarded(pair, side, snapshot.items[Side.OUTLOOK])]
        snapshot.guarded[side] = _guarded(side, mapped, snapshot.items[side], policy, verified_gone)
    _adopt(snapshot, ordered)
    for item in snapshot.items[Side.OUTLOOK].values():  # an invitation's job is the organiser's, not new here
        meeting = item.flags.meeting_of
        if isinstance(meeting, tuple) and meeting[0] and (Side.OUTLOOK, item.id) not in snapshot.claimed:
            snapshot.claimed.add((Side.SYNCRO, str(meeting[0])))

    actions: list[Action] = []
    for pair in ordered:
        actions.extend(_decide_pair(snapshot, pair))
    for side in Side:
        for item in sorted(snapshot.items[side].values(), key=lambda item: item.id):
            if (side, item.id) not in snapshot.claimed:
                actions.extend(_decide_new(policy, item))
    actions.extend(Verify(side, tuple(sorted(ids))) for side, ids in snapshot.guarded.items() if ids)
    return actions


@dataclass
class _Snapshot:
    policy: Policy
    items: dict[Side, dict[str, Item]]
    claimed: set[tuple[Side, str]] = field(default_factory=set)  # items a pair maps or adopted
    guarded: dict[Side, frozenset[str]] = field(default_factory=dict)  # vanished ids not to act on yet
    adopted: dict[str, Item] = field(default_factory=dict)  # pair key -> what its interrupted create left
    verified: Collection[tuple[Side, str]] = ()  # (side, id) a Verify confirmed gone

    def item(self, pair: Pair, side: Side) -> Item | None:
        item_id = pair.id_on(side)
        return None if item_id is None else self.items[side].get(item_id)

    def unknown(self, pair: Pair, side: Side) -> bool:
        return pair.id_on(side) in self.guarded[side]


def _decide_pair(snap: _Snapshot, pair: Pair) -> list[Action]:
    policy = snap.policy
    if pair.syncro_id is None or pair.outlook_id is None:
        return _decide_intent(snap, pair)
    if snap.unknown(pair, Side.SYNCRO) or snap.unknown(pair, Side.OUTLOOK):
        return []  # maybe a glitch: wait for the Verify
    s, o = snap.item(pair, Side.SYNCRO), snap.item(pair, Side.OUTLOOK)
    if pair.key.startswith(MEETING_PREFIX):  # passive: the organiser's pair syncs the job
        if s is None:
            return [Forget(pair.key)]  # the job is gone (the meeting was cancelled): the invitation is not ours
        if o is None or o.flags.withdrawn:
            return [Leave(pair.key, s.id)]  # he deleted or declined his invitation: off the job
        return []
    if pair.released:  # the tech's event left the synced calendar, or its job went to another tech
        if o is None and s is None and (Side.OUTLOOK, pair.outlook_id) not in snap.verified:
            # the row alone keeps his event from import as a new job: forgotten on a listing
            # that came back short, the event would be copied to Syncro a second time
            return [Verify(Side.OUTLOOK, (str(pair.outlook_id),))]
        if o is None or o.flags.elsewhere:
            return [Forget(pair.key)] if s is None else []  # its Syncro copy stays as it is
        if s is None:
            return []  # his own event, its job someone else's now: claimed, so never imported again
        return [Record(replace(pair, released=False))]  # both in scope again: synced again
    if o is not None and o.flags.elsewhere:
        return _left_calendar(policy, pair, s, o)
    if o is not None and o.flags.withdrawn:
        if pair.origin is Side.OUTLOOK:
            return [Forget(pair.key)] if s is None else [DeleteOn(Side.SYNCRO, s.id, s.version, pair.key, s.content)]
        o = None  # a cancelled copy of a Syncro-born event: as good as deleted
    if s is None and o is None:
        return [Forget(pair.key)]
    if not policy.two_way:
        return [] if pair.origin is Side.OUTLOOK else _decide_one_way(pair, s, o)
    if o is not None and o.flags.outlook_only and pair.origin is Side.OUTLOOK:
        return _decide_from_outlook(pair, s, o)
    if s is None:
        assert o is not None
        return _gone_on(pair, Side.SYNCRO, o)
    if o is None:
        return _gone_on(pair, Side.OUTLOOK, s)
    if s.content == o.content:
        return _record_if_stale(pair, s, o)  # equal already (an echo, a no-op edit, the same edit twice)
    # Changed on one side: the merge takes that side's content. Changed on both: field by field
    # against base, the same field changed on both settled by the policy.
    winner = _winner(policy, s, o)
    merged, conflicts = merge(pair.base, s.content, o.content, winner=winner)
    noted: list[Action] = [Conflict(pair.key, conflicts, winner, s.content, o.content)] if conflicts else []
    return noted + _write_both(pair, s, o, merged)


def _decide_intent(snap: _Snapshot, pair: Pair) -> list[Action]:
    """A pair whose create on one side is under way or was interrupted."""
    missing = Side.SYNCRO if pair.syncro_id is None else Side.OUTLOOK
    found = snap.adopted.get(pair.key)
    if found is not None:
        # Recording the version says "this item holds base": true only if it still does.
        version = found.version if found.content == pair.base else ""
        return [Record(replace(pair.with_side(missing, found.id, version), intent_at=None))]
    if snap.unknown(pair, other(missing)):
        return []
    source = snap.item(pair, other(missing))
    if source is None or source.flags.withdrawn:
        return [Forget(pair.key)]  # the item to copy is gone and nothing was created
    if not snap.policy.two_way and pair.origin is Side.OUTLOOK:
        return []
    return [
        CreateOn(missing, source.content, pair.origin, pair.key, source.id, source.version, intent_at=pair.intent_at)
    ]


def _left_calendar(policy: Policy, pair: Pair, s: Item | None, o: Item) -> list[Action]:
    """The pair's Outlook event is no longer in the synced calendar (the tech chose another one):
    nothing in Syncro is deleted for it. Our ``[S]`` copy moves: re-created in the synced calendar,
    then the old one discarded (an edit the tech made to the old copy is merged into Syncro
    first, and the move follows in the next round). The tech's
    own event stays where it is and is no longer synced: the pair is released (its Syncro copy
    stays, still claimed, so it is never imported back as new; synced again if the event comes
    back into the synced calendar)."""
    if pair.origin is Side.OUTLOOK:
        return [Record(replace(pair, released=True))]
    if s is None:  # deleted in Syncro meanwhile: as anywhere, an edit of the copy wins (two-way)
        if policy.two_way and _changed(pair, o):
            return [CreateOn(Side.SYNCRO, o.content, pair.origin, pair.key, o.id, o.version, replaces=pair.syncro_id)]
        return [DeleteOn(Side.OUTLOOK, o.id, o.version, pair.key, o.content)]
    noted: list[Action] = []
    if policy.two_way and _changed(pair, o) and o.content != s.content:
        winner = _winner(policy, s, o)
        merged, conflicts = merge(pair.base, s.content, o.content, winner=winner)
        noted = [Conflict(pair.key, conflicts, winner, s.content, o.content)] if conflicts else []
        if merged != s.content:
            # Syncro first: the move copies what Syncro holds, so a failed write loses nothing. The
            # old copy counts as holding the merge: it is only there to be replaced.
            return [*noted, UpdateOn(Side.SYNCRO, s.id, merged, s.version, pair.key, in_sync_with=o.version)]
    return [
        *noted,
        CreateOn(Side.OUTLOOK, s.content, pair.origin, pair.key, s.id, s.version, replaces=o.id),
        Discard(Side.OUTLOOK, o.id, o.version, pair.key),
    ]


def _decide_one_way(pair: Pair, s: Item | None, o: Item | None) -> list[Action]:
    """Two-way off, a Syncro-born pair: Syncro is the truth, Outlook edits are put back."""
    if s is None:
        assert o is not None
        return [DeleteOn(Side.OUTLOOK, o.id, o.version, pair.key, o.content)]
    if o is None:
        return [CreateOn(Side.OUTLOOK, s.content, pair.origin, pair.key, s.id, s.version, replaces=pair.outlook_id)]
    return _write_both(pair, s, o, s.content)


def _decide_from_outlook(pair: Pair, s: Item | None, o: Item) -> list[Action]:
    """An Outlook-only pair (a meeting someone else organised, a private event): Outlook is the
    truth, Syncro edits are put back and a deleted Syncro copy comes back."""
    if s is None:
        return [CreateOn(Side.SYNCRO, o.content, pair.origin, pair.key, o.id, o.version, replaces=pair.syncro_id)]
    return _write_both(pair, s, o, o.content)


def _gone_on(pair: Pair, gone: Side, there: Item) -> list[Action]:
    if _changed(pair, there):
        # deleted on one side but edited on the other: the edit wins, nothing is lost
        return [
            CreateOn(gone, there.content, pair.origin, pair.key, there.id, there.version, replaces=pair.id_on(gone))
        ]
    # deleted on one side and unchanged on the other
    return [DeleteOn(there.side, there.id, there.version, pair.key, there.content)]


def _write_both(pair: Pair, s: Item, o: Item, content: Appointment) -> list[Action]:
    """Bring both sides to ``content``, writing only the sides that differ from it."""
    stale = [item for item in (s, o) if item.content != content]
    if not stale:
        return _record_if_stale(pair, s, o)
    if len(stale) == 1:
        (target,) = stale
        kept = o if target is s else s
        return [UpdateOn(target.side, target.id, content, target.version, pair.key, in_sync_with=kept.version)]
    return [UpdateOn(item.side, item.id, content, item.version, pair.key) for item in stale]


def _record_if_stale(pair: Pair, s: Item, o: Item) -> list[Action]:
    """Both sides hold the same content: remember it (an echo or a no-op edit needs no write)."""
    recorded = replace(pair, base=s.content, syncro_version=s.version, outlook_version=o.version)
    return [] if recorded == pair else [Record(recorded)]


def _changed(pair: Pair, item: Item) -> bool:
    """Changed = the version moved AND the content differs from what was synced (an echo of our
    own write, or a save that changed nothing, is not a change)."""
    if item.version == pair.version_on(item.side):
        return False
    return pair.base is None or item.content != pair.base


def _winner(policy: Policy, s: Item, o: Item) -> Side:
    if policy.conflict == "syncro":
        return Side.SYNCRO
    if policy.conflict == "outlook":
        return Side.OUTLOOK
    s_at, o_at = s.flags.modified_at, o.flags.modified_at
    if s_at is not None and o_at is not None and o_at > s_at:  # type: ignore[operator]
        return Side.OUTLOOK
    return Side.SYNCRO  # ties and unknown times: Syncro is the system of record


def _decide_new(policy: Policy, item: Item) -> list[Action]:
    if item.flags.preexisting and not policy.import_existing:
        return []  # existed before the link: imported only on request
    if item.flags.elsewhere:
        if item.side is Side.OUTLOOK and item.flags.pair_key is not None:
            # our copy left in a calendar no longer synced (its move was interrupted): remove it
            return [Discard(Side.OUTLOOK, item.id, item.version, item.flags.pair_key)]
        return []  # the tech's own event in another calendar: not synced
    if item.flags.no_import or item.flags.withdrawn:
        return []  # left out by a setting, or a cancelled or declined meeting
    meeting = item.flags.meeting_of
    if isinstance(meeting, tuple) and policy.two_way:
        # a meeting another linked tech organised: join his job, or wait until his sync made it
        syncro_id, organiser = meeting
        return [Join(item.id, item.version, str(syncro_id), int(organiser))] if syncro_id else []
    if item.flags.pair_key is not None:
        return []  # ours (our extended property), left by a pair that no longer wants it: never import it back
    if item.side is Side.OUTLOOK and not policy.two_way:
        return []
    return [CreateOn(other(item.side), item.content, item.side, new_pair_key(item), item.id, item.version)]


def _unguarded(pair: Pair, side: Side, outlook: Mapping[str, Item]) -> bool:
    """A released pair's item whose absence decides nothing, so the deletion guard leaves it
    out: its Outlook event (not synced, it may be gone for good); and, while the tech's event
    is in the synced calendar, its Syncro copy (the job went to another tech: its absence is
    the normal state, never a glitch to verify sync after sync). Its Syncro copy vanishing while
    the event is elsewhere is believed only as any other: Forget on a glitch would import it back."""
    if not pair.released:
        return False
    if side is Side.OUTLOOK:
        return True
    event = outlook.get(pair.outlook_id or "")
    return event is not None and not event.flags.elsewhere


def _guarded(
    side: Side, pairs: list[Pair], items: Mapping[str, Item], policy: Policy, verified: Collection[tuple[Side, str]]
) -> frozenset[str]:
    mapped = [item_id for pair in pairs if (item_id := pair.id_on(side)) is not None]
    vanished = [item_id for item_id in mapped if item_id not in items and (side, item_id) not in verified]
    if not vanished:
        return frozenset()
    everything = len(vanished) == len(mapped)  # an empty page where data was
    many = len(vanished) >= policy.guard_count and len(vanished) > policy.guard_fraction * len(mapped)
    return frozenset(vanished) if everything or many else frozenset()


def _index(side: Side, items: Iterable[Item]) -> dict[str, Item]:
    index: dict[str, Item] = {}
    for item in items:
        if item.side is not side:
            raise WrongSideError(side=side, item_id=item.id)
        if item.id in index:
            raise DuplicateItemError(side=side, item_id=item.id)
        index[item.id] = item
    return index


def _check_pairs(pairs: Iterable[Pair]) -> list[Pair]:
    by_key: dict[str, Pair] = {}
    owner: dict[tuple[Side, str], str] = {}
    for pair in pairs:
        if pair.key in by_key:
            raise DuplicatePairError(pair_key=pair.key)
        by_key[pair.key] = pair
        if pair.syncro_id is None and pair.outlook_id is None:
            raise EmptyPairError(pair_key=pair.key)
        for side in Side:
            item_id = pair.id_on(side)
            if item_id is None:
                continue
            if (side, item_id) in owner:
                raise ItemMappedTwiceError(side=side, item_id=item_id, pair_keys=(owner[side, item_id], pair.key))
            owner[side, item_id] = pair.key
    return [by_key[key] for key in sorted(by_key)]
