"""What the technician's pages show, as plain frozen data: the settings page, the Syncro-token
step, the sign-in page; and `settings_view`, which builds the settings page from what `web.links`
returns. `web.pages` renders them. Nothing here does I/O, so every page state can be tested (and
every wording reviewed) without a server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from web.page_parts import Notice, notice
from web.routes import OAUTH_START_PATH
from web.sync_words import (
    conflict_sentence,
    expiry,
    recent_notices,
    skipped_sentence,
    state_value,
    subscription_words,
    token_note,
)

if TYPE_CHECKING:
    from realtime.status import BackgroundStatus
    from sync.graph import Calendar
    from web.links import LinkOverview


# Where a technician makes their own Syncro API token: the one set of steps every page and doc
# names (the settings page, the linking step, the admin overview, docs/linking.md).
SYNCRO_TOKEN_STEPS = (
    "Sign in to Syncro as yourself (not as an admin on your behalf): the token must be your own.",
    "Open your user menu (top right) and choose Profile/Password, then API Tokens.",
    "Choose New Token, then the Custom Permissions tab.",
    'Name it "Outlook calendar sync", leave Expiration empty, and allow the Appointments permissions '
    "to list/search and view details. Nothing else is needed.",
    "Choose Create API Token, copy the token Syncro shows (it shows it only once) and paste it here.",
)
SYNCRO_TOKEN_PLACE = "Syncro: your user menu > Profile/Password > API Tokens"


@dataclass(frozen=True)
class LinkedAccount:
    """The Microsoft 365 account a tech linked: ``email`` is the address Syncro knows them by;
    ``sign_in`` their Microsoft sign-in name, only where it differs. ``tenant`` is the organisation."""

    email: str
    tenant: str
    sign_in: str | None = None


@dataclass(frozen=True)
class SyncStatus:
    """How the link is doing, for the status section. Times are aware UTC datetimes."""

    linked_since: datetime
    last_sync: datetime | None = None  # last successful sync; None before the first one
    sync_pending: bool = False  # changes are queued and will sync within seconds
    last_error: str | None = None  # what went wrong, in words (never a stack trace)
    last_error_advice: str | None = None  # what the tech can do about it
    needs_relink: bool = False  # the refresh token is gone or revoked: nothing syncs until re-link
    relink_reason: str | None = None
    # Changes from Outlook: whether Microsoft tells us of them at once (the Graph subscription).
    outlook_updates: str | None = None  # one sentence; None before the background work has seen the link
    outlook_updates_ok: bool = True  # False: the sentence is a problem
    outlook_updates_until: datetime | None = None  # when the current subscription expires (it is renewed)
    last_notification: datetime | None = None  # the last time Outlook told us of a change
    last_poll: datetime | None = None  # the last time Syncro was checked for changes (the whole team's)
    # Items the last sync could not map and left alone: one sentence each, and how many in all.
    skipped: tuple[str, ...] = ()
    skipped_count: int = 0
    # What recent syncs did that the tech should know (taken off a shared job...): (when, sentence).
    notices: tuple[tuple[datetime, str], ...] = ()


@dataclass(frozen=True)
class CalendarChoice:
    """One calendar the tech can pick. Only calendars the account can write to are offered."""

    id: str
    name: str
    selected: bool


@dataclass(frozen=True)
class SettingsView:
    """The technician's settings page.

    ``account is None`` means not linked (the page offers "Link my calendar"); ``status.needs_relink``
    means linked but broken (the page leads with "Re-link"). ``calendars`` holds editable calendars
    only, with the current choice (or, before the first save, the default calendar) selected.
    ``ics_url`` is set only right after a URL is issued: feed tokens are stored hashed, so later
    visits know only ``feed_issued``.
    """

    tech_name: str
    syncro_user_id: str  # a string: Syncro ids exceed 2**32 and are never arithmetic
    csrf_token: str = field(repr=False)
    now: datetime  # for "5 minutes ago"
    account: LinkedAccount | None = None
    status: SyncStatus | None = None
    calendars: tuple[CalendarChoice, ...] = ()
    two_way: bool = False
    ics_url: str | None = None
    feed_issued: bool = False
    feed_days_back: int = 60  # SYNC_WINDOW_PAST_DAYS / SYNC_WINDOW_FUTURE_DAYS
    feed_days_ahead: int = 60
    calendars_problem: str | None = None  # why no calendars are listed (Graph unreachable), in words
    flash: Notice | None = None  # one line saying what the last form did
    signed_in_as: str = ""  # beside "Sign out": the address Syncro knows the tech by
    # Recent conflicts the sync settled, each one sentence ("Both sides changed the time of ...").
    conflicts: tuple[str, ...] = ()
    share_private: bool = False  # private Outlook events show their details in Syncro (else "Busy")
    # Syncro hides appointment owners, so the tech's own Syncro API token is needed (see sync.poller).
    syncro_token_needed: bool = False
    syncro_token_note: str | None = None  # "Set on 1 Dec 2026 by your admin.", never the token
    is_admin: bool = False  # the page links to the admin overview
    released: tuple[str, ...] = ()  # own events left in a calendar no longer synced (titles)

    @property
    def linked(self) -> bool:
        return self.account is not None

    @property
    def syncro_blocked(self) -> bool:
        """Nothing can come from Syncro: it hides owners and this tech has no token yet."""
        return self.syncro_token_needed and not self.syncro_token_note

    @property
    def needs_relink(self) -> bool:
        return self.status is not None and self.status.needs_relink

    @property
    def ics_webcal_url(self) -> str | None:
        """``ics_url`` as ``webcal://``: the link opens Outlook, Apple Calendar or Thunderbird's
        subscribe dialog. Only an http(s) URL is turned into a link."""
        if not self.ics_url:
            return None
        scheme, sep, rest = self.ics_url.partition("://")
        return f"webcal://{rest}" if sep and scheme in ("http", "https") else None


@dataclass(frozen=True)
class SyncroTokenView:
    """The page that asks a tech for their own Syncro API token: the second step of linking when
    Syncro hides appointment owners (``first_link``), or on its own from the settings page."""

    csrf_token: str = field(repr=False)
    signed_in_as: str = ""
    first_link: bool = False
    flash: Notice | None = None


def status_lines(view: SettingsView) -> dict[str, str]:
    """The status section's moving parts in words, for the page and for /api/settings/status
    (one source, so the live update says exactly what a reload would)."""
    from web.words import ago

    status = view.status
    if status is None:
        return {"last_sync": "", "waiting": "", "summary": ""}
    last = (
        ago(status.last_sync, view.now)
        if status.last_sync
        else "Not yet. The first sync starts within a minute of linking."
    )
    if view.syncro_blocked:
        waiting = "Syncro → Outlook is stopped until you add your Syncro API token."
    elif status.sync_pending:
        waiting = "Changes are queued and sync within seconds."
    else:
        waiting = "Nothing: all changes we know of are synced."
    if status.last_sync is None:
        summary = "Your first sync is on its way: this page shows it when it is done."
    elif status.sync_pending:
        summary = "A sync is under way: this page shows it when it is done."
    else:
        summary = "Synced: your Syncro appointments are in your Outlook calendar."
    return {"last_sync": last, "waiting": waiting, "summary": summary}


def notice_lines(notices: Iterable[tuple[datetime, str]], now: datetime) -> list[str]:
    """Each notice a sync left for the tech, with when: for the page and /api/settings/status."""
    from web.words import ago

    return [f"{text} ({ago(at, now)})" for at, text in notices]


def live_status(view: SettingsView) -> str | None:
    """The sentence of the live status line while a sync is awaited (the page then follows it
    without a reload), or None when there is nothing to wait for."""
    status = view.status
    if status is None or view.needs_relink or (status.last_sync is not None and not status.sync_pending):
        return None
    return status_lines(view)["summary"]


@dataclass(frozen=True)
class SignInView:
    """The page shown to someone without a session: one "Sign in with Microsoft" button."""

    start_url: str = OAUTH_START_PATH
    notice: str | None = None  # e.g. "You have been signed out."
    heading: str = "Sync your Syncro appointments with Outlook"


def after_admin_consent() -> SignInView:
    """Where Microsoft sends an admin back after approving the app for their organisation."""
    return SignInView(
        notice=(
            "Thank you: the app is approved for your organisation. Technicians can now link their "
            "calendars; sign in below to link yours."
        )
    )


def signed_out() -> SignInView:
    return SignInView(notice="You have been signed out.")


def sign_in_view(*, notice: str | None = None) -> SignInView:
    return SignInView(notice=notice)


def settings_view(
    overview: LinkOverview,
    *,
    csrf_token: str,
    flash: Notice | str = "",
    new_feed_url: str = "",
    tech_name: str = "",
    signed_in_as: str = "",
    now: datetime | None = None,
    feed_days: tuple[int, int] = (60, 60),
    is_admin: bool = False,
) -> SettingsView:
    """The settings page for ``overview`` (from `web.links.linking_overview`)."""
    link = overview.link
    account = status = None
    calendars: tuple[CalendarChoice, ...] = ()
    if link is not None:
        state = state_value(link.status)
        needs_relink = state == "needs_relink"
        email = link.email or link.ms_username
        differs = link.ms_username and link.ms_username.lower() != email.lower()
        account = LinkedAccount(email=email, tenant=link.ms_tenant_id, sign_in=link.ms_username if differs else None)
        signed_in_as = email  # one address per person: the one Syncro knows
        background: BackgroundStatus | None = getattr(overview, "background", None)
        status = SyncStatus(
            linked_since=link.linked_at,
            last_sync=background.job.last_success_at if background is not None else None,
            sync_pending=state == "unlinking" or (background is not None and background.job_waiting_since is not None),
            last_error=_problem(link, state, background),
            last_error_advice=getattr(link, "last_error_advice", None),
            needs_relink=needs_relink,
            relink_reason=(link.status_detail or None) if needs_relink else None,
            **_background_fields(background, now or datetime.now(UTC)),
        )
        calendars = calendar_choices(overview.calendars, chosen=link.calendar_id)
    return SettingsView(
        tech_name=tech_name,
        syncro_user_id=str(overview.syncro_user_id),
        csrf_token=csrf_token,
        now=now or datetime.now(UTC),
        account=account,
        status=status,
        calendars=calendars,
        two_way=bool(link and link.two_way),
        ics_url=new_feed_url or None,
        feed_issued=overview.feed_issued_at is not None,
        feed_days_back=feed_days[0],
        feed_days_ahead=feed_days[1],
        calendars_problem=overview.calendars_problem or None,
        flash=notice(flash),
        signed_in_as=signed_in_as,
        conflicts=tuple(conflict_sentence(c) for c in getattr(overview, "conflicts", ())),
        share_private=bool(link and getattr(link, "share_private", False)),
        syncro_token_needed=bool(getattr(overview, "owners_hidden", False)),
        syncro_token_note=token_note(getattr(overview, "syncro_token", None)),
        is_admin=is_admin,
        released=tuple(getattr(overview, "released", ())),
    )


def _background_fields(background: BackgroundStatus | None, now: datetime) -> dict[str, Any]:
    if background is None:
        return {}
    updates, ok = subscription_words(background.subscription)
    job = background.job
    return {
        "outlook_updates": updates,
        "outlook_updates_ok": ok,
        "outlook_updates_until": expiry(background.subscription),
        "last_notification": job.last_notification_at,
        "last_poll": background.poll.last_poll_at,
        "skipped": tuple(skipped_sentence(item) for item in job.last_job_skipped),
        "skipped_count": max(job.last_job_skipped_count, len(job.last_job_skipped)),
        "notices": recent_notices(job, now),
    }


def calendar_choices(calendars: Iterable[Calendar], *, chosen: str = "") -> tuple[CalendarChoice, ...]:
    """Editable calendars only; ``chosen`` is selected if still there, else the default, else the first."""
    editable = [c for c in calendars if c.can_edit]
    ids = {c.id for c in editable}
    pick = (
        chosen if chosen in ids else next((c.id for c in editable if c.is_default), editable[0].id if editable else "")
    )
    return tuple(CalendarChoice(c.id, c.name, c.id == pick) for c in editable)


def _problem(link: Any, state: str, background: BackgroundStatus | None = None) -> str | None:
    # A paused link's detail is its problem; "unlinking" is progress (shown as pending), not a problem.
    # Then the background work's problems: a failed or set-aside job, a failed Syncro poll.
    paused = getattr(link, "last_error", None) or (link.status_detail if state == "paused" else None)
    if paused:
        return paused
    if background is None:
        return None
    from realtime.status import describe

    problems = describe(dataclasses.replace(background, job_waiting_since=None, subscription=None))
    return " ".join(problems) or None
