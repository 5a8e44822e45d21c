"""Issue 16, item 3: the Syncro webhook's payload may only say *which* appointment changed. Whose
it is comes from Syncro (the appointment read again, or the techs' own ``mine=true`` listings),
never from the unsigned body, which anyone holding the URL can write."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import services
from realtime.enqueue import pending_since
from storage.errors import NotFound
from tests.realtime.webhook_support import ALEX, BLAKE, RealtimeStack, dispatch, syncro_hook, syncro_payload

pytest_plugins = ["tests.realtime.webhook_support"]


@pytest.fixture
def stack(realtime_stack: RealtimeStack) -> Iterator[RealtimeStack]:
    realtime_stack.clear()
    services.webhook_budget.cache_clear()
    yield realtime_stack
    realtime_stack.syncro_sim.update_settings({"withhold_user_fields": True})
    realtime_stack.clear()


@pytest.mark.parametrize("withheld", [True, False], ids=["syncro-withholds-owners", "syncro-shows-owners"])
def test_a_payload_naming_another_tech_does_not_put_the_appointment_in_their_mirror(
    stack: RealtimeStack, withheld: bool
) -> None:
    stack.syncro_sim.update_settings({"withhold_user_fields": withheld})
    blakes = dispatch(stack, "Blake's private visit", user_id=BLAKE.syncro_user_id)  # Blake is not linked
    stack.clear()
    forged = syncro_payload(blakes)
    forged["attributes"].update({"user_id": ALEX.syncro_user_id, "user_ids": [ALEX.syncro_user_id]})

    answer = stack.post_json(syncro_hook(stack), forged)

    assert answer.status_code == 202 and answer.json()["queued"] == 0, answer.text
    with pytest.raises(NotFound):
        stack.account.mirror.get_entry(ALEX.syncro_user_id, blakes)
    assert stack.sync_jobs() == [] and pending_since(stack.account, ALEX.syncro_user_id) is None


def test_a_withheld_owner_is_still_found_by_the_owners_own_listing(stack: RealtimeStack) -> None:
    import secrets

    token = secrets.token_hex(20)
    stack.syncro_sim.seed({"tokens": [{"token": token, "user_id": ALEX.syncro_user_id}]})
    services.syncro_token_service().save(ALEX.syncro_user_id, token, set_by="admin")
    try:
        stack.syncro_sim.update_settings({"withhold_user_fields": True})
        alexs = dispatch(stack, "Alex's visit")
        stack.clear()
        lying = syncro_payload(alexs)
        lying["attributes"].update({"user_id": BLAKE.syncro_user_id})  # the body's claim changes nothing

        answer = stack.post_json(syncro_hook(stack), lying)

        assert answer.status_code == 202 and answer.json()["queued"] == 1, answer.text
        assert stack.account.mirror.get_entry(ALEX.syncro_user_id, alexs).appointment["summary"] == "Alex's visit"
    finally:
        services.syncro_token_service().forget(ALEX.syncro_user_id)
