"""The Syncro Notification Center webhook through the in-process product: the Syncro simulator
POSTs "Appointment was created" to the URL the demo configured (with its secret); the product
re-reads the appointment, mirrors it for its linked technician and queues that tech's sync."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import services
from local.sims.control import FaultRule
from realtime.enqueue import pending_since
from realtime.syncro_webhook import appointment_id_of, receive_syncro_notification, secret_matches
from storage.errors import NotFound
from tests.realtime.webhook_support import ALEX, BLAKE, RealtimeStack
from tests.realtime.webhook_support import dispatch as _dispatch
from tests.realtime.webhook_support import syncro_hook as _hook
from tests.realtime.webhook_support import syncro_payload as _payload

pytest_plugins = ["tests.realtime.webhook_support"]

TECH = ALEX.syncro_user_id


@pytest.fixture
def stack(realtime_stack: RealtimeStack) -> Iterator[RealtimeStack]:
    realtime_stack.clear()
    realtime_stack.syncro_sim.update_settings({"withhold_user_fields": False})  # as real Syncro (inferred)
    services.webhook_budget.cache_clear()  # each test starts with the webhooks' whole minute
    yield realtime_stack
    realtime_stack.syncro_sim.update_settings({"withhold_user_fields": True})
    realtime_stack.syncro_sim.control.faults.clear()
    realtime_stack.clear()


def _deliveries(stack: RealtimeStack) -> list[dict[str, Any]]:
    assert stack.syncro_sim.notifications.wait_idle()
    return stack.syncro_sim.notifications.deliveries()


def _nothing_queued(stack: RealtimeStack) -> bool:
    return stack.sync_jobs() == [] and pending_since(stack.account, TECH) is None


def test_a_creation_for_a_linked_tech_is_mirrored_and_queues_their_sync(stack: RealtimeStack) -> None:
    appointment_id = _dispatch(stack, "Server swap")
    (delivery,) = _deliveries(stack)
    assert delivery["state"] == "delivered" and delivery["status"] == 202
    (job,) = stack.sync_jobs()
    assert job.syncro_user_id == TECH and job.reason == "syncro-notification"
    # The job finds it without waiting for the next poll: it is in the mirror the engine reads.
    entry = stack.account.mirror.get_entry(TECH, appointment_id)
    assert entry.appointment["summary"] == "Server swap"


def test_a_creation_for_a_tech_who_is_not_linked_queues_nothing(stack: RealtimeStack) -> None:
    appointment_id = _dispatch(stack, "Blake's visit", user_id=BLAKE.syncro_user_id)
    (delivery,) = _deliveries(stack)
    assert delivery["status"] == 202
    assert stack.sync_jobs() == []
    with pytest.raises(NotFound):
        stack.account.mirror.get_entry(BLAKE.syncro_user_id, appointment_id)


def test_the_appointment_is_read_again_not_taken_from_the_unsigned_payload(stack: RealtimeStack) -> None:
    appointment_id = _dispatch(stack, "The real one")
    stack.clear()
    stack.syncro_sim.control.counters.clear()
    forged = _payload(appointment_id)
    forged["attributes"].update({"summary": "Forged", "user_id": BLAKE.syncro_user_id})
    answer = stack.post_json(_hook(stack), forged)
    assert answer.status_code == 202 and answer.json() == {"techs": 1, "queued": 1}
    assert stack.account.mirror.get_entry(TECH, appointment_id).appointment["summary"] == "The real one"
    assert any("appointments" in route for route in stack.syncro_sim.control.counters.snapshot())


def test_a_wrong_secret_is_refused_403_and_syncro_is_not_asked(stack: RealtimeStack) -> None:
    appointment_id = _dispatch(stack, "Mine")
    stack.clear()
    stack.syncro_sim.control.counters.clear()
    secret = stack.product.env["SYNCRO_WEBHOOK_SECRET"]
    for wrong in ("nope", secret[:-1], secret + "x", secret.upper()):
        answer = stack.post_json(_hook(stack, wrong), _payload(appointment_id))
        assert answer.status_code == 403 and answer.json()["error"] == "forbidden"
        assert secret not in answer.text
    assert _nothing_queued(stack)
    assert stack.syncro_sim.control.counters.snapshot() == {}


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"attributes": {"id": 1', "application/json", 400),
        (b'{"text": "Appointment was created"}', "application/json", 400),
        (b'{"attributes": {"id": "twelve"}}', "application/json", 400),
        (b'{"attributes": {"id": -4}}', "application/json", 400),
        (b'{"attributes": {"id": true}}', "application/json", 400),
        (b'{"attributes": {"id": 99999999999999999999999}}', "application/json", 400),
        (b'{"attributes": {"id": 5}}', "text/plain", 415),
        (b"attributes[id]=5", "application/x-www-form-urlencoded", 415),
    ],
)
def test_a_bad_payload_gets_a_clear_4xx_and_queues_nothing(
    stack: RealtimeStack, body: bytes, content_type: str, status: int
) -> None:
    answer = stack.post(_hook(stack), body, headers={"Content-Type": content_type})
    assert answer.status_code == status and answer.json()["message"]
    assert _nothing_queued(stack)


def test_a_huge_body_is_refused_413(stack: RealtimeStack) -> None:
    body = json.dumps({"attributes": {"id": 1, "pad": "x" * (2 * 1024 * 1024)}})
    answer = stack.post(_hook(stack), body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    assert _nothing_queued(stack)


def test_an_appointment_already_deleted_is_acknowledged_with_nothing_queued(stack: RealtimeStack) -> None:
    answer = stack.post_json(_hook(stack), _payload(987654321098))
    assert answer.status_code == 202 and answer.json()["queued"] == 0
    assert _nothing_queued(stack)


def test_an_appointment_outside_the_sync_window_queues_nothing(stack: RealtimeStack) -> None:
    _dispatch(stack, "Next year", days=400)
    (delivery,) = _deliveries(stack)
    assert delivery["status"] == 202
    assert _nothing_queued(stack)


def test_when_syncro_withholds_the_owner_the_webhook_leaves_it_to_the_poller(stack: RealtimeStack) -> None:
    # Without a token of ALEX's own (he skipped linking's Syncro-token step), nobody can say whose it is.
    services.syncro_token_service().forget(TECH)
    stack.syncro_sim.update_settings({"withhold_user_fields": True})
    appointment_id = _dispatch(stack, "Whose?")
    (delivery,) = _deliveries(stack)
    assert delivery["status"] == 202
    assert _nothing_queued(stack)
    answer = stack.post_json(_hook(stack), _payload(appointment_id))
    assert answer.status_code == 202 and "poll" in answer.json()["detail"]


def test_when_syncro_withholds_the_owner_the_techs_own_listing_of_that_day_names_them(stack: RealtimeStack) -> None:
    import secrets

    token = secrets.token_hex(20)
    stack.syncro_sim.seed({"tokens": [{"token": token, "user_id": TECH}]})
    services.syncro_token_service().save(TECH, token, set_by="admin")
    try:
        stack.syncro_sim.update_settings({"withhold_user_fields": True})
        appointment_id = _dispatch(stack, "Whose? ALEX's")
        (delivery,) = _deliveries(stack)
        assert delivery["status"] == 202
        assert [job.syncro_user_id for job in stack.sync_jobs()] == [TECH]
        assert stack.account.mirror.get_entry(TECH, appointment_id).appointment["summary"] == "Whose? ALEX's"
    finally:
        services.syncro_token_service().forget(TECH)


def test_a_burst_beyond_the_webhook_budget_is_left_to_the_poller_without_asking_syncro(stack: RealtimeStack) -> None:
    from sync.budget import RequestBudget

    appointment_id = _dispatch(stack, "Bulk import")
    stack.clear()
    spent = RequestBudget(1)
    spent.charge(1)
    before = stack.syncro_sim.control.counters.snapshot()
    secret = stack.product.env["SYNCRO_WEBHOOK_SECRET"]
    answer = receive_syncro_notification(
        secret, {"content-type": "application/json"}, json.dumps(_payload(appointment_id)).encode(), budget=spent
    )
    assert answer.status == 202 and b"next poll" in answer.body
    assert _nothing_queued(stack)
    assert stack.syncro_sim.control.counters.snapshot() == before  # Syncro was not asked


def test_when_the_apps_shared_syncro_budget_is_spent_the_webhook_leaves_it_to_the_poller(
    stack: RealtimeStack,
) -> None:
    """Every instance together has spent the minute (here: the poller took all of it): the webhook
    sends nothing, answers 202 and queues nothing; the poller's window scan finds the appointment."""
    import time

    from storage.syncro_budget import Ledger, SyncroBudgetStore
    from sync.budget import SLOT_SECONDS, granted, slot_of

    appointment_id = _dispatch(stack, "Spent minute")
    stack.clear()
    time.sleep(SLOT_SECONDS)  # requests this process was granted earlier lapse with their slot
    store = SyncroBudgetStore(stack.account)
    _, etag = store.read()
    store.write(granted(Ledger(), "poll", 150, slot_of(time.time())), etag=etag)
    try:
        before = stack.syncro_sim.control.counters.snapshot()
        answer = stack.post_json(_hook(stack), _payload(appointment_id))
        assert answer.status_code == 202 and "next poll" in answer.json()["detail"]
        assert _nothing_queued(stack)
        assert stack.syncro_sim.control.counters.snapshot() == before  # Syncro was not asked
        status = services.syncro_budget().status().to_json()
        assert status["callers"]["webhook"]["refused_recently"] >= 1
    finally:
        _, etag = store.read()
        store.write(Ledger(), etag=etag)


def test_syncro_failing_answers_503_for_a_later_retry(stack: RealtimeStack) -> None:
    appointment_id = _dispatch(stack, "Flaky")
    stack.clear()
    stack.syncro_sim.control.faults.add(FaultRule("GET", r"^/api/v1/appointments/\d+$", 500, times=0))
    answer = stack.post_json(_hook(stack), _payload(appointment_id))
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert _nothing_queued(stack)


def test_many_notifications_at_once_make_one_job(stack: RealtimeStack) -> None:
    from concurrent.futures import ThreadPoolExecutor

    appointment_id = _dispatch(stack, "Popular")
    stack.clear()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: stack.post_json(_hook(stack), _payload(appointment_id)), range(8)))
    assert {answer.status_code for answer in answers} == {202}
    assert sum(answer.json()["queued"] for answer in answers) == 1
    assert [job.syncro_user_id for job in stack.sync_jobs()] == [TECH]


# -- pure parts ------------------------------------------------------------------------------------


def test_the_secret_check_needs_the_exact_secret() -> None:
    assert secret_matches("s3cret-value", "s3cret-value")
    assert not secret_matches("s3cret-valu", "s3cret-value")
    assert not secret_matches("", "")  # an unset secret never opens the door


def test_the_appointment_id_may_come_as_a_number_or_digits() -> None:
    assert appointment_id_of({"attributes": {"id": 5560138523}}) == 5560138523
    assert appointment_id_of({"attributes": {"id": " 5560138523 "}}) == 5560138523


def test_the_job_the_webhook_queued_carries_the_creation_to_outlook_without_a_poll(stack: RealtimeStack) -> None:
    from services import sync_deps
    from sync.engine import sync_tech

    _dispatch(stack, "Straight to Outlook")
    (job,) = stack.sync_jobs()
    report = sync_tech(job.syncro_user_id, deps=sync_deps())  # what the queue job runs
    assert report.status == "synced", report
    link = stack.link()
    events = stack.graph("GET", f"/me/calendars/{link.calendar_id}/events?$top=200").json()["value"]
    assert "[S] Straight to Outlook" in [event["subject"] for event in events]
