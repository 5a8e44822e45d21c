"""The technician's settings page and its forms: calendar and two-way, unlink, a new feed URL, the
tech's own Syncro API token, "Sync now", and the status section's live line.

Each handler takes a `WebRequest` and returns an `http_answer.Answer`; who is asking comes from
the session (`web.page_guards`), what the page shows from `web.settings_views`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from http_answer import JSON_TYPE, Answer, text_answer
from web.flash import FLASHES, flash_from, redirect_with_note
from web.http import WebRequest, page, redirect
from web.page_guards import end_sessions, error_page, guarded, session_of, tech_post_guard
from web.page_parts import Notice
from web.routes import SETTINGS_PATH
from web.tech_actions import save_syncro_token, sync_now

if TYPE_CHECKING:
    from web.session import Session


@guarded
def settings_page(request: WebRequest) -> Answer:
    if request.method == "POST":
        return _save_settings(request)
    session = session_of(request)
    if session is None or session.syncro_user_id is None:
        from web import pages, settings_views

        notice = next((text for key, text in _SIGNED_OUT_NOTICES.items() if request.query.get(key)), None)
        return page(200, pages.render_sign_in(settings_views.sign_in_view(notice=notice)))
    from services import token_cipher
    from web.flash import read_note

    note, feed_url = read_note(token_cipher(), request.cookie)
    return _render_settings(session, flash=note or flash_from(request.query), new_feed_url=feed_url)


# After these the session has ended, so the sign-in page says what happened.
_SIGNED_OUT_NOTICES = {
    "unlinked": "Your calendar is unlinked and you are signed out everywhere.",
    "signedout": "You are signed out, in this browser and any other.",
}


@guarded
def settings_status(request: WebRequest) -> Answer:
    """The status section's moving parts as JSON, for the page's live line (its script polls this
    while a sync is awaited): the same words a reload would show."""
    import json

    from web import settings_views
    from web.links import linking_overview

    session = session_of(request)
    if session is None or session.syncro_user_id is None:
        body = json.dumps({"error": "signed_out", "message": "Sign in again to see your status."})
        return text_answer(401, body, JSON_TYPE)
    view = settings_views.settings_view(linking_overview(session.syncro_user_id), csrf_token=session.csrf_token)
    lines = settings_views.status_lines(view)
    settled = settings_views.live_status(view) is None
    notices = settings_views.notice_lines(view.status.notices, view.now) if view.status is not None else []
    body = json.dumps({**lines, "settled": settled, "notices": notices})
    return text_answer(200, body, JSON_TYPE)


def _render_settings(
    session: Session, *, flash: Notice | str | None = None, new_feed_url: str = "", status: int = 200
) -> Answer:
    from settings import get_settings
    from web import pages, settings_views
    from web.links import linking_overview

    settings = get_settings()
    overview = linking_overview(session.syncro_user_id)
    view = settings_views.settings_view(
        overview,
        csrf_token=session.csrf_token,
        flash=flash or "",
        new_feed_url=new_feed_url,
        signed_in_as=session.ms_email,
        feed_days=(settings.window_past_days, settings.window_future_days),
        is_admin=session.admin,
    )
    return page(status, pages.render_settings(view))


def _save_settings(request: WebRequest) -> Answer:
    from web.links import save_link_choices

    guarded = tech_post_guard(request)
    if isinstance(guarded, Answer):
        return guarded
    _, syncro_user_id = guarded
    calendar_id = request.form.get("calendar_id", "")
    two_way = request.form.get("two_way", "") == "on"
    share_private = request.form.get("share_private", "") == "on"
    if len(calendar_id) > 512:
        return error_page("unknown_calendar", status=400)
    problem = save_link_choices(syncro_user_id, calendar_id=calendar_id, two_way=two_way, share_private=share_private)
    if problem:
        return error_page(problem, status=409 if problem == "not_linked" else 400)
    return redirect(f"{SETTINGS_PATH}?saved=1")


@guarded
def settings_unlink(request: WebRequest) -> Answer:
    from ics.feed_tokens import revoke_feed_urls
    from services import storage_account
    from web.links import unlink

    if request.method == "GET":  # the confirmation, with the choices
        from web import pages, settings_views

        session = session_of(request)
        if session is None or session.syncro_user_id is None:
            return redirect(SETTINGS_PATH)
        view = settings_views.SyncroTokenView(csrf_token=session.csrf_token, signed_in_as=session.ms_email)
        return page(200, pages.render_unlink(view))
    guarded = tech_post_guard(request)
    if isinstance(guarded, Answer):
        return guarded
    session, syncro_user_id = guarded
    feed = request.form.get("feed", "")
    if feed not in ("keep", "revoke"):
        return error_page("bad_request", status=400, detail="Choose whether to keep your calendar feed, then unlink.")
    unlink(syncro_user_id, remove_outlook_events=request.form.get("remove_events", "") == "on")
    if feed == "revoke":
        revoke_feed_urls(storage_account(), syncro_user_id)
    return end_sessions(session.subject, f"{SETTINGS_PATH}?unlinked=1")


@guarded
def settings_new_feed_url(request: WebRequest) -> Answer:
    from web.links import new_feed_url

    guarded = tech_post_guard(request)
    if isinstance(guarded, Answer):
        return guarded
    _, syncro_user_id = guarded
    url = new_feed_url(syncro_user_id)
    # Only a hash of the token is kept (docs/security.md): the URL rides to the page in an
    # encrypted cookie, so a reload shows it again instead of minting another.
    return redirect_with_note(f"{SETTINGS_PATH}?feed=1", FLASHES["feed"], feed_url=url)


@guarded
def settings_syncro_token(request: WebRequest) -> Answer:
    """The tech's own Syncro API token (needed when Syncro hides appointment owners): GET asks for
    it (the second step of linking, or on its own), POST checks it with Syncro and keeps it."""
    if request.method == "GET":
        session = session_of(request)
        if session is None or session.syncro_user_id is None:
            return redirect(SETTINGS_PATH)
        return _render_token_step(session, first_link=request.query.get("step") == "link")
    guarded = tech_post_guard(request)
    if isinstance(guarded, Answer):
        return guarded
    session, syncro_user_id = guarded
    first_link = request.form.get("step") == "link"
    refused = save_syncro_token(syncro_user_id, request.form.get("token", ""), set_by="tech")
    if refused:
        status, problem = refused
        return _render_token_step(session, first_link=first_link, problem=problem, status=status)
    return redirect(f"{SETTINGS_PATH}?linked=1&token=1" if first_link else f"{SETTINGS_PATH}?token=1")


def _render_token_step(session: Session, *, first_link: bool, problem: str = "", status: int = 200) -> Answer:
    from web import pages, settings_views

    view = settings_views.SyncroTokenView(
        csrf_token=session.csrf_token,
        signed_in_as=session.ms_email,
        first_link=first_link,
        flash=Notice("problem", problem) if problem else None,
    )
    return page(status, pages.render_syncro_token(view))


@guarded
def settings_sync_now(request: WebRequest) -> Answer:
    guarded = tech_post_guard(request)
    if isinstance(guarded, Answer):
        return guarded
    session, syncro_user_id = guarded
    note, status = sync_now(syncro_user_id)
    if status is None:  # pressed too often: the page again, saying so
        return _render_settings(session, flash=note, status=429)
    return redirect_with_note(f"{SETTINGS_PATH}?synced=1", note)
