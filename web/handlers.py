"""The pages: each handler takes a `WebRequest` and returns a `WebResponse`.

Who is asking comes from the signed session cookie (`web.session`); every POST must carry the
session's CSRF token. What each page shows is built by `web.views` from plain data read here;
`web.pages` renders it. Handlers read settings and services lazily, so a misconfigured app
answers with a page that says so rather than a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import TYPE_CHECKING

from web.http import WebRequest, WebResponse, redirect
from web.views import Notice

if TYPE_CHECKING:
    from sync.engine import SyncDeps, SyncReport
    from web.session import Session
    from web.views import RecycleBinView

log = logging.getLogger(__name__)

SETTINGS_PATH = "/api/settings"
SYNCRO_TOKEN_PATH = "/api/settings/syncro-token"
ADMIN_PATH = "/api/admin"
ADMIN_BIN_PATH = "/api/admin/bin"


# --- plumbing ------------------------------------------------------------------------------


def _page(status: int, html: str, *, headers: dict[str, str] | None = None) -> WebResponse:
    return WebResponse(status, html, headers or {})


def _error(kind: str, *, status: int | None = None, **details: str) -> WebResponse:
    from web import pages, views

    view = views.error_view(kind, **details)
    return _page(status or view.status, pages.render_error(view))


def _guarded(handler: Callable[[WebRequest], WebResponse]) -> Callable[[WebRequest], WebResponse]:
    """Settings problems and unreachable services become a page that says so, never a 500."""

    @wraps(handler)
    def run(request: WebRequest) -> WebResponse:
        from settings import SettingsError
        from storage.errors import StorageUnavailable
        from sync.errors import ServiceError

        try:
            return handler(request)
        except SettingsError as error:
            log.error("page %s: %s", handler.__name__, error)
            return _error("misconfigured", status=503)
        except (StorageUnavailable, ServiceError) as error:
            log.warning("page %s: %s", handler.__name__, type(error).__name__)
            return _error("service_unavailable", status=503, detail=str(error))

    return run


def _session(request: WebRequest) -> Session | None:
    """The request's session: signed by us, unexpired, and not ended since (sign-out, unlink, an
    admin's remove bump the person's session version; `storage.session_versions`)."""
    from services import session_codec, storage_account

    session = session_codec().read(request.cookie)
    if session is None:
        return None
    if session.version != storage_account().session_versions.current(session.subject):
        return None
    return session


def is_signed_in_admin(cookie_header: str | None) -> bool:
    """Whether a request carries a live admin session (for `/api/health`'s details). Never raises:
    without a cookie it costs nothing, and a storage hiccup means "no"."""
    if not cookie_header or "calendar_session=" not in cookie_header:
        return False
    from settings import SettingsError
    from storage.errors import StorageError

    try:
        session = _session(WebRequest(method="GET", url="", cookie=cookie_header))
    except (StorageError, SettingsError):
        return False
    return session is not None and session.admin


def _secure_cookie() -> bool:
    from settings import get_settings

    # Settings allow plain http only on loopback, so the scheme alone says whether the cookie may travel in clear.
    return get_settings().public_base_url.startswith("https://")


def _csrf_ok(request: WebRequest, session: Session) -> bool:
    from web.session import check_csrf

    return check_csrf(session, request.form.get("csrf_token", ""))


def _post_guard(request: WebRequest) -> tuple[Session | None, WebResponse | None]:
    """The session of a POST that may proceed, or the page refusing it."""
    if request.form_error:
        return None, _error("bad_request", status=415, detail=request.form_error)
    session = _session(request)
    if session is None:
        return None, _error("session_expired", status=401)
    if not _csrf_ok(request, session):
        return None, _error("csrf", status=403)
    return session, None


def _tech_post_guard(request: WebRequest) -> tuple[Session, int] | WebResponse:
    """A POST by a signed-in technician: their session and Syncro user id, or the page refusing it."""
    session, refused = _post_guard(request)
    if refused:
        return refused
    assert session is not None
    if session.syncro_user_id is None:  # an admin's session: no technician's settings to change
        return _error("session_expired", status=401)
    return session, session.syncro_user_id


# Each check of a Syncro token costs a call to Syncro, each "Sync now" a whole sync: a person
# needs a few in a row at most, a script hammering the form gets a polite refusal. A token that
# Syncro accepts starts the count afresh: the limit is on wrong guesses.
TOKEN_CHECKS = (5, timedelta(minutes=10))
SYNC_NOW_CLICKS = (4, timedelta(minutes=1))
_TOO_MANY_TOKEN_CHECKS = "Too many tokens were checked in the last few minutes. Wait ten minutes, then paste it again."
_TOO_MANY_SYNCS = (
    "Sync now was pressed several times in the last minute; the sync runs on its own too. Try again in a minute."
)


def _allowed(key: str, rule: tuple[int, timedelta]) -> bool:
    from services import storage_account

    limit, window = rule
    return storage_account().rate_limits.allow(key, limit=limit, window=window)


def _forget_attempts(key: str) -> None:
    from services import storage_account

    storage_account().rate_limits.forget(key)


# --- sign-in -------------------------------------------------------------------------------


@_guarded
def oauth_start(request: WebRequest) -> WebResponse:
    from oauth.flow import Purpose, start_sign_in
    from services import linking_services
    from web.session import sign_in_cookie

    raw = request.query.get("purpose", "link")
    try:
        purpose = Purpose(raw)
    except ValueError:
        return _error("bad_request", status=400, detail="purpose must be link or admin")
    hint = request.query.get("login_hint", "").strip()
    if len(hint) > 256 or (hint and "@" not in hint):
        return _error("bad_request", status=400, detail="login_hint must be an email address")
    started = start_sign_in(linking_services(), purpose=purpose, login_hint=hint or None)
    # The callback must come back to this browser: it carries a hash of the state (login CSRF).
    bound = sign_in_cookie(started.state, request.cookie, secure=_secure_cookie())
    return redirect(started.url, headers={"Set-Cookie": bound})


@_guarded
def oauth_callback(request: WebRequest) -> WebResponse:
    from oauth.flow import AdminConsentGranted, Purpose, Refusal, finish_sign_in, is_admin_consent
    from services import linking_services, session_codec, storage_account
    from storage.session_versions import account_subject, tech_subject
    from web import pages, views
    from web.links import forget_cached_calendars, needs_syncro_token
    from web.session import sign_in_started_here

    if not is_admin_consent(request.query) and not sign_in_started_here(request.query.get("state", ""), request.cookie):
        # Not begun in this browser: someone else's sign-in, or a link sent to trick this browser
        # into an attacker's session (login CSRF). The flow stays where it is; nobody is signed in.
        return _error("state_invalid")
    outcome = finish_sign_in(linking_services(), request.query)
    if isinstance(outcome, AdminConsentGranted):
        return _page(200, pages.render_error(views.error_view("admin_consent_granted")))
    if isinstance(outcome, Refusal):
        log.info("sign-in refused: %s", outcome.kind.value)
        return _error(
            outcome.kind.value,
            status=outcome.status,
            detail=outcome.detail,
            email=outcome.email,
            admin_consent_url=outcome.admin_consent_url,
        )
    tech = outcome.syncro_user_id
    target = ADMIN_PATH if outcome.purpose is Purpose.ADMIN else SETTINGS_PATH
    if tech is not None:
        forget_cached_calendars(tech)  # a re-link may be another account with other calendars
        if outcome.purpose is not Purpose.ADMIN:
            _ensure_subscription(tech)
            _first_sync(tech, "linked")
            if needs_syncro_token(tech):  # the second step of linking: without it nothing comes from Syncro
                target = f"{SYNCRO_TOKEN_PATH}?step=link"
    subject = tech_subject(tech) if tech is not None else account_subject(outcome.ms_account_id)
    codec = session_codec()
    session = codec.new(
        syncro_user_id=tech,
        ms_email=outcome.ms_email,
        account=outcome.ms_account_id,
        admin=outcome.is_admin,
        version=storage_account().session_versions.current(subject),
    )
    cookie = codec.cookie(session, secure=_secure_cookie())
    if outcome.newly_linked and target == SETTINGS_PATH:
        target += "?linked=1"
    return redirect(target, headers={"Set-Cookie": cookie})


def _ensure_subscription(syncro_user_id: int) -> None:
    """Ask for the tech's Graph subscription (real-time changes) to be made now; should storage
    fail, the hourly upkeep makes it instead, so the sign-in goes on."""
    from realtime.lifecycle import schedule_ensure
    from services import storage_account
    from storage.errors import StorageError

    try:
        schedule_ensure(storage_account(), syncro_user_id)
    except StorageError as error:
        log.warning("could not ask for a subscription for tech %s: %s", syncro_user_id, error)


@_guarded
def sign_out(request: WebRequest) -> WebResponse:
    session, refused = _post_guard(request)
    if refused:
        return refused
    assert session is not None
    return _end_sessions(session.subject, f"{SETTINGS_PATH}?signedout=1")


def _end_sessions(subject: str, target: str) -> WebResponse:
    """End every session of ``subject`` (this browser's and any copy of its cookie) and go to ``target``."""
    from services import session_codec, storage_account

    storage_account().session_versions.bump(subject)
    return redirect(target, headers={"Set-Cookie": session_codec().clear_cookie(secure=_secure_cookie())})


# --- the settings page ---------------------------------------------------------------------


@_guarded
def settings_page(request: WebRequest) -> WebResponse:
    if request.method == "POST":
        return _save_settings(request)
    session = _session(request)
    if session is None or session.syncro_user_id is None:
        from web import pages, views

        notice = next((text for key, text in _SIGNED_OUT_NOTICES.items() if request.query.get(key)), None)
        return _page(200, pages.render_sign_in(views.sign_in_view(notice=notice)))
    from services import token_cipher
    from web.flash import read_note

    note, feed_url = read_note(token_cipher(), request.cookie)
    return _render_settings(session, flash=note or _flash(request.query), new_feed_url=feed_url)


def _redirect_with_note(target: str, note: Notice, *, feed_url: str = "") -> WebResponse:
    """Post/redirect/get with words (or a feed URL) a query flag cannot carry (`web.flash`)."""
    from services import token_cipher
    from web.flash import ADMIN_COOKIE_PATH, COOKIE_PATH, note_cookie

    path = ADMIN_COOKIE_PATH if target.startswith(ADMIN_PATH) else COOKIE_PATH
    cookie = note_cookie(token_cipher(), note, feed_url=feed_url, secure=_secure_cookie(), path=path)
    return redirect(target, headers={"Set-Cookie": cookie})


# After these the session has ended, so the sign-in page says what happened.
_SIGNED_OUT_NOTICES = {
    "unlinked": "Your calendar is unlinked and you are signed out everywhere.",
    "signedout": "You are signed out, in this browser and any other.",
}


_FLASHES = {
    "token": Notice(
        "done", "Your Syncro API token is saved: your Syncro appointments arrive in Outlook within a minute."
    ),
    "linked": Notice("done", "Your calendar is linked."),
    "saved": Notice("done", "Saved."),
    "feed": Notice("done", "Your new calendar feed URL is at the top of this page. The old one no longer works."),
    "removed": Notice("done", "Removed: the link is released, the feed URL is off and they are signed out everywhere."),
    "skipped": Notice(
        "warning",
        "You skipped the Syncro API token: your Syncro appointments can't reach Outlook until you add it below.",
    ),
}


def _flash(query: Mapping[str, str]) -> Notice | None:
    """The one line a redirect asked for (``?saved=1``); only our own words are shown."""
    return next((text for key, text in _FLASHES.items() if query.get(key)), None)


@_guarded
def settings_status(request: WebRequest) -> WebResponse:
    """The status section's moving parts as JSON, for the page's live line (its script polls this
    while a sync is awaited): the same words a reload would show."""
    import json

    from web import views
    from web.links import linking_overview

    session = _session(request)
    if session is None or session.syncro_user_id is None:
        body = json.dumps({"error": "signed_out", "message": "Sign in again to see your status."})
        return WebResponse(401, body, {}, content_type="application/json; charset=utf-8")
    view = views.settings_view(linking_overview(session.syncro_user_id), csrf_token=session.csrf_token)
    lines = views.status_lines(view)
    settled = views.live_status(view) is None
    notices = views.notice_lines(view.status.notices, view.now) if view.status is not None else []
    body = json.dumps({**lines, "settled": settled, "notices": notices})
    return WebResponse(200, body, {}, content_type="application/json; charset=utf-8")


def _render_settings(
    session: Session, *, flash: Notice | str | None = None, new_feed_url: str = "", status: int = 200
) -> WebResponse:
    from settings import get_settings
    from web import pages, views
    from web.links import linking_overview

    settings = get_settings()
    overview = linking_overview(session.syncro_user_id)
    view = views.settings_view(
        overview,
        csrf_token=session.csrf_token,
        flash=flash or "",
        new_feed_url=new_feed_url,
        signed_in_as=session.ms_email,
        feed_days=(settings.window_past_days, settings.window_future_days),
        is_admin=session.admin,
    )
    return _page(status, pages.render_settings(view))


def _save_settings(request: WebRequest) -> WebResponse:
    from web.links import save_link_choices

    guarded = _tech_post_guard(request)
    if isinstance(guarded, WebResponse):
        return guarded
    _, syncro_user_id = guarded
    calendar_id = request.form.get("calendar_id", "")
    two_way = request.form.get("two_way", "") == "on"
    share_private = request.form.get("share_private", "") == "on"
    if len(calendar_id) > 512:
        return _error("unknown_calendar", status=400)
    problem = save_link_choices(syncro_user_id, calendar_id=calendar_id, two_way=two_way, share_private=share_private)
    if problem:
        return _error(problem, status=409 if problem == "not_linked" else 400)
    return redirect(f"{SETTINGS_PATH}?saved=1")


@_guarded
def settings_unlink(request: WebRequest) -> WebResponse:
    from ics.feed_tokens import revoke_feed_urls
    from services import storage_account
    from web.links import unlink

    if request.method == "GET":  # the confirmation, with the choices
        from web import pages, views

        session = _session(request)
        if session is None or session.syncro_user_id is None:
            return redirect(SETTINGS_PATH)
        view = views.SyncroTokenView(csrf_token=session.csrf_token, signed_in_as=session.ms_email)
        return _page(200, pages.render_unlink(view))
    guarded = _tech_post_guard(request)
    if isinstance(guarded, WebResponse):
        return guarded
    session, syncro_user_id = guarded
    feed = request.form.get("feed", "")
    if feed not in ("keep", "revoke"):
        return _error("bad_request", status=400, detail="Choose whether to keep your calendar feed, then unlink.")
    unlink(syncro_user_id, remove_outlook_events=request.form.get("remove_events", "") == "on")
    if feed == "revoke":
        revoke_feed_urls(storage_account(), syncro_user_id)
    return _end_sessions(session.subject, f"{SETTINGS_PATH}?unlinked=1")


@_guarded
def settings_new_feed_url(request: WebRequest) -> WebResponse:
    from web.links import new_feed_url

    guarded = _tech_post_guard(request)
    if isinstance(guarded, WebResponse):
        return guarded
    _, syncro_user_id = guarded
    url = new_feed_url(syncro_user_id)
    # Only a hash of the token is kept (docs/security.md): the URL rides to the page in an
    # encrypted cookie, so a reload shows it again instead of minting another.
    return _redirect_with_note(f"{SETTINGS_PATH}?feed=1", _FLASHES["feed"], feed_url=url)


@_guarded
def settings_syncro_token(request: WebRequest) -> WebResponse:
    """The tech's own Syncro API token (needed when Syncro hides appointment owners): GET asks for
    it (the second step of linking, or on its own), POST checks it with Syncro and keeps it."""
    from services import syncro_token_service
    from sync.errors import ServiceError
    from sync.syncro_tokens import SyncroTokenRejected

    if request.method == "GET":
        session = _session(request)
        if session is None or session.syncro_user_id is None:
            return redirect(SETTINGS_PATH)
        return _render_token_step(session, first_link=request.query.get("step") == "link")
    guarded = _tech_post_guard(request)
    if isinstance(guarded, WebResponse):
        return guarded
    session, syncro_user_id = guarded
    first_link = request.form.get("step") == "link"
    if not _allowed(f"syncro-token:{syncro_user_id}", TOKEN_CHECKS):
        return _render_token_step(session, first_link=first_link, problem=_TOO_MANY_TOKEN_CHECKS, status=429)
    try:
        syncro_token_service().save(syncro_user_id, request.form.get("token", ""), set_by="tech")
    except SyncroTokenRejected as error:
        return _render_token_step(session, first_link=first_link, problem=str(error), status=400)
    except ServiceError:
        problem = "Syncro could not check the token just now. Try again in a minute."
        return _render_token_step(session, first_link=first_link, problem=problem, status=503)
    _forget_attempts(f"syncro-token:{syncro_user_id}")  # the limit is on guesses, not on the tech's own token
    _first_sync(syncro_user_id, "syncro-token")
    return redirect(f"{SETTINGS_PATH}?linked=1&token=1" if first_link else f"{SETTINGS_PATH}?token=1")


def _render_token_step(session: Session, *, first_link: bool, problem: str = "", status: int = 200) -> WebResponse:
    from web import pages, views

    view = views.SyncroTokenView(
        csrf_token=session.csrf_token,
        signed_in_as=session.ms_email,
        first_link=first_link,
        flash=Notice("problem", problem) if problem else None,
    )
    return _page(status, pages.render_syncro_token(view))


def _first_sync(syncro_user_id: int, reason: str) -> None:
    """Ask for the tech's sync now (a new link, a new Syncro token), so appointments arrive in
    seconds, not at the next timer; should storage fail, the timers sync them instead."""
    from realtime.enqueue import request_sync
    from services import storage_account
    from storage.errors import StorageError

    try:
        request_sync(storage_account(), syncro_user_id, reason)
    except StorageError as error:
        log.warning("could not ask for the first sync of tech %s: %s", syncro_user_id, error)


@_guarded
def settings_sync_now(request: WebRequest) -> WebResponse:
    from services import sync_deps
    from sync.engine import sync_tech

    guarded = _tech_post_guard(request)
    if isinstance(guarded, WebResponse):
        return guarded
    session, syncro_user_id = guarded
    if not _allowed(f"sync-now:{syncro_user_id}", SYNC_NOW_CLICKS):
        return _render_settings(session, flash=Notice("problem", _TOO_MANY_SYNCS), status=429)
    deps = sync_deps()
    report = sync_tech(syncro_user_id, deps=deps)
    _record_sync_now(deps, report)
    kind = "done" if report.status in ("synced", "busy") else "problem"
    return _redirect_with_note(f"{SETTINGS_PATH}?synced=1", Notice(kind, sync_summary(report)))


def _record_sync_now(deps: SyncDeps, report: SyncReport) -> None:
    """The status section shows "Sync now" like any job (last sync, skipped items); best effort:
    the sync itself is done, and the page still says what it did."""
    from realtime.jobs import record_report
    from storage.job_status import JobStatusStore

    try:
        record_report(JobStatusStore(deps.storage), report, reason="sync-now", at=deps.clock())
    except Exception:
        log.warning("could not record the sync-now of tech %s", report.syncro_user_id, exc_info=True)


def sync_summary(report: SyncReport) -> str:
    """One sentence a tech understands for what "Sync now" did."""
    if report.status == "busy":
        return "A sync for you is already running; its changes show in a few seconds."
    if report.status != "synced":
        return f"The sync did not run: {report.detail or report.status}."
    parts = [
        f"{count} {verb} in {place}"
        for verb, counts in (("created", report.created), ("updated", report.updated), ("deleted", report.deleted))
        for side, place in (("outlook", "Outlook"), ("syncro", "Syncro"))
        if (count := counts.get(side, 0))
    ]
    done = "Synced: " + ", ".join(parts) + "." if parts else "Synced: both calendars already agreed."
    if report.skipped:
        done += f" {len(report.skipped)} item(s) could not be read and were left alone."
    return done


# --- the admin overview --------------------------------------------------------------------


def _admin_session(request: WebRequest) -> tuple[Session | None, WebResponse | None]:
    """An admin's session (the ID token at sign-in carried the SyncAdmin role or an admin group),
    or where to send the browser instead."""
    session = _session(request)
    if session is None:
        return None, redirect("/api/oauth/start?purpose=admin")
    if not session.admin:
        return None, _error("not_an_admin", status=403, email=session.ms_email)
    return session, None


@_guarded
def admin_page(request: WebRequest) -> WebResponse:
    from services import token_cipher
    from web import pages, views
    from web.flash import read_note
    from web.links import admin_overview

    session, refused = _admin_session(request)
    if refused:
        return refused
    assert session is not None
    note, feed = read_note(token_cipher(), request.cookie)
    view = views.admin_view(
        admin_overview(),
        csrf_token=session.csrf_token,
        flash=note or _flash(request.query),
        signed_in_as=session.ms_email,
        new_feed_url=feed,
    )
    return _page(200, pages.render_admin(view))


@_guarded
def admin_overrides(request: WebRequest) -> WebResponse:
    from web.links import record_admin_action, set_override

    admin, refused = _admin_post_guard(request)
    if refused:
        return refused
    assert admin is not None
    email = request.form.get("ms_email", "").strip()
    raw_id = request.form.get("syncro_user_id", "").strip()
    if not email or "@" not in email or len(email) > 256:
        return _error("bad_request", status=400, detail="Enter the Microsoft account's email address.")
    if raw_id and _tech_id(raw_id) is None:
        return _error("bad_request", status=400, detail="A Syncro user id is a whole number.")
    problem = set_override(email, _tech_id(raw_id))
    if problem:
        return _error("bad_request", status=400, detail=problem)
    action = "override" if raw_id else "override_removed"
    record_admin_action(_actor(admin), action, _tech_id(raw_id), detail=email)
    return redirect(f"{ADMIN_PATH}?saved=1")


@_guarded
def admin_remove(request: WebRequest) -> WebResponse:
    """An admin releases a tech's link (so another account may link), turns their feed off and
    signs them out everywhere."""
    from web.links import record_admin_action, remove_tech

    admin, refused = _admin_post_guard(request)
    if refused:
        return refused
    assert admin is not None
    tech = _tech_id(request.form.get("syncro_user_id", ""))
    if tech is None:
        return _error("bad_request", status=400, detail="A Syncro user id is a whole number.")
    remove_tech(tech)
    record_admin_action(_actor(admin), "remove", tech)
    return redirect(f"{ADMIN_PATH}?removed=1")


def _admin_post_guard(request: WebRequest) -> tuple[Session | None, WebResponse | None]:
    """A POST by a signed-in admin with this session's CSRF token, or the page refusing it."""
    _, refused = _post_guard(request)
    if refused:
        return None, refused
    return _admin_session(request)


def _tech_id(raw: str) -> int | None:
    """A Syncro user id from a form or query field: ASCII digits only (no sign, spaces or other
    scripts' digits, which int() would take), in range; None otherwise."""
    from web.ids import syncro_user_id_from

    return syncro_user_id_from(raw.strip())


def _actor(session: Session) -> str:
    """Who did an admin action, for the admin log: the account's sign-in name and its ids."""
    return f"{session.ms_email} (Microsoft account {session.account})"


# --- the admin's actions for one tech (the overview's cards) ------------------------------------

_ADMIN_ACTIONS = ("sync", "issue_feed", "revoke_feed", "set_token", "clear_token", "restore", "confirm_match")


@_guarded
def admin_tech(request: WebRequest) -> WebResponse:
    """One action of the admin overview for one tech: ``action`` and ``syncro_user_id`` in the form."""
    admin, refused = _admin_post_guard(request)
    if refused:
        return refused
    assert admin is not None
    action = request.form.get("action", "")
    tech = _tech_id(request.form.get("syncro_user_id", ""))
    if action not in _ADMIN_ACTIONS:
        return _error("bad_request", status=400, detail="That is not an action of the admin overview.")
    if tech is None:
        return _error("bad_request", status=400, detail="A Syncro user id is a whole number.")
    outcome = _ADMIN_HANDLERS[action](admin, tech, request.form)
    if outcome.happened:  # a refused action changed nothing: nothing to log
        from web.links import record_admin_action

        record_admin_action(_actor(admin), action, tech, detail=outcome.detail)
    target = outcome.target or f"{ADMIN_PATH}#card-{tech}"
    return _redirect_with_note(target, outcome.note, feed_url=outcome.feed_url)


@dataclass(frozen=True)
class _Outcome:
    """What one admin action did: the notice for the page, a detail for the admin log, a feed URL
    to show once, where to go (default: the tech's card). ``happened`` False: refused, unchanged."""

    note: Notice
    detail: str = ""
    feed_url: str = ""
    target: str = ""
    happened: bool = True


def _refused(text: str, target: str = "") -> _Outcome:
    return _Outcome(Notice("problem", text), target=target, happened=False)


def _admin_sync(admin: Session, tech: int, form: Mapping[str, str]) -> _Outcome:
    from services import sync_deps
    from sync.engine import sync_tech

    if not _allowed(f"sync-now:{tech}", SYNC_NOW_CLICKS):
        return _refused(_TOO_MANY_SYNCS)
    deps = sync_deps()
    report = sync_tech(tech, deps=deps)
    _record_sync_now(deps, report)
    kind = "done" if report.status in ("synced", "busy") else "problem"
    return _Outcome(Notice(kind, sync_summary(report)), detail=report.status)


def _admin_issue_feed(admin: Session, tech: int, form: Mapping[str, str]) -> _Outcome:
    from ics.feed_tokens import issue_feed_url
    from services import storage_account

    url = issue_feed_url(storage_account(), tech)
    note = Notice("done", "A new feed URL is at the top of this page; the old one stopped working.")
    return _Outcome(note, feed_url=f"{tech} {url}", target=ADMIN_PATH)


def _admin_revoke_feed(admin: Session, tech: int, form: Mapping[str, str]) -> _Outcome:
    from ics.feed_tokens import revoke_feed_urls
    from services import storage_account

    revoked = revoke_feed_urls(storage_account(), tech)
    return _Outcome(Notice("done", "The feed URL is off: apps subscribed to it get nothing now."), f"{revoked} revoked")


def _admin_set_token(admin: Session, tech: int, form: Mapping[str, str]) -> _Outcome:
    from services import syncro_token_service
    from sync.errors import ServiceError
    from sync.syncro_tokens import SyncroTokenRejected

    if not _allowed(f"syncro-token:{tech}", TOKEN_CHECKS):
        return _refused(_TOO_MANY_TOKEN_CHECKS)
    try:
        syncro_token_service().save(tech, form.get("token", ""), set_by="admin")
    except SyncroTokenRejected as error:
        return _refused(str(error))
    except ServiceError:
        return _refused("Syncro could not check the token just now. Try again in a minute.")
    _forget_attempts(f"syncro-token:{tech}")
    _first_sync(tech, "syncro-token")
    return _Outcome(Notice("done", "Their Syncro API token is saved: their appointments arrive within a minute."))


def _admin_clear_token(admin: Session, tech: int, form: Mapping[str, str]) -> _Outcome:
    from services import syncro_token_service

    syncro_token_service().forget(tech)
    words = "Their Syncro API token is cleared: their appointments are not read until one is set."
    return _Outcome(Notice("warning", words))


def _admin_restore(admin: Session, tech: int, form: Mapping[str, str]) -> _Outcome:
    from services import sync_deps
    from storage.errors import NotFound
    from storage.recycle_bin import is_entry_id
    from sync.recycle import restore_entry

    bin_page = f"{ADMIN_BIN_PATH}?syncro_user_id={tech}"
    entry = form.get("entry", "")
    if not is_entry_id(entry):
        return _refused("No such recycle-bin entry for this technician.", bin_page)
    try:
        restore_entry(tech, entry, deps=sync_deps())
    except NotFound:
        return _refused("No such recycle-bin entry for this technician (restored already?).", bin_page)
    note = Notice("done", "Restored: it is back where it was deleted, with every field it had.")
    return _Outcome(note, detail=entry, target=bin_page)


def _admin_confirm_match(admin: Session, tech: int, form: Mapping[str, str]) -> _Outcome:
    from web.links import confirm_match

    account = confirm_match(tech, by=admin.ms_email)
    if account is None:
        return _refused("That technician is not linked (any more): there is no match to confirm.")
    return _Outcome(Notice("done", f"Confirmed: {account} is this technician's Microsoft account."), account)


_ADMIN_HANDLERS = {
    "sync": _admin_sync,
    "issue_feed": _admin_issue_feed,
    "revoke_feed": _admin_revoke_feed,
    "set_token": _admin_set_token,
    "clear_token": _admin_clear_token,
    "restore": _admin_restore,
    "confirm_match": _admin_confirm_match,
}


@_guarded
def admin_bin(request: WebRequest) -> WebResponse:
    """A tech's recycle bin, for an admin, with a Restore button per entry."""
    from services import token_cipher
    from web import pages
    from web.flash import read_note

    admin, refused = _admin_session(request)
    if refused:
        return refused
    assert admin is not None
    tech = _tech_id(request.query.get("syncro_user_id", ""))
    if tech is None:
        return _error("bad_request", status=400, detail="A Syncro user id is a whole number.")
    note, _ = read_note(token_cipher(), request.cookie)
    view = _recycle_bin_view(tech, admin, note)
    return _page(200, pages.render_recycle_bin(view))


def _recycle_bin_view(tech: int, admin: Session, note: Notice | None) -> RecycleBinView:
    from services import storage_account, syncro_client
    from web.views import BinEntry, RecycleBinView

    account = storage_account()
    name = next((u.full_name for u in syncro_client().users() if u.id == tech), "Syncro user")
    entries = tuple(
        BinEntry(
            entry_id=e.entry_id,
            what=str((e.content or {}).get("summary") or "an appointment"),
            where="Syncro" if e.side == "syncro" else "Outlook",
            deleted_at=e.deleted_at,
            reason=e.reason or "deleted on the other side",
        )
        for e in account.recycle_bin.list_entries(tech)
    )
    return RecycleBinView(
        tech=f"{name} (#{tech})",
        syncro_user_id=str(tech),
        entries=entries,
        now=account.clock(),
        signed_in_as=admin.ms_email,
        csrf_token=admin.csrf_token,
        flash=note,
    )


def form_only(request: WebRequest, *, accept: str | None) -> WebResponse:
    """A GET on a route only forms POST to: a page for a browser, a 405 in JSON for anything else."""
    import json

    from web.http import wants_html

    if wants_html(accept):
        return _error("form_only", status=405)
    body = json.dumps({"error": "method_not_allowed", "message": "This address accepts only POST (a form)."})
    return WebResponse(405, body, {"Allow": "POST"}, content_type="application/json; charset=utf-8")


def feed_not_found_page() -> WebResponse:
    """The feed's 404 for a person in a browser (calendar apps keep the JSON answer)."""
    return _error("feed_not_found", status=404)
