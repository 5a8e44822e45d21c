"""Technicians' own Syncro API tokens, the poller's fallback when Syncro's responses leave out
``user_id``/``user_ids`` (the simulator's strict default): entered by the admin (function-key
JSON) or by the tech (settings page), checked with Syncro's ``GET /me``, kept encrypted, used
by the poll, and explained in words in health, on the admin overview and on the settings page.
Over real HTTP: the local host, the simulators over TLS, Azurite."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import requests

from local import demo
from local.formwalk import follow, submit
from realtime.timers import poll_links
from services import sync_deps
from storage.syncro_tokens import SyncroTokenStore
from sync.ownership import OwnershipMode, read_ownership
from tests.app.linking_support import LinkingStack

pytest_plugins = ["tests.app.linking_support"]

ALEX, BLAKE, _CASEY = demo.TECHS


@pytest.fixture(scope="module")
def tokens(linking_stack: LinkingStack) -> dict[int, str]:
    """A Syncro API token per demo tech, known to the Syncro simulator."""
    issued = {tech.syncro_user_id: secrets.token_hex(20) for tech in (ALEX, BLAKE)}
    linking_stack.sim("syncro").seed({"tokens": [{"token": t, "user_id": u} for u, t in issued.items()]})
    return issued


@pytest.fixture
def alex_linked(linking_stack: LinkingStack) -> Iterator[tuple[requests.Session, requests.Response]]:
    session = linking_stack.browser()
    page = linking_stack.sign_in(session, ALEX.sign_in, syncro_token=False)
    assert page.status_code == 200, page.text
    if "/api/settings/syncro-token" in page.url:  # linking's second step: these tests skip it
        page = session.get(f"{linking_stack.host_url}/api/settings?skipped=token")
    yield session, page
    linking_stack.forget_link(ALEX.syncro_user_id)
    SyncroTokenStore(linking_stack.storage()).delete_token(ALEX.syncro_user_id)


def _admin(stack: LinkingStack, method: str, tech: int, **kwargs) -> requests.Response:
    session = stack.browser()
    headers = {"x-functions-key": stack.function_key, **kwargs.pop("headers", {})}
    return session.request(method, f"{stack.host_url}/api/admin/syncro-tokens/{tech}", headers=headers, **kwargs)


def test_the_admin_sets_a_techs_token_only_when_syncro_says_it_is_theirs(
    linking_stack: LinkingStack, tokens: dict[int, str]
) -> None:
    alex = ALEX.syncro_user_id
    store = SyncroTokenStore(linking_stack.storage())
    refused = _admin(linking_stack, "PUT", alex, json={"token": "not-a-real-token"})
    assert refused.status_code == 400 and "Syncro refused this token" in refused.json()["message"]
    foreign = _admin(linking_stack, "PUT", alex, json={"token": tokens[BLAKE.syncro_user_id]})
    assert foreign.status_code == 400 and "belongs to another Syncro user" in foreign.json()["message"]
    assert list(store.list_tokens()) == []

    saved = _admin(linking_stack, "PUT", alex, json={"token": tokens[alex]})
    assert saved.status_code == 200, saved.text
    assert saved.json()["set_by"] == "admin" and tokens[alex] not in saved.text
    raw = store.get_token(alex)
    assert tokens[alex].encode() not in raw.encrypted  # encrypted at rest

    assert _admin(linking_stack, "DELETE", alex).status_code == 204
    gone = _admin(linking_stack, "DELETE", alex)
    assert gone.status_code == 404 and "No Syncro API token" in gone.json()["message"]


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[]", b'{"token": 5}', b'{"token": "  "}', b'{"token": "' + b"x" * 5000 + b'"}'],
    ids=["empty", "broken", "list", "number", "blank", "huge"],
)
def test_bad_admin_input_is_a_400_in_words_and_stores_nothing(
    linking_stack: LinkingStack, tokens: dict[int, str], body: bytes
) -> None:
    answer = _admin(linking_stack, "PUT", ALEX.syncro_user_id, data=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400 and answer.json()["message"]
    assert list(SyncroTokenStore(linking_stack.storage()).list_tokens()) == []


def test_the_token_routes_need_the_function_key(linking_stack: LinkingStack) -> None:
    url = f"{linking_stack.host_url}/api/admin/syncro-tokens/{ALEX.syncro_user_id}"
    assert linking_stack.browser().put(url, json={"token": "x"}).status_code == 401


def test_when_syncro_hides_owners_health_the_pages_and_the_poll_use_each_techs_own_token(
    linking_stack: LinkingStack, tokens: dict[int, str], alex_linked
) -> None:
    session, page = alex_linked
    # Linking asked Syncro once whether it shows owners (before any poll), and sent Alex to the
    # token step; skipped, the page warns first that nothing can come from Syncro.
    assert read_ownership(linking_stack.storage().cursors) is OwnershipMode.TOKENS
    assert 'id="syncro-blocked"' in page.text and "No token yet" in page.text

    deps = sync_deps()
    first = poll_links(deps, slice_days=200)
    assert first.ownership is OwnershipMode.TOKENS  # the simulator withholds user_id/user_ids
    assert first.ownership_unknown is not None and first.ownership_unknown.techs_without_token == (ALEX.syncro_user_id,)
    health = (
        linking_stack.browser()
        .get(f"{linking_stack.host_url}/api/health/details", headers={"x-functions-key": linking_stack.function_key})
        .json()
    )
    assert health["syncro"]["ownership"] == "tokens"
    assert health["syncro"]["techs_without_token"] == [str(ALEX.syncro_user_id)]
    assert "does not say which technician" in health["syncro"]["note"]
    assert list(deps.storage.mirror.list_entries(ALEX.syncro_user_id)) == []  # nothing read for ALEX yet

    page = session.get(f"{linking_stack.host_url}/api/settings")
    assert "Your Syncro API token" in page.text and "No token yet" in page.text
    wrong = submit(session, page, form_id="syncro-token", fields={"token": tokens[BLAKE.syncro_user_id]})
    assert wrong.status_code == 400 and "belongs to another Syncro user" in wrong.text
    saved = follow(
        session, submit(session, page, form_id="syncro-token", fields={"token": tokens[ALEX.syncro_user_id]})
    )
    assert saved.status_code == 200 and "Your Syncro API token is saved" in saved.text
    assert "set on" in saved.text and "by you" in saved.text and tokens[ALEX.syncro_user_id] not in saved.text

    second = poll_links(deps, slice_days=200)
    assert second.ownership_unknown is not None and second.ownership_unknown.techs_without_token == ()
    mirrored = {entry.appointment.get("summary") for entry in deps.storage.mirror.list_entries(ALEX.syncro_user_id)}
    assert "Server swap at Fabrikam" in mirrored and "Firewall review" not in mirrored  # ALEX's, not Blake's
    health = (
        linking_stack.browser()
        .get(f"{linking_stack.host_url}/api/health/details", headers={"x-functions-key": linking_stack.function_key})
        .json()
    )
    assert health["syncro"]["techs_without_token"] == []


def test_a_token_post_without_csrf_changes_nothing(
    linking_stack: LinkingStack, tokens: dict[int, str], alex_linked
) -> None:
    session, _page = alex_linked
    storage = linking_stack.storage()
    poll_links(sync_deps(), slice_days=200)  # finds out that Syncro hides owners: the form shows
    page = session.get(f"{linking_stack.host_url}/api/settings")
    refused = submit(
        session, page, form_id="syncro-token", fields={"token": tokens[ALEX.syncro_user_id]}, drop=("csrf_token",)
    )
    assert refused.status_code == 403
    assert list(SyncroTokenStore(storage).list_tokens()) == []
