"""What every page handler goes through: who is asking (the signed session cookie, `web.session`),
whether a POST may proceed (a live session and its CSRF token), and the error page when not.

`guarded` turns settings problems and unreachable services into a page that says so, never a
500. Handlers read settings and services lazily, so a misconfigured app still answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING

from http_answer import JSON_TYPE, Answer, text_answer
from web.http import WebRequest, page, redirect

if TYPE_CHECKING:
    from web.session import Session

log = logging.getLogger(__name__)


def error_page(kind: str, *, status: int | None = None, **details: str) -> Answer:
    """The error page for ``kind`` (`web.error_views`), answered with ``status`` or the page's own."""
    from web import pages
    from web.error_views import error_view

    view = error_view(kind, **details)
    return page(status or view.status, pages.render_error(view))


def guarded(handler: Callable[[WebRequest], Answer]) -> Callable[[WebRequest], Answer]:
    """Settings problems and unreachable services become a page that says so, never a 500."""

    @wraps(handler)
    def run(request: WebRequest) -> Answer:
        from settings import SettingsError
        from storage.errors import StorageUnavailable
        from sync.errors import ServiceError

        try:
            return handler(request)
        except SettingsError as error:
            log.error("page %s: %s", handler.__name__, error)
            return error_page("misconfigured", status=503)
        except (StorageUnavailable, ServiceError) as error:
            log.warning("page %s: %s", handler.__name__, type(error).__name__)
            return error_page("service_unavailable", status=503, detail=str(error))

    return run


def session_of(request: WebRequest) -> Session | None:
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
        session = session_of(WebRequest(method="GET", url="", cookie=cookie_header))
    except (StorageError, SettingsError):
        return False
    return session is not None and session.admin


def secure_cookie() -> bool:
    from settings import get_settings

    # Settings allow plain http only on loopback, so the scheme alone says whether the cookie may travel in clear.
    return get_settings().public_base_url.startswith("https://")


def csrf_ok(request: WebRequest, session: Session) -> bool:
    from web.session import check_csrf

    return check_csrf(session, request.form.get("csrf_token", ""))


def post_guard(request: WebRequest) -> tuple[Session | None, Answer | None]:
    """The session of a POST that may proceed, or the page refusing it."""
    if request.form_error:
        return None, error_page("bad_request", status=415, detail=request.form_error)
    session = session_of(request)
    if session is None:
        return None, error_page("session_expired", status=401)
    if not csrf_ok(request, session):
        return None, error_page("csrf", status=403)
    return session, None


def tech_post_guard(request: WebRequest) -> tuple[Session, int] | Answer:
    """A POST by a signed-in technician: their session and Syncro user id, or the page refusing it."""
    session, refused = post_guard(request)
    if refused:
        return refused
    assert session is not None
    if session.syncro_user_id is None:  # an admin's session: no technician's settings to change
        return error_page("session_expired", status=401)
    return session, session.syncro_user_id


def end_sessions(subject: str, target: str) -> Answer:
    """End every session of ``subject`` (this browser's and any copy of its cookie) and go to ``target``."""
    from services import session_codec, storage_account

    storage_account().session_versions.bump(subject)
    return redirect(target, headers={"Set-Cookie": session_codec().clear_cookie(secure=secure_cookie())})


def admin_session(request: WebRequest) -> tuple[Session | None, Answer | None]:
    """An admin's session (the ID token at sign-in carried the SyncAdmin role or an admin group),
    or where to send the browser instead."""
    session = session_of(request)
    if session is None:
        return None, redirect("/api/oauth/start?purpose=admin")
    if not session.admin:
        return None, error_page("not_an_admin", status=403, email=session.ms_email)
    return session, None


def admin_post_guard(request: WebRequest) -> tuple[Session | None, Answer | None]:
    """A POST by a signed-in admin with this session's CSRF token, or the page refusing it."""
    _, refused = post_guard(request)
    if refused:
        return None, refused
    return admin_session(request)


def form_only(*, accept: str | None) -> Answer:
    """A GET on a route only forms POST to: a page for a browser, a 405 in JSON for anything else."""
    import json

    from web.http import wants_html

    if wants_html(accept):
        return error_page("form_only", status=405)
    body = json.dumps({"error": "method_not_allowed", "message": "This address accepts only POST (a form)."})
    return text_answer(405, body, JSON_TYPE, headers={"Allow": "POST"})


def feed_not_found_page() -> Answer:
    """The feed's 404 for a person in a browser (calendar apps keep the JSON answer)."""
    return error_page("feed_not_found", status=404)
