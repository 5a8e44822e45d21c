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
class Item:
    """What one side holds for one appointment: its id, its version marker (Syncro
    ``updated_at``, Graph ``changeKey``) and its content. ``extras`` carry side-specific facts
    the planner's policies need (e.g. ``organizer_is_tech``, ``cancelled``, ``private``)."""

    side: Side
    id: str
    version: str
    content: Appointment
    extras: dict[str, object] = field(default_factory=dict, compare=False)
