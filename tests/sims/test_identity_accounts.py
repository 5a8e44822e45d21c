"""Accounts in the identity simulator: sign-in names (UPN) apart from mail addresses, codes bound to the
tenant they were issued for (AADSTS700005), and opaque personal-account access tokens that the Graph
simulator still accepts. Real MSAL over TLS, as in test_identity.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import jwt
import pytest
import requests

from local.serve import RunningServer, serve_in_thread
from local.sims.graph import GraphSim
from local.sims.identity import PERSONAL_TENANT_ID
from local.tls import TlsFiles
from tests.sims.identity_support import (
    ALICE,
    PASSWORD,
    PAT,
    REDIRECT_URI,
    SCOPES,
    TENANT_ID,
    WEB_CLIENT_ID,
    WEB_SECRET,
    Stack,
    link_with_msal,
    read_page,
    redirect_params,
    sign_in,
    sign_in_once,
)

pytest_plugins = ["tests.sims.identity_support"]

DANA_UPN = "Dana.Smith@Contoso.com"  # the sign-in name, case as seeded
DANA_MAIL = "dana@contoso-mail.example"
NOMAIL_UPN = "svc-calendar@contoso.com"
FABRIKAM_ID = "7d1e0f4a-0000-4000-8000-0000000000fb"


def _seed_accounts(stack: Stack) -> None:
    stack.sim.seed(
        {
            "tenants": [{"id": FABRIKAM_ID, "name": "Fabrikam", "domain": "fabrikam.com"}],
            "users": [
                {"upn": DANA_UPN, "mail": DANA_MAIL, "password": PASSWORD, "name": "Dana Smith"},
                {"upn": NOMAIL_UPN, "mail": None, "password": PASSWORD, "name": "Calendar Service"},
                {"email": "Erin@Fabrikam.com", "password": PASSWORD, "name": "Erin"},
            ],
        }
    )


def _raw_tokens(stack: Stack, email: str, scope: str) -> dict:
    """Authorize with exactly ``scope`` (MSAL never sends the email scope) and redeem the code."""
    query = {"client_id": WEB_CLIENT_ID, "response_type": "code", "redirect_uri": REDIRECT_URI, "scope": scope}
    auth_uri = f"{stack.url}/common/oauth2/v2.0/authorize?{urlencode(query)}"
    code = redirect_params(sign_in(stack.session(), auth_uri, email))["code"]
    form = {
        "grant_type": "authorization_code",
        "client_id": WEB_CLIENT_ID,
        "client_secret": WEB_SECRET,
        "code": code,
        "redirect_uri": REDIRECT_URI,
    }
    answer = stack.session().post(stack.token_url(), data=form)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


# --- UPN and mail ----------------------------------------------------------------------------------------------


def test_sign_in_matches_the_upn_in_any_case_and_preferred_username_keeps_its_case(stack: Stack) -> None:
    _seed_accounts(stack)
    _, result = link_with_msal(stack, email=DANA_UPN.lower())
    claims = result["id_token_claims"]
    assert claims["preferred_username"] == DANA_UPN
    assert "email" not in claims  # MSAL does not ask for the email scope
    access = stack.issuer.verify(result["access_token"], now=stack.control.clock.timestamp())
    assert access["preferred_username"] == DANA_UPN


def test_the_mail_address_is_not_a_sign_in_name(stack: Stack) -> None:
    _seed_accounts(stack)
    session = stack.session()
    flow = stack.web_app().initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    again = sign_in_once(session, flow["auth_uri"], DANA_MAIL)
    assert again.status_code == 200
    assert read_page(again).error.startswith("This username may be incorrect.")


def test_email_claim_only_with_the_email_scope_and_a_mail_address(stack: Stack) -> None:
    _seed_accounts(stack)
    with_email = _claims(_raw_tokens(stack, DANA_UPN, "Calendars.ReadWrite openid email")["id_token"])
    assert (with_email["email"], with_email["preferred_username"]) == (DANA_MAIL, DANA_UPN)
    without_scope = _claims(_raw_tokens(stack, DANA_UPN, "Calendars.ReadWrite openid profile")["id_token"])
    assert "email" not in without_scope
    no_mail = _claims(_raw_tokens(stack, NOMAIL_UPN, "Calendars.ReadWrite openid email")["id_token"])
    assert "email" not in no_mail
    assert no_mail["preferred_username"] == NOMAIL_UPN


def test_users_route_shows_upn_and_mail_and_an_email_only_seed_gets_both(stack: Stack) -> None:
    _seed_accounts(stack)
    users = {user["upn"]: user for user in stack.session().get(f"{stack.url}/_sim/users").json()["users"]}
    assert (users[DANA_UPN]["mail"], users[DANA_UPN]["email"]) == (DANA_MAIL, DANA_MAIL)
    assert (users[NOMAIL_UPN]["mail"], users[NOMAIL_UPN]["email"]) == (None, NOMAIL_UPN)
    erin = users["Erin@Fabrikam.com"]
    assert (erin["mail"], erin["tenant_id"]) == ("Erin@Fabrikam.com", FABRIKAM_ID)
    assert users[ALICE]["mail"] == ALICE
    # Control routes find a user by UPN in any case, or by mail address.
    assert stack.session().post(f"{stack.url}/_sim/users/{DANA_MAIL}/revoke").json()["revoked"] == DANA_UPN.lower()


def test_password_grant_takes_the_upn_in_any_case(stack: Stack) -> None:
    _seed_accounts(stack)
    app = stack.public_app(FABRIKAM_ID)
    result = app.acquire_token_by_username_password("erin@fabrikam.com", PASSWORD, scopes=SCOPES)
    assert result["id_token_claims"]["preferred_username"] == "Erin@Fabrikam.com"


def test_seed_refuses_bad_upn_and_mail(stack: Stack) -> None:
    session = stack.session()
    for user in (
        {"upn": "no-at-sign", "password": "x"},
        {"password": "x"},
        {"upn": "x@contoso.com", "mail": 5, "password": "x"},
        {"upn": "x@contoso.com", "mail": "not-an-address", "password": "x"},
    ):
        assert session.post(f"{stack.url}/_sim/seed", json={"users": [user]}).status_code == 400, user


# --- codes are bound to their tenant ----------------------------------------------------------------------------


def test_code_issued_for_one_tenant_is_refused_at_another_with_700005(stack: Stack) -> None:
    _seed_accounts(stack)
    flow = stack.web_app(TENANT_ID).initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    params = redirect_params(sign_in(stack.session(), flow["auth_uri"], ALICE))
    refused = stack.web_app(FABRIKAM_ID).acquire_token_by_auth_code_flow(dict(flow), params)
    assert refused["error"] == "invalid_grant"
    assert refused["error_codes"] == [700005]
    assert refused["error_description"].startswith(
        "AADSTS700005: Provided Authorization Code is intended to use against other tenant, thus rejected."
    )
    # The same code still works where it belongs.
    assert "access_token" in stack.web_app(TENANT_ID).acquire_token_by_auth_code_flow(flow, params)


def test_code_from_common_works_at_the_users_tenant_but_not_at_another(stack: Stack) -> None:
    _seed_accounts(stack)
    flow = stack.web_app().initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    params = redirect_params(sign_in(stack.session(), flow["auth_uri"], ALICE))
    refused = stack.web_app(FABRIKAM_ID).acquire_token_by_auth_code_flow(dict(flow), params)
    assert refused["error_codes"] == [700005]
    assert "access_token" in stack.web_app(TENANT_ID).acquire_token_by_auth_code_flow(flow, params)


def test_personal_code_is_refused_at_organizations(stack: Stack) -> None:
    flow = stack.web_app().initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    params = redirect_params(sign_in(stack.session(), flow["auth_uri"], PAT))
    refused = stack.web_app("organizations").acquire_token_by_auth_code_flow(dict(flow), params)
    assert refused["error_codes"] == [700005]
    assert "access_token" in stack.web_app("consumers").acquire_token_by_auth_code_flow(flow, params)


# --- opaque personal-account access tokens -----------------------------------------------------------------------


@pytest.fixture
def graph_url(stack: Stack, tls_files: TlsFiles) -> Iterator[str]:
    """A Graph simulator sharing the identity simulator's TokenIssuer, as in the local stack."""
    sim = GraphSim(control=stack.control, issuer=stack.issuer, ca_bundle=str(tls_files.ca_bundle))
    server: RunningServer = serve_in_thread(sim.app, tls=tls_files, name="graph-sim-accounts")
    try:
        yield server.url
    finally:
        server.stop()
        sim.close()


def _graph_get(stack: Stack, graph_url: str, token: str) -> requests.Response:
    session = requests.Session()
    session.verify = str(stack.tls.ca_bundle)
    session.trust_env = False
    return session.get(f"{graph_url}/v1.0/me/calendars", headers={"Authorization": f"Bearer {token}"})


def test_personal_access_token_is_opaque_and_graph_accepts_it(stack: Stack, graph_url: str) -> None:
    _, result = link_with_msal(stack, email=PAT)
    token = result["access_token"]
    assert token.startswith("EwB")
    with pytest.raises(jwt.DecodeError):
        _claims(token)
    claims = stack.issuer.verify(token, now=stack.control.clock.timestamp())
    assert (claims["tid"], claims["oid"]) == (PERSONAL_TENANT_ID, stack.oid(PAT))
    answer = _graph_get(stack, graph_url, token)
    assert answer.status_code == 200, answer.text
    assert _graph_get(stack, graph_url, token[:-4] + "AAAA").status_code == 401


def test_opaque_personal_token_expires_like_any_other(stack: Stack, graph_url: str) -> None:
    _, result = link_with_msal(stack, email=PAT)
    stack.control.clock.advance(3601)
    answer = _graph_get(stack, graph_url, result["access_token"])
    assert answer.status_code == 401
    assert "expired" in answer.json()["error"]["message"]


def test_work_tokens_stay_jwts_and_the_setting_turns_opaque_tokens_off(stack: Stack) -> None:
    _, work = link_with_msal(stack, email=ALICE)
    assert _claims(work["access_token"])["tid"] == TENANT_ID
    changed = stack.session().patch(f"{stack.url}/_sim/settings", json={"personal_access_tokens_opaque": False})
    assert changed.json()["personal_access_tokens_opaque"] is False
    _, personal = link_with_msal(stack, email=PAT)
    assert _claims(personal["access_token"])["tid"] == PERSONAL_TENANT_ID
