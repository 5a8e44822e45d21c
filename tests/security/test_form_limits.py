"""Step 8's low findings on the settings page's forms: a foreign Syncro token's owner is never named,
and what costs a call to Syncro or a whole sync ("check this token", "Sync now") is rate-limited per
technician across instances (the count is in Table Storage)."""

from __future__ import annotations

import secrets

import pytest

from local import demo
from local.formwalk import find_form
from storage.syncro_tokens import SyncroTokenStore
from tests.app.linking_support import LinkingStack
from web.tech_actions import SYNC_NOW_CLICKS, TOKEN_CHECKS

pytest_plugins = ["tests.app.linking_support"]

ALEX, BLAKE, _ = demo.TECHS


@pytest.fixture
def alex(linking_stack: LinkingStack):
    for kind in ("syncro-token", "sync-now"):  # each test counts from zero
        linking_stack.storage().rate_limits.forget(f"{kind}:{ALEX.syncro_user_id}")
    session = linking_stack.browser()
    page = linking_stack.sign_in(session, ALEX.sign_in)
    assert page.status_code == 200, page.text
    yield session, find_form(page, form_id="feed").fields["csrf_token"]
    linking_stack.forget_link(ALEX.syncro_user_id)
    SyncroTokenStore(linking_stack.storage()).delete_token(ALEX.syncro_user_id)


def test_a_foreign_token_is_refused_without_saying_whose_it_is(linking_stack: LinkingStack, alex) -> None:
    session, csrf = alex
    blakes = secrets.token_hex(20)
    linking_stack.sim("syncro").seed({"tokens": [{"token": blakes, "user_id": BLAKE.syncro_user_id}]})
    page = session.post(
        f"{linking_stack.host_url}/api/settings/syncro-token", data={"csrf_token": csrf, "token": blakes}
    )
    assert page.status_code == 400 and "belongs to another Syncro user" in page.text
    assert str(BLAKE.syncro_user_id) not in page.text and BLAKE.name not in page.text


def test_token_checks_are_limited_per_tech(linking_stack: LinkingStack, alex) -> None:
    session, csrf = alex
    url = f"{linking_stack.host_url}/api/settings/syncro-token"
    limit, _ = TOKEN_CHECKS
    before = _syncro_me_calls(linking_stack)
    answers = [session.post(url, data={"csrf_token": csrf, "token": f"guess{n:04d}"}).status_code for n in range(limit)]
    assert answers == [400] * limit  # each one checked with Syncro, and refused
    refused = session.post(url, data={"csrf_token": csrf, "token": "guess-one-more"})
    assert refused.status_code == 429 and "Wait ten minutes" in refused.text
    assert _syncro_me_calls(linking_stack) - before == limit  # the refused one never reached Syncro


def test_sync_now_is_limited_per_tech(linking_stack: LinkingStack, alex) -> None:
    session, csrf = alex
    url = f"{linking_stack.host_url}/api/settings/sync"
    limit, _ = SYNC_NOW_CLICKS
    answers = [session.post(url, data={"csrf_token": csrf}).status_code for _ in range(limit)]
    assert answers == [200] * limit
    refused = session.post(url, data={"csrf_token": csrf})
    assert refused.status_code == 429 and "Try again in a minute" in refused.text


def _syncro_me_calls(stack: LinkingStack) -> int:
    counters = stack.browser().get(f"{stack.sim_url('syncro')}/_sim/counters").json()["counters"]
    return sum(count for route, count in counters.items() if route.endswith("/me"))
