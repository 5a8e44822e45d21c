"""What the actions need of Syncro, of Outlook and of the pair rows: three small interfaces.

Each action in `sync.actions` runs itself against these (as vdirsyncer's ``Upload``/``Update``/
``Delete`` run against two storages and a status). The product implements them over the real
clients and tables (`sync.syncro_side`, `sync.outlook_side`, `sync.pair_store`); the fast state
machine implements them in memory (`tests/sync/fakes.py`), so it proves the same action code.

The sides speak appointments, not payloads: a write returns what the service *returned*, read
back (`Written`), so an action can tell whether the service kept what it sent. A write whose
precondition fails raises `sync.errors.PreconditionFailed`; the runner counts it as stale and the
next plan decides again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from storage.mappings import MappingState
from sync.model import Appointment, Side
from sync.pairs import Pair


@dataclass(frozen=True)
class Written:
    """An item as the service answered a write: its id, version and content read back.
    ``raw`` is the service's own record (for the mirrors); the in-memory sides leave it None."""

    id: str
    version: str
    content: Appointment
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class NewEvent:
    """A new event for the synced calendar, as one step of a bulk create: the copy of
    ``source_id`` (a Syncro id) for the pair ``pair_key``."""

    content: Appointment
    origin: Side
    pair_key: str
    source_id: str


@dataclass(frozen=True)
class Held:
    """A Syncro appointment as read just now, with who is on it: ``techs`` its ``user_ids``
    and ``owner`` its ``user_id``, both empty/None when Syncro leaves them out of its answer."""

    id: str
    version: str
    content: Appointment
    techs: frozenset[int] = frozenset()
    owner: int | None = None
    raw: Any = field(default=None, compare=False, repr=False)

    @property
    def shows_techs(self) -> bool:
        return bool(self.techs) or self.owner is not None

    @property
    def assigned(self) -> frozenset[int]:
        """Everyone Syncro shows on it: its ``user_ids`` and its ``user_id``."""
        return self.techs | ({self.owner} if self.owner is not None else set())


@dataclass
class Tally:
    """What one sync run did, for its report and the next round's plan."""

    created: dict[str, int] = field(default_factory=lambda: {"syncro": 0, "outlook": 0})
    updated: dict[str, int] = field(default_factory=lambda: {"syncro": 0, "outlook": 0})
    deleted: dict[str, int] = field(default_factory=lambda: {"syncro": 0, "outlook": 0})
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stale: int = 0  # writes skipped because the item moved on since it was read
    notices: list[str] = field(default_factory=list)  # what a tech should know (a shared job kept)
    verified_gone: set[tuple[Side, str]] = field(default_factory=set)


class SyncroSide(Protocol):
    """One tech's Syncro appointments."""

    tech: int  # the Syncro user whose appointments these are

    def get(self, item_id: str) -> Held:
        """The appointment as it is now; `sync.errors.NotFound` when it is gone."""

    def current(self, item_id: str, expected_version: str) -> Held:
        """Syncro's precondition (it has no If-Match): the appointment re-read, if still at
        ``expected_version``; else `PreconditionFailed` (and the next plan sees what it is now)."""

    def others_on(self, held: Held) -> tuple[bool, set[int]]:
        """The other techs on it: ``(True, techs)`` when Syncro shows them, else ``(False, the
        other linked techs whose listing holds it)``, a lower bound."""

    def kept(self, item_id: str) -> dict[str, Any] | None:
        """What the appointment holds beyond content (customer, ticket, type, techs), as last seen."""

    def create(self, content: Appointment, *, origin: Side, kept: dict[str, Any] | None) -> Written: ...

    def update(self, item_id: str, content: Appointment, *, expected_version: str, origin: Side) -> Written:
        """Write ``content`` if the appointment is still at ``expected_version``."""

    def assign(self, held: Held, techs: set[int], owner: int, *, origin: Side) -> Held:
        """Put exactly ``techs`` on the appointment (``owner`` first), its content unchanged."""

    def delete(self, item_id: str) -> None:
        """Delete it (gone already counts as done). Check `current` first."""

    def mirror(self, held: Held) -> None:
        """Remember it as this tech's (what the next plan reads)."""

    def forget(self, item_id: str) -> None:
        """No longer this tech's: out of what the next plan reads."""

    def adopt(self, pair: Pair, claimed: set[str]) -> Written | None:
        """What an interrupted create for ``pair`` left behind (`sync.planner.find_adoptable`)."""

    def verify(self, ids: tuple[str, ...]) -> set[str]:
        """Re-read each id; return those really gone from this tech (deleted or given away)."""


class OutlookSide(Protocol):
    """The tech's synced Outlook calendar."""

    def create(
        self, content: Appointment, *, origin: Side, pair_key: str, source_id: str, replaces: str | None
    ) -> Written: ...

    def send_creates(self, events: list[NewEvent]) -> list[Written | str]:
        """New events at once (Graph ``$batch``): per action, what was made or why not."""

    def keep(self, written: Written) -> None:
        """Mirror an event `send_creates` made (done by `create` itself)."""

    def update(
        self, item_id: str, content: Appointment, *, expected_version: str, origin: Side, syncro_id: str | None
    ) -> Written: ...

    def delete(self, item_id: str, *, expected_version: str) -> None:
        """Delete it where it is (gone already counts as done) if still at ``expected_version``."""

    def adopt(self, pair: Pair, claimed: set[str]) -> Written | None: ...

    def verify(self, ids: tuple[str, ...]) -> set[str]: ...


@dataclass(frozen=True)
class Sides:
    syncro: SyncroSide
    outlook: OutlookSide

    def on(self, side: Side) -> SyncroSide | OutlookSide:
        return self.syncro if side is Side.SYNCRO else self.outlook


class PairStore(Protocol):
    """The tech's pair rows and recycle bin, and the run's tally."""

    tally: Tally

    def now(self) -> datetime: ...

    def pair(self, key: str) -> Pair | None: ...

    def pairs(self) -> list[Pair]: ...

    def claimed(self, side: Side) -> set[str]:
        """Every id on ``side`` a pair row holds."""

    def save(self, pair: Pair, *, state: MappingState) -> None: ...

    def drop(self, key: str) -> None: ...

    def kept(self, key: str) -> dict[str, Any] | None:
        """What the pair's Syncro appointment held beyond content, as the row last saw it."""

    def bin(
        self, *, side: Side, item_id: str, origin: Side, content: Appointment, kept: dict[str, Any] | None, reason: str
    ) -> str:
        """Keep a copy in the recycle bin before a delete; returns the entry's id."""

    def unbin(self, entry_id: str) -> None: ...
