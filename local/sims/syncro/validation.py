"""Reading appointment params the way Syncro's Rails controller does, and the 422 messages it gives.

Unknown keys are ignored (strong parameters); values are coerced as ActiveRecord coerces them
("5" becomes 5); a date that does not parse is stored as nil, so it reads "can't be blank".
Messages are joined with a bare comma, as in the spec's example.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from local.sims.syncro.model import Appointment
from local.sims.syncro.times import parse_datetime

_TRUE = (True, 1, "1", "true", "t", "yes", "on")
_FALSE = (False, 0, "0", "false", "f", "no", "off", "")
# Length of an appointment created without end_at when end_at_required is off (inferred).
DEFAULT_LENGTH = timedelta(hours=1)


class Invalid(Exception):
    """A value that cannot be read; its message is a Syncro-style sentence."""


@dataclass(frozen=True)
class Known:
    """Ids that exist in the account, for "must exist" checks."""

    users: frozenset[int]
    customers: frozenset[int]
    appointment_types: frozenset[int]


@dataclass(frozen=True)
class Rules:
    creating: bool
    require_start: bool
    require_end: bool
    # A PUT is a whole-form save: a boolean it omits is saved as false.
    reset_booleans: bool = False


BOOLEANS = ("all_day", "do_not_email", "email_customer")


def read_appointment(
    params: dict[str, Any], *, zone: ZoneInfo, known: Known, rules: Rules, existing: Appointment | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The field changes ``params`` asks for, and the error messages (empty when valid)."""
    changes: dict[str, Any] = {}
    errors: list[str] = []
    _read_summary(params, changes, errors, creating=rules.creating)
    _read_times(params, changes, errors, zone=zone, rules=rules, existing=existing)
    for name, (label, read) in _PLAIN_FIELDS.items():
        if name in params:
            try:
                changes[name] = read(params[name])
            except Invalid:
                errors.append(f"{label} is invalid")
    if rules.reset_booleans:
        changes.update({name: False for name in BOOLEANS if name not in params})
    errors.extend(_missing_references(changes, known))
    return changes, errors


def _read_summary(params: dict[str, Any], changes: dict[str, Any], errors: list[str], *, creating: bool) -> None:
    if "summary" not in params and not creating:
        return
    try:
        summary = _text(params.get("summary"))
    except Invalid:
        summary = None
    if summary and summary.strip():
        changes["summary"] = summary
    else:
        errors.append("Summary can't be blank")


def _read_times(
    params: dict[str, Any],
    changes: dict[str, Any],
    errors: list[str],
    *,
    zone: ZoneInfo,
    rules: Rules,
    existing: Appointment | None,
) -> None:
    start = _time(params, "start_at", zone)
    if start is None and ("start_at" in params or rules.require_start):
        errors.append("Start at can't be blank")
    duration = _duration(params, errors)
    end = _time(params, "end_at", zone)
    base = start or (existing.start_at if existing else None)
    if end is None and base is not None:
        if duration is not None:
            end = base + duration  # appointment_duration stands in for end_at
        elif rules.creating and not rules.require_end and "end_at" not in params:
            end = base + DEFAULT_LENGTH
    if end is None and ("end_at" in params or (rules.creating and rules.require_end and duration is None)):
        errors.append("End at can't be blank")
    effective_end = end or (existing.end_at if existing else None)
    if base and effective_end and effective_end < base:
        errors.append("End at must be after start at")
    if start is not None:
        changes["start_at"] = start
    if end is not None:
        changes["end_at"] = end


def _duration(params: dict[str, Any], errors: list[str]) -> timedelta | None:
    if params.get("appointment_duration") in (None, ""):
        return None
    try:
        return _minutes(params["appointment_duration"])
    except Invalid:
        errors.append("Appointment duration is invalid")
        return None


def _time(params: dict[str, Any], name: str, zone: ZoneInfo) -> datetime | None:
    value = params.get(name)
    if not isinstance(value, str):
        return None
    return parse_datetime(value, zone)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list):
        raise Invalid
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _bool(value: Any) -> bool | None:
    if value is None:
        return None
    normalized = value.strip().lower() if isinstance(value, str) else value
    if isinstance(normalized, dict | list):
        raise Invalid
    if normalized in _TRUE:
        return True
    if normalized in _FALSE:
        return False
    raise Invalid


def _optional_id(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return _id(value)


def _id(value: Any) -> int:
    if isinstance(value, bool):
        raise Invalid
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise Invalid


def _id_list(value: Any) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Invalid
    ids: list[int] = []
    for item in value:
        if item in (None, ""):
            continue  # Rails forms send a blank first entry for multi-selects
        number = _id(item)
        if number not in ids:
            ids.append(number)
    return ids


MAX_DURATION_MINUTES = 366 * 24 * 60


def _minutes(value: Any) -> timedelta:
    """``appointment_duration`` is a string in the spec; read as minutes (inferred), at most a year."""
    try:
        minutes = float(value)
    except (TypeError, ValueError) as error:
        raise Invalid from error
    if isinstance(value, bool) or not 0 <= minutes <= MAX_DURATION_MINUTES:  # also refuses NaN
        raise Invalid
    return timedelta(minutes=minutes)


# Fields read by a single coercion each: name -> (label in messages, reader).
_PLAIN_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "description": ("Description", _text),
    "location": ("Location", _text),
    "all_day": ("All day", _bool),
    "do_not_email": ("Do not email", _bool),
    "email_customer": ("Email customer", _bool),
    "customer_id": ("Customer", _optional_id),
    "ticket_id": ("Ticket", _optional_id),
    "user_id": ("User", _optional_id),
    "appointment_type_id": ("Appointment type", _optional_id),
    "user_ids": ("User ids", _id_list),
}


def _missing_references(changes: dict[str, Any], known: Known) -> list[str]:
    errors = []
    if changes.get("customer_id") is not None and changes["customer_id"] not in known.customers:
        errors.append("Customer must exist")
    if changes.get("appointment_type_id") is not None and changes["appointment_type_id"] not in known.appointment_types:
        errors.append("Appointment type must exist")
    if changes.get("user_id") is not None and changes["user_id"] not in known.users:
        errors.append("User must exist")
    if any(user_id not in known.users for user_id in changes.get("user_ids", [])):
        errors.append("Users must exist")
    return errors
