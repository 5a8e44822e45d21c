"""The JSON shapes of Syncro's API, built from stored records.

Field lists and example values follow ``syncro-openapi-subset.json``. A value Syncro would
hold as NULL (no customer, no description) is rendered as null: a client must cope with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from local.sims.syncro.model import Account, Appointment, AppointmentType, Customer, Ticket, User
from local.sims.syncro.times import format_time, standard_offset, start_label

# Writable in requests, never shown in the spec's responses (withheld unless the view is full).
USER_FIELDS = ("user_id", "user_ids", "appointment_type_id")


@dataclass(frozen=True)
class View:
    """How records are shown: the account, its times' format, and whether user fields are withheld."""

    account: Account
    utc_times: bool = False
    withhold_user_fields: bool = True

    def time(self, moment: datetime) -> str:
        return format_time(moment, None if self.utc_times else self.account.zone)


@dataclass(frozen=True)
class Related:
    """The records an appointment points at, looked up by the store."""

    customer: Customer | None = None
    appointment_type: AppointmentType | None = None
    ticket: Ticket | None = None
    ticket_user: User | None = None


def appointment(record: Appointment, *, view: View, related: Related) -> dict[str, Any]:
    """The flat appointment object (GET by id); lists and writes wrap it."""
    account = view.account
    shown = {
        "id": record.id,
        "summary": record.summary,
        "description": record.description,
        "customer_id": record.customer_id,
        "created_at": view.time(record.created_at),
        "updated_at": view.time(record.updated_at),
        "start_at": view.time(record.start_at),
        "end_at": view.time(record.end_at),
        "duration": _hours(record.start_at, record.end_at),
        "location": record.location,
        "ticket_id": record.ticket_id,
        "appointment_location_type": related.appointment_type.location_type if related.appointment_type else None,
        "start_at_label": start_label(record.start_at, account.zone),
        "all_day": record.all_day,
        "ticket": _nested_ticket(record.ticket_id, related, view),
        # Syncro stores this flag as a string ("1" in the spec's example).
        "do_not_email": None if record.do_not_email is None else ("1" if record.do_not_email else "0"),
        "customer": customer_json(related.customer, view) if related.customer else None,
        "user_id": record.user_id,
        "user_ids": list(record.user_ids),
        "appointment_type_id": record.appointment_type_id,
    }
    if view.withhold_user_fields:
        for name in USER_FIELDS:
            del shown[name]
    return shown


def _nested_ticket(ticket_id: int | None, related: Related, view: View) -> dict[str, Any] | None:
    """The appointment's ``ticket``: null without one, just the id for a ticket the sim does not hold."""
    if ticket_id is None:
        return None
    ticket = related.ticket
    if ticket is None:
        return {"id": ticket_id}
    return {
        "id": ticket.id,
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status,
        "problem_type": ticket.problem_type,
        "customer_id": ticket.customer_id,
        "user_id": ticket.user_id,
        "created_at": view.time(ticket.created_at),
        "updated_at": view.time(ticket.created_at),
        "user": user(related.ticket_user, view) if related.ticket_user else None,
    }


def ticket_url(account: Account, ticket_id: int) -> str:
    return f"https://{account.subdomain}.syncromsp.com/tickets/{ticket_id}"


def _hours(start: datetime, end: datetime) -> int | float:
    hours = (end - start).total_seconds() / 3600
    return int(hours) if hours == int(hours) else round(hours, 2)


def customer_json(customer: Customer, view: View) -> dict[str, Any]:
    account = view.account
    fullname = customer.fullname
    business_then_name = customer.business_name or fullname
    return {
        "id": customer.id,
        "firstname": customer.firstname,
        "lastname": customer.lastname,
        "fullname": fullname,
        "business_name": customer.business_name,
        "email": customer.email,
        "phone": customer.phone,
        "mobile": customer.mobile,
        "created_at": view.time(customer.created_at),
        "updated_at": view.time(customer.created_at),
        "pdf_url": None,
        "address": customer.address,
        "address_2": customer.address_2,
        "city": customer.city,
        "state": customer.state,
        "zip": customer.zip,
        "latitude": None,
        "longitude": None,
        "notes": customer.notes,
        "get_sms": False,
        "opt_out": False,
        "disabled": False,
        "no_email": False,
        "location_name": None,
        "location_id": None,
        "properties": {},
        "online_profile_url": f"https://{account.subdomain}.syncromsp.com/my_profile/v2/index?portal_key=sim{customer.id}",
        "tax_rate_id": None,
        "notification_email": None,
        "invoice_cc_emails": None,
        "invoice_term_id": None,
        "referred_by": None,
        "ref_customer_id": None,
        "business_and_full_name": f"{customer.business_name} - {fullname}" if customer.business_name else fullname,
        "business_then_name": business_then_name,
        "contacts": [],
    }


def me(user: User, *, token: str, account: Account) -> dict[str, Any]:
    everything = {"read": True, "write": True, "delete": True}
    return {
        "user_token": token,
        "user_email": user.email,
        "user_name": user.full_name,
        "user_id": user.id,
        "admin": user.admin,
        "can_use_app": True,
        "two_factor_required": False,
        "subdomain": account.subdomain,
        "default_location": None,
        "enable_multi_locations": False,
        "locations_allowed": [],
        "permissions": {
            "asset": dict(everything),
            "customer": dict(everything),
            "ticket": dict(everything),
            "invoice": dict(everything),
            "payment": dict(everything),
            "worksheet": {"add": True, "manage": True, "delete": True},
            "script": {"execute": user.admin},
        },
    }


def user(record: User, view: View) -> dict[str, Any]:
    return {
        "id": record.id,
        "email": record.email,
        "full_name": record.full_name,
        "created_at": view.time(record.created_at),
        "updated_at": view.time(record.created_at),
        "group": record.group,
        "admin": record.admin,
        "color": record.color,
    }


def appointment_type(record: AppointmentType, view: View) -> dict[str, Any]:
    return {
        "id": record.id,
        "account_id": 1,
        "name": record.name,
        "email_instructions": record.email_instructions,
        "location_type": record.location_type,
        "location_hard_code": record.location_hard_code,
        "created_at": view.time(record.created_at),
        "updated_at": view.time(record.created_at),
        "buffer": None,
        "appointment_reminders_schedule_id": None,
    }


def settings(account: Account, *, year: int) -> dict[str, Any]:
    """``GET /settings`` as in the spec's example, with the account's zone."""
    days = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
    return {
        "customers": {"required_fields": None, "customer_fields": [], "customer_field_answers": []},
        "assets": {"asset_types": [], "asset_type_fields": [], "asset_type_field_answers": []},
        "locale": {
            "iso_code": "en",
            "currency_symbol": "$",
            "date_format": "mm-dd-yy",
            "time_format": "hh:mm tt",
            "time_zone": account.time_zone,
            "time_offset": standard_offset(account.zone, year),
        },
        "ticket": {
            "ticket_types": [],
            "ticket_type_fields": [],
            "ticket_type_field_answers": [],
            "problem_types": ["Virus", "TuneUp", "Hardware", "Software", "Other"],
            "priorities": ["", "0 Urgent", "1 High", "2 Normal", "3 Low"],
        },
        "business_hours_enabled": True,
        "business_hours": [{"day": day, "start": "09:00", "end": "17:00", "closed": False} for day in days],
        "default_holiday_calendar": "USA",
        "msp_addon": None,
    }


def syncro_error(messages: list[str], params: dict[str, Any]) -> dict[str, Any]:
    """The 422 body: ``{"success": false, "error": ..., "message": ..., "params": ...}``."""
    text = ",".join(messages)
    return {"success": False, "error": text, "message": text, "params": params}
