"""The JSON shapes of Syncro's API, built from stored records.

Field lists and example values follow ``syncro-openapi-subset.json``. A value Syncro would
hold as NULL (no customer, no description) is rendered as null: a client must cope with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from local.sims.syncro.model import Account, Appointment, AppointmentType, Customer, User
from local.sims.syncro.times import format_utc, standard_offset, start_label


def appointment(
    record: Appointment,
    *,
    account: Account,
    customer: Customer | None,
    appointment_type: AppointmentType | None,
) -> dict[str, Any]:
    """The flat appointment object (GET by id); lists and writes wrap it."""
    zone = account.zone
    return {
        "id": record.id,
        "summary": record.summary,
        "description": record.description,
        "customer_id": record.customer_id,
        "created_at": format_utc(record.created_at),
        "updated_at": format_utc(record.updated_at),
        "start_at": format_utc(record.start_at),
        "end_at": format_utc(record.end_at),
        "duration": _hours(record.start_at, record.end_at),
        "location": record.location,
        "ticket_id": record.ticket_id,
        "appointment_location_type": appointment_type.location_type if appointment_type else None,
        "start_at_label": start_label(record.start_at, zone),
        "all_day": record.all_day,
        "ticket": {"id": record.ticket_id} if record.ticket_id is not None else None,
        # Syncro stores this flag as a string ("1" in the spec's example).
        "do_not_email": None if record.do_not_email is None else ("1" if record.do_not_email else "0"),
        "customer": customer_json(customer, account) if customer else None,
        "user_id": record.user_id,
        "user_ids": list(record.user_ids),
        "appointment_type_id": record.appointment_type_id,
    }


def _hours(start: datetime, end: datetime) -> int | float:
    hours = (end - start).total_seconds() / 3600
    return int(hours) if hours == int(hours) else round(hours, 2)


def customer_json(customer: Customer, account: Account) -> dict[str, Any]:
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
        "created_at": format_utc(customer.created_at),
        "updated_at": format_utc(customer.created_at),
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


def user(record: User) -> dict[str, Any]:
    return {
        "id": record.id,
        "email": record.email,
        "full_name": record.full_name,
        "created_at": format_utc(record.created_at),
        "updated_at": format_utc(record.created_at),
        "group": record.group,
        "admin": record.admin,
        "color": record.color,
    }


def appointment_type(record: AppointmentType) -> dict[str, Any]:
    return {
        "id": record.id,
        "account_id": 1,
        "name": record.name,
        "email_instructions": record.email_instructions,
        "location_type": record.location_type,
        "location_hard_code": record.location_hard_code,
        "created_at": format_utc(record.created_at),
        "updated_at": format_utc(record.created_at),
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
