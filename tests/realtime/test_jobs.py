"""The queue-triggered sync job (`realtime.jobs`), end to end: the in-process product (Azurite, the
three simulators over TLS), a few techs linked, and the local host's queue pump (visibility
timeout, dequeue count, poison queue) feeding the app's own queue trigger from a queue of the
module's own. Each test is named for the behaviour it proves."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from local.inprocess import Product
from realtime import jobs
from realtime.jobs import Delivery, run_job
from realtime.status import background_status, describe, queue_status
from storage.job_status import JobOutcome, JobStatusStore
from storage.sync_queue import SyncJob
from sync.job_reasons import JobReason
from tests.app.linking_support import graph_as
from tests.realtime.support import FleetTech, private_queue, queue_pump, seed_fleet, wait_for

pytest_plugins = ["tests.app.linking_support"]


@dataclass
class Jobs:
    product: Product
    techs: list[FleetTech]
    http: requests.Session

    @property
    def storage(self) -> Any:
        return self.product.storage()

    @property
    def statuses(self) -> JobStatusStore:
        return JobStatusStore(self.storage)

    def graph(self, method: str, tech: FleetTech, path: str, **kwargs: Any) -> requests.Response:
        prefer = {"Prefer": 'outlook.timezone="UTC"'}
        return graph_as(self.product, tech.syncro_user_id, method, path, session=self.http, headers=prefer, **kwargs)

    def outlook_create(self, tech: FleetTech, subject: str, *, settle: bool = True) -> None:
        day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=3, hours=15)
        body = {
            "subject": subject,
            "start": {"dateTime": day.isoformat()[:19], "timeZone": "UTC"},
            "end": {"dateTime": (day + timedelta(hours=1)).isoformat()[:19], "timeZone": "UTC"},
        }
        self.graph("POST", tech, f"/me/calendars/{tech.calendar_id}/events", json=body)
        if settle:  # Graph's delta shows a change about 2 s after it happened (the quirks preset): let it.
            self.sim("graph", "POST", "/_sim/clock", json={"advance_seconds": 3})

    def sim(self, name: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        answer = self.http.request(method, f"{self.product.sim_url(name)}{path}", timeout=30, **kwargs)
        assert answer.status_code < 400, answer.text
        return answer

    def syncro_summaries(self, tech: FleetTech) -> list[str]:
        body = self.sim("syncro", "GET", "/_sim/appointments").json()
        records = body if isinstance(body, list) else body.get("appointments", [])
        mine = [
            r
            for r in records
            if r.get("user_id") == tech.syncro_user_id or tech.syncro_user_id in (r.get("user_ids") or [])
        ]
        return [str(r.get("summary")) for r in mine]

    def enqueue(self, tech: FleetTech, reason: str = "test") -> None:
        self.storage.sync_queue.enqueue(SyncJob(tech.syncro_user_id, reason, datetime.now(UTC).isoformat()))

    def queue(self, suffix: str = "") -> Any:
        return self.storage.queue(self.storage.sync_queue.name + suffix)

    def drained(self) -> bool:
        return not list(self.queue().peek_messages(max_messages=1))


@pytest.fixture(scope="module")
def world(linking_stack: Product) -> Iterator[Jobs]:
    private_queue(linking_stack)
    techs = seed_fleet(linking_stack, 4, first_id=1_600_000)
    yield Jobs(linking_stack, techs, linking_stack.browser())


def _delivery(body: bytes, *, dequeue_count: int = 1) -> Delivery:
    return Delivery(body, "m-1", dequeue_count)


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"[1, 2]",
        b'{"reason": "x", "requested_at": "t"}',
        b'{"syncro_user_id": "twelve", "reason": "x", "requested_at": "t"}',
        b'{"syncro_user_id": -4, "reason": "x", "requested_at": "t"}',
        b"\xff\xfe\x00",
    ],
)
def test_a_message_that_is_not_a_job_is_dropped_without_syncing_anyone(world: Jobs, body: bytes) -> None:
    before = world.storage.sync_queue.depth()
    assert run_job(_delivery(body), deps_factory=_no_deps) == "dropped"
    assert world.storage.sync_queue.depth() == before


def _no_deps() -> Any:
    raise AssertionError("a message that is not a job must not build anything")


def test_a_bad_message_on_the_queue_is_dropped_not_retried_into_the_poison_queue(world: Jobs) -> None:
    world.queue().send_message('{"hello": "world"}')  # the client base64-encodes, as the host reads
    with queue_pump(world.product):
        wait_for(world.drained, timeout=30, what="the queue to drain")
    assert not list(world.queue("-poison").peek_messages(max_messages=1))


def test_an_outlook_event_reaches_syncro_through_a_queued_job(world: Jobs) -> None:
    tech = world.techs[0]
    world.outlook_create(tech, "Site survey")
    world.enqueue(tech, "graph-notification")
    with queue_pump(world.product):
        wait_for(lambda: "[O] Site survey" in world.syncro_summaries(tech), timeout=60, what="the [O] appointment")
        wait_for(world.drained, timeout=30, what="the queue to drain")
    status = world.statuses.get_status(tech.syncro_user_id)
    assert status.last_job_outcome == JobOutcome.SYNCED and status.last_job_reason in ("graph-notification", "test")
    assert "1 in Syncro" in status.last_job_detail


def test_a_job_delivered_twice_at_once_creates_nothing_twice(world: Jobs) -> None:
    tech = world.techs[1]
    world.outlook_create(tech, "Rack install")
    job = SyncJob(tech.syncro_user_id, "graph-notification", datetime.now(UTC).isoformat()).to_json()
    for _ in range(3):  # the same message, as at-least-once delivery may hand it out
        world.queue().send_message(job)
    with queue_pump(world.product):  # a batch of 4: the copies run at the same time
        wait_for(lambda: "[O] Rack install" in world.syncro_summaries(tech), timeout=60, what="the [O] appointment")
        wait_for(world.drained, timeout=60, what="the queue to drain")
        wait_for(
            lambda: world.statuses.get_status(tech.syncro_user_id).follow_up_at is None,
            timeout=60,
            what="any busy follow-up to run",
        )
        wait_for(world.drained, timeout=60, what="the follow-up to finish")
    assert world.syncro_summaries(tech).count("[O] Rack install") == 1
    # and run once more by hand, as a redelivery after a crash would: still one
    assert run_job(_delivery(job.encode(), dequeue_count=2)) == JobOutcome.SYNCED
    assert world.syncro_summaries(tech).count("[O] Rack install") == 1
    # It wrote nothing, so it queued delayed rechecks: gone, so later tests' pumps and faults
    # meet only their own jobs.
    world.queue().clear_messages()


def test_a_busy_tech_gets_one_delayed_follow_up_that_syncs_after_the_running_sync(
    world: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    tech = world.techs[2]
    storage = world.storage
    lease = storage.leases.acquire(
        f"sync:{tech.syncro_user_id}", holder="another-instance", duration=timedelta(minutes=1)
    )
    monkeypatch.setattr(jobs, "BUSY_RETRY_SECONDS", 2)
    body = SyncJob(tech.syncro_user_id, "graph-notification", datetime.now(UTC).isoformat()).to_json().encode()
    before = storage.sync_queue.depth()
    results = []
    threads = [threading.Thread(target=lambda: results.append(run_job(_delivery(body)))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [JobOutcome.BUSY] * 3
    assert storage.sync_queue.depth() == before + 1  # one follow-up for the three busy jobs
    status = world.statuses.get_status(tech.syncro_user_id)
    assert status.last_job_outcome == JobOutcome.BUSY and status.follow_up_at is not None
    world.outlook_create(tech, "Made while the other sync ran")
    storage.leases.release(lease)
    with queue_pump(world.product):
        wait_for(
            lambda: "[O] Made while the other sync ran" in world.syncro_summaries(tech),
            timeout=60,
            what="the follow-up to sync",
        )
        wait_for(world.drained, timeout=30, what="the queue to drain")
    status = world.statuses.get_status(tech.syncro_user_id)
    assert status.last_job_reason == JobReason.BUSY_FOLLOW_UP and status.last_job_outcome == JobOutcome.SYNCED
    assert status.follow_up_at is None


def test_a_job_that_fails_every_attempt_lands_in_the_poison_queue_and_marks_the_tech(world: Jobs) -> None:
    tech = world.techs[3]
    rule = {"method": "GET", "path": "calendarView/delta", "status": 403, "times": 0}
    world.sim("graph", "POST", "/_sim/faults", json=rule)
    try:
        world.enqueue(tech, "reconcile")
        with queue_pump(world.product):
            wait_for(
                lambda: list(world.queue("-poison").peek_messages(max_messages=5)),
                timeout=90,
                what="the message to be poisoned",
            )
        status = world.statuses.get_status(tech.syncro_user_id)
        assert status.poisoned and status.last_job_outcome == JobOutcome.POISONED
        assert "403" in status.last_job_detail or "denied" in status.last_job_detail.lower(), status
        [poisoned] = world.storage.sync_queue.peek_jobs(poison=True)
        assert poisoned.syncro_user_id == tech.syncro_user_id
        shown = background_status(world.storage, tech.syncro_user_id)
        assert "failed five times in a row" in describe(shown)[0]
        assert queue_status(world.storage).poisoned_techs == (tech.syncro_user_id,)
        # other techs' jobs still run meanwhile
        assert not world.statuses.get_status(world.techs[0].syncro_user_id).poisoned
    finally:
        world.sim("graph", "DELETE", "/_sim/faults")
    world.queue("-poison").clear_messages()
    assert run_job(_delivery(SyncJob(tech.syncro_user_id, "reconcile", "t").to_json().encode())) == "synced"
    assert not world.statuses.get_status(tech.syncro_user_id).poisoned  # the next good sync clears it


def test_a_fan_out_that_fails_its_last_attempt_marks_every_tech_it_names(
    world: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage.errors import StorageUnavailable
    from storage.sync_queue import FanOut

    techs = [world.techs[1].syncro_user_id, world.techs[2].syncro_user_id]
    body = FanOut(tuple(techs), "graph-notification", "t").to_json().encode()

    def refuse(*args: object, **kwargs: object) -> int:
        raise StorageUnavailable("queue down")

    monkeypatch.setattr("realtime.enqueue.fan_out", refuse)
    with pytest.raises(StorageUnavailable):
        run_job(_delivery(body, dequeue_count=1))  # retried by the host: nobody marked yet
    assert not any(world.statuses.get_status(tech).poisoned for tech in techs)
    with pytest.raises(StorageUnavailable):
        run_job(_delivery(body, dequeue_count=5))
    for tech in techs:
        status = world.statuses.get_status(tech)
        assert status.poisoned and "queue down" in status.last_job_detail
    monkeypatch.undo()
    assert run_job(_delivery(body)) == "fanned-out"
    for tech in techs:  # their jobs are queued now; a good sync clears the mark
        assert run_job(_delivery(SyncJob(tech, "reconcile", "t").to_json().encode())) == "synced"
        assert not world.statuses.get_status(tech).poisoned
    world.queue().clear_messages()


def test_a_failing_job_before_its_last_attempt_is_retried_without_marking_the_tech(world: Jobs) -> None:
    tech = world.techs[3]
    rule = {"method": "GET", "path": "calendarView/delta", "status": 403, "times": 1}
    world.sim("graph", "POST", "/_sim/faults", json=rule)
    try:
        body = SyncJob(tech.syncro_user_id, "reconcile", "t").to_json().encode()
        with pytest.raises(jobs.JobFailed):
            run_job(_delivery(body, dequeue_count=1))
    finally:
        world.sim("graph", "DELETE", "/_sim/faults")
    status = world.statuses.get_status(tech.syncro_user_id)
    assert status.last_job_outcome == JobOutcome.FAILED and not status.poisoned


def test_a_notification_that_outruns_delta_is_looked_at_again_seconds_later(
    world: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The queued recheck's path: the notification job's own looks (look_again, tested in
    # test_recheck_schedule.py and test_end_to_end.py) would carry the change first.
    monkeypatch.setattr(jobs, "LOOK_AGAIN_FOR", 0.0)
    tech = world.techs[3]
    world.outlook_create(tech, "Outran delta", settle=False)  # the notification comes before delta shows it
    world.enqueue(tech, "graph-notification")
    with queue_pump(world.product):
        wait_for(lambda: "[O] Outran delta" in world.syncro_summaries(tech), timeout=60, what="the [O] appointment")
        wait_for(world.drained, timeout=30, what="the queue to drain")
    status = world.statuses.get_status(tech.syncro_user_id)
    assert status.last_job_reason == "graph-recheck" and status.last_job_outcome == JobOutcome.SYNCED
    assert world.syncro_summaries(tech).count("[O] Outran delta") == 1


class _Sent:
    """What `SyncQueue.enqueue` was asked to send, and with what delay; every message still goes
    to the real queue."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from storage.sync_queue import SyncQueue

        self.jobs: list[tuple[SyncJob, int]] = []
        send = SyncQueue.enqueue

        def recording(queue: SyncQueue, job: Any, *, delay_seconds: int = 0) -> None:
            self.jobs.append((job, delay_seconds))
            send(queue, job, delay_seconds=delay_seconds)

        monkeypatch.setattr(SyncQueue, "enqueue", recording)

    def rechecks(self) -> list[tuple[SyncJob, int]]:
        found = [(job, delay) for job, delay in self.jobs if getattr(job, "reason", "") == JobReason.GRAPH_RECHECK]
        self.jobs.clear()
        return found


def _quiet_tech(world: Jobs, index: int) -> FleetTech:
    """A tech with nothing left to carry: a notification's job for them writes nothing (as for an
    echo of our own write, or a change delta does not show yet)."""
    tech = world.techs[index]
    run_job(_delivery(SyncJob(tech.syncro_user_id, "reconcile", "t").to_json().encode()))
    return tech


def test_a_change_delta_does_not_show_is_rechecked_after_1_1_2_and_4_s_and_then_left_to_reconciliation(
    world: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    tech = _quiet_tech(world, 0)
    sent = _Sent(monkeypatch)
    body = SyncJob(tech.syncro_user_id, "graph-notification", datetime.now(UTC).isoformat()).to_json().encode()
    delays, attempts = [], []
    try:
        for _ in range(len(jobs.RECHECK_DELAYS) + 2):  # each job as the queue would deliver it
            assert run_job(_delivery(body)) == JobOutcome.SYNCED
            rechecks = sent.rechecks()
            if not rechecks:
                break
            [(recheck, delay)] = rechecks
            delays.append(delay)
            attempts.append(recheck.attempt)
            body = recheck.to_json().encode()
    finally:
        world.queue().clear_messages()  # the delayed rechecks too
    assert delays == [1, 1, 2, 4] and attempts == [1, 2, 3, 4]  # and the fourth queued no fifth
    assert world.statuses.get_status(tech.syncro_user_id).last_job_reason == "graph-recheck"


def test_one_recheck_schedule_per_tech_a_newer_one_replaces_it_and_a_second_delivery_does_nothing(
    world: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    tech = _quiet_tech(world, 1)
    sent = _Sent(monkeypatch)

    def notified() -> SyncJob:
        body = SyncJob(tech.syncro_user_id, "graph-notification", datetime.now(UTC).isoformat()).to_json()
        assert run_job(_delivery(body.encode())) == JobOutcome.SYNCED
        [(recheck, delay)] = sent.rechecks()
        assert delay == 1
        return recheck

    try:
        older, newer = notified(), notified()
        assert older != newer
        # The older schedule's recheck does nothing: no sync recorded, nothing queued.
        assert run_job(_delivery(older.to_json().encode())) == jobs.SUPERSEDED
        assert sent.rechecks() == []
        assert world.statuses.get_status(tech.syncro_user_id).last_job_reason == "graph-notification"
        # The newer one goes on; the same message delivered again queues nothing more.
        assert run_job(_delivery(newer.to_json().encode())) == JobOutcome.SYNCED
        [(second, delay)] = sent.rechecks()
        assert (second.attempt, delay) == (2, jobs.RECHECK_DELAYS[1])
        assert run_job(_delivery(newer.to_json().encode())) == jobs.SUPERSEDED
        assert sent.rechecks() == []
    finally:
        world.queue().clear_messages()


def test_a_recheck_that_could_not_queue_the_next_fails_and_its_retry_queues_it(
    world: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage.errors import StorageUnavailable
    from storage.sync_queue import SyncQueue

    tech = _quiet_tech(world, 3)
    sent = _Sent(monkeypatch)
    body = SyncJob(tech.syncro_user_id, "graph-notification", datetime.now(UTC).isoformat()).to_json()
    try:
        assert run_job(_delivery(body.encode())) == JobOutcome.SYNCED
        [(first, _)] = sent.rechecks()
        recording = SyncQueue.enqueue

        def down(queue: SyncQueue, job: Any, *, delay_seconds: int = 0) -> None:
            raise StorageUnavailable("queue down")

        monkeypatch.setattr(SyncQueue, "enqueue", down)
        with pytest.raises(StorageUnavailable):  # the host delivers it again later
            run_job(_delivery(first.to_json().encode(), dequeue_count=1))
        monkeypatch.setattr(SyncQueue, "enqueue", recording)

        assert run_job(_delivery(first.to_json().encode(), dequeue_count=2)) == JobOutcome.SYNCED
        [(second, delay)] = sent.rechecks()
        assert (second.attempt, delay) == (2, jobs.RECHECK_DELAYS[1])
    finally:
        world.queue().clear_messages()


def test_a_recheck_that_finds_the_change_carries_it_and_queues_no_more(
    world: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    tech = _quiet_tech(world, 2)
    lag = world.product.sim("graph").settings.delta_visibility_lag_seconds
    world.sim("graph", "PATCH", "/_sim/settings", json={"delta_visibility_lag_seconds": 600})
    sent = _Sent(monkeypatch)
    try:
        world.outlook_create(tech, "Behind delta", settle=False)
        body = SyncJob(tech.syncro_user_id, "graph-notification", datetime.now(UTC).isoformat()).to_json()
        assert run_job(_delivery(body.encode())) == JobOutcome.SYNCED
        [(recheck, _)] = sent.rechecks()
        assert "[O] Behind delta" not in world.syncro_summaries(tech)  # delta did not show it yet
        world.sim("graph", "POST", "/_sim/clock", json={"advance_seconds": 601})

        assert run_job(_delivery(recheck.to_json().encode())) == JobOutcome.SYNCED

        assert world.syncro_summaries(tech).count("[O] Behind delta") == 1
        assert sent.rechecks() == []
    finally:
        world.sim("graph", "PATCH", "/_sim/settings", json={"delta_visibility_lag_seconds": lag})
        world.queue().clear_messages()


def test_a_job_the_shared_syncro_budget_sends_away_is_queued_again_not_poisoned(
    world: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    import services
    from storage.syncro_budget import Ledger, SyncroBudgetStore
    from sync.budget import SLOT_SECONDS, Caller, granted, slot_of

    tech = world.techs[2]
    world.outlook_create(tech, "Budget day")
    time.sleep(SLOT_SECONDS)  # requests this process was granted earlier lapse with their slot
    store = SyncroBudgetStore(world.storage)
    _, etag = store.read()
    store.write(granted(Ledger(), "poll", 150, slot_of(time.time())), etag=etag)  # every instance's minute spent
    monkeypatch.setattr(services.syncro_budget(), "_waits", {caller: 0.0 for caller in Caller})  # no waiting here
    depth = world.storage.sync_queue.depth()
    body = SyncJob(tech.syncro_user_id, "graph-notification", "t").to_json().encode()

    outcome = run_job(_delivery(body, dequeue_count=5))  # even on its last attempt: not a failure

    status = world.statuses.get_status(tech.syncro_user_id)
    assert outcome == JobOutcome.PARTIAL and not status.poisoned
    assert "budget ran out" in status.last_job_detail and "runs again in" in status.last_job_detail
    assert "[O] Budget day" not in world.syncro_summaries(tech)  # nothing was sent
    assert world.storage.sync_queue.depth() == depth + 1  # the job, queued again for later
    _, etag = store.read()
    store.write(Ledger(), etag=etag)  # the minute has passed
    assert (
        run_job(_delivery(SyncJob(tech.syncro_user_id, JobReason.BUDGET_FOLLOW_UP, "t").to_json().encode())) == "synced"
    )
    assert "[O] Budget day" in world.syncro_summaries(tech)
    world.queue().clear_messages()
