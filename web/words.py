"""Times in words, for every page: "5 minutes ago", "in 2 days", "on 3 Nov 2026"."""

from __future__ import annotations

from datetime import UTC, datetime


def ago(moment: datetime, now: datetime) -> str:
    """``moment`` in words relative to ``now``: "just now", "5 minutes ago", "on 3 Nov 2026"."""
    seconds = (utc(now) - utc(moment)).total_seconds()
    if seconds < 60:  # also a moment slightly in the future (clock skew between instances)
        return "just now"
    for unit, size, limit in (("minute", 60, 60), ("hour", 3600, 24), ("day", 86400, 14)):
        count = int(seconds // size)
        if count < limit:
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "on " + day(utc(moment))


def ahead(moment: datetime, now: datetime) -> str:
    """A time to come in words relative to ``now``: "in 5 minutes", "in 3 days", "on 3 Dec 2026";
    one already past reads as `ago` does."""
    seconds = (utc(moment) - utc(now)).total_seconds()
    if seconds < 0:
        return ago(moment, now)
    if seconds < 60:
        return "in under a minute"
    for unit, size, limit in (("minute", 60, 60), ("hour", 3600, 24), ("day", 86400, 14)):
        count = int(seconds // size)
        if count < limit:
            return f"in {count} {unit}{'s' if count != 1 else ''}"
    return "on " + day(utc(moment))


def day(moment: datetime) -> str:
    return f"{moment.day} {moment:%b %Y}"  # not %-d: that is glibc-only


def utc(moment: datetime) -> datetime:
    # Storage hands back aware datetimes; a naive one is taken as UTC rather than failing the page.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
