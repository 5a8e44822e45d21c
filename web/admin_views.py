"""What the admin's pages show, as plain frozen data: the overview of every Syncro user and their
link, a tech's recycle bin, the admin log; and `admin_view`, which builds the overview from what
`web.links.admin_overview` returns. `web.pages` renders them. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from web.ids import syncro_user_id_from
from web.page_parts import Notice, notice
from web.routes import SETTINGS_PATH
from web.sync_words import expiry, job_words, recent_notices, state_value, subscription_words, token_note

if TYPE_CHECKING:
    from realtime.status import BackgroundStatus
    from storage.subscriptions import SubscriptionStatus
    from web.links import AdminOverview


@dataclass(frozen=True)
class AdminRow:
    """One Syncro user in the admin overview, linked or not."""

    syncro_user_id: str
    name: str
    email: str
    linked: bool
    microsoft_account: str | None = None
    calendar: str | None = None
    two_way: bool = False
    last_sync: datetime | None = None
    last_error: str | None = None
    needs_relink: bool = False
    email_override: str | None = None  # the Microsoft email an admin mapped to this user, if any
    syncro_token_missing: bool = False  # linked, but Syncro hides owners and no Syncro token is set
    last_job: str | None = None  # the last sync job's outcome in words ("Synced", "Failed, retrying")
    last_job_at: datetime | None = None
    poisoned: bool = False  # its last job failed every attempt and was set aside
    job_waiting: bool = False  # a job is queued and has not started
    outlook_updates: str | None = None  # the subscription's state in a few words ("On", "Not working")
    outlook_updates_ok: bool = True
    outlook_updates_until: datetime | None = None
    last_notification: datetime | None = None
    feed_on: bool = False  # holds a working feed URL
    syncro_token_note: str | None = None  # "Set on 1 Dec 2026 by the tech.", never the token
    syncro_token_needed: bool = False  # Syncro hides owners: this tech needs a token of their own
    match: str | None = None  # how the Microsoft account was matched to this Syncro user, in words
    match_confirmed: str | None = None  # "Confirmed by dana@… on 7 Dec 2026"
    notices: tuple[tuple[datetime, str], ...] = ()  # what recent syncs told this tech: (when, sentence)

    @property
    def state(self) -> str:
        """The link's state in two or three words, for the card's heading line."""
        if self.needs_relink:
            return "Needs re-link"
        if self.linked and self.syncro_token_missing:
            return "Linked, Syncro token missing"
        return "Linked" if self.linked else "Not linked"


@dataclass(frozen=True)
class AdminView:
    """The admin overview: every Syncro user and the state of their link."""

    rows: tuple[AdminRow, ...]
    now: datetime
    signed_in_as: str
    csrf_token: str = field(repr=False)
    flash: Notice | None = None
    stale_overrides: tuple[tuple[str, str], ...] = ()  # (Microsoft email, Syncro id) naming no Syncro user
    syncro_note: str | None = None  # Syncro hides appointment owners: what that means, in words
    jobs_waiting: int | None = None  # sync jobs in the queue (Azure's approximate count); None: unknown
    jobs_poisoned: int | None = None  # jobs set aside after failing every attempt (the poison queue)
    last_poll: datetime | None = None  # the last Syncro poll
    poll_problem: str | None = None  # the last poll failed or stopped early, in words
    admin_log: tuple[AdminLogLine, ...] = ()  # the latest admin actions, newest first
    new_feed_url: str | None = None  # a URL an admin just issued, shown once at the top
    new_feed_for: str | None = None  # whose it is (the tech's name)
    settings_path: str = SETTINGS_PATH  # the admin's own settings


@dataclass(frozen=True)
class BinEntry:
    entry_id: str
    what: str  # the appointment or event's title, else "an appointment"
    where: str  # "Syncro" or "Outlook": where it was deleted, and would be re-created
    deleted_at: datetime
    reason: str


@dataclass(frozen=True)
class RecycleBinView:
    """A tech's recycle bin for an admin: what the sync deleted, newest first, each with Restore."""

    tech: str  # the tech's name and id
    syncro_user_id: str
    entries: tuple[BinEntry, ...]
    now: datetime
    signed_in_as: str
    csrf_token: str = field(repr=False)
    flash: Notice | None = None


@dataclass(frozen=True)
class AdminLogLine:
    at: datetime
    actor: str
    action: str  # in words: "removed the link", "issued a feed URL"
    tech: str = ""  # the technician's name (and id), when the action was for one
    detail: str = ""


def admin_view(
    overview: AdminOverview,
    *,
    csrf_token: str,
    flash: Notice | str = "",
    signed_in_as: str = "",
    now: datetime | None = None,
    new_feed_url: str = "",
) -> AdminView:
    """The admin overview for ``overview`` (from `web.links.admin_overview`). ``new_feed_url``
    is a feed URL an admin just issued, as ``<syncro id> <url>``: shown once, named by the tech."""
    names = {row.user.id: row.user.full_name for row in overview.rows}
    rows = []
    for row in overview.rows:
        link = row.link
        state = state_value(link.status) if link is not None else ""
        background = _admin_background(getattr(row, "background", None), now or datetime.now(UTC))
        # The admin sees every non-active link's detail (re-link reasons, unlinking progress), then
        # the background work's problems.
        link_problem = getattr(link, "last_error", None) or (
            link.status_detail if link is not None and state != "active" else None
        )
        background["last_error"] = link_problem or background.get("last_error") or None
        rows.append(
            AdminRow(
                syncro_user_id=str(row.user.id),
                name=row.user.full_name,
                email=row.user.email or "",
                linked=link is not None,
                microsoft_account=link.ms_username if link is not None else None,
                calendar=(link.calendar_name or None) if link is not None else None,
                two_way=bool(link and link.two_way),
                needs_relink=state == "needs_relink",
                email_override=row.override_email or None,
                syncro_token_missing=row.user.id in getattr(overview, "without_syncro_token", ()),
                feed_on=bool(getattr(row, "feed_on", False)),
                syncro_token_note=token_note(getattr(row, "syncro_token", None), for_admin=True),
                syncro_token_needed=bool(getattr(overview, "ownership_note", "")),
                match=_match_words(link),
                match_confirmed=_confirmed_words(link),
                **background,
            )
        )
    unknown = {str(i) for i in overview.unknown_override_ids}
    stale = tuple(sorted((email, str(i)) for email, i in overview.overrides.items() if str(i) in unknown))
    queue = getattr(overview, "queue", None)
    poll = getattr(overview, "poll", None)
    return AdminView(
        rows=tuple(rows),
        now=now or datetime.now(UTC),
        signed_in_as=signed_in_as,
        csrf_token=csrf_token,
        flash=notice(flash),
        stale_overrides=stale,
        syncro_note=getattr(overview, "ownership_note", "") or None,
        jobs_waiting=queue.waiting if queue is not None else None,
        jobs_poisoned=queue.poisoned if queue is not None else None,
        last_poll=poll.last_poll_at if poll is not None else None,
        poll_problem=_poll_problem(poll),
        admin_log=tuple(_log_line(entry, names) for entry in getattr(overview, "admin_log", ())),
        new_feed_url=new_feed_url.partition(" ")[2] or None,
        new_feed_for=_named(new_feed_url.partition(" ")[0], names) if new_feed_url else None,
    )


def _named(raw_id: str, names: Mapping[int, str]) -> str:
    tech = syncro_user_id_from(raw_id)
    return f"{names.get(tech, 'Syncro user')} (#{raw_id})" if tech is not None else "a technician"


_MATCHED_HOW = "(signed in and matched by its address, or an admin's mapping)"


def _match_words(link: Any) -> str | None:
    if link is None:
        return None
    return f"Microsoft account {link.ms_username or link.email} {_MATCHED_HOW}"


def _confirmed_words(link: Any) -> str | None:
    by = getattr(link, "match_confirmed_by", "") if link is not None else ""
    at = getattr(link, "match_confirmed_at", None) if link is not None else None
    if not by:
        return None
    return f"Confirmed by {by}" + (f" on {at:%d %b %Y}" if at else "")


ADMIN_ACTION_WORDS = {
    "remove": "removed the link (unlinked, feed off, signed out)",
    "override": "mapped a Microsoft account",
    "override_removed": "removed a Microsoft account mapping",
    "issue_feed": "issued a new feed URL",
    "revoke_feed": "turned the feed URL off",
    "sync_now": "synced now",
    "restore": "restored from the recycle bin",
    "set_syncro_token": "set the Syncro API token",
    "forget_syncro_token": "cleared the Syncro API token",
    "reencrypt": "re-encrypted the token caches",
    "confirm_match": "confirmed the Microsoft account match",
    # The overview cards' actions (web.admin_handlers.admin_tech), beside the function-key routes' names.
    "sync": "synced now",
    "set_token": "set the Syncro API token",
    "clear_token": "cleared the Syncro API token",
}


def _log_line(entry: Any, names: Mapping[int, str]) -> AdminLogLine:
    tech = entry.syncro_user_id
    who = f"{names.get(tech, 'Syncro user')} (#{tech})" if tech is not None else ""
    return AdminLogLine(entry.at, entry.actor, ADMIN_ACTION_WORDS.get(entry.action, entry.action), who, entry.detail)


def _admin_background(background: BackgroundStatus | None, now: datetime) -> dict[str, Any]:
    if background is None:
        return {}
    job = background.job
    updates, ok = subscription_words(background.subscription, short=True)
    return {
        "last_sync": job.last_success_at,
        "last_job": job_words(job),
        "last_job_at": job.last_job_at,
        "poisoned": job.poisoned,
        "job_waiting": background.job_waiting_since is not None,
        "outlook_updates": updates,
        "outlook_updates_ok": ok,
        "outlook_updates_until": expiry(background.subscription),
        "last_notification": job.last_notification_at,
        "notices": recent_notices(job, now),
        # Why the last job failed, or the subscription's trouble: the admin's "Last problem".
        "last_error": _job_problem(background) or _subscription_problem(background.subscription),
    }


def _poll_problem(poll: Any) -> str | None:
    if poll is None or poll.outcome not in ("failed", "partial"):
        return None
    if poll.outcome == "partial":
        return "The last check of Syncro stopped early (its request budget or Syncro's rate limit); the next one continues."
    return f"The last check of Syncro failed: {poll.detail or 'no detail'}"


def _job_problem(background: BackgroundStatus) -> str | None:
    """The sentences of `realtime.status.describe` that are problems (a waiting job is not one)."""
    from realtime.status import describe

    job_only = dataclasses.replace(background, job_waiting_since=None, subscription=None)
    if background.poll.outcome == "failed":
        job_only = dataclasses.replace(job_only, poll=dataclasses.replace(background.poll, outcome=""))
    return " ".join(describe(job_only)) or None


def _subscription_problem(subscription: SubscriptionStatus | None) -> str | None:
    if subscription is None or state_value(subscription.state) not in ("failed", "needs_relink"):
        return None
    return f"Outlook changes are not announced: {subscription.detail}" if subscription.detail else None
