"""The error pages, as one table: for each error the handlers and the sign-in can meet, its
status, its title, what happened and what to do, in words a technician understands. `error_view`
fills the table's row with the request's details; `web.pages.render_error` renders it.

None shows a stack trace, and none repeats text from a request: Microsoft's sign-in errors show
only their codes (`authority_error`), and a detail that may name internals is never shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from web.page_parts import ActionLink, CopyField
from web.routes import OAUTH_START_PATH, SETTINGS_PATH


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


Details = Mapping[str, str]


@dataclass(frozen=True)
class ErrorPage:
    """One row of the table. ``{name}`` in the words is filled from the request's details (``email``,
    ``detail``, ...), or from ``blanks`` when the request has none; ``worked_out`` adds what is
    computed from the details (more words, a value to copy, the ``details`` line)."""

    status: int
    title: str
    explanation: str
    what_to_do: str
    action: ActionLink | None = None
    blanks: Mapping[str, str] = field(default_factory=dict)
    shows_detail: bool = False  # the request's ``detail`` is shown as given (it never names internals)
    worked_out: Callable[[Details], dict[str, Any]] | None = None


_START_AGAIN = ActionLink("Start again", OAUTH_START_PATH)
_TRY_AGAIN = ActionLink("Try again", OAUTH_START_PATH)
_BACK_TO_SETTINGS = ActionLink("Back to my settings", SETTINGS_PATH)


def _approval(details: Details) -> dict[str, Any]:
    """The tenant lets only its admins consent: the approval link to pass on, when we have it."""
    url = details.get("admin_consent_url", "")
    organisation = details.get("organisation", "")
    copy = None
    if url:
        copy = CopyField(
            label="Approval link for your Microsoft 365 admin",
            value=url,
            hint="Your admin opens this, signs in with an administrator account and clicks Accept.",
            link_label="Open the approval page (if you are the administrator)",
        )
    return {
        "organisation": f"{organisation}'s" if organisation else "Your organisation's",
        "ask": "Send the approval link below to" if url else "Ask",
        "copy": copy,
    }


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


def _authority(details: Details) -> dict[str, Any]:
    """Microsoft's sign-in answered with an error. The ``detail`` holds only codes (the OAuth error
    name in ``code`` and Microsoft's AADSTS numbers, checked by oauth.flow): the page says what
    they mean in our words, never text from the query string."""
    found = re.findall(r"AADSTS\d{4,8}", details.get("detail") or "")
    codes = " ".join([part for part in (details.get("code", "")[:40],) if part] + found[:2])
    known = next((words for aadsts, words in _AADSTS_WORDS.items() if aadsts in found), None)
    meaning = known or "Microsoft's sign-in service returned an error instead of signing you in."
    return {"meaning": meaning, "details": codes or None}


# RefusalKind values (oauth.flow) and the handlers' own refusals, each to its page.
ERROR_PAGES: dict[str, ErrorPage] = {
    # The callback's state is unknown, expired, already used, or belongs to another browser.
    "state_invalid": ErrorPage(
        400,
        "This sign-in has expired",
        "The sign-in you came back from is too old, was already used, or was started in "
        "another browser. For your safety each sign-in works once, in the browser that began it.",
        "Start again from this browser; it takes a few seconds.",
        _START_AGAIN,
    ),
    # The tech (or their tenant's policy) declined the permissions on Microsoft's consent page.
    "consent_refused": ErrorPage(
        400,
        "Calendar access was not allowed",
        "Microsoft says the permission request was declined, so we can't reach your calendar. "
        "We ask only for your calendars and to stay signed in; nothing else in your mailbox "
        "or your organisation.",
        'Sign in again and choose "Accept" on the permissions page to link your calendar.',
        _TRY_AGAIN,
    ),
    # The tenant lets only its admins consent to apps: an admin must approve this one once.
    "admin_approval_needed": ErrorPage(
        400,
        "Your Microsoft 365 admin needs to approve this app",
        "{organisation} Microsoft 365 settings let only administrators allow apps to read and write calendars. "
        "An administrator approves this app once for the whole organisation; after that every "
        "technician links their own calendar without asking again.",
        "{ask} your Microsoft 365 administrator to approve it. Once they have, come back here and sign in again.",
        _START_AGAIN,
        worked_out=_approval,
    ),
    # Microsoft's sign-in answered with an error not covered by the other rows.
    "authority_error": ErrorPage(
        400,
        "Microsoft sign-in didn't complete",
        "{meaning}",
        "Try again in a minute. If it keeps happening, send the code below to your Syncro admin; "
        "docs/troubleshooting.md says what each one means.",
        _TRY_AGAIN,
        worked_out=_authority,
    ),
    # The tech signed in with a personal Microsoft account (outlook.com, hotmail.com, live.com).
    "personal_account": ErrorPage(
        403,
        "Please use your work or school account",
        "{email} is a personal Microsoft account. Calendar sync links the Microsoft 365 work or school account "
        "your company uses for Outlook, so that your Syncro appointments land in your work calendar.",
        "Sign in again with your work email. If you pick the wrong account automatically, choose "
        '"Use another account" on the Microsoft page.',
        ActionLink("Sign in with a work or school account", OAUTH_START_PATH),
        blanks={"email": "That"},
    ),
    # An account of a Microsoft tenant this app does not allow signed in.
    "foreign_tenant": ErrorPage(
        403,
        "Please use your company's Microsoft 365 account",
        "{email} belongs to a Microsoft 365 organisation this app is not set up for. Only accounts of your "
        "company's own Microsoft 365 organisation can link a calendar here.",
        "Sign in again with your work account at this company. If you pick the wrong account "
        'automatically, choose "Use another account" on the Microsoft page.',
        ActionLink("Sign in with another account", OAUTH_START_PATH),
        blanks={"email": "That account"},
    ),
    # The Syncro user's calendar link belongs to another Microsoft account, which keeps it.
    "link_held": ErrorPage(
        409,
        "This technician's calendar is linked to another account",
        "The Syncro user you match is already linked to the Microsoft account {email}. "
        "A link never moves to another account by itself, so nothing was changed.",
        "If that account is yours, sign in with it instead. Otherwise ask your Syncro admin to remove "
        "the link on the admin overview; then sign in again to link this account.",
        ActionLink("Sign in with another account", OAUTH_START_PATH),
        blanks={"email": "of someone else"},
    ),
    # No Syncro user has the Microsoft account's email (and no override maps it). The detail says
    # why: no user, two users with that email, an override to a deleted user.
    "no_syncro_user": ErrorPage(
        403,
        "No Syncro user has this email",
        "You signed in to Microsoft as {email}, but no user in Syncro has that email address, "
        "so we can't tell whose appointments to put in this calendar.",
        "Ask your Syncro admin to either set {email} as your email in Syncro, or map {email} "
        "to your Syncro user in this app's admin overview. Then sign in again. If you have "
        "another Microsoft account that matches Syncro, sign in with that one instead.",
        _START_AGAIN,
        blanks={"email": "this account"},
        shows_detail=True,
    ),
    # The ID token carries neither the SyncAdmin app role nor an admin group.
    "not_an_admin": ErrorPage(
        403,
        "This page is for admins",
        "You are signed in as {email}, which is not one of this app's admins.",
        "If you should see the overview, ask your Microsoft 365 admin to give your account the "
        "SyncAdmin role of this app (Entra ID > Enterprise applications > this app > Users and groups), "
        "then sign in again. Your own calendar settings are on your settings page.",
        _BACK_TO_SETTINGS,
        blanks={"email": "this account"},
    ),
    # Microsoft Graph or Syncro didn't answer; the detail may name internals, so it is not shown.
    "service_unavailable": ErrorPage(
        503,
        "Microsoft 365 or Syncro didn't answer",
        "We couldn't reach Microsoft 365 or Syncro just now, so nothing was changed.",
        "Try again in a minute. If it keeps happening, tell your Syncro admin.",
        _TRY_AGAIN,
    ),
    # A form was posted without a valid session (it expired after a while, or the cookie is gone).
    "session_expired": ErrorPage(
        401,
        "You've been signed out",
        "Your sign-in here has ended (it lasts a working day), so we didn't save that change.",
        "Sign in again, then make the change once more.",
        ActionLink("Sign in with Microsoft", OAUTH_START_PATH),
    ),
    # A form's csrf_token is missing or isn't this session's: an old tab, or another site posting.
    "csrf": ErrorPage(
        403,
        "That form was out of date",
        "We didn't save anything: the form came from an older page (for example one opened "
        "before you last signed in) or from another website.",
        "Open your settings page again and repeat the change there.",
        _BACK_TO_SETTINGS,
    ),
    # The chosen calendar id isn't one of the account's editable calendars (deleted, or read-only).
    "unknown_calendar": ErrorPage(
        400,
        "That calendar isn't available",
        "The calendar you picked no longer exists in your Outlook, or it is one you can only "
        "read (such as a shared or holiday calendar), so we can't put appointments in it.",
        "Open your settings again and pick one of the calendars listed there.",
        _BACK_TO_SETTINGS,
    ),
    # A settings form was posted for a tech whose calendar isn't linked (any more).
    "not_linked": ErrorPage(
        409,
        "Your calendar isn't linked",
        "That change applies to a linked calendar, and yours isn't linked (any more).",
        "Link your calendar first; your settings page has the button.",
        _BACK_TO_SETTINGS,
    ),
    # The link changed under the save twice in a row (the sync engine was writing it).
    "conflict": ErrorPage(
        409,
        "Your settings were busy",
        "Sync was updating your link at the same moment, so we didn't save that change.",
        "Open your settings again and save once more.",
        _BACK_TO_SETTINGS,
    ),
    # A required app setting is missing or malformed (the log names it; the page must not).
    "misconfigured": ErrorPage(
        503,
        "This app isn't fully set up",
        "One of the app's settings is missing or wrong, so it can't do this yet.",
        "Tell whoever deployed this app; its log names the setting to fix.",
    ),
    # A request we can't use; the detail is the handler's own words for a person.
    "bad_request": ErrorPage(
        400,
        "We couldn't use that request",
        "{detail}",
        "Go back to the page you came from and try again.",
        _BACK_TO_SETTINGS,
        blanks={"detail": "The request was missing something or had a value we don't accept."},
    ),
    # Microsoft sent an admin back after approving the app: good news, shown with status 200.
    "admin_consent_granted": ErrorPage(
        200,
        "Approved for your organisation",
        "Thank you: the app may now reach the calendars of technicians who link theirs. "
        "Nobody's calendar syncs until that technician links it.",
        "Tell your technicians to open their settings page and link their calendar.",
        ActionLink("Link my own calendar", OAUTH_START_PATH),
    ),
    # A browser opened a feed address that does not work (replaced, revoked, or mistyped).
    "feed_not_found": ErrorPage(
        404,
        "This calendar feed address doesn't work",
        "No calendar feed has this address: it may have been replaced by a new one, turned off, or "
        "copied only in part.",
        "Get your current feed URL on your settings page, and subscribe to that one in your calendar app.",
        _BACK_TO_SETTINGS,
    ),
    # A browser opened an address that only a form's button sends to (a bookmark, a reload).
    "form_only": ErrorPage(
        405,
        "This address is for a button on your settings page",
        "It does something only when a form on the settings page sends it, so opening it does nothing.",
        "Go to your settings page and use the button there.",
        _BACK_TO_SETTINGS,
    ),
}


def error_view(kind: str, **details: str) -> ErrorView:
    """The page for an error named ``kind`` (a `RefusalKind` value, or a handler's refusal).

    ``details`` may hold ``detail``, ``email``, ``admin_consent_url``, ``code`` and ``organisation``.
    An unknown kind gets a general page rather than an exception: an error page must never fail.
    """
    page = ERROR_PAGES.get(kind)
    if page is None:
        page, details = ERROR_PAGES["bad_request"], {}
    words: dict[str, Any] = {name: details.get(name) or blank for name, blank in page.blanks.items()}
    words |= page.worked_out(details) if page.worked_out else {}
    shown = (details.get("detail") or None) if page.shows_detail else words.get("details")
    return ErrorView(
        title=page.title,
        explanation=page.explanation.format_map(words),
        what_to_do=page.what_to_do.format_map(words),
        status=page.status,
        action=page.action,
        copy=words.get("copy"),
        details=shown,
    )
