"""The simulated Syncro account: users, tokens, customers, appointment types and appointments.

One lock guards everything: uvicorn's handlers and tests' direct calls come from different
threads. Methods that answer the API return rendered JSON, built under the lock, so a reader
never sees half a write.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from local.sims.control import SimClock
from local.sims.syncro import render
from local.sims.syncro.model import Account, Appointment, AppointmentType, Customer, User, known_fields
from local.sims.syncro.settings import SyncroSettings
from local.sims.syncro.times import MILLISECOND, day_start, parse_datetime, to_millis
from local.sims.syncro.validation import Known, Rules, read_appointment


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


class SyncroStore:
    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self.account = Account()
            self.users: dict[int, User] = {}
            self.tokens: dict[str, int] = {}
            self.customers: dict[int, Customer] = {}
            self.appointment_types: dict[int, AppointmentType] = {}
            self.appointments: dict[int, Appointment] = {}
            self._next_id = 1
            self._last_stamp: datetime | None = None

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
        unknown = set(payload) - {"account", "users", "tokens", "appointment_types", "customers", "appointments"}
        if unknown:
            raise ValueError(f"unknown seed keys: {', '.join(sorted(unknown))}")
        with self._lock:
            if "account" in payload:
                self._seed_account(payload["account"])
            for entry in payload.get("users", []):
                self._seed_user(entry)
            for entry in payload.get("tokens", []):
                self._seed_token(entry)
            for entry in payload.get("customers", []):
                self._seed_customer(entry)
            for entry in payload.get("appointment_types", []):
                self._seed_appointment_type(entry)
            ids = [self._seed_appointment(entry) for entry in payload.get("appointments", [])]
            return {
                "account": {"subdomain": self.account.subdomain, "time_zone": self.account.time_zone},
                "users": sorted(self.users),
                "customers": sorted(self.customers),
                "appointment_types": sorted(self.appointment_types),
                "appointments": ids,
            }

    def _seed_account(self, entry: dict[str, Any]) -> None:
        account = Account(**known_fields(Account, entry))
        account.zone  # noqa: B018 - raises ValueError for an unknown zone
        self.account = account

    def _seed_user(self, entry: dict[str, Any]) -> None:
        fields = {"created_at": self._stamp(), **known_fields(User, entry)}
        fields["created_at"] = self._seed_time(fields["created_at"])
        user = User(**fields)
        if not isinstance(user.id, int) or not isinstance(user.email, str):
            raise ValueError("a user needs an integer id and an email")
        self.users[user.id] = user

    def _seed_token(self, entry: dict[str, Any]) -> None:
        token, user_id = entry["token"], entry["user_id"]
        if not isinstance(token, str) or not token or user_id not in self.users:
            raise ValueError(f"token for unknown user {user_id!r}")
        self.tokens[token] = user_id

    def _seed_customer(self, entry: dict[str, Any]) -> None:
        fields = {"created_at": self._stamp(), **known_fields(Customer, entry)}
        fields["created_at"] = self._seed_time(fields["created_at"])
        customer = Customer(**fields)
        if not isinstance(customer.id, int):
            raise ValueError("a customer needs an integer id")
        self.customers[customer.id] = customer

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
        record_id = entry.get("id", self._next_id)
        if not isinstance(record_id, int) or record_id < 1:
            raise ValueError("an appointment id must be a positive integer")
        stamp = self._stamp()
        created = self._seed_time(entry.get("created_at", stamp))
        updated = self._seed_time(entry.get("updated_at", created))
        self.appointments[record_id] = Appointment(id=record_id, created_at=created, updated_at=updated, **changes)
        self._next_id = max(self._next_id, record_id + 1)
        return record_id

    def _seed_time(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value
        moment = parse_datetime(value, self.account.zone) if isinstance(value, str) else None
        if moment is None:
            raise ValueError(f"not an ISO 8601 time: {value!r}")
        return moment

    # -- reads ------------------------------------------------------------------------------

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
            return render.user(record) if record else None

    def appointment_types_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [render.appointment_type(t) for t in sorted(self.appointment_types.values(), key=lambda t: t.id)]

    def settings_json(self) -> dict[str, Any]:
        with self._lock:
            return render.settings(self.account, year=self._clock.now().year)

    def me_json(self, user: User, token: str) -> dict[str, Any]:
        with self._lock:
            return render.me(user, token=token, account=self.account)

    def appointment_json(self, appointment_id: int) -> dict[str, Any] | None:
        with self._lock:
            record = self.appointments.get(appointment_id)
            return self._render(record) if record else None

    def all_appointments_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._render(record) for _, record in sorted(self.appointments.items())]

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
        """The UTC instants the account-zone days of the query begin at (upper bound exclusive)."""
        zone = self.account.zone
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
            record = Appointment(id=self._next_id, created_at=stamp, updated_at=stamp, **changes)
            self.appointments[record.id] = record
            self._next_id += 1
            assignees = tuple(dict.fromkeys([*([record.user_id] if record.user_id else []), *record.user_ids]))
            return WriteResult(appointment=self._render(record), assignees=assignees)

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
            # Rails touches updated_at on every save, even one that changes nothing visible.
            record.updated_at = self._stamp()
            return WriteResult(appointment=self._render(record))

    def delete(self, appointment_id: int) -> bool:
        with self._lock:
            return self.appointments.pop(appointment_id, None) is not None

    def _known(self) -> Known:
        return Known(
            users=frozenset(self.users),
            customers=frozenset(self.customers),
            appointment_types=frozenset(self.appointment_types),
        )

    def _render(self, record: Appointment) -> dict[str, Any]:
        return render.appointment(
            record,
            account=self.account,
            customer=self.customers.get(record.customer_id) if record.customer_id is not None else None,
            appointment_type=self.appointment_types.get(record.appointment_type_id)
            if record.appointment_type_id is not None
            else None,
        )


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
