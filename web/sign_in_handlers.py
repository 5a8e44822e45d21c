"""Signing in and out: Microsoft sign-in (MSAL, `oauth.flow`) starts and ends here, and sets the
session cookie; a tech's first sign-in also asks for their Graph subscription and first sync."""

from __future__ import annotations

import logging

from http_answer import Answer
from sync.job_reasons import JobReason
from web.http import WebRequest, redirect
from web.page_guards import end_sessions, error_page, guarded, post_guard, secure_cookie
from web.routes import ADMIN_PATH, SETTINGS_PATH, SYNCRO_TOKEN_PATH
from web.tech_actions import first_sync

log = logging.getLogger(__name__)


@guarded
def oauth_start(request: WebRequest) -> Answer:
    from oauth.flow import Purpose, start_sign_in
    from services import linking_services
    from web.session import sign_in_cookie

    raw = request.query.get("purpose", "link")
    try:
        purpose = Purpose(raw)
    except ValueError:
        return error_page("bad_request", status=400, detail="purpose must be link or admin")
    hint = request.query.get("login_hint", "").strip()
    if len(hint) > 256 or (hint and "@" not in hint):
        return error_page("bad_request", status=400, detail="login_hint must be an email address")
    started = start_sign_in(linking_services(), purpose=purpose, login_hint=hint or None)
    # The callback must come back to this browser: it carries a hash of the state (login CSRF).
    bound = sign_in_cookie(started.state, request.cookie, secure=secure_cookie())
    return redirect(started.url, headers={"Set-Cookie": bound})


@guarded
def oauth_callback(request: WebRequest) -> Answer:
    from oauth.flow import AdminConsentGranted, Purpose, Refusal, finish_sign_in, is_admin_consent
    from services import linking_services, session_codec, storage_account
    from storage.session_versions import account_subject, tech_subject
    from web.links import forget_cached_calendars, needs_syncro_token
    from web.session import sign_in_started_here

    if not is_admin_consent(request.query) and not sign_in_started_here(request.query.get("state", ""), request.cookie):
        # Not begun in this browser: someone else's sign-in, or a link sent to trick this browser
        # into an attacker's session (login CSRF). The flow stays where it is; nobody is signed in.
        return error_page("state_invalid")
    outcome = finish_sign_in(linking_services(), request.query)
    if isinstance(outcome, AdminConsentGranted):
        return error_page("admin_consent_granted")
    if isinstance(outcome, Refusal):
        log.info("sign-in refused: %s", outcome.kind.value)
        return error_page(
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
            first_sync(tech, JobReason.LINKED)
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
    cookie = codec.cookie(session, secure=secure_cookie())
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


@guarded
def sign_out(request: WebRequest) -> Answer:
    session, refused = post_guard(request)
    if refused:
        return refused
    assert session is not None
    return end_sessions(session.subject, f"{SETTINGS_PATH}?signedout=1")
