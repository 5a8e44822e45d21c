"""Helpers and fixtures of the identity simulator tests: the seeded stack over real TLS, a tiny browser
that reads and posts the simulator's HTML forms, and raw authorization-code and token requests.
Load the fixtures with ``pytest_plugins = ["tests.sims.identity_support"]``.

PYTEST_DONT_REWRITE: the test modules import this module before pytest loads it as their plugin, too late
for assertion rewriting; its asserts stay plain (as graph_support's are), which this marker says."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import msal
import pytest
import requests

from local.serve import RunningServer, serve_in_thread
from local.sims.control import SimControl
from local.sims.identity import IdentitySim, msal_session
from local.sims.tokens import TokenIssuer
from local.tls import TlsFiles

TENANT_ID = "3f6c1a52-8a2e-4a53-9d2b-6f0c1b7e2a10"
WEB_CLIENT_ID = "6a1d3c0e-2b7f-4c55-8e0a-9f2d4b6c8e01"
WEB_SECRET = "web-app-secret~value"
PUBLIC_CLIENT_ID = "0c9e8b7a-1d2c-4e3f-9a8b-7c6d5e4f3a21"
REDIRECT_URI = "https://localhost:7071/api/oauth/callback"
SCOPES = ["Calendars.ReadWrite", "User.Read"]
ALICE = "alice@contoso.com"
PAT = "pat@outlook.com"
PASSWORD = "Passw0rd!"


@dataclass
class Stack:
    url: str
    sim: IdentitySim
    control: SimControl
    issuer: TokenIssuer
    tls: TlsFiles
    seeded: dict

    def session(self) -> requests.Session:
        return msal_session(self.url, str(self.tls.ca_bundle))

    def web_app(self, tenant: str = "common") -> msal.ConfidentialClientApplication:
        return msal.ConfidentialClientApplication(
            WEB_CLIENT_ID,
            client_credential=WEB_SECRET,
            authority=f"{self.url}/{tenant}",
            http_client=self.session(),
            instance_discovery=False,
            http_cache={},
        )

    def public_app(self, tenant: str = "common") -> msal.PublicClientApplication:
        """The public client (no secret) at ``tenant``, talking to the simulator."""
        return msal.PublicClientApplication(
            PUBLIC_CLIENT_ID,
            authority=f"{self.url}/{tenant}",
            http_client=self.session(),
            instance_discovery=False,
            http_cache={},
        )

    def token_url(self, tenant: str = "common") -> str:
        return f"{self.url}/{tenant}/oauth2/v2.0/token"

    def oid(self, email: str) -> str:
        return next(user["oid"] for user in self.seeded["users"] if user["email"] == email)


@pytest.fixture(scope="module")
def running(tls_files: TlsFiles) -> Iterator[tuple[RunningServer, IdentitySim, SimControl, TokenIssuer]]:
    control = SimControl()
    issuer = TokenIssuer()
    sim = IdentitySim(control=control, issuer=issuer)
    server = serve_in_thread(sim.app, tls=tls_files, name="identity-sim")
    try:
        yield server, sim, control, issuer
    finally:
        server.stop()


@pytest.fixture
def stack(running: tuple[RunningServer, IdentitySim, SimControl, TokenIssuer], tls_files: TlsFiles) -> Stack:
    server, sim, control, issuer = running
    sim.reset()
    control.clock.reset()
    control.faults.clear()
    control.counters.clear()
    seeded = sim.seed(
        {
            "tenants": [{"id": TENANT_ID, "name": "Contoso", "domain": "contoso.com"}],
            "users": [
                {"email": ALICE, "password": PASSWORD, "name": "Alice Tech"},
                {"email": PAT, "password": PASSWORD, "name": "Pat Personal", "personal": True},
            ],
            "apps": [
                {
                    "client_id": WEB_CLIENT_ID,
                    "client_secret": WEB_SECRET,
                    "redirect_uris": [REDIRECT_URI],
                    "name": "Syncro Calendar Sync",
                },
                {"client_id": PUBLIC_CLIENT_ID, "redirect_uris": ["http://localhost"], "name": "Demo CLI"},
            ],
        }
    )
    return Stack(server.url, sim, control, issuer, tls_files, seeded)


# --- a tiny browser: read forms, post them -----------------------------------------------------------------


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.error = ""
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append({"action": values.get("action", ""), "fields": {}, "buttons": {}})
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1]["fields"][values["name"]] = values.get("value", "")
        elif tag == "button" and self.forms and values.get("id"):
            self.forms[-1]["buttons"][values["id"]] = (values.get("name"), values.get("value"))
        elif values.get("id") == "error":
            self._in_error = True

    def handle_endtag(self, tag: str) -> None:
        self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.error += data


def read_page(response: requests.Response) -> _Forms:
    page = _Forms()
    page.feed(response.text)
    return page


def submit(session: requests.Session, response: requests.Response, button: str, **fields: str) -> requests.Response:
    form = read_page(response).forms[0]
    data = {**form["fields"], **fields}
    name, value = form["buttons"][button]
    if name:
        data[name] = value
    return session.post(urljoin(response.url, form["action"]), data=data, allow_redirects=False)


def sign_in_once(session: requests.Session, url: str, email: str, password: str = PASSWORD) -> requests.Response:
    """Open the sign-in page ``url`` leads to and submit it: the next page, or the redirect to the app."""
    page = session.get(url, allow_redirects=False)
    assert page.status_code == 200, page.text
    return submit(session, page, "signin", email=email, password=password)


def sign_in(
    session: requests.Session, auth_uri: str, email: str, password: str = PASSWORD, decision: str = "accept"
) -> requests.Response:
    """Walk the sign-in and (when shown) consent pages; the last response is the redirect to the app."""
    answer = sign_in_once(session, auth_uri, email, password)
    if answer.status_code == 200 and "accept" in read_page(answer).forms[0]["buttons"]:
        answer = submit(session, answer, decision)
    return answer


def redirect_params(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI)
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def link_with_msal(stack: Stack, email: str = ALICE, tenant: str = "common") -> tuple[msal.ClientApplication, dict]:
    app = stack.web_app(tenant)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    params = redirect_params(sign_in(stack.session(), flow["auth_uri"], email))
    result = app.acquire_token_by_auth_code_flow(flow, params)
    assert "access_token" in result, result
    return app, result


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def raw_code(stack: Stack, challenge: str | None = None, email: str = ALICE) -> str:
    query = {
        "client_id": WEB_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "Calendars.ReadWrite offline_access openid",
        "state": "s1",
    }
    if challenge:
        query.update(code_challenge=challenge, code_challenge_method="S256")
    params = redirect_params(
        sign_in(stack.session(), f"{stack.url}/common/oauth2/v2.0/authorize?{urlencode(query)}", email)
    )
    return params["code"]


def redeem(stack: Stack, code: str, verifier: str | None = None, **extra: str) -> requests.Response:
    data = {
        "grant_type": "authorization_code",
        "client_id": WEB_CLIENT_ID,
        "client_secret": WEB_SECRET,
        "code": code,
        "redirect_uri": REDIRECT_URI,
        **extra,
    }
    if verifier:
        data["code_verifier"] = verifier
    return stack.session().post(stack.token_url(), data=data)


def refresh(stack: Stack, refresh_token: str) -> requests.Response:
    return stack.session().post(
        stack.token_url(),
        data={
            "grant_type": "refresh_token",
            "client_id": WEB_CLIENT_ID,
            "client_secret": WEB_SECRET,
            "refresh_token": refresh_token,
            "scope": "Calendars.ReadWrite offline_access openid",
        },
    )


def assert_aad_error(response: requests.Response, status: int, error: str, code: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert (
        f"\r\nTrace ID: {body['trace_id']}\r\nCorrelation ID: {body['correlation_id']}\r\n" in body["error_description"]
    )
    assert len(body["timestamp"]) == len("2021-06-25 13:16:19Z") and body["timestamp"].endswith("Z")
    return body
