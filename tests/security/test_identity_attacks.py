"""Step 8's critical findings, as an attacker tries them against the running product: another
Microsoft tenant's admin gives a user a technician's or the dispatcher's address; a second account
of our own tenant tries to take over a link. Over real HTTP, real MSAL, the simulators and Azurite."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from local import demo
from local.formwalk import follow, submit
from settings import SettingsError, load_settings
from tests.app.linking_support import LinkingStack
from tests.conftest import app_settings_env
from tests.security.identity_support import multi_tenant, seed_users, session_cookie, settings_changed, stranger

pytest_plugins = ["tests.app.linking_support"]

ALEX, BLAKE, _ = demo.TECHS
DANA = demo.DISPATCHER


@pytest.fixture
def alex_linked(linking_stack: LinkingStack):
    session = linking_stack.browser()
    page = linking_stack.sign_in(session, ALEX.sign_in)
    assert page.status_code == 200, page.text
    yield session
    linking_stack.forget_link(ALEX.syncro_user_id)


# --- sign-in is bound to the MSP's tenants -----------------------------------------------------------


@pytest.mark.parametrize("segment", ["common", "organizations", ""])
def test_an_authority_that_names_no_tenant_is_refused_at_start_up_saying_what_to_set(segment: str) -> None:
    env = app_settings_env("UseDevelopmentStorage=true", MS_AUTHORITY=f"https://login.microsoftonline.com/{segment}")
    with pytest.raises(SettingsError) as refused:
        load_settings(env)
    assert refused.value.name == "MS_AUTHORITY"
    assert "ALLOWED_TENANT_IDS" in str(refused.value) and "tenant id" in str(refused.value)
    # Listing the tenants we allow makes a multi-tenant authority acceptable: the callback checks tid.
    tenant = "6d2f1c4b-3a59-4e8d-9c7b-1f0e2d3c4b5a"
    assert load_settings({**env, "ALLOWED_TENANT_IDS": tenant}).allowed_tenant_ids == {tenant}


def test_personal_accounts_authority_is_refused() -> None:
    env = app_settings_env("UseDevelopmentStorage=true", MS_AUTHORITY="https://login.microsoftonline.com/consumers")
    with pytest.raises(SettingsError, match="personal Microsoft accounts"):
        load_settings(env)


def test_a_stranger_whose_tenant_admin_set_a_techs_mail_is_refused_and_alex_keeps_his_link(
    linking_stack: LinkingStack, alex_linked
) -> None:
    before = linking_stack.link_of(ALEX.syncro_user_id)
    attacker = stranger(linking_stack, mail=ALEX.email)
    with settings_changed(linking_stack, **multi_tenant(linking_stack)):
        session = linking_stack.browser()
        page = linking_stack.sign_in(session, attacker)
        assert page.status_code == 403, page.text
        assert "Please use your company" in page.text
        assert session_cookie(session) is None
        assert linking_stack.link_of(ALEX.syncro_user_id) == before  # not moved, not touched
        # The same page after it: no session, so a sign-in page, nothing of Alex's.
        settings = session.get(f"{linking_stack.host_url}/api/settings")
        assert "Sign in with Microsoft" in settings.text and ALEX.email not in settings.text
        # The feed route is as closed to them as before: they hold no session to ask with.
        refused = session.post(f"{linking_stack.host_url}/api/settings/feed", data={"csrf_token": "x"})
        assert refused.status_code == 401
        # The same user of the right tenant still links.
        alex = linking_stack.browser()
        assert linking_stack.sign_in(alex, ALEX.sign_in).status_code == 200
    assert not list(linking_stack.storage().feed_tokens.list_for_tech(ALEX.syncro_user_id))


def test_with_the_tenant_bound_authority_microsoft_itself_turns_the_stranger_away(
    linking_stack: LinkingStack,
) -> None:
    attacker = stranger(linking_stack, mail=BLAKE.email)
    session = linking_stack.browser()
    page = linking_stack.sign_in(session, attacker)
    assert urlsplit(page.url).netloc == urlsplit(linking_stack.sim_url("identity")).netloc
    assert "AADSTS50020" in page.text  # "does not exist in tenant": no code comes back to us
    assert linking_stack.link_of(BLAKE.syncro_user_id) is None and session_cookie(session) is None


def test_a_stranger_with_the_dispatchers_mail_and_our_role_in_their_tenant_is_no_admin(
    linking_stack: LinkingStack,
) -> None:
    attacker = stranger(linking_stack, mail=DANA.email, roles=["SyncAdmin"])
    with settings_changed(linking_stack, **multi_tenant(linking_stack)):
        session = linking_stack.browser()
        page = linking_stack.sign_in(session, attacker, purpose="admin")
        assert page.status_code == 403, page.text
        overview = session.get(f"{linking_stack.host_url}/api/admin", allow_redirects=False)
        assert overview.status_code in (302, 303) and "/api/oauth/start" in overview.headers["Location"]


def test_an_address_makes_nobody_an_admin_the_app_role_does(linking_stack: LinkingStack) -> None:
    # One of our own tenant with the dispatcher's mail, but no role: not an admin.
    name = "dana.lookalike@contoso.example"
    seed_users(linking_stack, [{"upn": name, "mail": DANA.email, "name": "Dana Lookalike"}])
    page = linking_stack.sign_in(linking_stack.browser(), name, purpose="admin")
    assert page.status_code == 403 and "SyncAdmin" in page.text
    # The dispatcher holds the SyncAdmin app role: the overview opens.
    session = linking_stack.browser()
    page = linking_stack.sign_in(session, DANA.sign_in, purpose="admin")
    assert page.status_code == 200 and "Technicians and their calendars" in page.text


def test_a_member_of_an_admin_group_is_an_admin(linking_stack: LinkingStack) -> None:
    group = "a1b2c3d4-0000-4000-8000-00000000a11a"
    name = "ops.lead@contoso.example"
    seed_users(linking_stack, [{"upn": name, "name": "Ops Lead", "groups": [group]}])
    linking_stack.sim("identity").seed(
        {
            "apps": [
                {
                    "client_id": demo.CLIENT_ID,
                    "client_secret": linking_stack.secrets.client_secret,
                    "name": "Syncro Outlook Sync (demo)",
                    "redirect_uris": [f"{linking_stack.host_url}/api/oauth/callback"],
                    "app_roles": ["SyncAdmin"],
                    "group_claims": True,
                }
            ]
        }
    )
    with settings_changed(linking_stack, ADMIN_GROUP_IDS=group):
        page = linking_stack.sign_in(linking_stack.browser(), name, purpose="admin")
        assert page.status_code == 200, page.text
    page = linking_stack.sign_in(linking_stack.browser(), name, purpose="admin")
    assert page.status_code == 403  # without the setting the same group is nothing


# --- a link never moves silently -----------------------------------------------------------------------


def test_a_second_account_matching_a_linked_tech_is_told_who_holds_the_link_and_nothing_moves(
    linking_stack: LinkingStack, alex_linked
) -> None:
    # In our own tenant, someone's mail is Alex's address too (a shared mailbox, an alias, a mistake).
    second = "alex.second@contoso.example"
    seed_users(linking_stack, [{"upn": second, "mail": ALEX.email, "name": "Alex Second"}])
    before = linking_stack.link_of(ALEX.syncro_user_id)
    cache_before = linking_stack.storage().token_caches.get_cache(ALEX.syncro_user_id)
    session = linking_stack.browser()
    page = linking_stack.sign_in(session, second)
    assert page.status_code == 409, page.text
    assert "linked to another account" in page.text and ALEX.sign_in in page.text and "admin" in page.text
    assert session_cookie(session) is None
    assert linking_stack.link_of(ALEX.syncro_user_id) == before
    assert linking_stack.storage().token_caches.get_cache(ALEX.syncro_user_id) == cache_before

    # An admin releases the link from the overview; then the second account may link, seeing its own calendars.
    admin = linking_stack.browser()
    overview = linking_stack.sign_in(admin, DANA.sign_in, purpose="admin")
    removed = follow(admin, submit(admin, overview, form_id=f"remove-{ALEX.syncro_user_id}"))
    assert removed.status_code == 200 and "Removed" in removed.text
    assert linking_stack.link_of(ALEX.syncro_user_id) is None
    page = linking_stack.sign_in(session, second)
    assert page.status_code == 200, page.text
    assert linking_stack.link_of(ALEX.syncro_user_id).ms_username == second
