"""Linking a technician's calendar, over real HTTP: the local host serving function_app.py, the
identity, Graph and Syncro simulators over TLS with the demo seed, Azurite. (The same paths in
a real browser are in tests/browser/.)"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from local import demo
from local.formwalk import find_form, follow, forms_of, submit
from storage.errors import NotFound
from storage.links import LinkStatus
from tests.app.linking_support import LinkingStack, unlink

pytest_plugins = ["tests.app.linking_support"]

ALEX, BLAKE, CASEY = demo.TECHS


@pytest.fixture
def alex_session(linking_stack: LinkingStack):
    session = linking_stack.browser()
    page = linking_stack.sign_in(session, ALEX.sign_in)
    assert page.status_code == 200, page.text
    yield session, page
    linking_stack.forget_link(ALEX.syncro_user_id)


def test_the_settings_page_asks_a_stranger_to_sign_in(linking_stack: LinkingStack) -> None:
    page = linking_stack.browser().get(f"{linking_stack.host_url}/api/settings")
    assert page.status_code == 200
    assert "Sign in with Microsoft" in page.text and 'href="/api/oauth/start"' in page.text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_a_tech_links_on_the_default_calendar_and_picks_calendar_and_two_way(
    linking_stack: LinkingStack, alex_session
) -> None:
    session, page = alex_session
    assert urlsplit(page.url).path == "/api/settings" and "linked=1" in page.url
    cookie = next(c for c in session.cookies if c.name == "calendar_session")
    assert cookie.has_nonstandard_attr("HttpOnly") and not cookie.secure  # Secure outside loopback only
    link = linking_stack.storage().links.get_link(ALEX.syncro_user_id)
    assert (link.status, link.calendar_name, link.two_way) == (LinkStatus.ACTIVE, "Calendar", False)
    assert link.email == ALEX.email
    assert ALEX.email in page.text and "Work Orders" in page.text

    work_orders = _calendar_id(page, "Work Orders")
    saved = follow(
        session, submit(session, page, form_id="choices", fields={"calendar_id": work_orders, "two_way": "on"})
    )
    assert saved.status_code == 200 and "Saved" in saved.text
    link = linking_stack.storage().links.get_link(ALEX.syncro_user_id)
    assert (link.calendar_id, link.calendar_name, link.two_way) == (work_orders, "Work Orders", True)


def test_an_unknown_calendar_or_a_post_without_csrf_changes_nothing(linking_stack: LinkingStack, alex_session) -> None:
    session, page = alex_session
    before = linking_stack.storage().links.get_link(ALEX.syncro_user_id)
    bad_calendar = submit(session, page, form_id="choices", fields={"calendar_id": "AAMkNotYours=", "two_way": "on"})
    assert bad_calendar.status_code == 400 and "calendar" in bad_calendar.text.lower()
    no_csrf = submit(session, page, form_id="choices", fields={"two_way": "on"}, drop=("csrf_token",))
    assert no_csrf.status_code == 403
    forged = submit(session, page, form_id="choices", fields={"csrf_token": "x" * 43, "two_way": "on"})
    assert forged.status_code == 403
    no_session = submit(linking_stack.browser(), page, form_id="choices", fields={"two_way": "on"})
    assert no_session.status_code == 401
    after = linking_stack.storage().links.get_link(ALEX.syncro_user_id)
    assert (after.calendar_id, after.two_way) == (before.calendar_id, before.two_way)


def test_a_hostile_form_body_is_refused_with_a_page(linking_stack: LinkingStack, alex_session) -> None:
    session, _ = alex_session
    url = f"{linking_stack.host_url}/api/settings"
    as_json = session.post(url, json={"two_way": "on"}, allow_redirects=False)
    assert as_json.status_code == 415 and "form" in as_json.text
    junk = session.post(
        url, data=b"\xff\xfe=\xff", headers={"Content-Type": "application/x-www-form-urlencoded"}, allow_redirects=False
    )
    assert junk.status_code in (400, 403, 415) and "Traceback" not in junk.text


def test_a_new_feed_url_is_shown_once_and_replaces_the_old(linking_stack: LinkingStack, alex_session) -> None:
    session, page = alex_session
    posted = submit(session, page, form_id="feed")
    assert posted.status_code == 303  # post/redirect/get: a reload can never mint another URL
    first = follow(session, posted)
    assert first.status_code == 200 and "at the top of this page" in first.text
    url = _feed_url(first.text, linking_stack.host_url)
    reloaded = session.get(first.url)
    assert _feed_url(reloaded.text, linking_stack.host_url) == url  # the same URL, still working
    assert len(list(linking_stack.storage().feed_tokens.list_for_tech(ALEX.syncro_user_id))) == 1
    assert linking_stack.browser().get(url).status_code == 200
    second = follow(session, submit(session, first, form_id="feed"))
    assert _feed_url(second.text, linking_stack.host_url) != url
    tokens = list(linking_stack.storage().feed_tokens.list_for_tech(ALEX.syncro_user_id))
    assert sum(t.active for t in tokens) == 1 and len(tokens) == 2
    elsewhere = linking_stack.browser()
    linking_stack.sign_in(elsewhere, ALEX.sign_in)
    again = elsewhere.get(f"{linking_stack.host_url}/api/settings")
    assert "/api/ics/" not in again.text  # only a hash is kept: another browser never sees the URL


def test_unlink_forgets_the_token_and_the_link(linking_stack: LinkingStack, alex_session) -> None:
    session, _ = alex_session
    done = unlink(linking_stack, session, feed="keep")
    assert done.status_code == 200
    assert linking_stack.link_of(ALEX.syncro_user_id) is None
    with pytest.raises(NotFound):
        linking_stack.storage().token_caches.get_cache(ALEX.syncro_user_id)


def test_unlink_asking_to_remove_our_events_keeps_the_link_for_the_engine(
    linking_stack: LinkingStack, alex_session
) -> None:
    session, _ = alex_session
    unlink(linking_stack, session, remove_events="on", feed="keep")
    link = linking_stack.storage().links.get_link(ALEX.syncro_user_id)
    assert link.status is LinkStatus.UNLINKING and link.remove_outlook_events
    again = linking_stack.sign_in(session, ALEX.sign_in)  # signing in again cancels the unlink
    assert again.status_code == 200
    link = linking_stack.storage().links.get_link(ALEX.syncro_user_id)
    assert link.status is LinkStatus.ACTIVE and not link.remove_outlook_events


def test_a_tech_whose_mail_differs_from_the_sign_in_name_is_matched_by_mail(linking_stack: LinkingStack) -> None:
    session = linking_stack.browser()
    try:
        page = linking_stack.sign_in(session, BLAKE.sign_in)
        assert page.status_code == 200, page.text
        link = linking_stack.storage().links.get_link(BLAKE.syncro_user_id)
        assert link.email == BLAKE.microsoft_mail  # case kept as Microsoft has it
    finally:
        linking_stack.forget_link(BLAKE.syncro_user_id)


def test_a_personal_account_is_turned_away_by_microsoft_before_it_grants_anything(
    linking_stack: LinkingStack,
) -> None:
    # Sign-in is bound to the MSP's tenant, so Microsoft's own sign-in page refuses a personal
    # account: no consent page, no code, nothing reaches the product.
    page = linking_stack.sign_in(linking_stack.browser(), CASEY.sign_in)
    assert page.url.startswith(linking_stack.sim_url("identity")), page.url
    assert "personal account" in page.text and "work or school account" in page.text
    assert "consent" not in page.text.lower() and "/api/oauth/callback" not in page.url
    assert linking_stack.link_of(CASEY.syncro_user_id) is None


def test_consent_refused_is_a_clear_400_and_stores_nothing(linking_stack: LinkingStack) -> None:
    password = linking_stack.secrets.password
    linking_stack.sim("identity").seed({"users": [{"upn": "new.hire@contoso.example", "password": password}]})
    page = linking_stack.sign_in(linking_stack.browser(), "new.hire@contoso.example", decision="cancel")
    assert page.status_code == 400, page.text
    assert "consent" in page.text.lower() or "permission" in page.text.lower()
    assert list(linking_stack.storage().links.list_links()) == []


def test_a_replayed_or_unknown_state_is_refused(linking_stack: LinkingStack) -> None:
    session = linking_stack.browser()
    answer = linking_stack.authorize(session, ALEX.sign_in)
    callback = answer.headers["location"]
    try:
        assert follow(session, answer).status_code == 200
        replay = linking_stack.browser().get(callback, allow_redirects=False)
        assert replay.status_code == 400 and "sign" in replay.text.lower()
        query = parse_qs(urlsplit(callback).query)
        forged = linking_stack.browser().get(
            f"{linking_stack.host_url}/api/oauth/callback",
            params={"code": query["code"][0], "state": "not-a-state"},
            allow_redirects=False,
        )
        assert forged.status_code == 400
    finally:
        linking_stack.forget_link(ALEX.syncro_user_id)


def test_bad_start_parameters_get_a_400_page(linking_stack: LinkingStack) -> None:
    bad = linking_stack.browser().get(f"{linking_stack.host_url}/api/oauth/start", params={"purpose": "<script>"})
    assert bad.status_code == 400 and "<script>" not in bad.text


def test_a_tech_unknown_to_syncro_is_named_and_an_admin_override_lets_them_link(linking_stack: LinkingStack) -> None:
    identity = linking_stack.sim("identity")
    identity.seed(
        {"users": [{"upn": "sam.sub@contoso.example", "password": linking_stack.secrets.password, "name": "Sam Sub"}]}
    )
    refused = linking_stack.sign_in(linking_stack.browser(), "sam.sub@contoso.example")
    assert refused.status_code == 403 and "sam.sub@contoso.example" in refused.text

    admin = linking_stack.browser()
    overview = linking_stack.sign_in(admin, demo.DISPATCHER.sign_in, purpose="admin")
    assert overview.status_code == 200 and "Alex Tech" in overview.text and "Casey Home" in overview.text
    form = find_form(overview, form_id="override")
    assert form is not None
    mapped = follow(
        admin,
        submit(
            admin,
            overview,
            form_id="override",
            fields={"ms_email": "sam.sub@contoso.example", "syncro_user_id": str(CASEY.syncro_user_id)},
        ),
    )
    assert mapped.status_code == 200
    try:
        linked = linking_stack.sign_in(linking_stack.browser(), "sam.sub@contoso.example")
        assert linked.status_code == 200, linked.text
        assert linking_stack.storage().links.get_link(CASEY.syncro_user_id).email == "sam.sub@contoso.example"
    finally:
        linking_stack.forget_link(CASEY.syncro_user_id)
        linking_stack.storage().overrides.remove_override("sam.sub@contoso.example")


def test_a_tech_is_not_an_admin(linking_stack: LinkingStack) -> None:
    page = linking_stack.sign_in(linking_stack.browser(), ALEX.sign_in, purpose="admin")
    try:
        assert page.status_code == 403
    finally:
        linking_stack.forget_link(ALEX.syncro_user_id)


def test_admin_links_json_needs_the_function_key(linking_stack: LinkingStack, alex_session) -> None:
    url = f"{linking_stack.host_url}/api/admin/links"
    assert requests.get(url, timeout=30).status_code == 401
    listed = requests.get(url, headers={"x-functions-key": linking_stack.function_key}, timeout=30)
    assert listed.status_code == 200
    [row] = [r for r in listed.json()["links"] if r["syncro_user_id"] == ALEX.syncro_user_id]
    assert row["status"] == "active" and row["calendar_name"] == "Calendar"


def test_a_tenant_that_needs_admin_approval(linking_stack: LinkingStack) -> None:
    identity_url = linking_stack.sim_url("identity")
    control = requests.Session()
    control.verify = str(linking_stack.tls.ca_bundle)
    control.trust_env = False
    tenant = demo.TENANT_ID
    assert control.patch(f"{identity_url}/_sim/tenants/{tenant}", json={"user_consent": False}).status_code == 200
    try:
        control.delete(f"{identity_url}/_sim/users/{BLAKE.sign_in}/consents")
        browser = linking_stack.browser()
        page = linking_stack.sign_in(browser, BLAKE.sign_in)
        if page.status_code == 200 and forms_of(page.text):  # Microsoft's "Need admin approval" page: go back
            page = follow(browser, submit(browser, page))
        assert page.status_code == 400, page.text
        assert "/v2.0/adminconsent" in page.text and "admin" in page.text.lower()
    finally:
        control.patch(f"{identity_url}/_sim/tenants/{tenant}", json={"user_consent": True})
        linking_stack.forget_link(BLAKE.syncro_user_id)


def _calendar_id(page: requests.Response, name: str) -> str:
    import re

    match = re.search(r'value="([^"]+)"[^>]*>\s*<label[^>]*>\s*' + re.escape(name), page.text)
    if match is None:
        match = re.search(
            r'id="(calendar-\d+)" value="([^"]+)"[^>]*>\s*<label for="\1">\s*' + re.escape(name), page.text
        )
        assert match, page.text
        return match.group(2)
    return match.group(1)


def _feed_url(html: str, host_url: str) -> str:
    import re

    match = re.search(re.escape(host_url) + r"/api/ics/[A-Za-z0-9_-]{43}\.ics", html)
    assert match, html
    return match.group(0)


def test_the_settings_page_calls_graph_at_most_once_per_render(linking_stack: LinkingStack, alex_session) -> None:
    session, _ = alex_session
    graph = linking_stack.browser()
    counters = f"{linking_stack.sim_url('graph')}/_sim/counters"

    def calendar_reads() -> int:
        return sum(
            n for route, n in graph.get(counters).json().items() if route.startswith("GET") and "calendars" in route
        )

    before = calendar_reads()
    for _ in range(3):
        assert session.get(f"{linking_stack.host_url}/api/settings").status_code == 200
    assert calendar_reads() - before <= 1  # calendars are cached briefly between renders


def test_a_revoked_grant_shows_needs_relink_on_the_page(
    linking_stack: LinkingStack, alex_session, monkeypatch: pytest.MonkeyPatch
) -> None:
    import msal.application
    import msal.token_cache

    import services
    from web.links import forget_cached_calendars

    clock = linking_stack.sim("identity").control.clock
    # MSAL judges expiry by its own clock: let it read the simulators' (the host runs in this process).
    shim = type("SimTime", (), {"time": staticmethod(clock.timestamp), "sleep": staticmethod(__import__("time").sleep)})
    monkeypatch.setattr(msal.application, "time", shim)
    monkeypatch.setattr(msal.token_cache, "time", shim)
    session, _ = alex_session
    control = linking_stack.browser()
    revoked = control.post(f"{linking_stack.sim_url('identity')}/_sim/users/{ALEX.sign_in}/revoke")
    assert revoked.status_code in (200, 204)
    clock.advance(3700)  # the access token expires: MSAL must refresh, and is refused
    forget_cached_calendars(ALEX.syncro_user_id)
    try:
        page = session.get(f"{linking_stack.host_url}/api/settings")
        assert page.status_code == 200
        assert "sign in again" in page.text.lower()
        assert linking_stack.storage().links.get_link(ALEX.syncro_user_id).status is LinkStatus.NEEDS_RELINK
        relinked = linking_stack.sign_in(session, ALEX.sign_in)
        assert relinked.status_code == 200
        assert services.token_service().access_token_for(ALEX.syncro_user_id)
    finally:
        clock.reset()


def test_reencrypt_moves_token_caches_to_the_current_key_with_the_master_key(
    linking_stack: LinkingStack, alex_session
) -> None:
    url = f"{linking_stack.host_url}/api/admin/reencrypt"
    assert requests.post(url, headers={"x-functions-key": linking_stack.function_key}, timeout=30).status_code == 401
    done = requests.post(url, headers={"x-functions-key": linking_stack.master_key}, timeout=30)
    assert done.status_code == 200 and done.json() == {"reencrypted": 0, "still_under_old_keys": [], "done": True}


def test_a_tampered_code_is_refused_and_nothing_is_stored(linking_stack: LinkingStack) -> None:
    session = linking_stack.browser()
    answer = linking_stack.authorize(session, ALEX.sign_in)
    parts = urlsplit(answer.headers["location"])
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query["code"] = query["code"][:-4] + "AAAA"
    refused = session.get(f"{linking_stack.host_url}/api/oauth/callback", params=query, allow_redirects=False)
    assert refused.status_code == 400 and "Traceback" not in refused.text
    assert linking_stack.link_of(ALEX.syncro_user_id) is None
    with pytest.raises(NotFound):
        linking_stack.storage().token_caches.get_cache(ALEX.syncro_user_id)


def test_sync_now_runs_a_sync_and_says_what_it_did(linking_stack: LinkingStack, alex_session) -> None:
    session, page = alex_session
    assert find_form(page, form_id="sync-now")
    refused = submit(session, page, form_id="sync-now", drop=("csrf_token",))
    assert refused.status_code == 403
    done = follow(session, submit(session, page, form_id="sync-now"))
    assert done.status_code == 200, done.text
    assert "Synced:" in done.text or "already running" in done.text
