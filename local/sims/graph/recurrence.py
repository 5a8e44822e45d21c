"""Recurrence patterns of Graph events (patternedRecurrence), validated and expanded to dates.

Dates are expanded from ``range.startDate``; each occurrence starts at the master's wall-clock
time in the master's zone, so a series keeps its local time across DST (as Outlook does).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from local.sims.graph.errors import bad_request

DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
PATTERNS = {"daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"}
RANGES = {"endDate", "noEnd", "numbered"}
INDEXES = ["first", "second", "third", "fourth", "last"]
MAX_OCCURRENCES = 5000  # guards noEnd series against unbounded expansion


def normalise(recurrence: Any, first_day: date, zone: str = "") -> dict[str, Any]:
    """The recurrence as Graph echoes it, or 400 for what Graph would refuse. ``zone``: the
    start's zone, which Graph gives the range when the client names none."""
    if not isinstance(recurrence, dict):
        raise bad_request("Invalid recurrence: expected an object.")
    pattern, rng = recurrence.get("pattern"), recurrence.get("range")
    if not isinstance(pattern, dict) or not isinstance(rng, dict):
        raise bad_request("Recurrence must have a pattern and a range.", "ErrorInvalidRequest")
    kind = pattern.get("type")
    if kind not in PATTERNS:
        raise bad_request(f"Invalid recurrence pattern type '{kind}'.", "ErrorInvalidRequest")
    interval = pattern.get("interval", 1)
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
        raise bad_request("Recurrence pattern interval must be a positive integer.", "ErrorInvalidRequest")
    days = pattern.get("daysOfWeek") or []
    if not isinstance(days, list) or any(d not in DAYS for d in days):
        raise bad_request("Invalid daysOfWeek in recurrence pattern.", "ErrorInvalidRequest")
    if kind in ("weekly", "relativeMonthly", "relativeYearly") and not days:
        raise bad_request("daysOfWeek is required for this recurrence pattern.", "ErrorInvalidRequest")
    normal_pattern = {
        "type": kind,
        "interval": interval,
        "month": int(pattern.get("month") or 0),
        "dayOfMonth": int(pattern.get("dayOfMonth") or 0),
        "daysOfWeek": days,
        "firstDayOfWeek": pattern.get("firstDayOfWeek") or "sunday",
        "index": pattern.get("index") or "first",
    }
    if kind in ("absoluteMonthly", "absoluteYearly") and not 1 <= normal_pattern["dayOfMonth"] <= 31:
        raise bad_request("dayOfMonth is required for this recurrence pattern.", "ErrorInvalidRequest")
    if kind in ("absoluteYearly", "relativeYearly") and not 1 <= normal_pattern["month"] <= 12:
        raise bad_request("month is required for this recurrence pattern.", "ErrorInvalidRequest")
    if normal_pattern["firstDayOfWeek"] not in DAYS or normal_pattern["index"] not in INDEXES:
        raise bad_request("Invalid firstDayOfWeek or index in recurrence pattern.", "ErrorInvalidRequest")
    return {"pattern": normal_pattern, "range": _normalise_range(rng, first_day, zone)}


def _normalise_range(rng: dict[str, Any], first_day: date, zone: str) -> dict[str, Any]:
    kind = rng.get("type")
    if kind not in RANGES:
        raise bad_request(f"Invalid recurrence range type '{kind}'.", "ErrorInvalidRequest")
    start = _parse_date(rng.get("startDate"), "startDate") if rng.get("startDate") else first_day
    end = _parse_date(rng.get("endDate"), "endDate") if kind == "endDate" else None
    if end is not None and end < start:
        raise bad_request("The recurrence range end date is before its start date.", "ErrorInvalidRequest")
    count = rng.get("numberOfOccurrences", 0)
    if kind == "numbered" and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise bad_request("numberOfOccurrences must be a positive integer.", "ErrorInvalidRequest")
    return {
        "type": kind,
        "startDate": start.isoformat(),
        "endDate": end.isoformat() if end else "0001-01-01",
        "recurrenceTimeZone": rng.get("recurrenceTimeZone") or zone,
        "numberOfOccurrences": count if kind == "numbered" else 0,
    }


def _parse_date(value: Any, name: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise bad_request(f"Invalid recurrence range {name} '{value}'.", "ErrorInvalidRequest") from None


def occurrence_dates(recurrence: dict[str, Any], until: date) -> list[date]:
    """Dates of the series' occurrences up to ``until`` (inclusive), in order."""
    rng = recurrence["range"]
    start = date.fromisoformat(rng["startDate"])
    last = date.fromisoformat(rng["endDate"]) if rng["type"] == "endDate" else until
    last = min(last, until)
    limit = rng["numberOfOccurrences"] if rng["type"] == "numbered" else MAX_OCCURRENCES
    result: list[date] = []
    for day in _candidates(recurrence["pattern"], start):
        if day > last or len(result) >= limit:
            break
        if day >= start:
            result.append(day)
    return result


def _candidates(pattern: dict[str, Any], start: date) -> Iterator[date]:
    kind, interval = pattern["type"], pattern["interval"]
    if kind == "daily":
        day = start
        while True:
            yield day
            day += timedelta(days=interval)
    elif kind == "weekly":
        yield from _weekly(pattern, start)
    else:
        yield from _monthly(pattern, start)


def _weekly(pattern: dict[str, Any], start: date) -> Iterator[date]:
    first = DAYS.index(pattern["firstDayOfWeek"])
    week_start = start - timedelta(days=(start.weekday() - first) % 7)
    wanted = sorted((DAYS.index(d) - first) % 7 for d in pattern["daysOfWeek"])
    while True:
        for offset in wanted:
            yield week_start + timedelta(days=offset)
        week_start += timedelta(weeks=pattern["interval"])


def _monthly(pattern: dict[str, Any], start: date) -> Iterator[date]:
    yearly = pattern["type"].endswith("Yearly")
    step = 12 * pattern["interval"] if yearly else pattern["interval"]
    year, month = start.year, (pattern["month"] if yearly else start.month)
    if yearly and month < start.month:
        year += 1
    for _ in range(MAX_OCCURRENCES):
        if pattern["type"].startswith("absolute"):
            yield date(year, month, min(pattern["dayOfMonth"], calendar.monthrange(year, month)[1]))
        else:
            yield _relative_day(year, month, pattern["index"], pattern["daysOfWeek"])
        month += step
        year, month = year + (month - 1) // 12, (month - 1) % 12 + 1


def _relative_day(year: int, month: int, index: str, days: list[str]) -> date:
    """The first/second/.../last day of the month that is one of ``days``."""
    wanted = {DAYS.index(d) for d in days}
    matches = [
        date(year, month, n)
        for n in range(1, calendar.monthrange(year, month)[1] + 1)
        if date(year, month, n).weekday() in wanted
    ]
    return matches[-1] if index == "last" else matches[INDEXES.index(index)]
