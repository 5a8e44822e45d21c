"""The identity simulator's sign-in and consent pages in a real Chromium: the link flow as a technician's browser
runs it. MSAL builds the /authorize URL, Chromium signs in and consents over the simulator's TLS, and the app's
redirect URI (a small HTTPS receiver with the same test certificate) gets a code that MSAL redeems."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import msal
import pytest
import requests
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from local.serve import RunningServer, serve_in_thread
from local.sims.control import SimControl
from local.sims.identity import IdentitySim, msal_session
from local.sims.tokens import TokenIssuer
from local.tls import TlsFiles, make_tls_files

TENANT_ID = "5b0e2c61-7d3a-4f1e-9c2b-8a4d6e0f1b23"
CLIENT_ID = "7e2f4a6c-8b1d-4e3f-a5c7-9d0b2e4f6a81"
CLIENT_SECRET = "browser-test-secret~value"
APP_NAME = "Syncro Calendar Sync"
SCOPES = ["Calendars.ReadWrite", "User.Read"]
TECH = "alex@contoso.com"
PASSWORD = "Passw0rd!"
CALLBACK_PATH = "/api/oauth/callback"

# MSAL warns whenever response_mode is not form_post; these tests pick the mode on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")


@dataclass
class Receiver:
    """The app's redirect URI: records each callback's query and answers with a small page."""

    server: RunningServer
    hits: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def redirect_uri(self) -> str:
        return self.server.url + CALLBACK_PATH


@dataclass
class Identity:
    url: str
    sim: IdentitySim
    tls: TlsFiles
    receiver: Receiver
    sessions: list[requests.Session] = field(default_factory=list)

    def web_app(self, tenant: str = "common") -> msal.ConfidentialClientApplication:
        session = msal_session(self.url, str(self.tls.ca_bundle))
        self.sessions.append(session)
        return msal.ConfidentialClientApplication(
            CLIENT_ID,
            client_credential=CLIENT_SECRET,
            authority=f"{self.url}/{tenant}",
            http_client=session,
            instance_discovery=False,
            http_cache={},
        )


@pytest.fixture(scope="module")
def receiver(tls_files: TlsFiles) -> Iterator[Receiver]:
    hits: list[dict[str, str]] = []

    async def callback(request: Request) -> HTMLResponse:
        # form_post bodies are urlencoded; parsed here since Starlette's form() needs python-multipart.
        params = (
            dict(parse_qsl((await request.body()).decode())) if request.method == "POST" else dict(request.query_params)
        )
        hits.append({"method": request.method, **params})
        outcome = "Linked" if "code" in params else "Not linked"
        return HTMLResponse(
            f"<!DOCTYPE html><html lang='en'><head><title>{outcome}</title></head>"
            f"<body><h1 id='outcome'>{outcome}</h1></body></html>"
        )

    app = Starlette(routes=[Route(CALLBACK_PATH, callback, methods=["GET", "POST"])])
    server = serve_in_thread(app, tls=tls_files, name="oauth-callback")
    try:
        yield Receiver(server, hits)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def identity_server(tls_files: TlsFiles) -> Iterator[tuple[RunningServer, IdentitySim]]:
    sim = IdentitySim(control=SimControl(), issuer=TokenIssuer())
    server = serve_in_thread(sim.app, tls=tls_files, name="identity-sim")
    try:
        yield server, sim
    finally:
        server.stop()


@pytest.fixture
def identity(
    identity_server: tuple[RunningServer, IdentitySim], receiver: Receiver, tls_files: TlsFiles
) -> Iterator[Identity]:
    server, sim = identity_server
    sim.reset()
    receiver.hits.clear()
    sim.seed(
        {
            "tenants": [{"id": TENANT_ID, "name": "Contoso", "domain": "contoso.com"}],
            "users": [{"email": TECH, "password": PASSWORD, "name": "Alex Tech"}],
            "apps": [
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": [receiver.redirect_uri],
                    "name": APP_NAME,
                }
            ],
        }
    )
    identity = Identity(server.url, sim, tls_files, receiver)
    yield identity
    # An idle keep-alive TLS connection left open holds up the server's stop (asyncio waits for close_notify).
    for session in identity.sessions:
        session.close()


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


# query: the code comes back in the redirect's URL; form_post (what MSAL recommends): the simulator's page posts it
# to the app with a script, which only a real browser runs.
@pytest.mark.parametrize("response_mode", ["query", "form_post"])
def test_tech_signs_in_and_consents_in_chromium_and_the_app_gets_a_code(
    page: Page, identity: Identity, response_mode: str
) -> None:
    app = identity.web_app()
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=identity.receiver.redirect_uri, response_mode=response_mode)

    page.goto(flow["auth_uri"])
    expect(page).to_have_title("Sign in to your account")
    expect(page.locator("#app-name")).to_have_text(APP_NAME)
    page.fill("#email", TECH)
    page.fill("#password", PASSWORD)
    page.click("#signin")

    expect(page).to_have_title("Permissions requested")
    expect(page.locator("#user")).to_have_text(TECH)
    expect(page.locator("#scopes .scope")).to_contain_text(SCOPES)
    page.click("#accept")

    expect(page.locator("#outcome")).to_have_text("Linked")
    [hit] = identity.receiver.hits
    params = {name: value for name, value in hit.items() if name != "method"}
    if response_mode == "query":
        assert hit["method"] == "GET" and _query(page.url) == params
    else:
        assert hit["method"] == "POST" and page.url == identity.receiver.redirect_uri
    assert params["code"] and params["state"] == flow["state"]
    # The code is a real one: MSAL redeems it (PKCE verifier, state) for the tech's tokens.
    result = app.acquire_token_by_auth_code_flow(flow, params)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == TECH
    assert result["id_token_claims"]["tid"] == TENANT_ID


def test_wrong_password_stays_on_the_sign_in_page_with_an_alert(page: Page, identity: Identity) -> None:
    flow = identity.web_app().initiate_auth_code_flow(
        SCOPES, redirect_uri=identity.receiver.redirect_uri, login_hint=TECH
    )
    page.goto(flow["auth_uri"])
    expect(page.get_by_label("Email, phone, or Skype")).to_have_value(TECH)  # login_hint prefills
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("account or password is incorrect")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert identity.receiver.hits == []


def test_sign_in_page_is_accessible(page: Page, identity: Identity) -> None:
    flow = identity.web_app().initiate_auth_code_flow(SCOPES, redirect_uri=identity.receiver.redirect_uri)
    page.goto(flow["auth_uri"])

    assert page.get_attribute("html", "lang") == "en"
    # Every input a person fills has a label that names it (what a screen reader reads out).
    unlabelled = page.eval_on_selector_all(
        "input:not([type=hidden])",
        "inputs => inputs.filter(i => i.labels.length === 0 && !i.getAttribute('aria-label')).map(i => i.outerHTML)",
    )
    assert unlabelled == []
    expect(page.get_by_label("Email, phone, or Skype")).to_have_attribute("id", "email")
    expect(page.get_by_label("Password")).to_have_attribute("type", "password")
    expect(page.get_by_label("Email, phone, or Skype")).to_have_attribute("autocomplete", "username")
    expect(page.get_by_label("Password")).to_have_attribute("autocomplete", "current-password")
    # The accessibility tree as assistive technology gets it: a heading, two named text boxes, a named button.
    expect(page.locator("main")).to_match_aria_snapshot(
        """
        - heading "Sign in" [level=1]
        - textbox "Email, phone, or Skype"
        - textbox "Password"
        - button "Sign in"
        """
    )
    # Keyboard only: Tab from the email box reaches the password box, then the button.
    page.get_by_label("Email, phone, or Skype").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign in")).to_be_focused()


def test_chromium_trusts_only_the_test_servers_certificate(
    page: Page, identity: Identity, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The browser fixture trusts the session's loopback certificate, not every certificate: a server with one
    # from another throw-away CA is refused as a real browser would refuse it.
    stranger = serve_in_thread(identity.sim.app, tls=make_tls_files(tmp_path_factory.mktemp("other-ca")), name="other")
    try:
        with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
            page.goto(f"{stranger.url}/common/v2.0/.well-known/openid-configuration")
    finally:
        stranger.stop()
    page.goto(f"{identity.url}/common/v2.0/.well-known/openid-configuration")
    expect(page.locator("body")).to_contain_text('"issuer"')
