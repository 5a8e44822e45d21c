"""The neutral appointment both sides are mapped to, and what the planner sees of each side.

Plain, frozen data: `sync/mapping.py` turns Syncro appointments and Graph events into these and
back; `sync/planner.py` decides over them; nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class Side(StrEnum):
    SYNCRO = "syncro"
    OUTLOOK = "outlook"


# Fields the planner merges one by one (a time moved in Syncro and a title edited in Outlook both survive).
FIELDS = ("summary", "description", "location", "start", "end", "all_day")


@dataclass(frozen=True)
class Appointment:
    """One appointment as both sides can hold it, with origin tags already stripped.

    ``start``/``end`` are aware UTC datetimes. For an all-day appointment they are the UTC
    instants of midnight, in the Syncro account's time zone, of the first day and of the day
    after the last (so a three-day event is one appointment, not three).
    """

    summary: str
    start: datetime
    end: datetime
    all_day: bool = False
    description: str = ""
    location: str = ""

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None:
                raise ValueError(f"{name} must carry a time zone")
            object.__setattr__(self, name, value.astimezone(UTC))

    def content_hash(self) -> str:
        """A stable digest of the content (what an echo of our own write hashes to)."""
        data = {**asdict(self), "start": self.start.isoformat(), "end": self.end.isoformat()}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "start": self.start.isoformat(), "end": self.end.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Appointment:
        return cls(
            summary=str(data["summary"]),
            start=datetime.fromisoformat(str(data["start"])),
            end=datetime.fromisoformat(str(data["end"])),
            all_day=bool(data.get("all_day", False)),
            description=str(data.get("description", "")),
            location=str(data.get("location", "")),
        )


@dataclass(frozen=True)
class ItemFlags:
    """The side-specific facts about one item that the planner's policies read (`sync.planner`);
    `sync.inputs.build_inputs` sets them from the raw item, the link and the options."""

    modified_at: datetime | None = None  # the side's last-modified time: the ``latest`` conflict policy
    created_at: datetime | None = None  # an adoption candidate made after the intent was written
    tagged: bool = False  # a Syncro appointment whose summary carries ``[O] ``: one of ours
    preexisting: bool = False  # existed before the link (and outside the import window)
    elsewhere: bool = False  # an Outlook event in another of the mailbox's calendars
    pair_key: str | None = None  # an Outlook event we wrote: its pair (``orphan:<txn>`` when gone)
    withdrawn: bool = False  # a cancelled or declined meeting
    no_import: str = ""  # why the item starts no pair (e.g. recurring sync is off)
    outlook_only: bool = False  # a meeting another organised, or a private event: stays in Outlook
    meeting_of: tuple[str, int] | None = None  # an invitation to a linked tech's meeting: (job id, organiser)


@dataclass(frozen=True)
class Item:
    """What one side holds for one appointment: its id, its version marker (Syncro
    ``updated_at``, Graph ``changeKey``) and its content; ``flags`` are what the planner's
    policies read beyond content."""

    side: Side
    id: str
    version: str
    content: Appointment
    flags: ItemFlags = field(default_factory=ItemFlags, compare=False)
