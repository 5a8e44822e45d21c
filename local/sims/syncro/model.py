"""The records a Syncro account holds, as the simulator stores them (not as the API shows them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from local.sims.syncro.times import load_zone


@dataclass
class Account:
    subdomain: str = "demo"
    time_zone: str = "America/Los_Angeles"

    @property
    def zone(self) -> ZoneInfo:
        return load_zone(self.time_zone)


@dataclass
class User:
    id: int
    email: str
    full_name: str
    created_at: datetime
    admin: bool = False
    group: str = "Technicians"
    color: str = "2e75b6"
    # Syncro's "Appointments - View All" permission; without it a user sees only their own.
    view_all_appointments: bool = True


@dataclass
class Customer:
    id: int
    created_at: datetime
    firstname: str | None = None
    lastname: str | None = None
    business_name: str | None = None
    email: str | None = None
    phone: str | None = None
    mobile: str | None = None
    address: str | None = None
    address_2: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    notes: str | None = None

    @property
    def fullname(self) -> str:
        return " ".join(part for part in (self.firstname, self.lastname) if part)


@dataclass
class Ticket:
    """Just enough of a ticket for an appointment's nested ``ticket`` and Syncro's rewrites."""

    id: int
    created_at: datetime
    number: int | None = None
    subject: str = ""
    status: str = "New"
    customer_id: int | None = None
    user_id: int | None = None
    problem_type: str | None = None


@dataclass
class AppointmentType:
    id: int
    name: str
    created_at: datetime
    location_type: str = "manual_entry"  # customer | shop | pre_defined | manual_entry
    email_instructions: str | None = None
    location_hard_code: str | None = None


@dataclass
class Appointment:
    id: int
    summary: str
    start_at: datetime
    end_at: datetime
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    location: str | None = None
    customer_id: int | None = None
    ticket_id: int | None = None
    user_id: int | None = None
    user_ids: list[int] = field(default_factory=list)
    appointment_type_id: int | None = None
    all_day: bool | None = None
    do_not_email: bool | None = None
    email_customer: bool | None = None

    def assigned_to(self, user_id: int) -> bool:
        return self.user_id == user_id or user_id in self.user_ids


def known_fields(record_type: type, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` restricted to ``record_type``'s fields; raises ValueError on any other key."""
    names = set(record_type.__dataclass_fields__)
    unknown = sorted(set(payload) - names)
    if unknown:
        raise ValueError(f"{record_type.__name__} has no field(s) {', '.join(unknown)}")
    return payload
