"""The app-wide Syncro request ledger (`sync.budget.SharedBudget`): one row, written with ETags.

Table ``syncrobudget``, row ``budget / syncro``: ``slots`` (JSON: requests granted per 2-s slot
and caller, the last 64 s only) and ``refused`` (JSON: each caller's last refusal). One row keeps
a grant to one read and one conditional write; every instance races on it with optimistic
concurrency, and a lost race (412, or 409 when two create it) reads again. At Syncro's 180 a
minute, granted in batches, that is a few writes a second at most: far below a row's limits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from storage.errors import NotFound

if TYPE_CHECKING:
    from storage.table import Tables

TABLE = "syncrobudget"
_PARTITION, _ROW = "budget", "syncro"


@dataclass
class Ledger:
    """The stored state: requests granted per slot and caller, and the last refusal per caller
    (slot, refusals in that slot's window, and when)."""

    slots: dict[int, dict[str, int]] = field(default_factory=dict)
    refused: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, str]:
        return {
            "slots": json.dumps({str(slot): counts for slot, counts in sorted(self.slots.items())}),
            "refused": json.dumps(self.refused, sort_keys=True),
        }

    @classmethod
    def from_json(cls, slots: str | None, refused: str | None) -> Ledger:
        """The ledger of a stored row; unreadable parts read as empty (the next write repairs them)."""
        try:
            raw = json.loads(slots or "{}")
            parsed = {int(slot): {str(k): int(v) for k, v in counts.items()} for slot, counts in raw.items()}
        except (ValueError, TypeError, AttributeError):
            parsed = {}
        try:
            gone = json.loads(refused or "{}")
            gone = gone if isinstance(gone, dict) else {}
        except ValueError:
            gone = {}
        return cls(parsed, gone)


class SyncroBudgetStore:
    def __init__(self, account: Tables) -> None:
        self._table = account.table(TABLE)

    def read(self) -> tuple[Ledger, str | None]:
        """The ledger and its ETag; an empty ledger and None when the row does not exist yet."""
        try:
            entity, etag = self._table.get(_PARTITION, _ROW)
        except NotFound:
            return Ledger(), None
        return Ledger.from_json(entity.get("slots"), entity.get("refused")), etag

    def write(self, ledger: Ledger, *, etag: str | None) -> None:
        """Create the row (``etag`` None) or replace it if unchanged since read. Raises
        ConcurrencyConflict when another instance wrote first (NotFound is reported as that too:
        the row was deleted between read and write, so read again)."""
        from storage.errors import ConcurrencyConflict

        entity = {"PartitionKey": _PARTITION, "RowKey": _ROW, **ledger.to_json()}
        if etag is None:
            self._table.create(entity)
            return
        try:
            self._table.replace(entity, etag=etag)
        except NotFound as gone:
            raise ConcurrencyConflict(TABLE, f"{_PARTITION}/{_ROW}", "was deleted since it was read") from gone
