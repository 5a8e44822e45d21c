"""The pages: escaped, labelled, CSRF-protected, readable without JavaScript, and saying what to do."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from markupsafe import escape

from realtime.status import BackgroundStatus, QueueStatus
from storage.job_status import JobOutcome, PollStatus, SkippedItem, TechJobStatus
from storage.subscriptions import SubscriptionState, SubscriptionStatus
from web import admin_views, routes, settings_views, sync_words
from web.admin_views import AdminRow, AdminView
from web.error_views import ErrorView, error_view
from web.page_parts import CopyField, Notice
from web.pages import (
    CONTENT_SECURITY_POLICY,
    COPY_SCRIPT,
    CSS,
    PAGE_HEADERS,
    ago,
    ahead,
    render_admin,
    render_error,
    render_settings,
    render_sign_in,
    render_syncro_token,
    render_unlink,
)
from web.settings_views import CalendarChoice, LinkedAccount, SettingsView, SignInView, SyncStatus

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
HOSTILE = """<script>alert("x")</script>' "{{ 7*7 }}{% if 1 %}&amp;"""
CSRF = "csrf-token-of-this-session"


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


@dataclass
class Page(HTMLParser):
    """The parts of a page the tests look at, parsed the way a browser tokenises it."""

    elements: list[Element] = field(default_factory=list)
    raw_text: dict[str, list[str]] = field(default_factory=lambda: {"script": [], "style": []})
    forms: list[list[Element]] = field(default_factory=list)
    _open: list[Element] = field(default_factory=list)
    _in_form: bool = False

    def __post_init__(self) -> None:
        HTMLParser.__init__(self, convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.elements.append(element)
        if tag == "form":
            self._in_form = True
            self.forms.append([element])
        elif self._in_form:
            self.forms[-1].append(element)
        if tag in {
            "label",
            "script",
            "style",
            "a",
            "button",
            "caption",
            "h1",
            "h2",
            "h3",
            "legend",
            "p",
            "dd",
            "th",
            "td",
        }:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        if self._open and self._open[-1].tag == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text += data
        if self._open and self._open[-1].tag in self.raw_text:
            self.raw_text[self._open[-1].tag].append(data)

    def all(self, tag: str, **attrs: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag and all(e.attrs.get(k) == v for k, v in attrs.items())]

    def by_id(self, id_: str) -> Element:
        (element,) = [e for e in self.elements if e.attrs.get("id") == id_]
        return element


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


# --- views in every state --------------------------------------------------------------------


def linked_view(**changes: object) -> SettingsView:
    view = SettingsView(
        tech_name="Alex Tech",
        syncro_user_id=str(2**40 + 1),
        csrf_token=CSRF,
        now=NOW,
        account=LinkedAccount("alex@contoso.example", "Contoso"),
        status=SyncStatus(
            linked_since=NOW - timedelta(days=3),
            last_sync=NOW - timedelta(minutes=2),
            outlook_updates="On: Outlook tells us of your changes within seconds.",
            outlook_updates_until=NOW + timedelta(days=2, hours=1),
            last_notification=NOW - timedelta(minutes=5),
            last_poll=NOW - timedelta(seconds=40),
            skipped=("Syncro appointment 42: the end is before the start", "An Outlook event: the event has no start"),
            skipped_count=3,
        ),
        calendars=(
            CalendarChoice("AAMk-default", "Calendar", True),
            CalendarChoice("AAMk-jobs", "Jobs", False),
        ),
        two_way=False,
        ics_url="https://sync.example/api/ics/tok.ics",
        feed_issued=True,
        flash=Notice("done", "Saved."),
        signed_in_as="alex@contoso.example",
    )
    return replace(view, **changes)


def not_linked_view() -> SettingsView:
    return SettingsView(tech_name="Blake", syncro_user_id="7", csrf_token=CSRF, now=NOW)


def relink_view() -> SettingsView:
    status = SyncStatus(
        linked_since=NOW - timedelta(days=40),
        last_sync=NOW - timedelta(days=2),
        last_error="Microsoft refused our sign-in for your calendar.",
        last_error_advice="Re-link your calendar.",
        needs_relink=True,
        relink_reason="Your password was changed, so Microsoft ended our access.",
    )
    return linked_view(status=status, calendars=(), ics_url=None)


def admin_view() -> AdminView:
    return AdminView(
        rows=(
            AdminRow(
                "1",
                "Alex Tech",
                "alex@contoso.example",
                True,
                "alex@contoso.example",
                "Calendar",
                True,
                NOW,
                last_job="Failed every retry, set aside",
                last_job_at=NOW - timedelta(minutes=7),
                poisoned=True,
                job_waiting=True,
                outlook_updates="On",
                outlook_updates_until=NOW + timedelta(hours=30),
                last_notification=NOW - timedelta(hours=2),
            ),
            AdminRow("2", "Blake", "blake@contoso.example", False, email_override="b.tech@contoso.example"),
            AdminRow("3", "Casey", "casey@contoso.example", True, "casey@contoso.example", "Jobs", needs_relink=True),
        ),
        now=NOW,
        signed_in_as="admin@contoso.example",
        csrf_token=CSRF,
        flash=Notice("done", "Mapping saved."),
        jobs_waiting=2,
        jobs_poisoned=1,
        last_poll=NOW - timedelta(minutes=1),
        poll_problem="The last check of Syncro failed: 503",
    )


ERRORS: dict[str, ErrorView] = {
    "personal": error_view("personal_account", email="casey@outlook.com"),
    "personal-no-email": error_view("personal_account"),
    "no-syncro-user": error_view("no_syncro_user", email="dana@contoso.example"),
    "admin-approval": error_view(
        "admin_approval_needed",
        admin_consent_url="https://login.microsoftonline.com/tid/adminconsent?client_id=abc&redirect_uri=https%3A%2F%2Fx",
        organisation="Contoso",
    ),
    "consent-refused": error_view("consent_refused"),
    "authority": error_view(
        "authority_error", code="invalid_request", detail="AADSTS90014: The request body must contain...\r\nTrace ID: 1"
    ),
    "sign-in-expired": error_view("state_invalid"),
    "session-expired": error_view("session_expired"),
    "csrf": error_view("csrf"),
    "unknown-calendar": error_view("unknown_calendar"),
    "not-admin": error_view("not_an_admin", email="blake@contoso.example"),
    "service-unavailable": error_view("service_unavailable"),
}

PAGES: dict[str, str] = {
    "settings-linked": render_settings(linked_view()),
    "unlink": render_unlink(settings_views.SyncroTokenView(csrf_token=CSRF, signed_in_as="alex@contoso.example")),
    "syncro-token-step": render_syncro_token(settings_views.SyncroTokenView(csrf_token=CSRF, first_link=True)),
    "syncro-token-problem": render_syncro_token(
        settings_views.SyncroTokenView(csrf_token=CSRF, flash=Notice("problem", "Syncro refused this token."))
    ),
    "settings-linked-two-way": render_settings(linked_view(two_way=True, ics_url=None)),
    "settings-not-linked": render_settings(not_linked_view()),
    "settings-relink": render_settings(relink_view()),
    "settings-no-calendars": render_settings(linked_view(calendars=())),
    "sign-in": render_sign_in(SignInView()),
    "sign-in-notice": render_sign_in(SignInView(notice="You have been signed out.")),
    "sign-in-after-consent": render_sign_in(settings_views.after_admin_consent()),
    "signed-out": render_sign_in(settings_views.signed_out()),
    "admin": render_admin(admin_view()),
    "admin-empty": render_admin(AdminView(rows=(), now=NOW, signed_in_as="admin@contoso.example", csrf_token=CSRF)),
    **{f"error-{name}": render_error(view) for name, view in ERRORS.items()},
}


def hostile(value: object) -> object:
    """``value`` with every string inside it (through nested dataclasses and tuples) made hostile."""
    if isinstance(value, str):
        return HOSTILE + value
    if isinstance(value, tuple):
        return tuple(hostile(item) for item in value)
    if hasattr(value, "__dataclass_fields__") and not isinstance(value, type):
        return replace(value, **{f.name: hostile(getattr(value, f.name)) for f in fields(value)})
    return value


HOSTILE_PAGES: dict[str, str] = {
    "settings-linked": render_settings(hostile(linked_view())),
    "settings-relink": render_settings(hostile(relink_view())),
    "settings-not-linked": render_settings(hostile(not_linked_view())),
    "sign-in": render_sign_in(hostile(SignInView(notice="n"))),
    "settings-no-calendars": render_settings(hostile(linked_view(calendars=()))),
    "admin": render_admin(hostile(admin_view())),
    **{f"error-{name}": render_error(hostile(view)) for name, view in ERRORS.items()},
}


# --- escaping ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE_PAGES)
def test_hostile_strings_are_shown_as_text(name: str) -> None:
    html = HOSTILE_PAGES[name]
    assert '<script>alert("x")' not in html
    assert "&lt;script&gt;alert(" in html
    assert str(escape(HOSTILE)) in html  # escaped once, and never evaluated as a template
    page = parse(html)
    assert len(page.all("script")) <= 1  # only our copy script
    for script in page.raw_text["script"]:
        assert script == COPY_SCRIPT
    # No attribute was broken out of: the only attributes are ones the templates write.
    assert not [e for e in page.elements if "alert(" in "".join(e.attrs)]


def test_a_hostile_calendar_id_stays_inside_its_value_attribute() -> None:
    view = linked_view(calendars=(CalendarChoice('x" onclick="alert(1)', "Cal", True),))
    (radio,) = parse(render_settings(view)).all("input", type="radio", name="calendar_id")
    assert radio.attrs["value"] == 'x" onclick="alert(1)'
    assert "onclick" not in radio.attrs


def test_a_copy_value_that_is_not_a_web_url_is_never_a_link() -> None:
    view = replace(
        error_view("admin_approval_needed", admin_consent_url="https://x"),
        copy=CopyField("L", "javascript:alert(1)", "h", "Open"),
    )
    page = parse(render_error(view))
    assert not [a for a in page.all("a") if "javascript" in a.attrs.get("href", "")]
    assert page.by_id("copy-value").attrs["value"] == "javascript:alert(1)"


# --- structure and accessibility ------------------------------------------------------------


@pytest.mark.parametrize("name", PAGES)
def test_every_page_has_the_accessible_frame(name: str) -> None:
    page = parse(PAGES[name])
    assert page.all("html", lang="en")
    assert page.all("meta", name="viewport")
    assert len(page.all("main")) == 1 and len(page.all("h1")) == 1
    skip = page.all("a")[0]
    assert skip.attrs["href"] == "#main" and page.by_id("main").tag == "main"
    assert page.all("title")


@pytest.mark.parametrize("name", PAGES)
def test_every_form_control_has_a_label(name: str) -> None:
    page = parse(PAGES[name])
    labelled = {label.attrs.get("for") for label in page.all("label")}
    controls = [
        e
        for e in page.elements
        if e.tag in {"select", "textarea"} or (e.tag == "input" and e.attrs.get("type") not in {"hidden", "submit"})
    ]
    for control in controls:
        assert control.attrs.get("id") in labelled, control
    for label in page.all("label"):
        assert label.text.strip()
        page.by_id(label.attrs["for"])  # points at exactly one element


@pytest.mark.parametrize("name", PAGES)
def test_ids_are_unique_and_descriptions_exist(name: str) -> None:
    page = parse(PAGES[name])
    ids = [e.attrs["id"] for e in page.elements if "id" in e.attrs]
    assert len(ids) == len(set(ids))
    for element in page.elements:
        for ref in element.attrs.get("aria-describedby", "").split():
            assert ref in ids, (element, ref)


@pytest.mark.parametrize("name", PAGES)
def test_every_post_form_carries_the_csrf_token(name: str) -> None:
    page = parse(PAGES[name])
    for form in page.forms:
        if form[0].attrs.get("method", "get").lower() == "post":
            tokens = [e for e in form if e.tag == "input" and e.attrs.get("name") == "csrf_token"]
            assert [t.attrs["value"] for t in tokens] == [CSRF]
            assert tokens[0].attrs["type"] == "hidden"


@pytest.mark.parametrize("name", PAGES)
def test_buttons_and_links_say_what_they_do(name: str) -> None:
    page = parse(PAGES[name])
    for element in page.all("button") + page.all("a"):
        assert element.text.strip(), element


@pytest.mark.parametrize("name", PAGES)
def test_inline_style_and_script_match_the_content_security_policy(name: str) -> None:
    page = parse(PAGES[name])

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert page.raw_text["style"] == [CSS]
    assert digest(CSS) in CONTENT_SECURITY_POLICY
    for script in page.raw_text["script"]:
        assert digest(script) in CONTENT_SECURITY_POLICY
    # Nothing the policy would block: no handlers, no style attributes, no external assets.
    for element in page.elements:
        assert not [a for a in element.attrs if a.startswith("on") or a == "style"], element
        assert not (element.tag in {"script", "link", "img"} and ("src" in element.attrs or "href" in element.attrs))


def test_the_policy_forbids_everything_else() -> None:
    assert CONTENT_SECURITY_POLICY.startswith("default-src 'none';")
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY and "form-action 'self'" in CONTENT_SECURITY_POLICY
    assert PAGE_HEADERS["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert PAGE_HEADERS["Cache-Control"] == "no-store"


def test_copy_buttons_are_hidden_until_the_script_reveals_them() -> None:
    page = parse(PAGES["settings-linked"])
    (button,) = page.all("button", type="button")
    assert "hidden" in button.attrs and button.attrs["data-copy"] == "ics-url"
    assert page.by_id("ics-url").attrs.get("readonly") is not None  # selectable without JS
    # No copy field, no script.
    assert not parse(PAGES["settings-not-linked"]).all("script")


# --- the settings page ----------------------------------------------------------------------


def forms_by_action(page: Page) -> dict[str, list[Element]]:
    """The page's forms keyed by the route they post to (each route has one form per page)."""
    forms: dict[str, list[Element]] = {}
    for form in page.forms:
        assert form[0].attrs["action"] not in forms
        forms[form[0].attrs["action"]] = form
    return forms


def test_a_linked_tech_can_pick_a_calendar_with_the_current_one_selected() -> None:
    page = parse(PAGES["settings-linked"])
    radios = page.all("input", type="radio", name="calendar_id")
    assert [(r.attrs["value"], "checked" in r.attrs) for r in radios] == [("AAMk-default", True), ("AAMk-jobs", False)]
    assert [page.all("label", **{"for": r.attrs["id"]})[0].text for r in radios] == ["Calendar", "Jobs"]
    legend = page.all("legend")[0]
    assert "calendar" in legend.text.lower()


def test_two_way_is_a_switch_explained_beside_it() -> None:
    off, on = parse(PAGES["settings-linked"]), parse(PAGES["settings-linked-two-way"])
    switch = off.by_id("two-way")
    assert switch.attrs["type"] == "checkbox" and switch.attrs["name"] == "two_way" and "checked" not in switch.attrs
    assert "checked" in on.by_id("two-way").attrs
    hint = off.by_id(switch.attrs["aria-describedby"])
    assert "Off: Syncro → Outlook only" in PAGES["settings-linked"]
    assert hint.tag == "p"


def test_the_settings_forms_post_to_their_routes_with_the_agreed_fields() -> None:
    page = parse(PAGES["settings-linked"])
    actions = forms_by_action(page)
    assert set(actions) == {
        routes.SETTINGS_PATH, routes.FEED_PATH, routes.SIGN_OUT_PATH, routes.SYNC_NOW_PATH
    }  # fmt: skip
    # Unlinking is a link to its confirmation page, whose one form posts the choices.
    assert page.by_id("unlink-start").attrs["href"] == routes.UNLINK_PATH
    confirm = parse(PAGES["unlink"])
    assert set(forms_by_action(confirm)) == {routes.UNLINK_PATH, routes.SIGN_OUT_PATH}
    for form in page.forms:
        assert form[0].attrs["method"] == "post"
    names = {e.attrs.get("name") for e in actions[routes.SETTINGS_PATH]}
    assert {routes.FIELD_CSRF, routes.FIELD_CALENDAR, routes.FIELD_TWO_WAY} <= names
    unlink_fields = {e.attrs.get("name") for e in forms_by_action(confirm)[routes.UNLINK_PATH]}
    assert {routes.FIELD_REMOVE_EVENTS, "feed", routes.FIELD_CSRF} <= unlink_fields


def test_sign_out_is_a_post_form_showing_who_is_signed_in() -> None:
    page = parse(PAGES["settings-linked"])
    form = forms_by_action(page)[routes.SIGN_OUT_PATH]
    assert [e.text for e in form if e.tag == "button"] == ["Sign out"]
    assert "Signed in as alex@contoso.example." in PAGES["settings-linked"]


def test_unlink_offers_to_remove_our_events_unticked() -> None:
    page = parse(PAGES["unlink"])
    box = page.by_id("remove-events")
    assert box.attrs["type"] == "checkbox" and "checked" not in box.attrs
    (label,) = page.all("label", **{"for": "remove-events"})
    assert label.text == "Also remove the [S] events we put in your Outlook calendar"
    # The feed choice has no answer until the tech gives one; Cancel goes back to the settings.
    feed = page.all("input", type="radio", name="feed")
    assert [r.attrs["value"] for r in feed] == ["keep", "revoke"] and not any("checked" in r.attrs for r in feed)
    assert page.by_id("unlink-cancel").attrs["href"] == routes.SETTINGS_PATH


def test_the_feed_url_is_copyable_and_a_new_one_warns_the_old_stops_at_once() -> None:
    page = parse(PAGES["settings-linked"])
    assert page.by_id("ics-url").attrs["value"] == "https://sync.example/api/ics/tok.ics"
    (button,) = [b for b in page.all("button", type="submit") if b.text == "New URL"]
    assert "stops working at once" in page.by_id(button.attrs["aria-describedby"]).text


def test_a_feed_url_not_shown_again_is_explained() -> None:
    html = render_settings(linked_view(ics_url=None))
    assert "ics-url" not in html and "make a new one" in html
    first = render_settings(linked_view(ics_url=None, feed_issued=False))
    assert "Make my feed URL" in first and "stops working" not in first
    assert "from 30 days back to 90 days ahead" in render_settings(linked_view(feed_days_back=30, feed_days_ahead=90))


def test_not_linked_offers_linking_and_the_feed_only() -> None:
    page = parse(PAGES["settings-not-linked"])
    assert [a.text for a in page.all("a", href="/api/oauth/start")] == ["Link my Outlook calendar"]
    assert set(forms_by_action(page)) == {routes.FEED_PATH, routes.SIGN_OUT_PATH}
    assert "[S]" in PAGES["settings-not-linked"] and "[O]" in PAGES["settings-not-linked"]


def test_needs_relink_leads_with_the_reason_and_a_relink_button() -> None:
    page = parse(PAGES["settings-relink"])
    (alert,) = [e for e in page.elements if e.attrs.get("role") == "alert"]
    html = PAGES["settings-relink"]
    assert html.index("Your password was changed") < html.index("Status")
    assert any(a.text == "Re-link my calendar" for a in page.all("a", href="/api/oauth/start"))
    assert "What to do: Re-link your calendar." in html
    assert "We can list your calendars again once you re-link." in html
    assert alert.tag == "div"


def test_status_is_in_words() -> None:
    html = PAGES["settings-linked"]
    assert "2 minutes ago" in html and "3 days ago" in html and "Nothing: all changes we know of are synced." in html
    never = render_settings(linked_view(status=SyncStatus(linked_since=NOW, sync_pending=True)))
    assert "Not yet. The first sync starts within a minute of linking." in never
    assert "Changes are queued and sync within seconds." in never


def test_the_flash_message_is_announced() -> None:
    page = parse(PAGES["settings-linked"])
    (note,) = [e for e in page.elements if e.attrs.get("class") == "notice done"]
    assert note.attrs["role"] == "status" and note.text.startswith("Done:")


def test_done_warning_and_problem_differ_in_words_and_border_not_only_colour() -> None:
    kinds = {"done": "Done:", "warning": "Warning:", "problem": "Problem:"}
    for kind, words in kinds.items():
        html = render_settings(linked_view(flash=Notice(kind, "Something.")))
        (note,) = [e for e in parse(html).elements if e.attrs.get("class") == f"notice {kind}"]
        assert note.text.startswith(words)
        assert note.attrs["role"] == ("alert" if kind == "problem" else "status")
    borders = {kind: re.search(rf"\.notice\.{kind}\{{([^}}]*)\}}", CSS).group(1) for kind in kinds}
    assert len({rule.split(" ")[1] if " " in rule else rule for rule in borders.values()}) == 3  # solid, dashed, double


def test_a_tech_without_a_syncro_token_is_warned_first_and_never_told_all_is_synced() -> None:
    blocked = linked_view(syncro_token_needed=True, status=SyncStatus(linked_since=NOW, last_sync=NOW))
    html = render_settings(blocked)
    page = parse(html)
    status = html[html.index('id="status-h"') :]
    first = page.by_id("syncro-blocked")
    assert first.attrs["class"] == "notice warning" and first.text.startswith("Warning:")
    assert status.index('id="syncro-blocked"') < status.index("<dl")  # the status section's first line
    assert "all changes we know of are synced" not in html
    assert "stopped until you add your Syncro API token" in html
    assert [a for a in page.all("a") if a.attrs.get("href") == routes.SYNCRO_TOKEN_PATH]
    steps = page.by_id("syncro-token-steps")
    assert steps.tag == "ol" and "Profile/Password" in html


def test_no_calendars_says_why_instead_of_an_empty_form() -> None:
    html = PAGES["settings-no-calendars"]
    assert "no calendar in your Microsoft 365 account that we can add events to" in html
    assert routes.SETTINGS_PATH not in forms_by_action(parse(html))


# --- sign-in --------------------------------------------------------------------------------


def test_sign_in_is_one_link_to_the_oauth_start() -> None:
    page = parse(PAGES["sign-in"])
    (link,) = page.all("a", href="/api/oauth/start")
    assert link.text == "Sign in with Microsoft"
    assert "work account" in PAGES["sign-in"] and not page.forms
    assert "You have been signed out." in PAGES["sign-in-notice"] and "You have been signed out." in PAGES["signed-out"]
    assert "approved for your organisation" in PAGES["sign-in-after-consent"]


# --- errors ---------------------------------------------------------------------------------


def test_the_admin_consent_url_is_copyable() -> None:
    view = ERRORS["admin-approval"]
    page = parse(PAGES["error-admin-approval"])
    field_ = page.by_id("copy-value")
    assert field_.attrs["value"] == view.copy.value and "readonly" in field_.attrs
    assert page.all("label", **{"for": "copy-value"})[0].text == "Approval link for your Microsoft 365 admin"
    assert page.all("button", **{"data-copy": "copy-value"})
    assert any(a.attrs["href"] == view.copy.value for a in page.all("a"))
    assert "once for the whole organisation" in view.explanation and "Contoso" in view.explanation


def test_a_personal_account_is_explained_not_a_500() -> None:
    view = ERRORS["personal"]
    assert view.status == 403
    assert "casey@outlook.com" in view.explanation and "work or school" in view.explanation
    assert "work email" in view.what_to_do and "settings" not in view.what_to_do  # nobody can allow them
    assert "That is a personal Microsoft account" in ERRORS["personal-no-email"].explanation


def test_no_syncro_user_names_the_email_and_what_to_ask_the_admin() -> None:
    view = ERRORS["no-syncro-user"]
    assert "dana@contoso.example" in view.explanation
    assert "set dana@contoso.example as your email in Syncro" in view.what_to_do
    assert "map dana@contoso.example" in view.what_to_do


def test_an_authority_error_shows_its_description_on_one_bounded_line() -> None:
    # Only codes: the description comes through the query string, where anyone can write it.
    assert ERRORS["authority"].details == "invalid_request AADSTS90014"
    assert "request body must contain" not in PAGES["error-authority"]
    long = error_view("authority_error", code="server_error", detail="x" * 5000)
    assert long.details == "server_error" and long.status == 400
    assert error_view("authority_error", code="temporarily_unavailable").details == "temporarily_unavailable"
    assert "Traceback" not in PAGES["error-authority"]


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("personal", 403),
        ("no-syncro-user", 403),
        ("admin-approval", 400),
        ("consent-refused", 400),
        ("authority", 400),
        ("sign-in-expired", 400),
        ("session-expired", 401),
        ("csrf", 403),
        ("unknown-calendar", 400),
        ("not-admin", 403),
        ("service-unavailable", 503),
    ],
)
def test_each_error_has_its_status_and_a_way_forward(name: str, status: int) -> None:
    view = ERRORS[name]
    assert view.status == status
    assert view.title and view.explanation and view.what_to_do
    assert view.action is not None and view.action.href in {routes.OAUTH_START_PATH, routes.SETTINGS_PATH}
    page = parse(PAGES[f"error-{name}"])
    assert page.all("h1")[0].text == view.title
    assert any(a.text == view.action.label and a.attrs["href"] == view.action.href for a in page.all("a"))


# --- admin ----------------------------------------------------------------------------------


def test_the_admin_page_is_a_card_per_tech_named_by_name() -> None:
    page = parse(PAGES["admin"])
    cards = page.all("article")
    assert len(cards) == 3 and all(c.attrs["class"] == "card" for c in cards)
    assert [h.text for h in page.all("h3")][:3] == [row.name for row in admin_view().rows]
    # Each action names its tech for a screen reader; nothing names a tech by id alone.
    names = [row.name for row in admin_view().rows]
    per_tech = [b.text for b in page.all("button") if b.text not in ("Sign out", "Save mapping")]
    assert per_tech and all(any(name in text for name in names) for text in per_tech)
    html = PAGES["admin"]
    assert "Needs re-link" in html and "b.tech@contoso.example" in html and "2 of 3 Syncro users linked" in html
    assert "No Syncro users found." in PAGES["admin-empty"]


# --- time in words --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(seconds=-30), "just now"),
        (timedelta(seconds=59), "just now"),
        (timedelta(minutes=1), "1 minute ago"),
        (timedelta(minutes=59), "59 minutes ago"),
        (timedelta(hours=1), "1 hour ago"),
        (timedelta(hours=23, minutes=59), "23 hours ago"),
        (timedelta(days=1), "1 day ago"),
        (timedelta(days=13), "13 days ago"),
        (timedelta(days=30), "on 1 Nov 2026"),
    ],
)
def test_times_read_as_words(delta: timedelta, words: str) -> None:
    assert ago(NOW - delta, NOW) == words


def test_a_naive_time_is_taken_as_utc() -> None:
    assert ago(NOW.replace(tzinfo=None) - timedelta(hours=2), NOW) == "2 hours ago"


def test_time_elements_carry_the_exact_moment() -> None:
    page = parse(PAGES["settings-linked"])
    stamps = [t.attrs["datetime"] for t in page.all("time")]
    assert "2026-12-01T09:58:00+00:00" in stamps
    assert re.search(r'title="1 Dec 2026, 09:58 UTC"', PAGES["settings-linked"])


def test_the_admin_maps_an_email_to_a_syncro_user_by_name() -> None:
    page = parse(PAGES["admin"])
    forms = [f for f in page.forms if f[0].attrs["action"] == routes.ADMIN_OVERRIDES_PATH]
    add = next(f for f in forms if any(e.tag == "select" for e in f))
    names = {e.attrs.get("name") for e in add}
    assert {routes.FIELD_CSRF, routes.FIELD_OVERRIDE_EMAIL, routes.FIELD_OVERRIDE_USER} <= names
    options = [e for e in add if e.tag == "option"]
    assert [o.attrs["value"] for o in options] == ["1", "2", "3"]
    assert page.by_id("override-email").attrs["type"] == "email"
    assert "No Syncro users found." in PAGES["admin-empty"] and "override-email" not in PAGES["admin-empty"]


def test_an_override_can_be_removed_with_a_button_that_names_whose_it_is() -> None:
    page = parse(PAGES["admin"])
    (remove,) = [f for f in page.forms if any(e.attrs.get("name") == routes.FIELD_OVERRIDE_REMOVE for e in f)]
    assert {e.attrs.get("name"): e.attrs.get("value") for e in remove if e.tag == "input"} == {
        routes.FIELD_CSRF: CSRF,
        routes.FIELD_OVERRIDE_EMAIL: "b.tech@contoso.example",
        routes.FIELD_OVERRIDE_REMOVE: "on",
    }
    (button,) = [e for e in remove if e.tag == "button"]
    assert button.text == "Remove the mapping for Blake"


# --- adapters from web.links --------------------------------------------------------------


def calendar(id_: str, name: str, *, can_edit: bool = True, is_default: bool = False) -> SimpleNamespace:
    return SimpleNamespace(id=id_, name=name, can_edit=can_edit, is_default=is_default)


def link(**changes: object) -> SimpleNamespace:
    fields_ = {
        "syncro_user_id": 2**40,
        "email": "alex@contoso.example",
        "ms_username": "alex@contoso.example",
        "ms_tenant_id": "tid-1",
        "calendar_id": "cal-jobs",
        "calendar_name": "Jobs",
        "two_way": True,
        "status": "active",
        "linked_at": NOW - timedelta(days=1),
        "status_detail": "",
    }
    return SimpleNamespace(**{**fields_, **changes})


CALENDARS = [
    calendar("cal-default", "Calendar", is_default=True),
    calendar("cal-jobs", "Jobs"),
    calendar("cal-holidays", "Holidays", can_edit=False),
]


def overview(**changes: object) -> SimpleNamespace:
    fields_ = {
        "syncro_user_id": 2**40,
        "link": link(),
        "calendars": CALENDARS,
        "calendars_problem": "",
        "feed_issued_at": None,
    }
    return SimpleNamespace(**{**fields_, **changes})


def test_settings_view_from_a_linked_overview() -> None:
    view = settings_views.settings_view(
        overview(), csrf_token=CSRF, flash="Saved.", now=NOW
    )  # plain words: a confirmation
    assert view.linked and not view.needs_relink and view.two_way
    assert view.syncro_user_id == str(2**40)
    assert view.account == LinkedAccount("alex@contoso.example", "tid-1")
    assert [(c.id, c.selected) for c in view.calendars] == [("cal-default", False), ("cal-jobs", True)]
    assert view.ics_url is None and not view.feed_issued and view.flash == Notice("done", "Saved.")
    assert view.status is not None and view.status.linked_since == NOW - timedelta(days=1)
    render_settings(view)


def test_a_chosen_calendar_that_is_gone_falls_back_to_the_default() -> None:
    view = settings_views.settings_view(overview(link=link(calendar_id="deleted")), csrf_token=CSRF)
    assert [c.id for c in view.calendars if c.selected] == ["cal-default"]
    only_shared = settings_views.calendar_choices([calendar("a", "A"), calendar("b", "B")], chosen="")
    assert [c.id for c in only_shared if c.selected] == ["a"]
    assert settings_views.calendar_choices([calendar("r", "R", can_edit=False)]) == ()


def test_settings_view_for_a_link_that_needs_relinking() -> None:
    source = overview(link=link(status="needs_relink", status_detail="Access was removed."), calendars=[])
    view = settings_views.settings_view(source, csrf_token=CSRF)
    assert view.needs_relink and view.status is not None
    assert view.status.relink_reason == "Access was removed." and view.status.last_error is None
    assert "Access was removed." in render_settings(view)


def test_settings_view_not_linked_with_a_feed_and_a_fresh_url() -> None:
    source = overview(link=None, calendars=[], feed_issued_at=NOW)
    view = settings_views.settings_view(source, csrf_token=CSRF, new_feed_url="https://x.example/api/ics/t.ics")
    assert not view.linked and view.calendars == () and view.feed_issued
    assert view.ics_url == "https://x.example/api/ics/t.ics"
    assert 'value="https://x.example/api/ics/t.ics"' in render_settings(view)


def test_a_calendar_list_that_could_not_be_read_says_why() -> None:
    view = settings_views.settings_view(
        overview(calendars=[], calendars_problem="Graph is down. Reload."), csrf_token=CSRF
    )
    assert "Graph is down. Reload." in render_settings(view)


def test_admin_view_from_an_overview() -> None:
    users = [
        SimpleNamespace(id=1, email="alex@contoso.example", full_name="Alex"),
        SimpleNamespace(id=2, email=None, full_name="Dispatcher"),
    ]
    source = SimpleNamespace(
        rows=[
            SimpleNamespace(
                user=users[0], link=link(status="needs_relink", status_detail="Revoked."), override_email=""
            ),
            SimpleNamespace(user=users[1], link=None, override_email="d@contoso.example"),
        ],
        overrides={"d@contoso.example": 2, "gone@contoso.example": 99},
        unknown_override_ids=[99],
    )
    view = admin_views.admin_view(source, csrf_token=CSRF, signed_in_as="admin@contoso.example", now=NOW)
    alex, dispatcher = view.rows
    assert alex.linked and alex.needs_relink and alex.last_error == "Revoked." and alex.calendar == "Jobs"
    assert not dispatcher.linked and dispatcher.email == "" and dispatcher.email_override == "d@contoso.example"
    assert view.stale_overrides == (("gone@contoso.example", "99"),)
    page = parse(render_admin(view))
    removals = [f for f in page.forms if any(e.attrs.get("name") == routes.FIELD_OVERRIDE_REMOVE for e in f)]
    assert len(removals) == 2  # the dispatcher's mapping and the stale one


def test_every_refusal_of_the_sign_in_has_its_own_page() -> None:
    from oauth.flow import RefusalKind

    generic = error_view("no-such-kind")
    assert generic.status == 400
    for kind in RefusalKind:
        view = error_view(kind.value, detail="d", email="e@x.example", admin_consent_url="https://a.example/c")
        assert view != generic, kind
        render_error(view)


def test_error_view_passes_details_to_the_page_that_uses_them() -> None:
    assert "casey@outlook.com" in error_view("personal_account", email="casey@outlook.com").explanation
    approval = error_view("admin_approval_needed", admin_consent_url="https://a.example/c")
    assert approval.copy is not None and approval.copy.value == "https://a.example/c"
    assert error_view("admin_approval_needed").copy is None  # no URL: no empty field
    assert error_view("authority_error", detail="AADSTS50011: bad redirect").details == "AADSTS50011"
    assert error_view("bad_request", detail="Enter an email.").explanation == "Enter an email."
    assert "secret-host" not in render_error(error_view("service_unavailable", detail="secret-host"))
    granted = error_view("admin_consent_granted")
    assert granted.status == 200 and "Approved" in granted.title


@pytest.mark.parametrize(
    ("kind", "status"),
    [("not_linked", 409), ("conflict", 409), ("misconfigured", 503), ("csrf", 403), ("session_expired", 401)],
)
def test_handler_refusals_have_pages(kind: str, status: int) -> None:
    view = error_view(kind)
    assert view.status == status
    assert parse(render_error(view)).all("h1")[0].text == view.title


def test_the_admin_overview_says_when_syncro_hides_owners_and_who_has_no_syncro_token() -> None:
    quiet = render_admin(admin_view())
    assert 'id="syncro-note"' not in quiet and "Missing: their Syncro" not in quiet
    base = admin_view()
    rows = (replace(base.rows[0], syncro_token_missing=True), *base.rows[1:])
    note = "Syncro's API does not say which technician an appointment belongs to."
    html = render_admin(replace(base, rows=rows, syncro_note=note))
    assert note in parse(html).by_id("syncro-note").text
    (alex,) = [card.split("</article>")[0] for card in html.split("<article")[1:] if "Syncro #1<" in card]
    assert "Missing: their Syncro appointments are not read." in alex
    assert html.count("Missing: their Syncro appointments are not read.") == 1


def test_the_settings_page_offers_the_syncro_token_form_only_when_it_is_needed() -> None:
    assert 'id="syncro-token"' not in render_settings(linked_view())
    needed = render_settings(replace(linked_view(), syncro_token_needed=True))
    assert 'id="syncro-token"' in needed and "No token yet" in needed and 'type="password"' in needed
    done = render_settings(replace(linked_view(), syncro_token_needed=True, syncro_token_note="Set by your admin."))
    assert "Set by your admin." in done and "No token yet" not in done


# --- background work: the last job, the subscription, notifications, the poll, the queue ------------

SUBSCRIPTION_ID = "sub-3f6e-secret-looking-id"


def background(**job_changes: object) -> BackgroundStatus:
    job = TechJobStatus(
        2**40,
        last_job_at=NOW - timedelta(minutes=3),
        last_job_outcome=JobOutcome.SYNCED,
        last_job_reason="graph-notification",
        last_job_detail="created 1 in Outlook and 0 in Syncro, updated 0 in Outlook and 0 in Syncro",
        last_notification_at=NOW - timedelta(minutes=4),
        last_success_at=NOW - timedelta(minutes=3),
    )
    subscription = SubscriptionStatus(
        2**40,
        SubscriptionState.ACTIVE,
        "",
        NOW - timedelta(hours=1),
        subscription_id=SUBSCRIPTION_ID,
        expires_at=NOW + timedelta(days=6, hours=23),
    )
    return BackgroundStatus(
        syncro_user_id=2**40,
        job=replace(job, **job_changes),
        poll=PollStatus(last_poll_at=NOW - timedelta(seconds=30), outcome="ok"),
        subscription=subscription,
        job_waiting_since=None,
    )


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(seconds=20), "in under a minute"),
        (timedelta(minutes=5), "in 5 minutes"),
        (timedelta(hours=3, minutes=10), "in 3 hours"),
        (timedelta(days=6, hours=23), "in 6 days"),
        (timedelta(days=20), "on 21 Dec 2026"),
        (timedelta(minutes=-10), "10 minutes ago"),
    ],
)
def test_times_ahead_read_as_words(delta: timedelta, words: str) -> None:
    assert ahead(NOW + delta, NOW) == words


def test_the_status_section_shows_outlook_updates_the_last_notification_and_poll() -> None:
    page = parse(PAGES["settings-linked"])
    assert page.by_id("outlook-updates").text.startswith("On: Outlook tells us of your changes within seconds.")
    assert "the current one ends in 2 days" in page.by_id("outlook-updates").text
    assert page.by_id("last-notification").text == "5 minutes ago"
    assert page.by_id("last-poll").text == "just now"
    stamps = [t.attrs["datetime"] for t in page.all("time")]
    assert "2026-12-03T11:00:00+00:00" in stamps  # the expiry, exact in the element


def test_skipped_appointments_are_listed_with_their_reason_and_a_count_of_the_rest() -> None:
    html = PAGES["settings-linked"]
    assert "3 appointments could not be synced" in html
    assert "<li>Syncro appointment 42: the end is before the start</li>" in html
    assert "<li>An Outlook event: the event has no start</li>" in html
    assert "<li>and 1 more.</li>" in html
    one = render_settings(linked_view(status=replace(linked_view().status, skipped=("X: y",), skipped_count=1)))
    assert "1 appointment could not be synced" in one and "Fix it in Syncro or Outlook" in one
    none = render_settings(linked_view(status=replace(linked_view().status, skipped=(), skipped_count=0)))
    assert "could not be synced" not in none


def test_a_subscription_that_is_not_working_reads_as_a_problem() -> None:
    status = replace(linked_view().status, outlook_updates="Not working right now.", outlook_updates_ok=False)
    page = parse(render_settings(linked_view(status=status)))
    assert page.by_id("outlook-updates").attrs.get("class") == "problem"
    assert parse(PAGES["settings-linked"]).by_id("outlook-updates").attrs.get("class") is None


def test_before_the_background_work_has_seen_the_link_no_status_rows_are_invented() -> None:
    bare = render_settings(linked_view(status=SyncStatus(linked_since=NOW)))
    assert "Instant updates from Outlook" not in bare and "Last check of Syncro" not in bare


def test_settings_view_reads_the_last_sync_and_subscription_from_the_background_status() -> None:
    view = settings_views.settings_view(overview(background=background()), csrf_token=CSRF, now=NOW)
    assert view.status is not None
    assert view.status.last_sync == NOW - timedelta(minutes=3) and not view.status.sync_pending
    assert view.status.last_error is None
    assert view.status.outlook_updates == "On: Outlook tells us of your changes within seconds."
    assert view.status.outlook_updates_until == NOW + timedelta(days=6, hours=23)
    assert view.status.last_notification == NOW - timedelta(minutes=4)
    assert view.status.last_poll == NOW - timedelta(seconds=30)
    html = render_settings(view)
    assert SUBSCRIPTION_ID not in html and "graph-notification" not in html  # no ids nor raw reasons


def test_a_waiting_job_is_pending_not_a_problem() -> None:
    waiting = replace(background(), job_waiting_since=NOW - timedelta(seconds=2))
    view = settings_views.settings_view(overview(background=waiting), csrf_token=CSRF, now=NOW)
    assert view.status is not None and view.status.sync_pending and view.status.last_error is None
    assert "Changes are queued and sync within seconds." in render_settings(view)


def test_a_poisoned_job_is_the_last_problem_and_the_last_good_sync_is_kept() -> None:
    poisoned = background(
        last_job_outcome=JobOutcome.POISONED,
        last_job_at=NOW - timedelta(minutes=1),
        last_job_detail="Graph answered 403",
        poisoned=True,
        last_success_at=NOW - timedelta(hours=2),
    )
    view = settings_views.settings_view(overview(background=poisoned), csrf_token=CSRF, now=NOW)
    assert view.status is not None and view.status.last_sync == NOW - timedelta(hours=2)
    assert view.status.last_error is not None
    assert "in a row and was set aside" in view.status.last_error and "Graph answered 403" in view.status.last_error
    assert "poisoned" not in render_settings(view).lower()


def test_skipped_items_reach_the_page_in_words() -> None:
    items = (SkippedItem("syncro", "977", "the appointment has no end_at"), SkippedItem("outlook", "AAMk=", "no start"))
    view = settings_views.settings_view(
        overview(background=background(last_job_skipped=items, last_job_skipped_count=12)), csrf_token=CSRF, now=NOW
    )
    assert view.status is not None
    assert view.status.skipped == (
        "Syncro appointment 977: the appointment has no end_at",
        "An Outlook event: no start",
    )
    assert "12 appointments could not be synced" in render_settings(view) and "and 10 more." in render_settings(view)


@pytest.mark.parametrize(
    ("state", "words", "ok"),
    [
        (SubscriptionState.ACTIVE, "On", True),
        (SubscriptionState.FAILED, "Failing", False),
        (SubscriptionState.UNSUPPORTED, "Not available (15-minute checks)", True),
        (SubscriptionState.NEEDS_RELINK, "Stopped: needs re-link", False),
        (SubscriptionState.NONE, "Not set up", True),
        (None, "Being set up", True),
    ],
)
def test_every_subscription_state_has_words(state: SubscriptionState | None, words: str, ok: bool) -> None:
    subscription = None if state is None else SubscriptionStatus(1, state, "detail", NOW)
    assert sync_words.subscription_words(subscription, short=True) == (words, ok)
    long, _ = sync_words.subscription_words(subscription)
    assert long.endswith(".") and "_" not in long  # a sentence, never the raw state


def test_admin_view_shows_the_last_job_subscription_and_queue() -> None:
    users = [SimpleNamespace(id=1, email="alex@contoso.example", full_name="Alex")]
    poisoned = background(
        last_job_outcome=JobOutcome.POISONED, last_job_detail="Graph answered 403", poisoned=True, last_success_at=None
    )
    broken = replace(
        poisoned,
        job_waiting_since=NOW,
        subscription=SubscriptionStatus(1, SubscriptionState.FAILED, "Graph said 400 on create", NOW),
    )
    source = SimpleNamespace(
        rows=[SimpleNamespace(user=users[0], link=link(), override_email="", background=broken)],
        overrides={},
        unknown_override_ids=[],
        queue=QueueStatus(waiting=4, poisoned=1, poisoned_techs=(1,)),
        poll=PollStatus(last_poll_at=NOW - timedelta(minutes=2), outcome="failed", detail="Syncro answered 503"),
    )
    view = admin_views.admin_view(source, csrf_token=CSRF, now=NOW)
    (alex,) = view.rows
    assert alex.last_job == "Failed every retry, set aside" and alex.poisoned and alex.job_waiting
    assert alex.outlook_updates == "Failing" and not alex.outlook_updates_ok and alex.outlook_updates_until is None
    assert alex.last_error is not None and "Graph answered 403" in alex.last_error
    assert (view.jobs_waiting, view.jobs_poisoned) == (4, 1)
    assert view.poll_problem == "The last check of Syncro failed: Syncro answered 503"
    page = parse(render_admin(view))
    assert page.by_id("queue-line").text.startswith("4 sync jobs waiting, 1 set aside after failing every retry")
    assert "Syncro answered 503" in page.by_id("poll-line").text
    assert len(page.all("article")) == 1
    cells = [e.text for e in page.all("dd")]
    assert any("Failed every retry, set aside" in c and "Set aside" in c and "Job waiting" in c for c in cells)
    assert any(c.startswith("Failing") and "last change 4 minutes ago" in c for c in cells)


def test_admin_page_reads_as_words() -> None:
    page = parse(PAGES["admin"])
    assert page.by_id("queue-line").text.startswith("2 sync jobs waiting, 1 set aside")
    assert page.by_id("poll-line").text.startswith("Syncro last checked for changes: 1 minute ago.")
    cells = [e.text for e in page.all("dd")]
    assert any("expires in 1 day, renewed before then" in c for c in cells)
    assert any(c.startswith("Failed every retry, set aside, 7 minutes ago") for c in cells)
    assert "None yet" in PAGES["admin"]  # Casey: linked, no job yet


def test_a_skipped_item_is_named_by_its_title_when_it_has_one() -> None:
    from storage.job_status import SkippedItem
    from web.sync_words import skipped_sentence

    assert skipped_sentence(SkippedItem("outlook", "AAMk", "the event has no start", "Rack move")) == (
        "The Outlook event “Rack move”: the event has no start"
    )
    assert skipped_sentence(SkippedItem("outlook", "AAMk", "the event has no start")).startswith("An Outlook event:")
    assert skipped_sentence(SkippedItem("syncro", "5560138523", "bad time", "Swap")).startswith(
        "Syncro appointment 5560138523 “Swap”"
    )


def test_the_syncro_token_step_has_the_steps_a_checked_form_and_a_plainly_warned_skip() -> None:
    page = parse(PAGES["syncro-token-step"])
    assert page.all("h1")[0].text.startswith("Step 2 of 2")
    assert page.by_id("syncro-token-steps").tag == "ol" and len(page.all("li")) >= 5
    (form,) = [f for f in page.forms if f[0].attrs.get("id") == "syncro-token"]
    assert form[0].attrs["action"] == routes.SYNCRO_TOKEN_PATH
    assert {e.attrs.get("name") for e in form} >= {"csrf_token", "token", "step"}
    assert page.by_id("skip-warning").attrs["class"] == "notice warning"
    assert "do not appear in Outlook" in page.by_id("skip-warning").text
    assert page.by_id("skip").attrs["href"] == routes.SETTINGS_PATH + "?skipped=token"
    problem = parse(PAGES["syncro-token-problem"])
    assert problem.by_id("notice").attrs["class"] == "notice problem" and "Step 2" not in PAGES["syncro-token-problem"]


def test_events_left_in_a_calendar_no_longer_synced_are_named_and_explained() -> None:
    html = render_settings(linked_view(released=("Dentist", "Team lunch")))
    page = parse(html)
    assert page.by_id("released").tag == "ul" and "Dentist" in html and "Team lunch" in html
    assert "No longer synced: 2 events in the calendar you synced before" in html
    assert "Their copies in Syncro stay too" in html
    many = render_settings(linked_view(released=tuple(f"Event {n}" for n in range(13))))
    assert "and 3 more." in many and "Event 12" not in many
    assert 'id="released"' not in render_settings(linked_view())


def test_the_place_a_tech_makes_a_syncro_token_is_named_the_same_everywhere() -> None:
    """Issue 18: the settings page, the linking step, the admin page, the errors and the docs name one place."""
    from pathlib import Path

    from sync.ownership import OwnershipUnknown

    place = "Profile/Password > API Tokens"
    assert place in settings_views.SYNCRO_TOKEN_PLACE
    assert place in OwnershipUnknown(techs_without_token=(1,)).explanation
    source = (Path(__file__).parents[2] / "sync" / "syncro_tokens.py").read_text()
    assert source.count(place) == 2 and "Admin > API Tokens" not in source
    for page in (PAGES["syncro-token-step"], PAGES["admin"]):
        assert "Profile/Password" in page
    docs = Path(__file__).parents[2] / "docs"
    assert "Profile/Password, then API Tokens" in (docs / "linking.md").read_text()
    assert "Profile/Password > API Tokens" in (docs / "troubleshooting.md").read_text()


def test_the_token_note_names_who_set_it_in_each_readers_words() -> None:
    from types import SimpleNamespace

    from web.sync_words import token_note

    by_tech = SimpleNamespace(set_by="tech", set_at=datetime(2026, 12, 1, tzinfo=UTC))
    by_admin = SimpleNamespace(set_by="admin", set_at=None)
    assert token_note(by_tech) == "Your Syncro API token was set on 01 Dec 2026 by you."
    assert token_note(by_admin) == "Your Syncro API token was set by your admin."
    assert token_note(by_tech, for_admin=True) == "Set on 01 Dec 2026 by the technician."
    assert token_note(by_admin, for_admin=True) == "Set by an admin."
    assert token_note(None) is None
