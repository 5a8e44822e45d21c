"""The simulator's seed format (``POST /_sim/seed``)::

    {"mailboxes": [{"oid": "...", "email": "...", "name": "...", "tenant_id": "...", "personal": false,
                    "upn": "optional", "mail": "optional, may be null",
                    "can_subscribe": true,
                    "calendars": [{"id": "optional", "name": "Calendar", "is_default": true}],
                    "events": [{"calendar": "Calendar", "subject": "...", "start": {...}, "end": {...},
                                ...any Graph event body...,
                                "id": "optional", "isOrganizer": false, "organizer": {...},
                                "isCancelled": true}]}]}

``isOrganizer``/``organizer``/``isCancelled`` make attendee copies (read-only through the API).

``upn`` and ``mail`` are kept as given (case too) and shown by ``/me``; each defaults to ``email``,
and ``email`` (the address attendees and ``/users/{x}`` match) defaults to ``mail``, else ``upn``.
So a mailbox seeded with just an email has both equal, as the identity simulator's users do.
"""

from __future__ import annotations

from typing import Any

from local.sims.graph.model import Mailbox
from local.sims.graph.payload import parse_event_write
from local.sims.graph.store import GraphStore

SEED_ONLY = ("isOrganizer", "organizer", "isCancelled")


def seed_store(store: GraphStore, payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("mailboxes", []), list):
        raise ValueError('expected {"mailboxes": [...]}')
    return {"mailboxes": [_seed_mailbox(store, spec) for spec in payload.get("mailboxes", [])]}


def _seed_mailbox(store: GraphStore, spec: dict[str, Any]) -> dict[str, Any]:
    upn, mail, email = _addresses(spec)
    mailbox = store.add_mailbox(
        oid=str(spec["oid"]),
        email=email,
        name=str(spec.get("name") or email),
        tenant_id=str(spec.get("tenant_id", "")),
        personal=bool(spec.get("personal", False)),
        can_subscribe=bool(spec.get("can_subscribe", True)),
    )
    with store.lock:
        mailbox.upn, mailbox.mail = upn, mail
    for calendar in spec.get("calendars", []):
        _seed_calendar(store, mailbox, calendar)
    event_ids = [_seed_event(store, mailbox, event) for event in spec.get("events", [])]
    return {
        "oid": mailbox.oid,
        "calendars": {c.name: c.id for c in mailbox.calendars.values()},
        "events": event_ids,
    }


def _addresses(spec: dict[str, Any]) -> tuple[str, str | None, str]:
    """(upn, mail, email) of a mailbox spec; ValueError when it names no address at all."""
    email, upn = spec.get("email"), spec.get("upn")
    mail = spec.get("mail", email if email is not None else upn)
    for name, value in (("email", email), ("upn", upn), ("mail", mail)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"mailbox {name} must be a non-empty string")
    address = email or mail or upn
    if not address:
        raise ValueError("a mailbox needs an email or a upn")
    return upn or address, mail, address


def _seed_calendar(store: GraphStore, mailbox: Mailbox, spec: dict[str, Any]) -> None:
    name = str(spec["name"])
    existing = mailbox.calendar_by_name(name)
    if spec.get("is_default"):
        for other in mailbox.calendars.values():
            other.is_default = False
    if existing is not None:
        existing.is_default = existing.is_default or bool(spec.get("is_default"))
        return
    store.add_calendar(mailbox, name, is_default=bool(spec.get("is_default")), calendar_id=spec.get("id"))
    if not any(c.is_default for c in mailbox.calendars.values()):
        next(iter(mailbox.calendars.values())).is_default = True


def _seed_event(store: GraphStore, mailbox: Mailbox, spec: dict[str, Any]) -> str:
    spec = dict(spec)
    calendar_name = spec.pop("calendar", None)
    event_id = spec.pop("id", None)
    extra = {key: spec.pop(key) for key in SEED_ONLY if key in spec}
    calendar = mailbox.calendar_by_name(calendar_name) if calendar_name else mailbox.default_calendar
    if calendar is None:
        raise ValueError(f"unknown calendar {calendar_name!r}")
    write = parse_event_write(spec, accept_iana=True)
    return store.create_event(mailbox, calendar, write, extra_fields=extra, event_id=event_id).id
