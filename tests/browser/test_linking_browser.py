"""Linking a technician's calendar in a real Chromium: the settings page served by the local Functions host,
Microsoft's sign-in and consent pages from the identity simulator (over the test TLS), the Graph and Syncro
simulators seeded with the demo, Azurite. The same flows over plain HTTP are in tests/app/test_linking.py;
here the browser follows the redirects, keeps the cookies, runs the page's script and lays the page out."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Response, expect

from local import demo
from local.inprocess import Product as LinkingStack  # as tests.app.linking_support names it
from storage.errors import NotFound
from storage.links import LinkStatus

pytest_plugins = ["tests.app.linking_support"]
# MSAL warns whenever response_mode is not form_post; the app's choice, not these tests'.
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")

ALEX, BLAKE, CASEY = demo.TECHS
FEED_URL = re.compile(r"^http://127\.0\.0\.1:\d+/api/ics/[A-Za-z0-9_-]{43}\.ics$")
PHONE = {"width": 390, "height": 844}
# The page names the tech when the handler knows the name; today it never passes one ("Your calendar sync").
SETTINGS_H1 = re.compile(f"^(Calendar sync for {re.escape(ALEX.name)}|Your calendar sync)$")


# --- helpers ---------------------------------------------------------------------------------


class Navigations:
    """The main frame's document responses, in order (redirects included): the last is the page shown."""

    def __init__(self, page: Page) -> None:
        self.responses: list[Response] = []
        page.on("response", self._seen)

    def _seen(self, response: Response) -> None:
        if response.request.is_navigation_request() and response.frame.parent_frame is None:
            self.responses.append(response)

    @property
    def last(self) -> Response:
        return self.responses[-1]


def _sign_in(
    page: Page, stack: LinkingStack, email: str, *, decision: str = "accept", syncro_token: bool = True
) -> Navigations:
    """Settings page -> "Sign in with Microsoft" -> the identity simulator's sign-in page -> its consent page
    (when it asks) -> back on one of the app's pages. Returns the navigations, to read the last page's status."""
    navigations = Navigations(page)
    page.goto(f"{stack.host_url}/api/settings")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.get_by_role("link", name="Sign in with Microsoft").click()

    expect(page).to_have_title("Sign in to your account")
    assert page.url.startswith(stack.sim_url("identity") + "/"), page.url
    page.fill("#email", email)
    page.fill("#password", stack.secrets.password)
    page.click("#signin")

    app_page = page.locator("header .brand")
    consent = page.locator(f"#{decision}")
    expect(consent.or_(app_page)).to_be_visible()
    if consent.is_visible():
        expect(page).to_have_title("Permissions requested")
        consent.click()
    expect(app_page).to_be_visible()
    assert page.url.startswith(stack.host_url + "/api/"), page.url
    token = stack.secrets.tech_token(email)
    if "/api/settings/syncro-token" in page.url and token and syncro_token:  # linking's second step
        expect(page.get_by_role("heading", level=1)).to_have_text("Step 2 of 2: your Syncro API token")
        page.get_by_label("Syncro API token").fill(token)
        page.click("#save-syncro-token")
        expect(page.get_by_role("heading", level=1)).not_to_have_text("Step 2 of 2: your Syncro API token")
    return navigations


def _submit(page: Page, selector: str) -> Response:
    """Clicks a submit button and returns the response of the page it leads to (after redirects)."""
    with page.expect_navigation() as navigation:
        page.click(selector)
    response = navigation.value
    assert response is not None
    return response


def _save_choices(page: Page, *, calendar: str, two_way: bool) -> Response:
    page.locator("#choices").get_by_label(calendar, exact=True).check()
    page.get_by_label("Two-way sync").set_checked(two_way)
    return _submit(page, "#save")


def _choices_of(stack: LinkingStack, tech: demo.DemoUser) -> tuple[str, str, bool]:
    link = stack.storage().links.get_link(tech.syncro_user_id)
    return link.calendar_id, link.calendar_name, link.two_way


@pytest.fixture
def alex_signed_in(page: Page, linking_stack: LinkingStack) -> Iterator[Page]:
    """Alex signed in and linked in ``page`` (on the settings page); unlinked again afterwards."""
    try:
        navigations = _sign_in(page, linking_stack, ALEX.sign_in)
        assert navigations.last.status == 200
        expect(page.get_by_role("heading", level=1)).to_have_text(SETTINGS_H1)
        yield page
    finally:
        linking_stack.forget_link(ALEX.syncro_user_id)


# --- the tests -------------------------------------------------------------------------------


def test_a_tech_links_picks_a_calendar_gets_feed_urls_and_unlinks(page: Page, linking_stack: LinkingStack) -> None:
    assert linking_stack.link_of(ALEX.syncro_user_id) is None
    try:
        navigations = _sign_in(page, linking_stack, ALEX.sign_in)

        # Syncro hides owners: linking's second step took Alex's Syncro token, then the settings
        # page, linked on the default calendar.
        assert navigations.last.status == 200
        assert re.search(r"/api/settings\?linked=1&token=1$", page.url), page.url
        expect(page.get_by_role("status").first).to_have_text(
            "Done: Your Syncro API token is saved: your Syncro appointments arrive in Outlook within a minute."
        )
        expect(page.locator("#syncro-blocked")).to_have_count(0)
        expect(page.get_by_role("heading", level=1)).to_have_text(SETTINGS_H1)
        expect(page.get_by_text(f"Linked to {ALEX.email}")).to_be_visible()
        expect(page.get_by_text(f"Signed in as {ALEX.email}")).to_be_visible()
        [cookie] = [c for c in page.context.cookies(page.url) if c["name"] == "calendar_session"]
        assert (cookie["path"], cookie["httpOnly"], cookie["sameSite"]) == ("/api", True, "Lax")
        link = linking_stack.storage().links.get_link(ALEX.syncro_user_id)
        assert (link.status, link.calendar_name, link.two_way) == (LinkStatus.ACTIVE, "Calendar", False)
        expect(page.get_by_label("Calendar", exact=True)).to_be_checked()
        expect(page.get_by_label("Two-way sync")).not_to_be_checked()

        # Work Orders, two-way: saved, shown, and kept.
        work_orders_id = page.get_by_label("Work Orders", exact=True).get_attribute("value")
        saved = _save_choices(page, calendar="Work Orders", two_way=True)
        assert saved.status == 200 and page.url.endswith("/api/settings?saved=1")
        expect(page.get_by_role("status").first).to_have_text("Done: Saved.")
        expect(page.get_by_label("Work Orders", exact=True)).to_be_checked()
        expect(page.get_by_label("Two-way sync")).to_be_checked()
        assert _choices_of(linking_stack, ALEX) == (work_orders_id, "Work Orders", True)

        # The ICS feed: made once, shown in a read-only field with a Copy button (JS is on).
        feed_button = page.locator("#new-url")
        expect(feed_button).to_have_text("Make my feed URL")
        made = _submit(page, "#new-url")
        assert made.status == 200
        field = page.get_by_label("Your feed URL")
        expect(field).to_be_visible()
        expect(field).to_have_attribute("readonly", "")
        first_url = field.input_value()
        assert FEED_URL.match(first_url), first_url
        expect(page.get_by_role("button", name="Copy")).to_be_visible()
        expect(feed_button).to_have_text("New URL")

        # Reloading the page shows the same URL and mints nothing (post/redirect/get).
        assert page.reload().status == 200
        assert page.get_by_label("Your feed URL").input_value() == first_url
        assert len(list(linking_stack.storage().feed_tokens.list_for_tech(ALEX.syncro_user_id))) == 1

        # A new URL replaces it.
        assert _submit(page, "#new-url").status == 200
        second_url = page.get_by_label("Your feed URL").input_value()
        assert FEED_URL.match(second_url) and second_url != first_url
        tokens = list(linking_stack.storage().feed_tokens.list_for_tech(ALEX.syncro_user_id))
        assert (len(tokens), sum(t.active for t in tokens)) == (2, 1)

        # Unlink asks first, on its own page; Cancel keeps everything.
        page.click("#unlink-start")
        expect(page.get_by_role("heading", level=1)).to_have_text("Unlink your calendar?")
        page.click("#unlink-cancel")
        expect(page.get_by_role("heading", level=1)).to_have_text(SETTINGS_H1)
        assert linking_stack.link_of(ALEX.syncro_user_id) is not None
        page.click("#unlink-start")
        # Unlink, keeping our events in Outlook.
        expect(page.get_by_label(re.compile("Also remove the \\[S\\] events"))).not_to_be_checked()
        page.get_by_label(re.compile("Keep my feed URL working")).check()
        unlinked = _submit(page, "#unlink-button")
        assert unlinked.status == 200 and page.url.endswith("/api/settings?unlinked=1")
        # Unlinking ends the session everywhere: the page is the sign-in page, saying so.
        expect(page.get_by_role("status").first).to_have_text(
            "Your calendar is unlinked and you are signed out everywhere."
        )
        expect(page.get_by_role("link", name="Sign in with Microsoft")).to_be_visible()
        expect(page.locator("#choices")).to_have_count(0)
        expect(page.locator("#unlink")).to_have_count(0)
        assert linking_stack.link_of(ALEX.syncro_user_id) is None
        with pytest.raises(NotFound):
            linking_stack.storage().token_caches.get_cache(ALEX.syncro_user_id)
    finally:
        linking_stack.forget_link(ALEX.syncro_user_id)


def test_a_personal_account_is_turned_away_before_it_grants_anything(page: Page, linking_stack: LinkingStack) -> None:
    # Sign-in is bound to the MSP's tenant: Microsoft's own sign-in page refuses a personal account,
    # before any permission page, and the browser never comes back to the product with a code.
    try:
        page.goto(f"{linking_stack.host_url}/api/settings")
        page.get_by_role("link", name="Sign in with Microsoft").click()
        expect(page).to_have_title("Sign in to your account")
        page.fill("#email", CASEY.sign_in)
        page.fill("#password", linking_stack.secrets.password)
        page.click("#signin")
        expect(page.get_by_role("alert")).to_contain_text("can't sign in here with a personal account")
        assert page.url.startswith(linking_stack.sim_url("identity") + "/"), page.url
        expect(page.locator("#accept")).to_have_count(0)  # no permission page: nothing was granted
        assert "calendar_session" not in {
            c["name"] for c in page.context.cookies(f"{linking_stack.host_url}/api/settings")
        }
        assert list(linking_stack.storage().links.list_links()) == []
    finally:
        linking_stack.forget_link(CASEY.syncro_user_id)


def test_a_tech_unknown_to_syncro_is_named_and_told_what_to_ask(page: Page, linking_stack: LinkingStack) -> None:
    email = "robin.new@contoso.example"
    linking_stack.sim("identity").seed(
        {"users": [{"upn": email, "password": linking_stack.secrets.password, "name": "Robin New"}]}
    )
    navigations = _sign_in(page, linking_stack, email)
    assert navigations.last.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("No Syncro user has this email")
    main = page.locator("main")
    expect(main).to_contain_text(f"You signed in to Microsoft as {email}")
    expect(main).to_contain_text(f"Ask your Syncro admin to either set {email} as your email in Syncro")
    expect(main).to_contain_text("admin overview")
    assert list(linking_stack.storage().links.list_links()) == []


def test_consent_refused_is_a_clear_400_page(page: Page, linking_stack: LinkingStack) -> None:
    email = "jo.declines@contoso.example"
    linking_stack.sim("identity").seed({"users": [{"upn": email, "password": linking_stack.secrets.password}]})
    navigations = _sign_in(page, linking_stack, email, decision="cancel")
    assert navigations.last.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("Calendar access was not allowed")
    expect(page.locator("main")).to_contain_text('choose "Accept" on the permissions page')
    expect(page.get_by_role("link", name="Try again")).to_be_visible()
    assert "calendar_session" not in {c["name"] for c in page.context.cookies(f"{linking_stack.host_url}/api/settings")}
    assert list(linking_stack.storage().links.list_links()) == []


def test_an_expired_session_refuses_the_save_and_changes_nothing(
    alex_signed_in: Page, linking_stack: LinkingStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import services
    from settings import get_settings
    from web.session import SessionCookies

    page = alex_signed_in
    before = _choices_of(linking_stack, ALEX)
    assert before[1:] == ("Calendar", False)

    # Nine hours later (a session lasts eight): the host, in this process, reads cookies with this codec.
    settings = get_settings()
    later = SessionCookies(
        settings.token_encryption_key,
        old_keys=settings.token_encryption_old_keys.values(),
        clock=lambda: time.time() + 9 * 3600,
    )
    monkeypatch.setattr(services, "session_codec", lambda: later)

    refused = _save_choices(page, calendar="Work Orders", two_way=True)
    assert refused.status == 401
    expect(page.get_by_role("heading", level=1)).to_have_text("You've been signed out")
    expect(page.locator("main")).to_contain_text("we didn't save that change")
    expect(page.get_by_role("link", name="Sign in with Microsoft")).to_be_visible()
    assert _choices_of(linking_stack, ALEX) == before


def test_a_save_without_the_csrf_token_is_refused_and_changes_nothing(
    alex_signed_in: Page, linking_stack: LinkingStack
) -> None:
    page = alex_signed_in
    before = _choices_of(linking_stack, ALEX)

    removed = page.evaluate(
        """() => {
            const tokens = document.querySelectorAll('#choices input[name="csrf_token"]');
            tokens.forEach(t => t.remove());
            return tokens.length;
        }"""
    )
    assert removed == 1
    refused = _save_choices(page, calendar="Work Orders", two_way=True)
    assert refused.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("That form was out of date")
    expect(page.locator("main")).to_contain_text("We didn't save anything")
    expect(page.get_by_role("link", name="Back to my settings")).to_be_visible()
    assert _choices_of(linking_stack, ALEX) == before

    # The session itself is still good: back to the settings page, the old choices shown.
    page.get_by_role("link", name="Back to my settings").click()
    expect(page.get_by_label("Calendar", exact=True)).to_be_checked()
    expect(page.get_by_label("Two-way sync")).not_to_be_checked()


def _unlabelled_inputs(page: Page) -> list[str]:
    """Visible form controls that no <label>, aria-label or aria-labelledby names."""
    return page.eval_on_selector_all(
        "input:not([type=hidden]), select, textarea",
        """controls => controls
            .filter(c => c.checkVisibility())
            .filter(c => c.labels.length === 0 && !c.getAttribute('aria-label') && !c.getAttribute('aria-labelledby'))
            .map(c => c.outerHTML)""",
    )


def _check_labels(page: Page) -> int:
    """Every visible input is found by its label's text (as assistive technology names it); returns how many."""
    assert _unlabelled_inputs(page) == []
    controls = page.locator("input:not([type=hidden]), select, textarea")
    checked = 0
    for index in range(controls.count()):
        control = controls.nth(index)
        if not control.is_visible():
            continue
        control_id = control.get_attribute("id")
        label = control.evaluate("c => c.labels[0].textContent.trim()")
        expect(page.get_by_label(label, exact=True)).to_have_attribute("id", control_id)
        checked += 1
    return checked


def _fits(page: Page) -> None:
    sizes = page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})",
    )
    assert sizes["scroll"] <= sizes["inner"], f"{page.url}: horizontal scroll on a phone: {sizes}"


def test_the_settings_page_is_labelled_has_one_h1_and_fits_a_phone(
    alex_signed_in: Page, linking_stack: LinkingStack, browser: Browser, final_screenshot: Path
) -> None:
    page = alex_signed_in
    assert page.get_attribute("html", "lang") == "en"
    expect(page.locator("h1")).to_have_count(1)
    # Calendar, Work Orders, Two-way sync, private events' details and the Syncro token field.
    assert _check_labels(page) == 5

    # With the feed URL shown, its read-only field is labelled too.
    assert _submit(page, "#new-url").status == 200
    expect(page.locator("h1")).to_have_count(1)
    assert _check_labels(page) == 6

    # The unlink confirmation: the remove-events box and the two feed choices, one h1.
    page.click("#unlink-start")
    expect(page.locator("h1")).to_have_count(1)
    assert _check_labels(page) == 3
    page.click("#unlink-cancel")

    # On a phone (390 x 844, same sign-in): no sideways scrolling, on the signed-out page either.
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="en-US")
    try:
        phone.set_default_timeout(10_000)
        phone.add_cookies(page.context.cookies())
        small = phone.new_page()
        small.goto(f"{linking_stack.host_url}/api/settings")
        expect(small.get_by_role("heading", level=1)).to_have_text(SETTINGS_H1)
        assert small.evaluate("window.innerWidth") == PHONE["width"]
        _fits(small)
        with small.expect_navigation():
            small.click("#new-url")
        expect(small.get_by_label("Your feed URL")).to_be_visible()
        _fits(small)
        small.screenshot(path=str(final_screenshot.with_suffix(".phone.png")), full_page=True)
        phone.clear_cookies()
        small.goto(f"{linking_stack.host_url}/api/settings")
        expect(small.get_by_role("link", name="Sign in with Microsoft")).to_be_visible()
        expect(small.locator("h1")).to_have_count(1)
        _fits(small)
    finally:
        phone.close()
