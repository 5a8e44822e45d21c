"""The timers (`realtime.timers`, `blueprints/background.py`): their schedules as settings, one run
at a time across instances, and each timer's work end to end on the in-process product (Azurite,
the simulators over TLS) through the local host's timer runner and queue pump."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from local.inprocess import Product
from realtime import timers
from settings import SettingsError, TimerSchedules, load_timer_schedules
from storage import StorageAccount
from storage.job_status import JobStatusStore
from storage.links import LinkStatus
from storage.oauth_state import FlowState
from storage.recycle_bin import RecycleEntry, new_entry_id
from tests.realtime.support import (
    ROOT,
    FleetTech,
    appointment,
    outlook_subjects,
    private_queue,
    queue_pump,
    seed_fleet,
    timer,
    wait_for,
)

pytest_plugins = ["tests.app.linking_support"]


# -- schedules ------------------------------------------------------------------------------------


def test_every_schedule_has_a_documented_default() -> None:
    assert load_timer_schedules({}) == TimerSchedules(
        syncro_poll="0 * * * * *",
        reconcile="30 */15 * * * *",
        subscription_upkeep="0 7 * * * *",
        cleanup="0 40 3 * * *",
    )


def test_a_schedule_setting_takes_any_six_field_ncrontab() -> None:
    schedules = load_timer_schedules(
        {"SYNCRO_POLL_SCHEDULE": " */20 * * * * * ", "CLEANUP_SCHEDULE": "0 0 2 * * MON-FRI", "RECONCILE_SCHEDULE": ""}
    )
    assert schedules.syncro_poll == "*/20 * * * * *" and schedules.cleanup == "0 0 2 * * MON-FRI"
    assert schedules.reconcile == TimerSchedules().reconcile


@pytest.mark.parametrize(
    "raw",
    ["*/5 * * * *", "0 */5 * * * * *", "60 * * * * *", "0 0 24 * * *", "0 0 0 0 * *", "0 */0 * * * *", "0 9-5 * * * *"],
)
def test_a_malformed_schedule_is_refused_with_the_setting_named(raw: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_timer_schedules({"RECONCILE_SCHEDULE": raw})
    assert caught.value.name == "RECONCILE_SCHEDULE" and "0 */5 * * * *" in str(caught.value)


def test_the_triggers_are_declared_with_the_schedules_and_queue_the_settings_name() -> None:
    script = (
        "import json, function_app\n"
        "out = {}\n"
        "for f in function_app.app.get_functions():\n"
        "    for b in map(json.loads, f.get_raw_bindings()):\n"
        "        if b['type'] in ('timerTrigger', 'queueTrigger'):\n"
        "            out[f.get_function_name()] = b.get('schedule') or b.get('queueName')\n"
        "print(json.dumps(out))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "SYNCRO_POLL_SCHEDULE": "*/30 * * * * *",
        "CLEANUP_SCHEDULE": "0 0 4 * * SUN",
        "SYNC_QUEUE_NAME": "jobs-elsewhere",
    }
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    declared = json.loads(done.stdout)
    ours = {
        "sync_job": "jobs-elsewhere",
        "syncro_poll_timer": "*/30 * * * * *",
        "reconcile_timer": TimerSchedules().reconcile,
        "subscription_upkeep_timer": TimerSchedules().subscription_upkeep,
        "cleanup_timer": "0 0 4 * * SUN",
    }
    assert {name: declared.get(name) for name in ours} == ours


def test_a_malformed_schedule_leaves_the_app_indexed_on_defaults_and_every_timer_run_names_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    script = (
        "import json, function_app\n"
        "print(json.dumps({f.get_function_name(): [json.loads(b).get('schedule') for b in f.get_raw_bindings()]"
        " for f in function_app.app.get_functions()}))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "SYNCRO_POLL_SCHEDULE": "every minute"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr  # indexed: Azure would otherwise say only "0 functions found"
    assert json.loads(done.stdout)["syncro_poll_timer"] == [TimerSchedules().syncro_poll]
    monkeypatch.setenv("SYNCRO_POLL_SCHEDULE", "every minute")
    with caplog.at_level(logging.ERROR, logger="realtime.timers"):
        assert timers.check_schedules() is not None
    assert "setting SYNCRO_POLL_SCHEDULE has 2 fields" in caplog.text


# -- on the product ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def product(linking_stack: Product) -> Iterator[Product]:
    # Ownership from the owner fields (the poller's first path; the per-tech-token path needs a
    # token store that does not exist yet), and no Syncro webhook: a creation must come by the poll.
    linking_stack.sim("syncro").update_settings({"withhold_user_fields": False, "notification_urls": []})
    private_queue(linking_stack)
    yield linking_stack


@pytest.fixture(scope="module")
def fleet(product: Product) -> list[FleetTech]:
    return seed_fleet(product, 3, first_id=1_700_000)


def test_a_timer_whose_previous_run_is_still_going_skips_and_says_so(
    product: Product, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = product.storage(), StorageAccount(product.storage()._settings)  # two instances
    running, release = threading.Event(), threading.Event()
    answers: list[object] = []

    def long_run() -> str:
        running.set()
        release.wait(30)
        return "done"

    thread = threading.Thread(target=lambda: answers.append(timers.run_singleton("test-timer", first, long_run)))
    thread.start()
    running.wait(30)
    with caplog.at_level(logging.WARNING, logger="realtime.timers"):
        assert timers.run_singleton("test-timer", second, lambda: "ran twice") is None
    assert "timer test-timer skipped: its previous run is still going" in caplog.text
    release.set()
    thread.join(30)
    assert answers == ["done"]
    assert timers.run_singleton("test-timer", second, lambda: "next") == "next"  # released when it ended


def test_a_run_that_raises_still_releases_its_timer(product: Product) -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        timers.run_singleton("test-raising", product.storage(), broken)
    assert timers.run_singleton("test-raising", product.storage(), lambda: 1) == 1


def test_a_syncro_creation_reaches_outlook_through_the_poll_timer_and_a_job(
    product: Product, fleet: list[FleetTech]
) -> None:
    tech = fleet[0]
    http = product.browser()
    answer = http.post(
        f"{product.sim_url('syncro')}/_sim/appointments",
        json=appointment(tech.syncro_user_id, "Replace UPS batteries"),
        timeout=30,
    )
    assert answer.status_code < 400, answer.text
    with timer(product, "syncro_poll_timer", "*/2 * * * * *"), queue_pump(product):
        wait_for(
            lambda: "[S] Replace UPS batteries" in outlook_subjects(product, tech.oid),
            timeout=90,
            what="the [S] event in Outlook",
        )
    poll = JobStatusStore(product.storage()).get_poll_status()
    assert poll.last_poll_at is not None and poll.outcome in ("ok", "partial") and poll.requests > 0
    status = JobStatusStore(product.storage()).get_status(tech.syncro_user_id)
    assert status.last_job_reason == "syncro-poll" and status.last_job_outcome == "synced"
    assert outlook_subjects(product, tech.oid).count("[S] Replace UPS batteries") == 1


def test_a_poll_asks_once_for_a_techs_sync_while_its_job_waits(product: Product, fleet: list[FleetTech]) -> None:
    """The poll asks for syncs as everyone does (`realtime.enqueue.request_syncs`): a tech whose
    job is queued and not started gets no second one from the next poll (a listing that spans
    several runs would otherwise queue his sync once a run: 4,225 jobs for 1,000 techs)."""
    private_queue(product)  # an empty queue to count on
    tech = fleet[1]
    http = product.browser()
    for title in ("Swap router", "Patch firewall"):
        answer = http.post(
            f"{product.sim_url('syncro')}/_sim/appointments", json=appointment(tech.syncro_user_id, title), timeout=30
        )
        assert answer.status_code < 400, answer.text
        assert timers.poll_syncro(account=product.storage()) is not None  # each poll sees a change of his
    queued = [job.syncro_user_id for job in product.storage().sync_queue.peek_jobs()]
    assert queued.count(tech.syncro_user_id) == 1, queued


def test_reconcile_queues_one_job_per_linked_tech_and_none_for_a_paused_one(
    product: Product, fleet: list[FleetTech]
) -> None:
    private_queue(product)  # an empty queue to count on
    links = product.storage().links
    paused = fleet[2].syncro_user_id
    links.update_link(links.get_link(paused).with_changes(status=LinkStatus.PAUSED))
    try:
        run = timers.reconcile(account=product.storage())
        assert run is not None
        active = {t.syncro_user_id for t in fleet} - {paused}
        assert set(run.queued) | set(run.coalesced) == active
        queued = [job.syncro_user_id for job in product.storage().sync_queue.peek_jobs()]
        assert sorted(queued) == sorted(run.queued) and set(queued) == active - set(run.coalesced)
        again = timers.reconcile(account=product.storage())  # while those jobs wait: nothing new
        assert again is not None and again.queued == () and set(again.coalesced) == active
    finally:
        links.update_link(links.get_link(paused).with_changes(status=LinkStatus.ACTIVE))


def test_cleanup_purges_old_recycle_bin_entries_of_every_tech_and_expired_sign_in_flows(product: Product) -> None:
    storage = product.storage()
    now = datetime.now(UTC)
    unlinked_tech = 1_799_999  # an old tech whose link is gone: their bin is purged too
    old = RecycleEntry(
        unlinked_tech, new_entry_id(now - timedelta(days=31)), "outlook", "e1", "syncro", {}, now - timedelta(days=31)
    )
    recent = RecycleEntry(unlinked_tech, new_entry_id(now), "outlook", "e2", "syncro", {}, now - timedelta(days=2))
    for entry in (old, recent):
        storage.recycle_bin.add_entry(entry)
    expired = FlowState("expired-state", 1, b"flow", now - timedelta(hours=1), now - timedelta(minutes=50))
    live = FlowState("live-state", 1, b"flow", now, now + timedelta(minutes=10))
    for flow in (expired, live):
        storage.oauth_states.create_state(flow)
    run = timers.cleanup(account=storage)
    assert run is not None and run.recycle_entries >= 1 and run.oauth_flows >= 1
    assert [e.entry_id for e in storage.recycle_bin.list_entries(unlinked_tech)] == [recent.entry_id]
    assert storage.oauth_states.take_state("live-state").state == "live-state"


def test_subscription_upkeep_does_not_run_while_its_previous_run_holds_the_timer(product: Product) -> None:
    storage = product.storage()
    lease = storage.leases.acquire(f"timer:{timers.UPKEEP}", holder="other-instance", duration=timedelta(minutes=1))
    try:
        assert timers.subscription_upkeep(account=storage) is None
    finally:
        storage.leases.release(lease)
