"""What the mapping row remembers of one synced pair, as the planner and the actions see it."""

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

    Invariant the actions keep: the item on a side at the recorded version holds ``base``.
    So a side whose version is the recorded one is unchanged (an echo of our own write records
    its version), and ``base`` is the ancestor for a three-way merge. An empty id on one side is
    an intent: the create there is under way or was interrupted; ``intent_at`` says when the
    create wrote it (recovery adopts only items created since).
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
