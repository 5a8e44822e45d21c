"""What the planner remembers of a pair, and the actions it decides.

All plain frozen data: `sync/planner.py` returns a list of these, an executor performs them.
The executor's contract, per action (the reference is ``tests/sync/fakes.py``):

- ``CreateOn``: skip unless the pair row is as the plan saw it (its id on ``side`` is still
  ``replaces``, its ``intent_at`` still ``intent_at``: otherwise another run did it); write the
  pair as an intent (id on ``side`` empty, ``base=content``, the source's id and version, a fresh
  ``intent_at``) *before* creating, so an interrupted create is adopted by the next plan instead
  of made twice; after the create, record the new id and version (and clear ``intent_at``).
- ``UpdateOn``: write only if the item is still at ``expected_version`` (Graph ``If-Match``,
  Syncro: re-read ``updated_at``); afterwards, when ``in_sync_with`` is set, record the pair as in
  sync (``base=content``, the new version, ``in_sync_with`` for the other side); otherwise record
  nothing (the other side is being written too: the next plan sees both equal and records).
- ``DeleteOn``: delete (into the recycle bin, with ``content``) only if the item is still at
  ``expected_version``; afterwards forget the pair (its other side is already gone).
- ``Join``/``Leave``: add the tech to (take him off) the Syncro job of a meeting another linked
  tech organised, and record (forget) the passive pair between it and his invitation.
- ``Discard``: delete a copy of ours the pair no longer maps (no recycle-bin entry, row untouched).
- ``Forget``/``Record``: drop or replace the pair row. ``Conflict``: keep for the settings page.
  ``Verify``: re-read each id one by one; those really gone are passed to the next plan as
  ``verified_gone``.

A failed precondition skips the action and leaves the pair as it was: the next plan, from fresh
snapshots, decides again. That is what makes every action safe to retry or to run twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sync.model import Appointment, Side


def other(side: Side) -> Side:
    return Side.OUTLOOK if side is Side.SYNCRO else Side.SYNCRO


@dataclass(frozen=True)
class Pair:
    """What the mapping row remembers of one synced pair (the pure counterpart of
    `storage.mappings.Mapping`).

    Invariant the executor keeps: the item on a side at the recorded version holds ``base``.
    So a side whose version is the recorded one is unchanged (an echo of our own write records
    its version), and ``base`` is the ancestor for a three-way merge. An empty id on one side is
    an intent: the create there is under way or was interrupted; ``intent_at`` says when the
    executor wrote it (recovery adopts only items created since).
    """

    key: str
    origin: Side
    syncro_id: str | None = None
    outlook_id: str | None = None
    syncro_version: str = ""
    outlook_version: str = ""
    base: Appointment | None = None
    intent_at: datetime | None = None
    released: bool = False  # the Outlook event left the synced calendar: not synced, still claimed

    def id_on(self, side: Side) -> str | None:
        return self.syncro_id if side is Side.SYNCRO else self.outlook_id

    def version_on(self, side: Side) -> str:
        return self.syncro_version if side is Side.SYNCRO else self.outlook_version

    def with_side(self, side: Side, item_id: str | None, version: str) -> Pair:
        if side is Side.SYNCRO:
            return replace(self, syncro_id=item_id, syncro_version=version)
        return replace(self, outlook_id=item_id, outlook_version=version)


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


@dataclass(frozen=True)
class DeleteOn:
    """Delete ``item_id`` on ``side`` if it is still at ``expected_version``; ``content`` is what
    goes to the recycle bin. The pair's other side is already gone."""

    side: Side
    item_id: str
    expected_version: str
    pair_key: str
    content: Appointment


@dataclass(frozen=True)
class Discard:
    """Delete our copy ``item_id`` on ``side`` that the pair no longer maps (its replacement was
    just created, e.g. in the calendar the tech switched to), if still at ``expected_version``.
    No recycle-bin entry (the appointment lives on) and the pair row is left as it is."""

    side: Side
    item_id: str
    expected_version: str
    pair_key: str


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


@dataclass(frozen=True)
class Leave:
    """The tech's copy of a joined meeting is gone, cancelled or declined: take the tech off the
    organiser's job ``syncro_id`` (which stays) and forget the pair."""

    pair_key: str
    syncro_id: str


@dataclass(frozen=True)
class Forget:
    """Drop the pair: both of its items are gone."""

    pair_key: str


@dataclass(frozen=True)
class Record:
    """Replace the pair row without writing to either side (an echo, a no-op edit, both sides
    already equal, an adopted item)."""

    pair: Pair

    @property
    def pair_key(self) -> str:
        return self.pair.key


@dataclass(frozen=True)
class Conflict:
    """The same field changed on both sides; ``winner``'s value was kept. For the settings page."""

    pair_key: str
    fields: tuple[str, ...]
    winner: Side
    syncro: Appointment
    outlook: Appointment


@dataclass(frozen=True)
class Verify:
    """Too many mapped items vanished from ``side`` at once to trust the listing: re-read these
    ids one by one before anything is deleted or re-created."""

    side: Side
    ids: tuple[str, ...]


Action = CreateOn | UpdateOn | DeleteOn | Discard | Join | Leave | Forget | Record | Conflict | Verify
WRITES = (CreateOn, UpdateOn, DeleteOn, Discard, Join, Leave)
