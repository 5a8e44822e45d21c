"""The simulated Syncro account: users, tokens, customers, appointment types and appointments.

One lock guards everything: uvicorn's handlers and tests' direct calls come from different
threads. Methods that answer the API return rendered JSON, built under the lock, so a reader
never sees half a write.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from local.sims.control import SimClock
from local.sims.syncro import render, rewrite
from local.sims.syncro.model import Account, Appointment, AppointmentType, Customer, Ticket, User, known_fields
from local.sims.syncro.settings import ID_KINDS, SyncroSettings
from local.sims.syncro.times import MILLISECOND, day_start, parse_datetime, to_millis
from local.sims.syncro.validation import Known, Rules, read_appointment

SEED_KEYS = {"account", "users", "tokens", "appointment_types", "customers", "tickets", "appointments"}
UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class ListQuery:
    """What ``GET /appointments`` asks for; the dates are account-zone days."""

    date_from: date | None = None
    date_to: date | None = None
    only_user: int | None = None
    page: int = 1


@dataclass
class WriteResult:
    """A write's outcome: the rendered appointment, or the 422 messages."""

    appointment: dict[str, Any] | None = None
    errors: list[str] | None = None
    # Users the appointment is assigned to, for "(for me)" notifications.
    assignees: tuple[int, ...] = ()
    appointment_id: int | None = None


class SyncroStore:
    def __init__(self, clock: SimClock, settings: Callable[[], SyncroSettings] = SyncroSettings) -> None:
        """``settings`` gives the simulator's current settings (read on every call: they change)."""
        self._clock = clock
        self._settings = settings
        self._lock = threading.RLock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self.account = Account()
            self.users: dict[int, User] = {}
            self.tokens: dict[str, int] = {}
            self.customers: dict[int, Customer] = {}
            self.appointment_types: dict[int, AppointmentType] = {}
            self.tickets: dict[int, Ticket] = {}
            self.appointments: dict[int, Appointment] = {}
            # The highest id each kind has held: ids are never reused, as database sequences are not.
            self._highest: dict[str, int] = dict.fromkeys(ID_KINDS, 0)
            self._last_stamp: datetime | None = None

    # -- ids --------------------------------------------------------------------------------

    def _new_id(self, kind: str) -> int:
        """The next id of ``kind``: from the ``id_start`` setting, or past the highest held."""
        number = max(self._settings().id_start[kind], self._highest[kind] + 1)
        self._highest[kind] = number
        return number

    def _explicit_id(self, kind: str, value: Any) -> int:
        """A seed's own id, checked; later new ids go past it."""
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"an id in {kind} must be a positive integer")
        self._highest[kind] = max(self._highest[kind], value)
        return value

    def _seed_id(self, kind: str, entry: dict[str, Any]) -> dict[str, Any]:
        """``entry`` with its id: its own if it has one, else a new one."""
        if "id" in entry:
            return {**entry, "id": self._explicit_id(kind, entry["id"])}
        return {**entry, "id": self._new_id(kind)}

    # -- time -------------------------------------------------------------------------------

    def _stamp(self) -> datetime:
        """Now on the shared clock in milliseconds, strictly after the previous stamp, so two
        writes in one millisecond still get distinct, increasing ``updated_at``."""
        now = to_millis(self._clock.now())
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + MILLISECOND
        self._last_stamp = now
        return now

    # -- seeding ----------------------------------------------------------------------------

    def seed(self, payload: Any) -> dict[str, Any]:
        """Add or replace (by id) what ``payload`` holds; raises ValueError on a bad entry."""
        if not isinstance(payload, dict):
            raise ValueError("seed must be a JSON object")
        unknown = set(payload) - SEED_KEYS
        if unknown:
            raise ValueError(f"unknown seed keys: {', '.join(sorted(unknown))}")
        with self._lock:
            if "account" in payload:
                self._seed_account(payload["account"])
            for entry in _entries(payload, "users"):
                self._seed_user(entry)
            for entry in _entries(payload, "tokens"):
                self._seed_token(entry)
            for entry in _entries(payload, "customers"):
                self._seed_customer(entry)
            for entry in _entries(payload, "tickets"):
                self._seed_ticket(entry)
            for entry in _entries(payload, "appointment_types"):
                self._seed_appointment_type(entry)
            ids = [self._seed_appointment(entry) for entry in _entries(payload, "appointments")]
            return {
                "account": {"subdomain": self.account.subdomain, "time_zone": self.account.time_zone},
                "users": sorted(self.users),
                "customers": sorted(self.customers),
                "tickets": sorted(self.tickets),
                "appointment_types": sorted(self.appointment_types),
                "appointments": ids,
            }

    def _seed_account(self, entry: dict[str, Any]) -> None:
        account = Account(**known_fields(Account, entry))
        account.zone  # noqa: B018 - raises ValueError for an unknown zone
        self.account = account

    def _seed_user(self, entry: dict[str, Any]) -> None:
        fields = {"created_at": self._stamp(), **known_fields(User, entry)}
        if not isinstance(fields.get("email"), str):
            raise ValueError("a user needs an email")
        fields["created_at"] = self._seed_time(fields["created_at"])
        user = User(**self._seed_id("users", fields))
        self.users[user.id] = user

    def _seed_token(self, entry: dict[str, Any]) -> None:
        token, user_id = entry["token"], entry["user_id"]
        if not isinstance(token, str) or not token or user_id not in self.users:
            raise ValueError(f"token for unknown user {user_id!r}")
        self.tokens[token] = user_id

    def _seed_customer(self, entry: dict[str, Any]) -> None:
        fields = {"created_at": self._stamp(), **known_fields(Customer, entry)}
        fields["created_at"] = self._seed_time(fields["created_at"])
        _check_texts("a customer", fields, exclude=("id", "created_at"))
        customer = Customer(**self._seed_id("customers", fields))
        self.customers[customer.id] = customer

    def _seed_ticket(self, entry: dict[str, Any]) -> None:
        fields = {"created_at": self._stamp(), **known_fields(Ticket, entry)}
        fields["created_at"] = self._seed_time(fields["created_at"])
        _check_texts("a ticket", fields, exclude=("id", "created_at", "number", "customer_id", "user_id"))
        for name in ("number", "customer_id", "user_id"):
            if fields.get(name) is not None and (not isinstance(fields[name], int) or isinstance(fields[name], bool)):
                raise ValueError(f"a ticket's {name} must be an integer")
        if fields.get("customer_id") is not None and fields["customer_id"] not in self.customers:
            raise ValueError(f"ticket for unknown customer {fields['customer_id']!r}")
        if fields.get("user_id") is not None and fields["user_id"] not in self.users:
            raise ValueError(f"ticket for unknown user {fields['user_id']!r}")
        ticket = Ticket(**self._seed_id("tickets", fields))
        if ticket.number is None:
            # Ticket numbers are the account's own sequence, far smaller than ids.
            ticket.number = max((t.number or 0 for t in self.tickets.values()), default=1000) + 1
        self.tickets[ticket.id] = ticket

    def _seed_appointment_type(self, entry: dict[str, Any]) -> None:
        fields = {"created_at": self._stamp(), **known_fields(AppointmentType, entry)}
        fields["created_at"] = self._seed_time(fields["created_at"])
        record = AppointmentType(**fields)
        if not isinstance(record.id, int) or record.location_type not in (
            "customer",
            "shop",
            "pre_defined",
            "manual_entry",
        ):
            raise ValueError("an appointment type needs an integer id and a known location_type")
        self.appointment_types[record.id] = record

    def _seed_appointment(self, entry: dict[str, Any]) -> int:
        """Seeded appointments pass the same validation as the API's, but fire no notification."""
        if not isinstance(entry, dict):
            raise ValueError("an appointment must be an object")
        params = {key: value for key, value in entry.items() if key not in ("id", "created_at", "updated_at")}
        rules = Rules(creating=True, require_start=True, require_end=False)
        changes, errors = read_appointment(params, zone=self.account.zone, known=self._known(), rules=rules)
        if errors:
            raise ValueError(",".join(errors))
        stamp = self._stamp()
        created = self._seed_time(entry.get("created_at", stamp))
        updated = self._seed_time(entry.get("updated_at", created))
        record_id = self._explicit_id("appointments", entry["id"]) if "id" in entry else self._new_id("appointments")
        self.appointments[record_id] = Appointment(id=record_id, created_at=created, updated_at=updated, **changes)
        return record_id

    def _seed_time(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value
        moment = parse_datetime(value, self.account.zone) if isinstance(value, str) else None
        if moment is None:
            raise ValueError(f"not an ISO 8601 time: {value!r}")
        return moment

    # -- reads ------------------------------------------------------------------------------

    def revoke_token(self, token: str) -> bool:
        """The token is deleted (as a user deletes it under Profile/Password > API Tokens): from
        now on it answers 401. False when there was no such token."""
        with self._lock:
            return self.tokens.pop(token, None) is not None

    def user_for_token(self, token: str) -> User | None:
        with self._lock:
            user_id = self.tokens.get(token)
            return self.users.get(user_id) if user_id is not None else None

    def user_pairs(self) -> list[list[Any]]:
        with self._lock:
            return [[user.id, user.full_name] for user in sorted(self.users.values(), key=lambda u: u.id)]

    def user_json(self, user_id: int) -> dict[str, Any] | None:
        with self._lock:
            record = self.users.get(user_id)
            return render.user(record, self._view()) if record else None

    def appointment_types_json(self) -> list[dict[str, Any]]:
        with self._lock:
            view = self._view()
            return [
                render.appointment_type(t, view) for t in sorted(self.appointment_types.values(), key=lambda t: t.id)
            ]

    def settings_json(self) -> dict[str, Any]:
        with self._lock:
            return render.settings(self.account, year=self._clock.now().year)

    def me_json(self, user: User, token: str) -> dict[str, Any]:
        with self._lock:
            return render.me(user, token=token, account=self.account)

    def appointment_json(self, appointment_id: int, *, full: bool = False) -> dict[str, Any] | None:
        """As the API shows it, or with ``full`` the whole stored record (user fields included)."""
        with self._lock:
            record = self.appointments.get(appointment_id)
            return self._render(record, full=full) if record else None

    def all_appointments_json(self, *, full: bool = True) -> list[dict[str, Any]]:
        """Every appointment by id, whole by default (for ``/_sim/appointments`` and tests)."""
        with self._lock:
            return [self._render(record, full=full) for _, record in sorted(self.appointments.items())]

    def list_page(self, query: ListQuery, settings: SyncroSettings) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """One page of the filtered list, and its ``meta``."""
        with self._lock:
            lower, upper = self._bounds(query, settings)
            overlap = settings.date_filter == "overlap"
            matching = [
                record
                for record in self.appointments.values()
                if (query.only_user is None or record.assigned_to(query.only_user))
                and _in_range(record, lower, upper, overlap=overlap)
            ]
            matching.sort(key=_order_key(settings.list_order))
            per_page = settings.per_page
            # Rails paginators (will_paginate, Kaminari) report 0 pages for an empty result.
            total_pages = -(-len(matching) // per_page)
            chunk = matching[(query.page - 1) * per_page : query.page * per_page]
            meta = {
                "total_pages": total_pages,
                "total_entries": len(matching),
                "per_page": per_page,
                "page": query.page,
            }
            return [self._render(record) for record in chunk], meta

    def _bounds(self, query: ListQuery, settings: SyncroSettings) -> tuple[datetime | None, datetime | None]:
        """The UTC instants the query's days begin at (upper bound exclusive), in the account's
        zone or UTC as ``date_filter_zone`` says."""
        zone = UTC_ZONE if settings.date_filter_zone == "utc" else self.account.zone
        lower = day_start(query.date_from, zone) if query.date_from else None
        upper = None
        if query.date_to:
            upper = day_start(query.date_to + timedelta(days=1 if settings.date_to_inclusive else 0), zone)
        return lower, upper

    # -- writes -----------------------------------------------------------------------------

    def create(self, params: dict[str, Any], *, rules: Rules, creator: int | None) -> WriteResult:
        with self._lock:
            changes, errors = read_appointment(params, zone=self.account.zone, known=self._known(), rules=rules)
            if errors:
                return WriteResult(errors=errors)
            if creator is not None and changes.get("user_id") is None and not changes.get("user_ids"):
                changes["user_id"] = creator
            stamp = self._stamp()
            record = Appointment(id=self._new_id("appointments"), created_at=stamp, updated_at=stamp, **changes)
            self._rewrite(record, params)
            self.appointments[record.id] = record
            assignees = tuple(dict.fromkeys([*([record.user_id] if record.user_id else []), *record.user_ids]))
            return WriteResult(appointment=self._render(record), assignees=assignees, appointment_id=record.id)

    def update(self, appointment_id: int, params: dict[str, Any], *, rules: Rules) -> WriteResult | None:
        """None when the appointment does not exist."""
        with self._lock:
            record = self.appointments.get(appointment_id)
            if record is None:
                return None
            changes, errors = read_appointment(
                params, zone=self.account.zone, known=self._known(), rules=rules, existing=record
            )
            if errors:
                return WriteResult(errors=errors)
            for name, value in changes.items():
                setattr(record, name, value)
            self._rewrite(record, params)
            # Rails touches updated_at on every save, even one that changes nothing visible.
            record.updated_at = self._stamp()
            return WriteResult(appointment=self._render(record), appointment_id=record.id)

    def delete(self, appointment_id: int) -> bool:
        with self._lock:
            return self.appointments.pop(appointment_id, None) is not None

    def _rewrite(self, record: Appointment, params: dict[str, Any]) -> None:
        """Syncro's own rewrites, on a write that sends the fields they depend on."""
        settings = self._settings()
        related = self._related(record)
        if related.customer is None and related.ticket is not None and related.ticket.customer_id is not None:
            # Booked from a ticket without naming a customer: the ticket's customer is the contact.
            related = dataclasses.replace(related, customer=self.customers.get(related.ticket.customer_id))
        if settings.rewrite_description != "off" and params.keys() & {"description", "ticket_id", "customer_id"}:
            text = rewrite.description(
                record.description,
                mode=settings.rewrite_description,
                account=self.account,
                customer=related.customer,
                ticket=related.ticket,
            )
            record.description = text if text is not None else record.description
        if settings.rewrite_location and params.keys() & {"location", "appointment_type_id", "customer_id"}:
            place = rewrite.location(related.appointment_type, related.customer)
            record.location = place if place is not None else record.location

    def _known(self) -> Known:
        return Known(
            users=frozenset(self.users),
            customers=frozenset(self.customers),
            appointment_types=frozenset(self.appointment_types),
        )

    def _view(self, *, full: bool = False) -> render.View:
        settings = self._settings()
        return render.View(
            account=self.account,
            utc_times=settings.time_format == "utc",
            withhold_user_fields=settings.withhold_user_fields and not full,
        )

    def _related(self, record: Appointment) -> render.Related:
        ticket = self.tickets.get(record.ticket_id) if record.ticket_id is not None else None
        return render.Related(
            customer=self.customers.get(record.customer_id) if record.customer_id is not None else None,
            appointment_type=self.appointment_types.get(record.appointment_type_id)
            if record.appointment_type_id is not None
            else None,
            ticket=ticket,
            ticket_user=self.users.get(ticket.user_id) if ticket and ticket.user_id is not None else None,
        )

    def _render(self, record: Appointment, *, full: bool = False) -> dict[str, Any]:
        return render.appointment(record, view=self._view(full=full), related=self._related(record))


def _entries(payload: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The seed's list under ``key``, each entry an object."""
    entries = payload.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ValueError(f"seed key {key!r} must be a list of objects")
    return entries


def _check_texts(what: str, fields: dict[str, Any], *, exclude: tuple[str, ...]) -> None:
    """Text fields of a seeded record must be strings (or null)."""
    for name, value in fields.items():
        if name not in exclude and value is not None and not isinstance(value, str):
            raise ValueError(f"{what}'s {name} must be a string")


def _in_range(record: Appointment, lower: datetime | None, upper: datetime | None, *, overlap: bool) -> bool:
    if overlap:
        return (lower is None or record.end_at > lower) and (upper is None or record.start_at < upper)
    return (lower is None or record.start_at >= lower) and (upper is None or record.start_at < upper)


def _order_key(order: str) -> Any:
    if order == "id":
        return lambda record: record.id
    if order == "-start_at":
        return lambda record: (-record.start_at.timestamp(), record.id)
    return lambda record: (record.start_at, record.id)
