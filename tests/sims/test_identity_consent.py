"""Consent policy of the identity simulator: tenants whose users may not consent ("Need admin approval",
AADSTS90094 / 65001) and the admin-consent endpoint that grants an app for a whole tenant.

Driven over real TLS by MSAL and by requests posting the HTML forms, as in test_identity.py.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sims.identity_support import (
    ALICE,
    PASSWORD,
    REDIRECT_URI,
    SCOPES,
    TENANT_ID,
    WEB_CLIENT_ID,
    Stack,
    read_page,
    redirect_params,
    sign_in,
    sign_in_once,
    submit,
)

pytest_plugins = ["tests.sims.identity_support"]

BOB = "bob@contoso.com"
CAROL = "Carol.Admin@contoso.com"  # a tenant admin; UPN case as seeded
GRAPH_SCOPES = "https://graph.microsoft.com/Calendars.ReadWrite https://graph.microsoft.com/User.Read"


def _seed_people(stack: Stack, *, user_consent: bool) -> None:
    stack.sim.seed(
        {
            "users": [
                {"email": BOB, "password": PASSWORD, "name": "Bob Tech", "tenant_id": TENANT_ID},
                {"upn": CAROL, "password": PASSWORD, "name": "Carol Admin", "tenant_id": TENANT_ID, "admin": True},
            ]
        }
    )
    answer = stack.session().patch(f"{stack.url}/_sim/tenants/{TENANT_ID}", json={"user_consent": user_consent})
    assert answer.status_code == 200, answer.text
    assert answer.json()["user_consent"] is user_consent


def _admin_consent_url(stack: Stack, tenant: str = TENANT_ID, **overrides: str) -> str:
    query = {"client_id": WEB_CLIENT_ID, "redirect_uri": REDIRECT_URI, "state": "admin-1", "scope": GRAPH_SCOPES}
    query.update(overrides)
    return f"{stack.url}/{tenant}/v2.0/adminconsent?{urlencode(query)}"


def _ordered_params(response: requests.Response) -> list[tuple[str, str]]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI)
    return parse_qsl(urlsplit(location).query)


def _title(response: requests.Response) -> str:
    return response.text.split("<h1>", 1)[1].split("</h1>", 1)[0]


def _ropc(stack: Stack, username: str) -> dict:
    app = stack.public_app(TENANT_ID)
    return app.acquire_token_by_username_password(username, PASSWORD, scopes=SCOPES)


def _grant_admin_consent(stack: Stack) -> list[tuple[str, str]]:
    session = stack.session()
    consent = sign_in_once(session, _admin_consent_url(stack), CAROL)
    assert "for-organization" in consent.text
    return _ordered_params(submit(session, consent, "accept"))


# --- "Need admin approval" -------------------------------------------------------------------------------------


def test_non_admin_gets_need_admin_approval_and_going_back_sends_90094(stack: Stack) -> None:
    _seed_people(stack, user_consent=False)
    app = stack.web_app()
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    page = sign_in(stack.session(), flow["auth_uri"], ALICE)
    assert page.status_code == 200
    assert _title(page) == "Need admin approval"
    assert set(read_page(page).forms[0]["buttons"]) == {"admin", "back"}

    params = redirect_params(submit(stack.session(), page, "back"))
    assert params["error"] == "access_denied"
    assert params["error_description"].startswith("AADSTS90094: The grant requires admin permission.")
    assert params["state"] == flow["state"]
    result = app.acquire_token_by_auth_code_flow(flow, params)
    assert result["error"] == "access_denied" and "access_token" not in result


def test_user_consent_allowed_again_shows_the_consent_page(stack: Stack) -> None:
    _seed_people(stack, user_consent=False)
    _seed_people(stack, user_consent=True)
    flow = stack.web_app().initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    assert "code" in redirect_params(sign_in(stack.session(), flow["auth_uri"], ALICE))


def test_earlier_consent_still_counts_after_user_consent_is_turned_off(stack: Stack) -> None:
    session = stack.session()
    flow = stack.web_app().initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    assert "code" in redirect_params(sign_in(session, flow["auth_uri"], ALICE))
    _seed_people(stack, user_consent=False)
    flow = stack.web_app().initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    assert "code" in redirect_params(sign_in_once(session, flow["auth_uri"], ALICE))


def test_admin_button_lets_an_admin_sign_in_and_consent(stack: Stack) -> None:
    _seed_people(stack, user_consent=False)
    session = stack.session()
    app = stack.web_app()
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    page = sign_in(session, flow["auth_uri"], ALICE)
    again = submit(session, page, "admin")
    assert _title(again) == "Sign in"
    consent = submit(session, again, "signin", email=CAROL, password=PASSWORD)
    assert "accept" in read_page(consent).forms[0]["buttons"]
    result = app.acquire_token_by_auth_code_flow(flow, redirect_params(submit(session, consent, "accept")))
    assert result["id_token_claims"]["preferred_username"] == CAROL


def test_a_hand_made_consent_post_cannot_skip_the_approval_page(stack: Stack) -> None:
    _seed_people(stack, user_consent=False)
    session = stack.session()
    flow = stack.web_app().initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    page = sign_in(session, flow["auth_uri"], ALICE)
    flow_id = read_page(page).forms[0]["fields"]["flow"]
    forged = session.post(
        f"{stack.url}/common/consent", data={"flow": flow_id, "decision": "accept"}, allow_redirects=False
    )
    assert forged.status_code == 200
    assert _title(forged) == "Need admin approval"


def test_password_grant_without_user_consent_gives_65001_but_an_admin_gets_tokens(stack: Stack) -> None:
    _seed_people(stack, user_consent=False)
    refused = _ropc(stack, BOB)
    assert refused["error"] == "invalid_grant"
    assert refused["error_codes"] == [65001]
    assert refused["suberror"] == "consent_required"
    assert "access_token" in _ropc(stack, CAROL.lower())


# --- the admin-consent endpoint ------------------------------------------------------------------------------


def test_admin_consent_redirects_with_the_documented_parameters(stack: Stack) -> None:
    _seed_people(stack, user_consent=False)
    params = _grant_admin_consent(stack)
    assert [name for name, _ in params] == ["admin_consent", "tenant", "state", "scope"]
    assert dict(params) == {
        "admin_consent": "True",
        "tenant": TENANT_ID,
        "state": "admin-1",
        "scope": GRAPH_SCOPES,
    }
    listed = stack.session().get(f"{stack.url}/_sim/tenants/contoso.com/consents").json()["consents"]
    assert listed == [{"client_id": WEB_CLIENT_ID, "scopes": ["Calendars.ReadWrite", "User.Read"]}]


def test_after_admin_consent_every_user_links_without_a_consent_page(stack: Stack) -> None:
    _seed_people(stack, user_consent=False)
    _grant_admin_consent(stack)
    for email in (ALICE, BOB):
        session = stack.session()
        app = stack.web_app()
        flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
        straight_back = sign_in_once(session, flow["auth_uri"], email)
        result = app.acquire_token_by_auth_code_flow(flow, redirect_params(straight_back))
        assert result["id_token_claims"]["preferred_username"] == email
        refreshed = app.acquire_token_silent(SCOPES, account=app.get_accounts()[0], force_refresh=True)
        assert "access_token" in refreshed, refreshed
    # Admin consent is per app: the public client was not granted.
    assert _ropc(stack, BOB)["error_codes"] == [65001]


def test_withdrawn_admin_consent_makes_users_need_approval_again(stack: Stack) -> None:
    _seed_people(stack, user_consent=False)
    _grant_admin_consent(stack)
    assert stack.session().delete(f"{stack.url}/_sim/tenants/{TENANT_ID}/consents").status_code == 204
    flow = stack.web_app().initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    assert _title(sign_in(stack.session(), flow["auth_uri"], BOB)) == "Need admin approval"


def test_refresh_fails_with_65001_once_the_admin_consent_is_withdrawn(stack: Stack) -> None:
    _seed_people(stack, user_consent=False)
    _grant_admin_consent(stack)
    app = stack.web_app()
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    app.acquire_token_by_auth_code_flow(flow, redirect_params(sign_in(stack.session(), flow["auth_uri"], BOB)))
    stack.session().delete(f"{stack.url}/_sim/tenants/{TENANT_ID}/consents")
    refused = app.acquire_token_silent_with_error(SCOPES, account=app.get_accounts()[0], force_refresh=True)
    assert refused["error_codes"] == [65001]
    assert refused["suberror"] == "consent_required"


def test_admin_may_consent_for_the_organization_on_the_ordinary_consent_page(stack: Stack) -> None:
    _seed_people(stack, user_consent=False)
    session = stack.session()
    flow = stack.web_app().initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    consent = sign_in_once(session, flow["auth_uri"], CAROL)
    assert "code" in redirect_params(submit(session, consent, "accept-org"))
    flow = stack.web_app().initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    assert "code" in redirect_params(sign_in_once(session, flow["auth_uri"], BOB))


def test_non_admins_consent_page_has_no_organization_button(stack: Stack) -> None:
    _seed_people(stack, user_consent=True)
    session = stack.session()
    flow = stack.web_app().initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    consent = sign_in_once(session, flow["auth_uri"], BOB)
    assert set(read_page(consent).forms[0]["buttons"]) == {"accept", "cancel"}
    # A hand-made "accept_org" from a non-admin is only a personal consent.
    flow_id = read_page(consent).forms[0]["fields"]["flow"]
    session.post(f"{stack.url}/common/consent", data={"flow": flow_id, "decision": "accept_org"}, allow_redirects=False)
    assert stack.session().get(f"{stack.url}/_sim/tenants/{TENANT_ID}/consents").json()["consents"] == []


def test_non_admin_at_admin_consent_is_refused(stack: Stack) -> None:
    _seed_people(stack, user_consent=True)
    session = stack.session()
    approval = sign_in_once(session, _admin_consent_url(stack), BOB)
    assert _title(approval) == "Need admin approval"
    params = dict(_ordered_params(submit(session, approval, "back")))
    assert params["error"] == "access_denied"
    assert params["error_description"].startswith("AADSTS90093:")
    assert (params["admin_consent"], params["tenant"], params["state"]) == ("True", TENANT_ID, "admin-1")
    assert stack.session().get(f"{stack.url}/_sim/tenants/{TENANT_ID}/consents").json()["consents"] == []


def test_admin_who_cancels_sends_consent_required_65004(stack: Stack) -> None:
    _seed_people(stack, user_consent=False)
    session = stack.session()
    consent = sign_in_once(session, _admin_consent_url(stack, tenant="organizations"), CAROL)
    params = dict(_ordered_params(submit(session, consent, "cancel")))
    assert params["error"] == "consent_required"
    assert params["error_description"].startswith(
        "AADSTS65004: The resource owner or authorization server denied the request."
    )
    assert (params["admin_consent"], params["tenant"], params["state"]) == ("True", TENANT_ID, "admin-1")


def test_admin_consent_bad_requests_answer_like_aad(stack: Stack) -> None:
    session = stack.session()

    def dead_end(url: str) -> str:
        page = session.get(url, allow_redirects=False)
        assert page.status_code == 400, page.text
        return read_page(page).error

    assert dead_end(_admin_consent_url(stack, client_id="00000000-0000-0000-0000-000000000bad")).startswith(
        "AADSTS700016:"
    )
    assert dead_end(_admin_consent_url(stack, redirect_uri="https://evil.example/cb")).startswith("AADSTS50011:")
    assert dead_end(_admin_consent_url(stack, tenant="nowhere.example")).startswith("AADSTS90002:")
    assert dead_end(_admin_consent_url(stack, client_id="")).startswith("AADSTS900144:")
    bad_scope = dict(
        _ordered_params(session.get(_admin_consent_url(stack, scope="Nope.Nothing"), allow_redirects=False))
    )
    assert (bad_scope["error"], bad_scope["state"]) == ("invalid_scope", "admin-1")
    no_scope = dict(_ordered_params(session.get(_admin_consent_url(stack, scope=""), allow_redirects=False)))
    assert no_scope["error_description"].startswith("AADSTS900144:")


def test_approval_page_with_a_stale_flow_is_a_dead_end(stack: Stack) -> None:
    answer = stack.session().post(f"{stack.url}/common/approval", data={"flow": "nope", "decision": "back"})
    assert answer.status_code == 400
    assert read_page(answer).error.startswith("AADSTS50089:")


# --- control routes and seed -----------------------------------------------------------------------------------


def test_tenant_control_routes_validate(stack: Stack) -> None:
    session = stack.session()
    tenants = session.get(f"{stack.url}/_sim/tenants").json()["tenants"]
    assert tenants == [{"id": TENANT_ID, "name": "Contoso", "domain": "contoso.com", "user_consent": True}]
    url = f"{stack.url}/_sim/tenants/{TENANT_ID}"
    assert session.patch(f"{stack.url}/_sim/tenants/nowhere", json={"user_consent": False}).status_code == 404
    assert session.patch(url, json={"user_consent": "no"}).status_code == 400
    assert session.patch(url, json={"name": "x"}).status_code == 400
    assert session.patch(url, data="not json").status_code == 400
    assert session.get(f"{stack.url}/_sim/tenants/nowhere/consents").status_code == 404


def test_seed_sets_user_consent_and_admin_and_refuses_non_booleans(stack: Stack) -> None:
    session = stack.session()
    seeded = session.post(
        f"{stack.url}/_sim/seed",
        json={
            "tenants": [{"id": "7d1e0f4a-0000-4000-8000-000000000001", "name": "Fabrikam", "user_consent": False}],
            "users": [
                {
                    "email": "ann@fabrikam.com",
                    "password": "x",
                    "admin": True,
                    "tenant_id": "7d1e0f4a-0000-4000-8000-000000000001",
                }
            ],
        },
    )
    assert seeded.status_code == 200, seeded.text
    fabrikam = next(t for t in seeded.json()["tenants"] if t["name"] == "Fabrikam")
    assert fabrikam["user_consent"] is False
    assert seeded.json()["users"][0]["admin"] is True
    bad = session.post(f"{stack.url}/_sim/seed", json={"tenants": [{"id": "t", "user_consent": "yes"}]})
    assert bad.status_code == 400
    bad = session.post(f"{stack.url}/_sim/seed", json={"users": [{"email": ALICE, "password": "x", "admin": 1}]})
    assert bad.status_code == 400


# --- nothing answers with a server error ---------------------------------------------------------------------

_ANY = st.one_of(
    st.sampled_from([WEB_CLIENT_ID, REDIRECT_URI, GRAPH_SCOPES, ".default", "admin", "back", "accept", "", "x"]),
    st.text(max_size=30),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.dictionaries(st.sampled_from(["client_id", "redirect_uri", "scope", "state", "login_hint"]), _ANY),
    tenant=st.sampled_from(["common", "organizations", "consumers", TENANT_ID, "x%20y"]),
    decision=_ANY,
    email=st.sampled_from([ALICE, CAROL, BOB]),
    user_consent=st.booleans(),
)
def test_admin_consent_and_approval_answer_anything_without_a_server_error(
    stack: Stack, query: dict, tenant: str, decision: str, email: str, user_consent: bool
) -> None:
    _seed_people(stack, user_consent=user_consent)
    session = stack.session()
    page = session.get(f"{stack.url}/{tenant}/v2.0/adminconsent?{urlencode(query)}", allow_redirects=False)
    assert page.status_code in (200, 302, 400), page.text
    forms = read_page(page).forms if page.status_code == 200 else []
    flow_id = forms[0]["fields"].get("flow", "") if forms else ""
    for step in ("login", "approval", "consent"):
        form = {"flow": flow_id, "email": email, "password": PASSWORD, "decision": decision}
        answer = session.post(f"{stack.url}/{tenant}/{step}", data=form, allow_redirects=False)
        assert answer.status_code in (200, 302, 400), answer.text
