"""The identity simulator over real TLS, driven by real MSAL and by requests posting its HTML forms."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import jwt
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.sims.control import SimControl
from local.sims.identity import PERSONAL_TENANT_ID, IdentitySim
from local.sims.tokens import InvalidAccessToken, TokenIssuer
from tests.sims.identity_support import (
    ALICE,
    PASSWORD,
    PAT,
    PUBLIC_CLIENT_ID,
    REDIRECT_URI,
    SCOPES,
    TENANT_ID,
    WEB_CLIENT_ID,
    WEB_SECRET,
    Stack,
    assert_aad_error,
    link_with_msal,
    pkce_pair,
    raw_code,
    read_page,
    redeem,
    redirect_params,
    refresh,
    sign_in,
    submit,
)

pytest_plugins = ["tests.sims.identity_support"]


# --- discovery -----------------------------------------------------------------------------------------------


def test_discovery_names_the_simulator_endpoints_and_issuer(stack: Stack) -> None:
    session = stack.session()
    common = session.get(f"{stack.url}/common/v2.0/.well-known/openid-configuration").json()
    assert common["authorization_endpoint"] == f"{stack.url}/common/oauth2/v2.0/authorize"
    assert common["token_endpoint"] == f"{stack.url}/common/oauth2/v2.0/token"
    assert common["issuer"] == f"{stack.url}/{{tenantid}}/v2.0"
    by_domain = session.get(f"{stack.url}/contoso.com/v2.0/.well-known/openid-configuration").json()
    assert by_domain["issuer"] == f"{stack.url}/{TENANT_ID}/v2.0"
    assert by_domain["token_endpoint"] == f"{stack.url}/{TENANT_ID}/oauth2/v2.0/token"
    consumers = session.get(f"{stack.url}/consumers/v2.0/.well-known/openid-configuration").json()
    assert consumers["issuer"] == f"{stack.url}/{PERSONAL_TENANT_ID}/v2.0"


def test_unknown_tenant_fails_discovery_and_msal_construction(stack: Stack) -> None:
    response = stack.session().get(f"{stack.url}/nowhere.example/v2.0/.well-known/openid-configuration")
    assert_aad_error(response, 400, "invalid_tenant", 90002)
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        stack.web_app("nowhere.example")


# --- the authorization code flow with MSAL -------------------------------------------------------------------


def test_msal_auth_code_flow_gives_tokens_for_the_signed_in_user(stack: Stack) -> None:
    _, result = link_with_msal(stack)
    claims = result["id_token_claims"]
    assert claims["preferred_username"] == ALICE
    assert claims["oid"] == stack.oid(ALICE)
    assert claims["tid"] == TENANT_ID
    assert claims["aud"] == WEB_CLIENT_ID
    assert claims["iss"] == f"{stack.url}/{TENANT_ID}/v2.0"
    assert claims["ver"] == "2.0"
    access = stack.issuer.verify(result["access_token"], now=stack.control.clock.timestamp())
    assert access["scp"].split() == SCOPES
    assert access["oid"] == stack.oid(ALICE) and access["appid"] == WEB_CLIENT_ID
    assert result["refresh_token"]
    assert result["token_type"] == "Bearer"


def test_id_token_signature_verifies_with_the_published_keys(stack: Stack) -> None:
    _, result = link_with_msal(stack)
    config = stack.session().get(f"{stack.url}/{TENANT_ID}/v2.0/.well-known/openid-configuration").json()
    jwks = stack.session().get(config["jwks_uri"]).json()
    kid = jwt.get_unverified_header(result["id_token"])["kid"]
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid))
    claims = jwt.decode(
        result["id_token"],
        key.key,
        algorithms=["RS256"],
        audience=WEB_CLIENT_ID,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["iss"] == config["issuer"]


def test_silent_acquisition_refreshes_once_the_access_token_has_expired(stack: Stack) -> None:
    # MSAL judges expiry on its own wall clock and refreshes when under 5 minutes remain; a 4-minute
    # lifetime makes it refresh, and moving the simulator's clock proves the old token is dead.
    stack.sim.update_settings(access_token_lifetime_seconds=240)
    app, first = link_with_msal(stack)
    stack.control.clock.advance(300)
    with pytest.raises(InvalidAccessToken):
        stack.issuer.verify(first["access_token"], now=stack.control.clock.timestamp())
    account = app.get_accounts(username=ALICE)[0]
    second = app.acquire_token_silent(SCOPES, account=account)
    assert second and "access_token" in second, second
    assert stack.issuer.verify(second["access_token"], now=stack.control.clock.timestamp())["oid"] == stack.oid(ALICE)
    grants = [(entry["grant_type"], entry["status"]) for entry in stack.sim.token_requests()]
    assert grants == [("authorization_code", 200), ("refresh_token", 200)]


def test_consent_cancel_sends_access_denied_back_to_the_app(stack: Stack) -> None:
    app = stack.web_app()
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    params = redirect_params(sign_in(stack.session(), flow["auth_uri"], ALICE, decision="cancel"))
    assert params["error"] == "access_denied"
    assert params["error_description"].startswith("AADSTS65004: User declined to consent")
    assert params["state"] == flow["state"]
    assert "code" not in params


def test_consent_is_remembered_for_the_next_sign_in(stack: Stack) -> None:
    link_with_msal(stack)
    app = stack.web_app()
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    session = stack.session()
    page = session.get(flow["auth_uri"])
    after_password = submit(session, page, "signin", email=ALICE, password=PASSWORD)
    assert after_password.status_code == 302  # no consent page the second time
    assert "access_token" in app.acquire_token_by_auth_code_flow(flow, redirect_params(after_password))


def test_wrong_password_shows_the_sign_in_page_again(stack: Stack) -> None:
    flow = stack.web_app().initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI, login_hint=ALICE)
    session = stack.session()
    page = session.get(flow["auth_uri"])
    assert read_page(page).forms[0]["fields"]["email"] == ALICE  # login_hint prefills
    again = submit(session, page, "signin", email=ALICE, password="wrong")
    assert again.status_code == 200
    assert "account or password is incorrect" in read_page(again).error
    assert "signin" in read_page(again).forms[0]["buttons"]


def test_personal_account_is_refused_at_organizations_without_a_redirect(stack: Stack) -> None:
    flow = stack.web_app("organizations").initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    answer = sign_in(stack.session(), flow["auth_uri"], PAT)
    assert answer.status_code == 200
    assert "Use your work or school account instead" in read_page(answer).error


def test_personal_account_comes_back_at_common_with_the_consumer_tenant(stack: Stack) -> None:
    _, result = link_with_msal(stack, email=PAT)
    assert result["id_token_claims"]["tid"] == PERSONAL_TENANT_ID
    assert result["id_token_claims"]["oid"].startswith("00000000-0000-0000-")


def test_work_account_is_refused_at_consumers(stack: Stack) -> None:
    flow = stack.web_app("consumers").initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    answer = sign_in(stack.session(), flow["auth_uri"], ALICE)
    assert answer.status_code == 200 and "work or school account" in read_page(answer).error


def test_unknown_client_and_unregistered_redirect_uri_end_on_an_error_page(stack: Stack) -> None:
    session = stack.session()
    base = f"{stack.url}/common/oauth2/v2.0/authorize?"
    unknown = session.get(
        base
        + urlencode({"client_id": "nope", "redirect_uri": REDIRECT_URI, "response_type": "code", "scope": "openid"}),
        allow_redirects=False,
    )
    assert unknown.status_code == 400 and "AADSTS700016" in read_page(unknown).error
    evil = session.get(
        base
        + urlencode(
            {
                "client_id": WEB_CLIENT_ID,
                "redirect_uri": "https://evil.example/cb",
                "response_type": "code",
                "scope": "openid",
            }
        ),
        allow_redirects=False,
    )
    assert evil.status_code == 400 and "AADSTS50011" in read_page(evil).error
    assert "location" not in evil.headers


def test_bad_scope_goes_back_to_the_app_as_invalid_scope(stack: Stack) -> None:
    query = {
        "client_id": WEB_CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "Calendars.Fly openid",
        "state": "xyz",
    }
    answer = stack.session().get(f"{stack.url}/common/oauth2/v2.0/authorize?{urlencode(query)}", allow_redirects=False)
    params = redirect_params(answer)
    assert params["error"] == "invalid_scope" and params["state"] == "xyz"


# --- codes and PKCE ------------------------------------------------------------------------------------------


def test_pkce_wrong_verifier_is_refused_and_a_code_works_only_once(stack: Stack) -> None:
    verifier, challenge = pkce_pair()
    code = raw_code(stack, challenge)
    assert_aad_error(redeem(stack, code, "not-the-verifier"), 400, "invalid_grant", 501481)
    assert_aad_error(redeem(stack, code), 400, "invalid_grant", 501481)  # verifier missing
    assert redeem(stack, code, verifier).status_code == 200
    assert_aad_error(redeem(stack, code, verifier), 400, "invalid_grant", 54005)


def test_code_expires_and_must_name_the_same_redirect_uri(stack: Stack) -> None:
    code = raw_code(stack)
    assert_aad_error(redeem(stack, code, redirect_uri="https://localhost:7071/other"), 400, "invalid_grant", 500112)
    stack.control.clock.advance(601)
    assert_aad_error(redeem(stack, code), 400, "invalid_grant", 70008)


def test_token_response_shape_and_refresh_only_with_offline_access(stack: Stack) -> None:
    body = redeem(stack, raw_code(stack), client_info="1").json()
    assert set(body) >= {
        "token_type",
        "scope",
        "expires_in",
        "ext_expires_in",
        "access_token",
        "refresh_token",
        "id_token",
        "client_info",
    }
    info = base64.urlsafe_b64decode(body["client_info"] + "==")
    assert info == f'{{"uid": "{stack.oid(ALICE)}", "utid": "{TENANT_ID}"}}'.encode()
    password = (
        stack.session()
        .post(
            stack.token_url(TENANT_ID),
            data={
                "grant_type": "password",
                "client_id": PUBLIC_CLIENT_ID,
                "username": ALICE,
                "password": PASSWORD,
                "scope": "https://graph.microsoft.com/calendars.read",
            },
        )
        .json()
    )
    assert "refresh_token" not in password and "id_token" not in password
    assert password["scope"] == "Calendars.Read"


# --- password grant ------------------------------------------------------------------------------------------


def test_msal_password_grant_for_a_work_user(stack: Stack) -> None:
    app = stack.public_app("organizations")
    result = app.acquire_token_by_username_password(ALICE, PASSWORD, scopes=SCOPES)
    assert "access_token" in result, result
    # MSAL's port-less user-realm lookup reached the simulator through msal_session.
    assert stack.control.counters.snapshot()["GET /common/userrealm/{username:path}"] == 1
    assert result["id_token_claims"]["preferred_username"] == ALICE
    assert (
        stack.issuer.verify(result["access_token"], now=stack.control.clock.timestamp())["scp"]
        == "Calendars.ReadWrite User.Read"
    )


def test_msal_password_grant_with_a_wrong_password_gives_50126(stack: Stack) -> None:
    result = stack.web_app(TENANT_ID).acquire_token_by_username_password(ALICE, "wrong", scopes=SCOPES)
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [50126]
    assert result["error_description"].startswith("AADSTS50126: Error validating credentials")


def test_password_grant_is_refused_where_aad_refuses_it(stack: Stack) -> None:
    def ropc(tenant: str, username: str) -> requests.Response:
        return stack.session().post(
            stack.token_url(tenant),
            data={
                "grant_type": "password",
                "client_id": PUBLIC_CLIENT_ID,
                "username": username,
                "password": PASSWORD,
                "scope": "User.Read openid",
            },
        )

    assert_aad_error(ropc("common", ALICE), 400, "invalid_request", 9001023)
    assert_aad_error(ropc("consumers", PAT), 400, "invalid_request", 9001023)
    assert_aad_error(ropc("organizations", PAT), 400, "invalid_grant", 50034)
    assert_aad_error(ropc("organizations", "ghost@contoso.com"), 400, "invalid_grant", 50034)
    assert ropc("organizations", ALICE).status_code == 200


# --- refresh, revocation, injected errors -------------------------------------------------------------------


def first_refresh_token(stack: Stack) -> str:
    return redeem(stack, raw_code(stack)).json()["refresh_token"]


def test_refresh_tokens_rotate_and_the_old_one_stays_valid(stack: Stack) -> None:
    old = first_refresh_token(stack)
    new = refresh(stack, old).json()["refresh_token"]
    assert new != old
    assert refresh(stack, old).status_code == 200
    stack.sim.update_settings(old_refresh_tokens_stay_valid=False)
    newest = refresh(stack, new).json()["refresh_token"]
    assert_aad_error(refresh(stack, new), 400, "invalid_grant", 9002313)
    assert refresh(stack, newest).status_code == 200


def test_refresh_token_dies_after_90_idle_days(stack: Stack) -> None:
    token = first_refresh_token(stack)
    stack.control.clock.advance(89 * 86400)
    renewed = refresh(stack, token).json()["refresh_token"]
    stack.control.clock.advance(2 * 86400)
    body = assert_aad_error(refresh(stack, token), 400, "invalid_grant", 700082)
    assert "was inactive for 90.00:00:00" in body["error_description"]
    assert refresh(stack, renewed).status_code == 200  # the renewed one is 2 days old


def test_revocation_fails_refresh_with_the_configured_code(stack: Stack) -> None:
    token = first_refresh_token(stack)
    stack.control.clock.advance(1)
    session = stack.session()
    assert session.post(f"{stack.url}/_sim/users/{ALICE}/revoke").status_code == 200
    body = assert_aad_error(refresh(stack, token), 400, "invalid_grant", 50173)
    assert "TokensValidFrom" in body["error_description"]
    session.patch(f"{stack.url}/_sim/settings", json={"revocation_error_code": 70008}).raise_for_status()
    assert_aad_error(refresh(stack, token), 400, "invalid_grant", 70008)
    # Signing in again after the revocation gives a working grant.
    assert refresh(stack, first_refresh_token(stack)).status_code == 200


def test_password_change_revokes_refresh_tokens_and_the_new_password_works(stack: Stack) -> None:
    token = first_refresh_token(stack)
    stack.control.clock.advance(1)
    session = stack.session()
    assert session.post(f"{stack.url}/_sim/users/{ALICE}/password", json={"password": "N3w!"}).status_code == 204
    assert session.post(f"{stack.url}/_sim/users/{ALICE}/password", json={"pw": 1}).status_code == 400
    assert_aad_error(refresh(stack, token), 400, "invalid_grant", 50173)
    ropc = {"grant_type": "password", "client_id": PUBLIC_CLIENT_ID, "username": ALICE, "scope": "User.Read"}
    assert_aad_error(
        session.post(stack.token_url(TENANT_ID), data={**ropc, "password": PASSWORD}), 400, "invalid_grant", 50126
    )
    assert session.post(stack.token_url(TENANT_ID), data={**ropc, "password": "N3w!"}).status_code == 200


def test_failed_redemption_burns_the_code_only_when_set(stack: Stack) -> None:
    verifier, challenge = pkce_pair()
    stack.sim.update_settings(failed_redemption_burns_code=True)
    code = raw_code(stack, challenge)
    assert_aad_error(redeem(stack, code, "wrong"), 400, "invalid_grant", 501481)
    assert_aad_error(redeem(stack, code, verifier), 400, "invalid_grant", 54005)


def test_injected_http_fault_answers_in_aad_shape(stack: Stack) -> None:
    session = stack.session()
    session.post(
        f"{stack.url}/_sim/faults", json={"method": "POST", "path": "/oauth2/v2.0/token$", "status": 503, "times": 1}
    ).raise_for_status()
    ropc = {
        "grant_type": "password",
        "client_id": PUBLIC_CLIENT_ID,
        "username": ALICE,
        "password": PASSWORD,
        "scope": "User.Read",
    }
    assert_aad_error(session.post(stack.token_url(TENANT_ID), data=ropc), 503, "temporarily_unavailable", 90033)
    assert session.post(stack.token_url(TENANT_ID), data=ropc).status_code == 200


def test_removed_consent_makes_refresh_answer_consent_required(stack: Stack) -> None:
    token = first_refresh_token(stack)
    assert stack.session().delete(f"{stack.url}/_sim/users/{ALICE}/consents").status_code == 204
    body = assert_aad_error(refresh(stack, token), 400, "invalid_grant", 65001)
    assert body["suberror"] == "consent_required"


@pytest.mark.parametrize(
    ("code", "suberror"),
    [
        (700082, "bad_token"),
        (70008, None),
        (50173, None),
        (65001, "consent_required"),
        (50076, "basic_action"),
        (70000, None),
        (50057, None),
    ],
)
def test_injected_token_errors_answer_in_aad_shape_then_stop(stack: Stack, code: int, suberror: str | None) -> None:
    token = first_refresh_token(stack)
    session = stack.session()
    added = session.post(
        f"{stack.url}/_sim/token_errors", json={"email": ALICE, "code": code, "times": 1, "grant_type": "refresh_token"}
    )
    assert added.status_code == 201
    body = assert_aad_error(refresh(stack, token), 400, "invalid_grant", code)
    assert body.get("suberror") == suberror
    if code == 50076:
        assert "capolids" in body["claims"]
    assert refresh(stack, token).status_code == 200


def test_msal_silent_refresh_surfaces_an_injected_error(stack: Stack) -> None:
    app, _ = link_with_msal(stack)
    stack.session().post(f"{stack.url}/_sim/token_errors", json={"email": "*", "code": 700082, "times": 0})
    account = app.get_accounts(username=ALICE)[0]
    result = app.acquire_token_silent_with_error(SCOPES, account=account, force_refresh=True)
    assert result["error"] == "invalid_grant" and result["error_codes"] == [700082]
    assert stack.session().delete(f"{stack.url}/_sim/token_errors").status_code == 204


def test_correlation_id_echoes_the_client_request_id(stack: Stack) -> None:
    correlation = "0a49cdbc-2e94-4089-bc6f-1162b123592c"
    response = stack.session().post(
        stack.token_url(), data={"grant_type": "password"}, headers={"client-request-id": correlation}
    )
    assert assert_aad_error(response, 400, "invalid_request", 900144)["correlation_id"] == correlation


# --- malformed requests --------------------------------------------------------------------------------------


def test_malformed_token_requests_get_aad_errors(stack: Stack) -> None:
    session = stack.session()
    url = stack.token_url()
    web = {"client_id": WEB_CLIENT_ID, "client_secret": WEB_SECRET}
    assert_aad_error(session.post(url, data={}), 400, "invalid_request", 900144)
    assert_aad_error(session.post(url, json={"grant_type": "password"}), 400, "invalid_request", 900144)
    assert_aad_error(session.get(url), 400, "invalid_request", 900561)
    assert_aad_error(
        session.post(
            url, data="grant_type=a&grant_type=b", headers={"content-type": "application/x-www-form-urlencoded"}
        ),
        400,
        "invalid_request",
        9000411,
    )
    assert_aad_error(session.post(url, data={"grant_type": "password"}), 400, "invalid_request", 900144)
    assert_aad_error(
        session.post(url, data={"grant_type": "password", "client_id": "ghost"}), 400, "unauthorized_client", 700016
    )
    assert_aad_error(
        session.post(url, data={"grant_type": "client_magic", **web}), 400, "unsupported_grant_type", 70003
    )
    assert_aad_error(
        session.post(url, data={"grant_type": "refresh_token", "client_id": WEB_CLIENT_ID, "refresh_token": "x"}),
        401,
        "invalid_client",
        7000218,
    )
    assert_aad_error(
        session.post(
            url,
            data={
                "grant_type": "refresh_token",
                "client_id": WEB_CLIENT_ID,
                "client_secret": "wrong",
                "refresh_token": "x",
            },
        ),
        401,
        "invalid_client",
        7000215,
    )
    assert_aad_error(
        session.post(url, data={"grant_type": "refresh_token", "refresh_token": "x", **web}),
        400,
        "invalid_grant",
        9002313,
    )
    assert_aad_error(
        session.post(url, data={"grant_type": "authorization_code", **web}), 400, "invalid_request", 900144
    )
    assert_aad_error(
        session.post(
            url,
            data={
                "grant_type": "password",
                "client_id": PUBLIC_CLIENT_ID,
                "client_secret": "s",
                "username": ALICE,
                "password": PASSWORD,
                "scope": "openid",
            },
        ),
        401,
        "invalid_client",
        700025,
    )


def test_client_secret_basic_is_accepted(stack: Stack) -> None:
    code = raw_code(stack)
    response = stack.session().post(
        stack.token_url(),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(WEB_CLIENT_ID, WEB_SECRET),
    )
    assert response.status_code == 200, response.text


def test_expired_sign_in_flow_is_a_dead_end(stack: Stack) -> None:
    flow = stack.web_app().initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    session = stack.session()
    page = session.get(flow["auth_uri"])
    stack.control.clock.advance(901)
    answer = submit(session, page, "signin", email=ALICE, password=PASSWORD)
    assert answer.status_code == 400 and "AADSTS50089" in read_page(answer).error
    garbage = session.post(f"{stack.url}/common/login", data="%%%", headers={"content-type": "text/plain"})
    assert garbage.status_code == 400


# --- control surface -----------------------------------------------------------------------------------------


def test_settings_patch_validates_and_applies(stack: Stack) -> None:
    session = stack.session()
    url = f"{stack.url}/_sim/settings"
    assert session.patch(url, json={"nope": 1}).status_code == 400
    assert session.patch(url, json={"access_token_lifetime_seconds": "soon"}).status_code == 400
    assert session.patch(url, json={"remember_consent": 1}).status_code == 400
    assert session.patch(url, json={"revocation_error_code": 1}).status_code == 400
    assert session.patch(url, data="{", headers={"content-type": "application/json"}).status_code == 400
    changed = session.patch(url, json={"access_token_lifetime_seconds": 600})
    assert changed.json()["access_token_lifetime_seconds"] == 600
    body = redeem(stack, raw_code(stack)).json()
    assert body["expires_in"] == 600


def test_seed_route_gives_stable_oids_and_users_lists_them(stack: Stack) -> None:
    session = stack.session()
    seeded = session.post(
        f"{stack.url}/_sim/seed", json={"users": [{"email": "bob@contoso.com", "password": "x", "name": "Bob"}]}
    ).json()
    assert seeded["users"][0]["tenant_id"] == TENANT_ID
    users = {user["email"]: user for user in session.get(f"{stack.url}/_sim/users").json()["users"]}
    assert set(users) == {ALICE, PAT, "bob@contoso.com"}
    assert users[ALICE]["oid"] == stack.oid(ALICE)
    again = IdentitySim(control=SimControl(), issuer=TokenIssuer()).seed(
        {"tenants": [{"id": TENANT_ID, "name": "Contoso"}], "users": [{"email": ALICE, "password": "p"}]}
    )
    assert again["users"][0]["oid"] == stack.oid(ALICE)
    assert session.post(f"{stack.url}/_sim/seed", json={"users": [{"email": "x@nowhere.example"}]}).status_code == 400
    assert session.post(f"{stack.url}/_sim/token_errors", json={"email": ALICE, "code": 1}).status_code == 400
    assert session.post(f"{stack.url}/_sim/users/ghost@contoso.com/revoke").status_code == 404


def test_abandoned_flows_codes_and_dead_refresh_tokens_are_forgotten(stack: Stack) -> None:
    first_refresh_token(stack)
    abandoned = stack.web_app().initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    stack.session().get(abandoned["auth_uri"])
    grants = stack.sim.state.grants
    assert (len(grants.flows), len(grants.codes), len(grants.refresh_tokens)) == (1, 1, 1)
    stack.control.clock.advance(92 * 86400)
    stack.session().get(stack.web_app().initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)["auth_uri"])
    assert (len(grants.flows), len(grants.codes), len(grants.refresh_tokens)) == (1, 0, 0)


def test_form_post_response_mode_posts_the_code_to_the_app(stack: Stack) -> None:
    query = {
        "client_id": WEB_CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "response_mode": "form_post",
        "scope": "User.Read openid",
        "state": "fp",
    }
    session = stack.session()
    page = session.get(f"{stack.url}/common/oauth2/v2.0/authorize?{urlencode(query)}")
    answer = submit(session, submit(session, page, "signin", email=ALICE, password=PASSWORD), "accept")
    form = read_page(answer).forms[0]
    assert form["action"] == REDIRECT_URI
    assert form["fields"]["state"] == "fp" and form["fields"]["code"].startswith("0.A")


def test_single_tenant_app_works_only_at_its_own_tenant(stack: Stack) -> None:
    stack.sim.seed(
        {
            "apps": [
                {
                    "client_id": "single",
                    "redirect_uris": [REDIRECT_URI],
                    "name": "Internal",
                    "sign_in_audience": "AzureADMyOrg",
                    "home_tenant_id": TENANT_ID,
                }
            ]
        }
    )
    query = urlencode(
        {"client_id": "single", "redirect_uri": REDIRECT_URI, "response_type": "code", "scope": "User.Read openid"}
    )
    session = stack.session()
    at_common = session.get(f"{stack.url}/common/oauth2/v2.0/authorize?{query}", allow_redirects=False)
    assert at_common.status_code == 400 and "AADSTS50194" in read_page(at_common).error
    answer = sign_in(session, f"{stack.url}/{TENANT_ID}/oauth2/v2.0/authorize?{query}", ALICE)
    assert "code" in redirect_params(answer)


# --- no client input gets a 5xx ------------------------------------------------------------------------------

_TOKEN_FIELDS = [
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "username",
    "password",
    "scope",
    "client_info",
]
_VALUES = st.one_of(
    st.sampled_from(
        [
            "authorization_code",
            "refresh_token",
            "password",
            WEB_CLIENT_ID,
            PUBLIC_CLIENT_ID,
            WEB_SECRET,
            ALICE,
            PASSWORD,
            REDIRECT_URI,
            "openid offline_access",
            ".default",
            "1",
            "",
        ]
    ),
    st.text(max_size=40),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    form=st.dictionaries(st.sampled_from(_TOKEN_FIELDS), _VALUES, max_size=8),
    tenant=st.sampled_from(["common", "organizations", "consumers", TENANT_ID, "x%20y"]),
)
def test_token_endpoint_answers_any_form_without_a_server_error(stack: Stack, form: dict, tenant: str) -> None:
    response = stack.session().post(stack.token_url(tenant), data=form)
    assert response.status_code in (200, 400, 401), response.text
    assert "access_token" in response.json() or response.json()["error_codes"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.dictionaries(
        st.sampled_from(
            [
                "client_id",
                "redirect_uri",
                "response_type",
                "scope",
                "state",
                "code_challenge",
                "code_challenge_method",
                "prompt",
                "response_mode",
                "login_hint",
            ]
        ),
        _VALUES,
        max_size=8,
    ),
    form=st.dictionaries(st.sampled_from(["flow", "email", "password", "decision"]), _VALUES, max_size=4),
)
def test_interactive_endpoints_answer_anything_without_a_server_error(stack: Stack, query: dict, form: dict) -> None:
    session = stack.session()
    authorize = session.get(f"{stack.url}/common/oauth2/v2.0/authorize?{urlencode(query)}", allow_redirects=False)
    assert authorize.status_code in (200, 302, 400)
    for step in ("login", "consent"):
        assert session.post(f"{stack.url}/common/{step}", data=form, allow_redirects=False).status_code in (
            200,
            302,
            400,
        )
