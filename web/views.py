"""What each page shows, as plain frozen data: the settings page, sign-in, errors, the admin overview.

Handlers build these from storage and Graph; `web.pages` renders them. Nothing here does I/O, so
every page state can be tested (and every wording reviewed) without a server.

Every form posts to its own route (below) with the fields named by the ``FIELD_*`` constants,
so the handlers and the templates agree on one spelling. Each POST form carries ``csrf_token``.

The error constructors at the bottom cover every case the OAuth callback and the settings page
can meet. Each says what happened in words a technician understands and what to do next; none
shows a stack trace, and the one that repeats text from Microsoft shows only its description.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from web.ids import syncro_user_id_from

if TYPE_CHECKING:
    from realtime.status import BackgroundStatus
    from storage.conflicts import ConflictRecord
    from storage.job_status import SkippedItem, TechJobStatus
    from storage.subscriptions import SubscriptionStatus
    from sync.graph import Calendar
    from web.links import AdminOverview, LinkOverview

SETTINGS_PATH = "/api/settings"  # GET the page; POST saves calendar + two-way
UNLINK_PATH = "/api/settings/unlink"
FEED_PATH = "/api/settings/feed"  # issue (or replace) the private ICS URL
SYNC_NOW_PATH = "/api/settings/sync"  # sync this tech now
SYNCRO_TOKEN_PATH = "/api/settings/syncro-token"  # the tech's own Syncro API token
SIGN_OUT_PATH = "/api/settings/signout"
SETTINGS_STATUS_PATH = "/api/settings/status"  # the status section's moving parts, as JSON
NOTICE_DAYS = 14  # how long a sync's notice to a tech stays on the pages
ADMIN_PATH = "/api/admin"
ADMIN_OVERRIDES_PATH = "/api/admin/overrides"
ADMIN_REMOVE_PATH = "/api/admin/remove"  # release a tech's link: unlink, feed off, sessions ended
ADMIN_TECH_PATH = "/api/admin/tech"  # one admin action for one tech (the form's ``action``)
ADMIN_BIN_PATH = "/api/admin/bin"  # a tech's recycle bin, with Restore buttons
OAUTH_START_PATH = "/api/oauth/start"

FIELD_CSRF = "csrf_token"
FIELD_CALENDAR = "calendar_id"
# Checkboxes are posted as "on" when ticked and are absent otherwise.
FIELD_TWO_WAY = "two_way"
FIELD_REMOVE_EVENTS = "remove_events"
# The admin's override form: map a Microsoft email to a Syncro user, or (with "remove") unmap it.
FIELD_OVERRIDE_EMAIL = "ms_email"
FIELD_OVERRIDE_USER = "syncro_user_id"
FIELD_OVERRIDE_REMOVE = "remove"

# The authority's text is shown to the tech; a bound keeps a hostile or broken reply from
# filling the page.


@dataclass(frozen=True)
class ActionLink:
    """A button-styled link to follow (GET), e.g. "Sign in again"."""

    label: str
    href: str


@dataclass(frozen=True)
class CopyField:
    """A value shown in a read-only field with a Copy button, for the tech to pass on."""

    label: str
    value: str
    hint: str
    link_label: str | None = None  # also offer the value as a link (http(s) values only) with this text


@dataclass(frozen=True)
class Notice:
    """One line at the top of a page saying what happened: ``done`` (a change was made), ``warning``
    (something will not work until the person acts) or ``problem`` (it did not work). Each kind has
    its own words before the text and its own border, so colour is never the only difference."""

    kind: str  # "done", "warning" or "problem"
    text: str

    @property
    def label(self) -> str:
        return {"done": "Done:", "warning": "Warning:", "problem": "Problem:"}.get(self.kind, "Note:")


def notice(value: Notice | str | None) -> Notice | None:
    """A handler's notice; a plain string is a confirmation (``done``)."""
    if value is None or isinstance(value, Notice):
        return value
    return Notice("done", value) if value else None


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


def recent_notices(job: TechJobStatus, now: datetime) -> tuple[tuple[datetime, str], ...]:
    """The notices of the last `NOTICE_DAYS`: said once by the sync that acted, kept that long."""
    since = now - timedelta(days=NOTICE_DAYS)
    return tuple((n.at, n.text) for n in job.notices if n.at >= since)


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


@dataclass(frozen=True)
class ErrorView:
    """A page that says what went wrong and what to do, with the HTTP status to answer with."""

    title: str
    explanation: str
    what_to_do: str
    status: int
    action: ActionLink | None = None
    copy: CopyField | None = None
    details: str | None = None  # text from Microsoft, shown as given (escaped), never a trace


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


# ---------------------------------------------------------------------------------------------
# Errors the OAuth callback and the settings handlers meet, one constructor each.

_START_AGAIN = ActionLink("Start again", OAUTH_START_PATH)
_BACK_TO_SETTINGS = ActionLink("Back to my settings", SETTINGS_PATH)


def personal_account_refused(email: str | None = None) -> ErrorView:
    """The tech signed in with a personal Microsoft account (outlook.com, hotmail.com, live.com)."""
    who = f"{email} is a personal Microsoft account" if email else "That is a personal Microsoft account"
    return ErrorView(
        title="Please use your work or school account",
        explanation=(
            f"{who}. Calendar sync links the Microsoft 365 work or school account your company "
            "uses for Outlook, so that your Syncro appointments land in your work calendar."
        ),
        what_to_do=(
            "Sign in again with your work email. If you pick the wrong account automatically, choose "
            '"Use another account" on the Microsoft page.'
        ),
        status=403,
        action=ActionLink("Sign in with a work or school account", OAUTH_START_PATH),
    )


def foreign_tenant(email: str | None = None) -> ErrorView:
    """An account of a Microsoft tenant this app does not allow signed in."""
    who = f"{email} belongs to" if email else "That account belongs to"
    return ErrorView(
        title="Please use your company's Microsoft 365 account",
        explanation=(
            f"{who} a Microsoft 365 organisation this app is not set up for. Only accounts of your "
            "company's own Microsoft 365 organisation can link a calendar here."
        ),
        what_to_do=(
            "Sign in again with your work account at this company. If you pick the wrong account "
            'automatically, choose "Use another account" on the Microsoft page.'
        ),
        status=403,
        action=ActionLink("Sign in with another account", OAUTH_START_PATH),
    )


def link_held(holder: str) -> ErrorView:
    """The Syncro user's calendar link belongs to another Microsoft account, which keeps it."""
    return ErrorView(
        title="This technician's calendar is linked to another account",
        explanation=(
            f"The Syncro user you match is already linked to the Microsoft account {holder or 'of someone else'}. "
            "A link never moves to another account by itself, so nothing was changed."
        ),
        what_to_do=(
            "If that account is yours, sign in with it instead. Otherwise ask your Syncro admin to remove "
            "the link on the admin overview; then sign in again to link this account."
        ),
        status=409,
        action=ActionLink("Sign in with another account", OAUTH_START_PATH),
    )


def no_syncro_user(email: str) -> ErrorView:
    """No Syncro user has the email of the Microsoft account that signed in (and no override maps it)."""
    return ErrorView(
        title="No Syncro user has this email",
        explanation=(
            f"You signed in to Microsoft as {email}, but no user in Syncro has that email address, "
            "so we can't tell whose appointments to put in this calendar."
        ),
        what_to_do=(
            f"Ask your Syncro admin to either set {email} as your email in Syncro, or map {email} "
            "to your Syncro user in this app's admin overview. Then sign in again. If you have "
            "another Microsoft account that matches Syncro, sign in with that one instead."
        ),
        status=403,
        action=_START_AGAIN,
    )


def admin_approval_required(consent_url: str, *, organisation: str | None = None) -> ErrorView:
    """The tenant lets only its admins consent to apps: an admin must approve this one once."""
    org = f"{organisation}'s" if organisation else "Your organisation's"
    copy = None
    if consent_url:
        copy = CopyField(
            label="Approval link for your Microsoft 365 admin",
            value=consent_url,
            hint="Your admin opens this, signs in with an administrator account and clicks Accept.",
            link_label="Open the approval page (if you are the administrator)",
        )
    return ErrorView(
        title="Your Microsoft 365 admin needs to approve this app",
        explanation=(
            f"{org} Microsoft 365 settings let only administrators allow apps to read and write calendars. "
            "An administrator approves this app once for the whole organisation; after that every "
            "technician links their own calendar without asking again."
        ),
        what_to_do=(
            ("Send the approval link below to" if consent_url else "Ask")
            + " your Microsoft 365 administrator to approve it. Once they have, come back here and sign in again."
        ),
        status=400,
        action=_START_AGAIN,
        copy=copy,
    )


def consent_refused() -> ErrorView:
    """The tech (or their tenant's policy) declined the permissions on Microsoft's consent page."""
    return ErrorView(
        title="Calendar access was not allowed",
        explanation=(
            "Microsoft says the permission request was declined, so we can't reach your calendar. "
            "We ask only for your calendars and to stay signed in; nothing else in your mailbox "
            "or your organisation."
        ),
        what_to_do='Sign in again and choose "Accept" on the permissions page to link your calendar.',
        status=400,
        action=ActionLink("Try again", OAUTH_START_PATH),
    )


# Microsoft's codes we can explain in our own words (learn.microsoft.com "AADSTS error codes").
_AADSTS_WORDS = {
    "AADSTS50020": "The account isn't part of the Microsoft 365 organisation this app signs in to.",
    "AADSTS50105": "Your Microsoft 365 admin hasn't given your account access to this app.",
    "AADSTS50011": "This app's address isn't registered with Microsoft (its redirect URI).",
    "AADSTS700016": "Microsoft doesn't know this app in your organisation.",
    "AADSTS50076": "Your organisation asks for another sign-in step (multi-factor authentication).",
    "AADSTS53003": "Your organisation's Conditional Access policy blocked the sign-in.",
    "AADSTS65004": "The permission request was declined.",
}


def authority_error(code: str, description: str | None, *, status: int = 400) -> ErrorView:
    """Microsoft's sign-in answered with an error not covered above. ``description`` holds only
    codes (the OAuth error name and Microsoft's AADSTS number, checked by oauth.flow): the page
    says what they mean in our words, never text from the query string."""
    found = re.findall(r"AADSTS\d{4,8}", description or "")
    codes = " ".join([part for part in (code[:40],) if part] + found[:2])
    known = next((words for aadsts, words in _AADSTS_WORDS.items() if aadsts in found), None)
    return ErrorView(
        title="Microsoft sign-in didn't complete",
        explanation=known or "Microsoft's sign-in service returned an error instead of signing you in.",
        what_to_do=(
            "Try again in a minute. If it keeps happening, send the code below to your Syncro admin; "
            "docs/troubleshooting.md says what each one means."
        ),
        status=status,
        action=ActionLink("Try again", OAUTH_START_PATH),
        details=codes or None,
    )


def sign_in_expired() -> ErrorView:
    """The callback's state is unknown, expired, already used, or belongs to another browser."""
    return ErrorView(
        title="This sign-in has expired",
        explanation=(
            "The sign-in you came back from is too old, was already used, or was started in "
            "another browser. For your safety each sign-in works once, in the browser that began it."
        ),
        what_to_do="Start again from this browser; it takes a few seconds.",
        status=400,
        action=_START_AGAIN,
    )


def session_expired() -> ErrorView:
    """A form was posted without a valid session (it expired after a while, or the cookie is gone)."""
    return ErrorView(
        title="You've been signed out",
        explanation="Your sign-in here has ended (it lasts a working day), so we didn't save that change.",
        what_to_do="Sign in again, then make the change once more.",
        status=401,
        action=ActionLink("Sign in with Microsoft", OAUTH_START_PATH),
    )


def csrf_failed() -> ErrorView:
    """A form's csrf_token is missing or isn't this session's: an old tab, or another site posting."""
    return ErrorView(
        title="That form was out of date",
        explanation=(
            "We didn't save anything: the form came from an older page (for example one opened "
            "before you last signed in) or from another website."
        ),
        what_to_do="Open your settings page again and repeat the change there.",
        status=403,
        action=_BACK_TO_SETTINGS,
    )


def unknown_calendar() -> ErrorView:
    """The chosen calendar id isn't one of the account's editable calendars (deleted, or read-only)."""
    return ErrorView(
        title="That calendar isn't available",
        explanation=(
            "The calendar you picked no longer exists in your Outlook, or it is one you can only "
            "read (such as a shared or holiday calendar), so we can't put appointments in it."
        ),
        what_to_do="Open your settings again and pick one of the calendars listed there.",
        status=400,
        action=_BACK_TO_SETTINGS,
    )


def not_admin(email: str) -> ErrorView:
    """Someone whose ID token carries neither the SyncAdmin app role nor an admin group opened the admin overview."""
    return ErrorView(
        title="This page is for admins",
        explanation=f"You are signed in as {email}, which is not one of this app's admins.",
        what_to_do=(
            "If you should see the overview, ask your Microsoft 365 admin to give your account the "
            "SyncAdmin role of this app (Entra ID > Enterprise applications > this app > Users and groups), "
            "then sign in again. Your own calendar settings are on your settings page."
        ),
        status=403,
        action=_BACK_TO_SETTINGS,
    )


def service_unavailable() -> ErrorView:
    """Microsoft Graph or Syncro didn't answer while finishing a sign-in or saving a setting."""
    return ErrorView(
        title="Microsoft 365 or Syncro didn't answer",
        explanation="We couldn't reach Microsoft 365 or Syncro just now, so nothing was changed.",
        what_to_do="Try again in a minute. If it keeps happening, tell your Syncro admin.",
        status=503,
        action=ActionLink("Try again", OAUTH_START_PATH),
    )


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


def not_linked() -> ErrorView:
    """A settings form was posted for a tech whose calendar isn't linked (any more)."""
    return ErrorView(
        title="Your calendar isn't linked",
        explanation="That change applies to a linked calendar, and yours isn't linked (any more).",
        what_to_do="Link your calendar first; your settings page has the button.",
        status=409,
        action=_BACK_TO_SETTINGS,
    )


def save_conflict() -> ErrorView:
    """The link changed under the save twice in a row (the sync engine was writing it)."""
    return ErrorView(
        title="Your settings were busy",
        explanation="Sync was updating your link at the same moment, so we didn't save that change.",
        what_to_do="Open your settings again and save once more.",
        status=409,
        action=_BACK_TO_SETTINGS,
    )


def misconfigured() -> ErrorView:
    """A required app setting is missing or malformed (the log names it; the page must not)."""
    return ErrorView(
        title="This app isn't fully set up",
        explanation="One of the app's settings is missing or wrong, so it can't do this yet.",
        what_to_do="Tell whoever deployed this app; its log names the setting to fix.",
        status=503,
    )


def bad_request(problem: str | None = None) -> ErrorView:
    """A request we can't use; ``problem`` is the handler's own words for a person."""
    return ErrorView(
        title="We couldn't use that request",
        explanation=problem or "The request was missing something or had a value we don't accept.",
        what_to_do="Go back to the page you came from and try again.",
        status=400,
        action=_BACK_TO_SETTINGS,
    )


def feed_not_found() -> ErrorView:
    """A browser opened a feed address that does not work (replaced, revoked, or mistyped)."""
    return ErrorView(
        title="This calendar feed address doesn't work",
        explanation=(
            "No calendar feed has this address: it may have been replaced by a new one, turned off, or "
            "copied only in part."
        ),
        what_to_do="Get your current feed URL on your settings page, and subscribe to that one in your calendar app.",
        status=404,
        action=_BACK_TO_SETTINGS,
    )


def form_only() -> ErrorView:
    """A browser opened an address that only a form's button sends to (a bookmark, a reload)."""
    return ErrorView(
        title="This address is for a button on your settings page",
        explanation="It does something only when a form on the settings page sends it, so opening it does nothing.",
        what_to_do="Go to your settings page and use the button there.",
        status=405,
        action=_BACK_TO_SETTINGS,
    )


def admin_consent_granted() -> ErrorView:
    """Microsoft sent an admin back after approving the app: good news, shown with status 200."""
    return ErrorView(
        title="Approved for your organisation",
        explanation=(
            "Thank you: the app may now reach the calendars of technicians who link theirs. "
            "Nobody's calendar syncs until that technician links it."
        ),
        what_to_do="Tell your technicians to open their settings page and link their calendar.",
        status=200,
        action=ActionLink("Link my own calendar", OAUTH_START_PATH),
    )


def sign_in_view(*, notice: str | None = None) -> SignInView:
    return SignInView(notice=notice)


# ---------------------------------------------------------------------------------------------
# Adapters from what `web.links` returns to the views above: still pure, no I/O.

# RefusalKind values (oauth.flow) and the handlers' own refusals, each to its page.
_ERRORS: dict[str, Callable[[dict[str, str]], ErrorView]] = {
    "state_invalid": lambda d: sign_in_expired(),
    "consent_refused": lambda d: consent_refused(),
    "admin_approval_needed": lambda d: admin_approval_required(d.get("admin_consent_url", "")),
    "authority_error": lambda d: authority_error(d.get("code", ""), d.get("detail")),
    "personal_account": lambda d: personal_account_refused(d.get("email") or None),
    "foreign_tenant": lambda d: foreign_tenant(d.get("email") or None),
    "link_held": lambda d: link_held(d.get("email") or ""),
    # The detail says why (no user, two users with that email, an override to a deleted user).
    "no_syncro_user": lambda d: dataclasses.replace(
        no_syncro_user(d.get("email") or "this account"), details=d.get("detail") or None
    ),
    "not_an_admin": lambda d: not_admin(d.get("email") or "this account"),
    "service_unavailable": lambda d: service_unavailable(),  # its detail may name internals
    "session_expired": lambda d: session_expired(),
    "csrf": lambda d: csrf_failed(),
    "unknown_calendar": lambda d: unknown_calendar(),
    "not_linked": lambda d: not_linked(),
    "conflict": lambda d: save_conflict(),
    "misconfigured": lambda d: misconfigured(),
    "bad_request": lambda d: bad_request(d.get("detail") or None),
    "admin_consent_granted": lambda d: admin_consent_granted(),
    "feed_not_found": lambda d: feed_not_found(),
    "form_only": lambda d: form_only(),
}


def error_view(kind: str, **details: str) -> ErrorView:
    """The page for an error named ``kind`` (a `RefusalKind` value, or a handler's refusal).

    ``details`` may hold ``detail``, ``email``, ``admin_consent_url`` and ``code``. An unknown
    kind gets a general page rather than an exception: an error page must never fail.
    """
    build = _ERRORS.get(kind)
    return build(details) if build else bad_request(None)


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
        state = _value(link.status)
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
        syncro_token_note=_token_note(getattr(overview, "syncro_token", None)),
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
        "outlook_updates_until": _expiry(background.subscription),
        "last_notification": job.last_notification_at,
        "last_poll": background.poll.last_poll_at,
        "skipped": tuple(skipped_sentence(item) for item in job.last_job_skipped),
        "skipped_count": max(job.last_job_skipped_count, len(job.last_job_skipped)),
        "notices": recent_notices(job, now),
    }


def _expiry(subscription: SubscriptionStatus | None) -> datetime | None:
    if subscription is None or _value(subscription.state) != "active":
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
    state = _value(subscription.state) if subscription is not None else "setting_up"
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


def _token_note(record: Any, *, for_admin: bool = False) -> str | None:
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


def calendar_choices(calendars: Iterable[Calendar], *, chosen: str = "") -> tuple[CalendarChoice, ...]:
    """Editable calendars only; ``chosen`` is selected if still there, else the default, else the first."""
    editable = [c for c in calendars if c.can_edit]
    ids = {c.id for c in editable}
    pick = (
        chosen if chosen in ids else next((c.id for c in editable if c.is_default), editable[0].id if editable else "")
    )
    return tuple(CalendarChoice(c.id, c.name, c.id == pick) for c in editable)


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
        state = _value(link.status) if link is not None else ""
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
                syncro_token_note=_token_note(getattr(row, "syncro_token", None), for_admin=True),
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
    # The overview cards' actions (web.handlers.admin_tech), beside the function-key routes' names.
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
        "outlook_updates_until": _expiry(background.subscription),
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
    if subscription is None or _value(subscription.state) not in ("failed", "needs_relink"):
        return None
    return f"Outlook changes are not announced: {subscription.detail}" if subscription.detail else None


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


def _value(status: Any) -> str:
    return str(getattr(status, "value", status))
