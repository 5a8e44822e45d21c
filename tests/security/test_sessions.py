"""Step 8's medium findings on sessions: a sign-in bound to the browser that began it (login CSRF);
sign-out, unlink and an admin's remove end every copy of a session; every admin action, by page or
by function key, is in the admin log; Microsoft's error text never reaches the page."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from local import demo
from local.formwalk import find_form, follow, submit
from tests.app.linking_support import LinkingStack, unlink
from tests.security.identity_support import session_cookie

pytest_plugins = ["tests.app.linking_support"]

ALEX, BLAKE, _ = demo.TECHS
DANA = demo.DISPATCHER


@pytest.fixture
def alex(linking_stack: LinkingStack):
    session = linking_stack.browser()
    page = linking_stack.sign_in(session, ALEX.sign_in)
    assert page.status_code == 200, page.text
    yield session, page
    linking_stack.forget_link(ALEX.syncro_user_id)


def _copy(linking_stack: LinkingStack, session: requests.Session) -> requests.Session:
    """Another browser holding a copy of ``session``'s cookie (stolen, or kept from before)."""
    thief = linking_stack.browser()
    thief.cookies.set("calendar_session", session_cookie(session), path="/api")
    return thief


def _csrf(page: requests.Response) -> str:
    return find_form(page, form_id="feed").fields["csrf_token"]


# --- login CSRF -----------------------------------------------------------------------------------------


def test_a_callback_opened_in_another_browser_signs_nobody_in(linking_stack: LinkingStack) -> None:
    attacker = linking_stack.browser()
    back = linking_stack.authorize(attacker, ALEX.sign_in)  # Microsoft's redirect, not followed
    callback = back.headers["Location"]
    assert "/api/oauth/callback?" in callback and "state=" in callback
    victim = linking_stack.browser()
    page = victim.get(callback, allow_redirects=False)
    assert page.status_code == 400 and "This sign-in has expired" in page.text
    assert session_cookie(victim) is None and linking_stack.link_of(ALEX.syncro_user_id) is None
    # The browser that began it still finishes it: the refusal took nothing.
    try:
        done = follow(attacker, back)
        assert done.status_code == 200 and session_cookie(attacker)
    finally:
        linking_stack.forget_link(ALEX.syncro_user_id)


def test_the_binding_cookie_is_httponly_lax_and_holds_no_state(linking_stack: LinkingStack) -> None:
    session = linking_stack.browser()
    start = session.get(f"{linking_stack.host_url}/api/oauth/start", allow_redirects=False)
    header = start.headers["Set-Cookie"]
    state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
    assert header.startswith("calendar_signin=") and "HttpOnly" in header and "SameSite=Lax" in header
    assert "Path=/api/oauth" in header and "Max-Age=600" in header and state not in header


def test_microsofts_error_text_never_reaches_the_page(linking_stack: LinkingStack) -> None:
    session = linking_stack.browser()
    start = session.get(f"{linking_stack.host_url}/api/oauth/start", allow_redirects=False)
    state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
    lure = "Your account is locked. Call +1 555 0100 to unlock it"
    query = urlencode(
        {"error": "server_error", "error_description": f"AADSTS50105: {lure}. <b>now</b>", "state": state}
    )
    page = session.get(f"{linking_stack.host_url}/api/oauth/callback?{query}")
    assert page.status_code == 400
    assert lure not in page.text and "0100" not in page.text and "&lt;b&gt;" not in page.text
    assert "<code>AADSTS50105</code>" in page.text  # the code, and our words for it
    assert "given your account access to this app" in page.text


# --- sessions end everywhere -----------------------------------------------------------------------------


def test_sign_out_ends_every_copy_of_the_session(linking_stack: LinkingStack, alex) -> None:
    session, page = alex
    thief = _copy(linking_stack, session)
    assert ALEX.email in thief.get(f"{linking_stack.host_url}/api/settings").text  # the copy works...
    csrf = _csrf(page)
    follow(session, submit(session, page, form_id="signout"))
    settings = thief.get(f"{linking_stack.host_url}/api/settings")
    assert "Sign in with Microsoft" in settings.text and ALEX.email not in settings.text  # ...until sign-out
    refused = thief.post(f"{linking_stack.host_url}/api/settings/feed", data={"csrf_token": csrf})
    assert refused.status_code == 401
    assert not list(linking_stack.storage().feed_tokens.list_for_tech(ALEX.syncro_user_id))


def test_after_unlink_the_old_session_issues_no_feed_url(linking_stack: LinkingStack, alex) -> None:
    session, page = alex
    thief = _copy(linking_stack, session)
    csrf = _csrf(page)
    done = unlink(linking_stack, session, feed="keep")
    assert "unlinked and you are signed out everywhere" in done.text
    refused = thief.post(f"{linking_stack.host_url}/api/settings/feed", data={"csrf_token": csrf})
    assert refused.status_code == 401
    assert not list(linking_stack.storage().feed_tokens.list_for_tech(ALEX.syncro_user_id))


def test_unlink_asks_about_the_feed_and_does_what_was_chosen(linking_stack: LinkingStack) -> None:
    for choice, works in (("keep", True), ("revoke", False)):
        session = linking_stack.browser()
        page = linking_stack.sign_in(session, ALEX.sign_in)
        try:
            with_url = follow(session, submit(session, page, form_id="feed"))
            url = re.search(r"http://[^\"'<\s]+/api/ics/[^\"'<\s]+\.ics", with_url.text).group(0)
            unchosen = submit(session, session.get(f"{linking_stack.host_url}/api/settings/unlink"), form_id="unlink")
            assert unchosen.status_code == 400 and "keep your calendar feed" in unchosen.text
            assert linking_stack.link_of(ALEX.syncro_user_id) is not None  # nothing done
            unlink(linking_stack, session, feed=choice)
            assert linking_stack.link_of(ALEX.syncro_user_id) is None
            assert (linking_stack.browser().get(url).status_code == 200) is works, choice
        finally:
            linking_stack.forget_link(ALEX.syncro_user_id)


def test_an_admin_remove_ends_the_techs_sessions_and_feed_and_is_logged(linking_stack: LinkingStack, alex) -> None:
    session, page = alex
    with_url = follow(session, submit(session, page, form_id="feed"))
    url = re.search(r"http://[^\"'<\s]+/api/ics/[^\"'<\s]+\.ics", with_url.text).group(0)
    admin = linking_stack.browser()
    overview = linking_stack.sign_in(admin, DANA.sign_in, purpose="admin")
    done = follow(admin, submit(admin, overview, form_id=f"remove-{ALEX.syncro_user_id}"))
    assert done.status_code == 200 and "Removed" in done.text
    assert linking_stack.link_of(ALEX.syncro_user_id) is None
    assert linking_stack.browser().get(url).status_code == 404
    assert "Sign in with Microsoft" in session.get(f"{linking_stack.host_url}/api/settings").text
    log = done.text[done.text.index('id="admin-log"') :]
    assert DANA.sign_in in log and "removed the link" in log and "Alex Tech" in log


def test_a_non_admin_cannot_post_admin_actions(linking_stack: LinkingStack, alex) -> None:
    session, page = alex
    csrf = _csrf(page)
    url = f"{linking_stack.host_url}/api/admin/remove"
    refused = session.post(url, data={"csrf_token": csrf, "syncro_user_id": str(BLAKE.syncro_user_id)})
    assert refused.status_code == 403
    assert linking_stack.link_of(ALEX.syncro_user_id) is not None


def test_function_key_actions_are_in_the_admin_log(linking_stack: LinkingStack, alex) -> None:
    key = {"x-functions-key": linking_stack.function_key}
    issued = requests.post(f"{linking_stack.host_url}/api/admin/feeds/{ALEX.syncro_user_id}", headers=key, timeout=30)
    assert issued.status_code in (200, 201), issued.text
    refused = requests.post(f"{linking_stack.host_url}/api/admin/feeds/{ALEX.syncro_user_id}", timeout=30)
    assert refused.status_code == 401  # no key: no action, and nothing logged
    admin = linking_stack.browser()
    overview = linking_stack.sign_in(admin, DANA.sign_in, purpose="admin")
    entries = [e for e in linking_stack.storage().admin_log.latest() if e.action == "issue_feed"]
    assert len(entries) >= 1 and entries[0].syncro_user_id == ALEX.syncro_user_id
    assert re.fullmatch(r"function key [0-9a-f]{8}", entries[0].actor)
    assert linking_stack.function_key not in overview.text and entries[0].actor in overview.text
    assert "issued a new feed URL" in overview.text


def test_a_relink_shows_the_new_accounts_calendars_not_cached_ones(linking_stack: LinkingStack, alex) -> None:
    _, page = alex
    assert "Work Orders" in page.text  # Alex's calendars, now cached for a minute
    second = "alex.laptop@contoso.example"
    user = {"upn": second, "mail": ALEX.email, "name": "Alex Laptop", "password": linking_stack.secrets.password}
    seeded = linking_stack.sim("identity").seed({"users": [user]})["users"]
    linking_stack.sim("graph").seed(
        {
            "mailboxes": [
                {
                    "oid": seeded[0]["oid"],
                    "email": ALEX.email,
                    "upn": second,
                    "tenant_id": demo.TENANT_ID,
                    "calendars": [{"name": "Laptop Calendar", "is_default": True}],
                }
            ]
        }
    )
    admin = linking_stack.browser()
    overview = linking_stack.sign_in(admin, DANA.sign_in, purpose="admin")
    follow(admin, submit(admin, overview, form_id=f"remove-{ALEX.syncro_user_id}"))
    fresh = linking_stack.browser()
    relinked = linking_stack.sign_in(fresh, second)
    assert relinked.status_code == 200, relinked.text
    assert "Laptop Calendar" in relinked.text and "Work Orders" not in relinked.text
