"""The sync's and the background work's state in words, for the settings page and the admin
overview alike: the Graph subscription, the last job, skipped items, settled conflicts, notices,
who set a tech's Syncro token. Pure: no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storage.conflicts import ConflictRecord
    from storage.job_status import SkippedItem, TechJobStatus
    from storage.subscriptions import SubscriptionStatus

NOTICE_DAYS = 14  # how long a sync's notice to a tech stays on the pages


def recent_notices(job: TechJobStatus, now: datetime) -> tuple[tuple[datetime, str], ...]:
    """The notices of the last `NOTICE_DAYS`: said once by the sync that acted, kept that long."""
    since = now - timedelta(days=NOTICE_DAYS)
    return tuple((n.at, n.text) for n in job.notices if n.at >= since)


def expiry(subscription: SubscriptionStatus | None) -> datetime | None:
    if subscription is None or state_value(subscription.state) != "active":
        return None
    return subscription.expires_at


# The Graph subscription's state (storage.subscriptions.SubscriptionState): a sentence for the tech,
# a few words for the admin's table, and whether it is a problem.
_SUBSCRIPTION_WORDS: dict[str, tuple[str, str, bool]] = {
    "active": ("On: Outlook tells us of your changes within seconds.", "On", True),
    "failed": (
        "Not working right now, so Outlook changes sync within 15 minutes; we retry every hour.",
        "Failing",
        False,
    ),
    "unsupported": (
        "Not available for this mailbox, so Outlook changes sync within 15 minutes.",
        "Not available (15-minute checks)",
        True,
    ),
    "needs_relink": ("Stopped until you re-link.", "Stopped: needs re-link", False),
    "none": ("Not set up yet: it starts once a calendar is chosen.", "Not set up", True),
    "setting_up": ("Being set up: until then Outlook changes sync within 15 minutes.", "Being set up", True),
}


def subscription_words(subscription: SubscriptionStatus | None, *, short: bool = False) -> tuple[str, bool]:
    """The subscription's state in words, and False when it is a problem; before anything was
    tried for the tech it is being set up."""
    state = state_value(subscription.state) if subscription is not None else "setting_up"
    long, brief, ok = _SUBSCRIPTION_WORDS.get(state, _SUBSCRIPTION_WORDS["failed"])
    return (brief if short else long), ok


_JOB_WORDS = {
    "synced": "Synced",
    "partial": "Synced, some items failed",
    "failed": "Failed, will retry",
    "poisoned": "Failed every retry, set aside",
    "busy": "Waited for another sync",
    "not_linked": "Not linked",
    "inactive": "Paused",
}


def job_words(job: TechJobStatus) -> str | None:
    """The last job's outcome in a few words; None before the first job."""
    if not job.last_job_outcome:
        return None
    return _JOB_WORDS.get(job.last_job_outcome, "Finished")


def skipped_sentence(item: SkippedItem) -> str:
    """An item the sync left alone, and why: Syncro ids are short and findable, Outlook's are not."""
    titled = f" “{item.summary}”" if getattr(item, "summary", "") else ""
    what = f"Syncro appointment {item.id}{titled}" if item.side == "syncro" else f"The Outlook event{titled}"
    if item.side != "syncro" and not titled:
        what = "An Outlook event"
    return f"{what}: {item.reason}"


def token_note(record: Any, *, for_admin: bool = False) -> str | None:
    """Who set the tech's Syncro token and when, in the reader's words; never the token."""
    if record is None:
        return None
    by_tech = record.set_by == "tech"
    when = f" on {record.set_at:%d %b %Y}" if record.set_at else ""
    if for_admin:
        return f"Set{when} by {'the technician' if by_tech else 'an admin'}."
    return f"Your Syncro API token was set{when} by {'you' if by_tech else 'your admin'}."


_FIELD_WORDS = {
    "summary": "title",
    "description": "notes",
    "location": "location",
    "start": "time",
    "end": "time",
    "all_day": "time",
}


def conflict_sentence(conflict: ConflictRecord) -> str:
    """One sentence for a settled conflict: what both sides changed, and whose version was kept."""
    fields = list(dict.fromkeys(_FIELD_WORDS.get(name, name) for name in conflict.fields))
    what = " and ".join(fields) or "details"
    kept = "Syncro's" if conflict.winner == "syncro" else "Outlook's"
    return f"{conflict.summary or 'An appointment'}: the {what} changed in both Syncro and Outlook; {kept} version was kept."


def state_value(status: Any) -> str:
    return str(getattr(status, "value", status))
