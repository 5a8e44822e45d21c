"""What the simulator stores: mailboxes, their calendars and events, and the ids Graph hands out."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def new_id() -> str:
    """An Exchange-looking id: base64url (so ``-`` and ``_`` occur), case-sensitive, ending ``=``."""
    return "AAMkA" + base64.urlsafe_b64encode(secrets.token_bytes(33)).decode() + "="


def new_change_key() -> str:
    return base64.b64encode(secrets.token_bytes(22)).decode()


def new_ical_uid() -> str:
    return "040000008200E00074C5B7101A82E00800000000" + secrets.token_hex(28).upper()


@dataclass
class TimeSpec:
    """A start or end as written: wall-clock time in a named zone, and the UTC instant it means."""

    local: datetime  # naive wall-clock time in ``zone``
    zone: str  # the name as the client gave it (Windows or IANA)
    utc: datetime  # aware UTC


@dataclass
class OccurrenceOverride:
    """An exception: one occurrence of a series edited on its own."""

    fields: dict[str, Any]
    start: TimeSpec | None
    end: TimeSpec | None
    change_key: str
    modified: datetime


@dataclass
class StoredEvent:
    """A single event or a series master, as stored."""

    id: str
    calendar_id: str
    fields: dict[str, Any]  # subject, body, location, attendees, categories, showAs, ...
    start: TimeSpec
    end: TimeSpec
    is_all_day: bool
    recurrence: dict[str, Any] | None
    change_key: str
    created: datetime
    modified: datetime
    ical_uid: str
    extended: dict[str, tuple[str, str]] = field(default_factory=dict)  # lower-cased id -> (id, value)
    overrides: dict[str, OccurrenceOverride] = field(default_factory=dict)  # occurrence key -> exception
    deleted_occurrences: set[str] = field(default_factory=set)

    @property
    def is_series(self) -> bool:
        return self.recurrence is not None

    @property
    def etag(self) -> str:
        return f'W/"{self.change_key}"'


@dataclass
class Calendar:
    id: str
    name: str
    is_default: bool
    change_key: str = field(default_factory=new_change_key)
    color: str = "auto"
    hex_color: str = ""


@dataclass
class SentMail:
    """A message the mailbox would have sent to attendees (invitations, updates, cancellations)."""

    kind: str  # "invitation" | "update" | "cancellation"
    event_id: str
    subject: str
    recipients: list[str]
    comment: str
    at: str


_UNSET = "\x00unset"


@dataclass
class Mailbox:
    """``email`` is the address the simulator matches (attendees, ``/users/{x}``); ``upn`` and
    ``mail`` are what ``/me`` shows: Entra ID keeps them apart, and ``mail`` may be None."""

    oid: str
    email: str
    name: str
    tenant_id: str
    personal: bool = False
    can_subscribe: bool = True
    upn: str = ""  # "" -> email
    mail: str | None = _UNSET  # unset -> email; None stays None
    calendars: dict[str, Calendar] = field(default_factory=dict)
    events: dict[str, StoredEvent] = field(default_factory=dict)
    sent: list[SentMail] = field(default_factory=list)
    deleted_at: dict[str, datetime] = field(default_factory=dict)  # event id -> when it was deleted

    def __post_init__(self) -> None:
        # A mailbox made from just an email address (or a token's preferred_username) has both equal.
        self.upn = self.upn or self.email
        if self.mail == _UNSET:
            self.mail = self.email

    @property
    def default_calendar(self) -> Calendar:
        return next(c for c in self.calendars.values() if c.is_default)

    def calendar_by_name(self, name: str) -> Calendar | None:
        return next((c for c in self.calendars.values() if c.name == name), None)
