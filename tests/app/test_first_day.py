"""Step 10 over real HTTP: pages for people and JSON for programs, one address per person, the live
status endpoint, and the admin overview's per-tech actions (each recorded in the admin log; a
refused one changes and records nothing). The same flows in Chromium are in tests/browser."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from local import demo
from local.formwalk import follow
from tests.app.linking_support import LinkingStack

pytest_plugins = ["tests.app.linking_support"]

ALEX, BLAKE, CASEY = demo.TECHS
DANA = demo.DISPATCHER
HTML = {"Accept": "text/html,application/xhtml+xml"}
FEED_URL = re.compile(r"http://[^\"'<\s]+/api/ics/[^\"'<\s]+\.ics")


@pytest.fixture
def blake(linking_stack: LinkingStack) -> Iterator[tuple[requests.Session, requests.Response]]:
    session = linking_stack.browser()
    page = linking_stack.sign_in(session, BLAKE.sign_in)
    assert page.status_code == 200, page.text
    yield session, page
    linking_stack.forget_link(BLAKE.syncro_user_id)


@pytest.fixture
def admin(linking_stack: LinkingStack) -> tuple[requests.Session, requests.Response]:
    session = linking_stack.browser()
    page = linking_stack.sign_in(session, DANA.sign_in, purpose="admin")
    assert page.status_code == 200 and "Technicians and their calendars" in page.text
    return session, page


def _card(page: requests.Response, tech: int) -> str:
    return next(card for card in page.text.split("<article")[1:] if f"#{tech}<" in card)


def _act(
    session: requests.Session, page: requests.Response, tech: int, action: str, **fields: str
) -> requests.Response:
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    url = page.url.split("/api/")[0] + "/api/admin/tech"
    data = {"csrf_token": csrf, "syncro_user_id": str(tech), "action": action, **fields}
    return session.post(url, data=data, allow_redirects=False)


def _log(linking_stack: LinkingStack) -> list[tuple[str, int | None]]:
    return [(e.action, e.syncro_user_id) for e in linking_stack.storage().admin_log.latest()]


# --- pages for people, JSON for programs -------------------------------------------------------------


def test_a_browser_on_a_form_only_address_gets_a_page_and_a_program_gets_json(
    linking_stack: LinkingStack, blake
) -> None:
    session, _ = blake
    for path in ("/api/settings/feed", "/api/settings/sync", "/api/settings/signout", "/api/admin/tech"):
        page = session.get(f"{linking_stack.host_url}{path}", headers=HTML)
        assert page.status_code == 405 and "text/html" in page.headers["Content-Type"], path
        assert "This address is for a button on your settings page" in page.text
        program = session.get(f"{linking_stack.host_url}{path}")
        assert program.status_code == 405 and program.json()["error"] == "method_not_allowed"
    assert not list(linking_stack.storage().feed_tokens.list_for_tech(BLAKE.syncro_user_id))  # nothing minted
    assert "Sign out" in session.get(f"{linking_stack.host_url}/api/settings").text  # still signed in


def test_a_dead_feed_address_is_a_page_for_a_person_and_json_for_a_calendar_app(linking_stack: LinkingStack) -> None:
    url = f"{linking_stack.host_url}/api/ics/{'x' * 43}.ics"
    page = requests.get(url, headers=HTML, timeout=30)
    assert page.status_code == 404 and "<h1>This calendar feed address doesn&#39;t work</h1>" in page.text
    assert 'href="/api/settings"' in page.text
    app = requests.get(url, headers={"Accept": "text/calendar"}, timeout=30)
    assert app.status_code == 404 and app.json()["error"] == "not_found"


# --- one address per person, and the live status ------------------------------------------------------


def test_one_address_per_person_the_one_syncro_knows(linking_stack: LinkingStack, blake) -> None:
    _, page = blake
    # Blake signs in to Microsoft as b.tech@..., Syncro knows him as his mail: that one is shown.
    assert f"Signed in as {BLAKE.microsoft_mail}." in page.text
    assert f"Linked to <strong>{BLAKE.microsoft_mail}</strong>" in page.text
    assert page.text.count(BLAKE.sign_in) == 1 and f"You sign in to Microsoft as {BLAKE.sign_in}" in page.text


def test_the_status_endpoint_says_what_a_reload_would(linking_stack: LinkingStack, blake) -> None:
    session, page = blake
    status = session.get(f"{linking_stack.host_url}/api/settings/status").json()
    assert set(status) == {"last_sync", "waiting", "summary", "settled", "notices"}
    assert status["waiting"] in page.text
    assert not status["settled"] and "first sync" in status["summary"]  # nothing ran: no queue pump here
    signed_out = linking_stack.browser().get(f"{linking_stack.host_url}/api/settings/status")
    assert signed_out.status_code == 401 and signed_out.json()["error"] == "signed_out"


def test_an_admin_opening_the_settings_page_sees_their_own(linking_stack: LinkingStack, admin) -> None:
    session, _ = admin
    page = session.get(f"{linking_stack.host_url}/api/settings")
    assert "Link my Outlook calendar" in page.text and "Sign in with Microsoft" not in page.text
    assert 'href="/api/admin"' in page.text


# --- the admin's per-tech actions ----------------------------------------------------------------------


def test_an_admins_feed_url_is_shown_once_at_the_top_and_a_reload_mints_nothing(
    linking_stack: LinkingStack, admin
) -> None:
    session, page = admin
    made = follow(session, _act(session, page, CASEY.syncro_user_id, "issue_feed"))
    url = FEED_URL.search(made.text[: made.text.index('id="techs-h"')]).group(0)
    assert f"New calendar feed URL for {CASEY.name}" in made.text
    again = session.get(made.url)
    assert FEED_URL.search(again.text).group(0) == url
    assert len(list(linking_stack.storage().feed_tokens.list_for_tech(CASEY.syncro_user_id))) == 1
    assert requests.get(url, timeout=30).status_code == 200
    assert "Feed URL</dt><dd>On" in _card(again, CASEY.syncro_user_id)
    off = follow(session, _act(session, again, CASEY.syncro_user_id, "revoke_feed"))
    assert "The feed URL is off" in off.text and requests.get(url, timeout=30).status_code == 404
    assert _log(linking_stack)[:2] == [("revoke_feed", CASEY.syncro_user_id), ("issue_feed", CASEY.syncro_user_id)]


def test_the_admin_sets_clears_and_is_refused_a_token_in_words(linking_stack: LinkingStack, admin) -> None:
    session, page = admin
    before = _log(linking_stack)
    wrong = follow(session, _act(session, page, BLAKE.syncro_user_id, "set_token", token="not-a-token"))
    assert 'class="notice problem"' in wrong.text and _log(linking_stack) == before  # refused: not logged
    token = linking_stack.secrets.tech_tokens[BLAKE.syncro_user_id]
    saved = follow(session, _act(session, wrong, BLAKE.syncro_user_id, "set_token", token=token))
    assert "Their Syncro API token is saved" in saved.text and "by an admin" in _card(saved, BLAKE.syncro_user_id)
    assert token not in saved.text
    cleared = follow(session, _act(session, saved, BLAKE.syncro_user_id, "clear_token"))
    assert 'class="notice warning"' in cleared.text and "Set on" not in _card(cleared, BLAKE.syncro_user_id)
    assert _log(linking_stack)[:2] == [("clear_token", BLAKE.syncro_user_id), ("set_token", BLAKE.syncro_user_id)]


def test_the_admin_confirms_a_match_and_restores_nothing_that_is_not_there(
    linking_stack: LinkingStack, admin, blake
) -> None:
    session, page = admin
    page = session.get(page.url)
    assert "Confirm the Microsoft account is theirs" in _card(page, BLAKE.syncro_user_id)
    confirmed = follow(session, _act(session, page, BLAKE.syncro_user_id, "confirm_match"))
    assert f"Confirmed by {DANA.sign_in}" in _card(confirmed, BLAKE.syncro_user_id)
    assert linking_stack.link_of(BLAKE.syncro_user_id).match_confirmed_by == DANA.sign_in
    bin_page = session.get(f"{linking_stack.host_url}/api/admin/bin?syncro_user_id={BLAKE.syncro_user_id}")
    assert bin_page.status_code == 200 and f"Recycle bin of {BLAKE.name}" in bin_page.text
    before = _log(linking_stack)
    missing = follow(session, _act(session, bin_page, BLAKE.syncro_user_id, "restore", entry="../../x"))
    assert "No such recycle-bin entry" in missing.text and _log(linking_stack) == before


def test_admin_actions_need_an_admin_and_a_known_action(linking_stack: LinkingStack, admin, blake) -> None:
    feeds = linking_stack.storage().feed_tokens
    before = len(list(feeds.list_for_tech(CASEY.syncro_user_id)))
    tech_session, tech_page = blake
    refused = _act(tech_session, tech_page, CASEY.syncro_user_id, "issue_feed")
    assert refused.status_code == 403
    session, page = admin
    assert _act(session, page, CASEY.syncro_user_id, "format_disk").status_code == 400
    assert _act(session, page, CASEY.syncro_user_id, "issue_feed", csrf_token="forged").status_code == 403
    assert len(list(feeds.list_for_tech(CASEY.syncro_user_id))) == before  # nothing minted
