"""`sync.subscriptions` against the Graph simulator through the in-process product: the validation
handshake reaches our own endpoints, subscriptions are created, kept, renewed, recreated and
deleted as the link asks, and only a hash of each clientState is stored."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import services
from local.sims.control import FaultRule
from settings import SettingsError, load_realtime_settings
from storage.links import LinkStatus
from storage.subscriptions import SubscriptionRecord, SubscriptionState, hash_client_state
from sync import subscriptions
from sync.subscriptions import Outcome, _parse_instant, resource_for
from tests.realtime.webhook_support import ALEX, BLAKE, RealtimeStack

pytest_plugins = ["tests.realtime.webhook_support"]

TECH = ALEX.syncro_user_id


@pytest.fixture
def stack(realtime_stack: RealtimeStack):
    realtime_stack.clear()
    yield realtime_stack
    subscriptions.remove_for_link(TECH, deps=services.subscription_deps())
    realtime_stack.graph_sim.settings.subscription_max_lifetime_minutes = 10080
    realtime_stack.clear()


def _rows(stack: RealtimeStack, tech: int = TECH) -> list[SubscriptionRecord]:
    return list(stack.account.subscriptions.list_for_tech(tech))


def _only_sim_subscription(stack: RealtimeStack) -> Any:
    live = stack.sim_subscriptions()
    assert len(live) == 1, live
    return live[0]


def test_a_link_gets_one_subscription_on_its_calendar_with_our_urls_and_the_longest_lifetime(
    stack: RealtimeStack,
) -> None:
    link = stack.link()
    assert subscriptions.ensure_for_link(link, deps=services.subscription_deps()) is Outcome.CREATED
    sub = _only_sim_subscription(stack)
    assert sub.resource == resource_for(link.calendar_id)
    assert sub.calendar_id == link.calendar_id
    assert sub.change_types == ["created", "updated", "deleted"]
    assert sub.notification_url == f"{stack.url}/api/graph/notifications"
    assert sub.lifecycle_url == f"{stack.url}/api/graph/lifecycle"
    lifetime = sub.expiration - stack.graph_sim.control.clock.now()
    assert timedelta(minutes=10070) < lifetime <= timedelta(minutes=10080)
    (row,) = _rows(stack)
    assert row.subscription_id == sub.id
    assert abs(row.expires_at - sub.expiration) < timedelta(milliseconds=1)  # tables keep milliseconds
    # Only the hash is kept: the secret Graph holds hashes to the row's, and appears nowhere in it.
    assert len(sub.client_state) == 64
    assert row.client_state_hash == hash_client_state(sub.client_state)
    assert sub.client_state not in repr(row)
    status = stack.account.subscriptions.get_status(TECH)
    assert status.state is SubscriptionState.ACTIVE and status.subscription_id == sub.id


def test_a_second_ensure_keeps_the_subscription_and_a_close_expiry_renews_it(stack: RealtimeStack) -> None:
    subscriptions.ensure_for_link(stack.link(), deps=services.subscription_deps())
    first = _only_sim_subscription(stack)
    assert subscriptions.ensure_for_link(stack.link(), deps=services.subscription_deps()) is Outcome.KEPT
    assert _only_sim_subscription(stack).id == first.id
    # Pretend the renew margin is reached: the same subscription is renewed (PATCH), not replaced.
    deps = replace(services.subscription_deps(), renew_margin=timedelta(minutes=10080))
    before = first.expiration
    assert subscriptions.ensure_for_link(stack.link(), deps=deps) is Outcome.RENEWED
    renewed = _only_sim_subscription(stack)
    assert renewed.id == first.id and renewed.expiration > before
    (row,) = _rows(stack)
    assert abs(row.expires_at - renewed.expiration) < timedelta(milliseconds=1)


def test_a_subscription_graph_dropped_silently_is_recreated(stack: RealtimeStack) -> None:
    subscriptions.ensure_for_link(stack.link(), deps=services.subscription_deps())
    lost = _only_sim_subscription(stack)
    assert stack.graph_sim.subscriptions.remove_silently(lost.id)  # as after a password reset
    assert subscriptions.ensure_for_link(stack.link(), deps=services.subscription_deps()) is Outcome.CREATED
    new = _only_sim_subscription(stack)
    assert new.id != lost.id
    assert [row.subscription_id for row in _rows(stack)] == [new.id]


def test_a_renewal_that_finds_the_subscription_gone_creates_a_new_one(stack: RealtimeStack) -> None:
    subscriptions.ensure_for_link(stack.link(), deps=services.subscription_deps())
    (row,) = _rows(stack)
    stack.graph_sim.subscriptions.remove_silently(row.subscription_id)
    # The lifecycle path renews without looking first: the PATCH answers 404.
    assert subscriptions.reauthorize(row.subscription_id, TECH, deps=services.subscription_deps()) is Outcome.CREATED
    (new,) = _rows(stack)
    assert new.subscription_id != row.subscription_id
    assert _only_sim_subscription(stack).id == new.subscription_id


def test_a_new_calendar_moves_the_subscription(stack: RealtimeStack) -> None:
    subscriptions.ensure_for_link(stack.link(), deps=services.subscription_deps())
    old = _only_sim_subscription(stack)
    calendar = stack.graph("POST", "/me/calendars", json={"name": "Field work"}).json()
    link = stack.link()
    moved = stack.account.links.update_link(link.with_changes(calendar_id=calendar["id"], calendar_name="Field work"))
    try:
        assert subscriptions.ensure_for_link(moved, deps=services.subscription_deps()) is Outcome.CREATED
        new = _only_sim_subscription(stack)  # the old one was deleted at Graph
        assert new.id != old.id and new.calendar_id == calendar["id"]
        assert [row.resource for row in _rows(stack)] == [resource_for(calendar["id"])]
    finally:
        back = stack.link().with_changes(calendar_id=link.calendar_id, calendar_name=link.calendar_name)
        stack.account.links.update_link(back)


def test_a_new_public_url_replaces_the_subscription(stack: RealtimeStack) -> None:
    subscriptions.ensure_for_link(stack.link(), deps=services.subscription_deps())
    old = _only_sim_subscription(stack)
    moved = replace(services.subscription_deps(), public_base_url=stack.url.replace("127.0.0.1", "localhost"))
    assert subscriptions.ensure_for_link(stack.link(), deps=moved) is Outcome.CREATED
    new = _only_sim_subscription(stack)
    assert new.id != old.id and new.notification_url.startswith("http://localhost:")


def test_unlink_deletes_the_subscription_at_graph_and_here(stack: RealtimeStack) -> None:
    subscriptions.ensure_for_link(stack.link(), deps=services.subscription_deps())
    assert subscriptions.remove_for_link(TECH, deps=services.subscription_deps()) is Outcome.REMOVED
    assert stack.sim_subscriptions() == []
    assert _rows(stack) == []
    assert stack.account.subscriptions.get_status(TECH).state is SubscriptionState.NONE


def test_a_paused_link_has_no_subscription(stack: RealtimeStack) -> None:
    subscriptions.ensure_for_link(stack.link(), deps=services.subscription_deps())
    paused = stack.link().with_changes(status=LinkStatus.PAUSED)
    assert subscriptions.ensure_for_link(paused, deps=services.subscription_deps()) is Outcome.REMOVED
    assert stack.sim_subscriptions() == [] and _rows(stack) == []


def test_a_tenant_refusing_our_lifetime_gets_the_older_maximum(stack: RealtimeStack) -> None:
    stack.graph_sim.settings.subscription_max_lifetime_minutes = 4230
    assert subscriptions.ensure_for_link(stack.link(), deps=services.subscription_deps()) is Outcome.CREATED
    lifetime = _only_sim_subscription(stack).expiration - stack.graph_sim.control.clock.now()
    assert timedelta(minutes=4220) < lifetime <= timedelta(minutes=4230)


def test_a_failed_create_is_reported_in_the_status_and_retried_by_upkeep(stack: RealtimeStack) -> None:
    stack.graph_sim.control.faults.add(FaultRule("POST", r"^/v1\.0/subscriptions$", 500, times=5))
    try:
        assert subscriptions.ensure_for_link(stack.link(), deps=services.subscription_deps()) is Outcome.FAILED
    finally:
        stack.graph_sim.control.faults.clear()
    status = stack.account.subscriptions.get_status(TECH)
    assert status.state is SubscriptionState.FAILED and status.detail
    assert stack.sim_subscriptions() == []
    report = subscriptions.upkeep(deps=services.subscription_deps())
    assert report.outcomes.get("created") == 1
    assert len(stack.sim_subscriptions()) == 1


def test_upkeep_forgets_rows_of_techs_no_longer_linked(stack: RealtimeStack) -> None:
    now = datetime.now(UTC)
    orphan = SubscriptionRecord("orphan-sub", BLAKE.syncro_user_id, "/me/events", now + timedelta(days=1), "h", now)
    stack.account.subscriptions.upsert_subscription(orphan)
    report = subscriptions.upkeep(deps=services.subscription_deps())
    assert report.orphans_removed == 1
    assert _rows(stack, BLAKE.syncro_user_id) == []
    assert report.outcomes.get("created") == 1  # and ALEX, linked, got his


def test_two_instances_ensuring_at_once_make_one_subscription(stack: RealtimeStack) -> None:
    from concurrent.futures import ThreadPoolExecutor

    link = stack.link()
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(
            pool.map(lambda _: subscriptions.ensure_for_link(link, deps=services.subscription_deps()), range(4))
        )
    assert outcomes.count(Outcome.CREATED) == 1
    assert set(outcomes) <= {Outcome.CREATED, Outcome.BUSY, Outcome.KEPT}
    assert len(stack.sim_subscriptions()) == 1 and len(_rows(stack)) == 1


# -- pure parts ------------------------------------------------------------------------------------


def test_graph_expiry_times_with_seven_fractional_digits_parse() -> None:
    assert _parse_instant("2030-01-01T10:00:00.1234567Z") == datetime(2030, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert _parse_instant("2030-01-01T10:00:00Z") == datetime(2030, 1, 1, 10, tzinfo=UTC)


def test_the_lifetime_settings_default_to_graphs_maximum_and_refuse_nonsense() -> None:
    settings = load_realtime_settings({})
    assert settings.subscription_lifetime_minutes == 10080
    assert settings.subscription_renew_margin_minutes < settings.subscription_lifetime_minutes
    with pytest.raises(SettingsError, match="SUBSCRIPTION_LIFETIME_MINUTES"):
        load_realtime_settings({"SUBSCRIPTION_LIFETIME_MINUTES": "20000"})
    with pytest.raises(SettingsError, match="SUBSCRIPTION_RENEW_MARGIN_MINUTES"):
        load_realtime_settings({"SUBSCRIPTION_LIFETIME_MINUTES": "60", "SUBSCRIPTION_RENEW_MARGIN_MINUTES": "90"})


def test_a_new_link_is_subscribed_through_the_subscription_queue(stack: RealtimeStack) -> None:
    from realtime.lifecycle import run_subscription_job, schedule_ensure

    schedule_ensure(stack.account, TECH)  # what the sign-in and the calendar choice call
    (text,) = stack.take_subscription_jobs()
    assert run_subscription_job(text) is Outcome.CREATED
    assert len(stack.sim_subscriptions()) == 1
    assert stack.sync_jobs() == []  # a new subscription alone asks for no sync


def test_a_queued_ensure_for_a_tech_unlinked_meanwhile_removes_what_is_left(stack: RealtimeStack) -> None:
    from realtime.lifecycle import run_subscription_job, schedule_ensure

    now = datetime.now(UTC)
    orphan = SubscriptionRecord("left-over", BLAKE.syncro_user_id, "/me/events", now + timedelta(days=1), "h", now)
    stack.account.subscriptions.upsert_subscription(orphan)
    schedule_ensure(stack.account, BLAKE.syncro_user_id)
    (text,) = stack.take_subscription_jobs()
    assert run_subscription_job(text) is Outcome.REMOVED
    assert _rows(stack, BLAKE.syncro_user_id) == []
