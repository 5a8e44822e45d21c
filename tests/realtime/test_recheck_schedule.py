"""The Graph recheck schedule (`realtime.jobs.next_recheck`), as a pure function: which recheck a
job that ran asks for, and after how long. The queue, storage and the dedup marker are
`tests/realtime/test_jobs.py`'s business."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from realtime.rechecks import RECHECK_DELAYS, next_recheck
from storage.sync_queue import SyncJob, parse_message
from sync.job_reasons import JobReason
from sync.report import SyncReport

TECH = 1_700_000_000_001
NOW = datetime(2026, 12, 7, 22, 0, tzinfo=UTC)
QUIET = SyncReport(TECH)  # synced, nothing written


def _follow(job: SyncJob) -> list[tuple[SyncJob, int]]:
    """Every recheck the schedule queues after ``job`` when none of them sees a change."""
    queued = []
    while (step := next_recheck(job, QUIET, NOW)) is not None:
        queued.append(step)
        job = parse_message(step[0].to_json())  # as the queue hands it back
        assert isinstance(job, SyncJob)
        assert len(queued) <= 10, "the schedule must end"
    return queued


def test_a_quiet_notification_job_is_rechecked_after_1_1_2_and_4_s_and_then_no_more() -> None:
    queued = _follow(SyncJob(TECH, "graph-notification", "2026-12-07T21:59:59+00:00"))

    assert [delay for _, delay in queued] == [1, 1, 2, 4] == list(RECHECK_DELAYS)
    assert [job.attempt for job, _ in queued] == [1, 2, 3, 4]
    assert {job.reason for job, _ in queued} == {JobReason.GRAPH_RECHECK}
    assert {job.requested_at for job, _ in queued} == {NOW.isoformat()}  # one schedule, named by its start
    assert {job.syncro_user_id for job, _ in queued} == {TECH}


def test_a_recheck_that_writes_ends_the_schedule() -> None:
    first, _ = next_recheck(SyncJob(TECH, "graph-notification", "t"), QUIET, NOW) or (None, 0)
    assert first is not None
    wrote = SyncReport(TECH, created={"syncro": 1, "outlook": 0})

    assert next_recheck(first, wrote, NOW) is None


@pytest.mark.parametrize(
    "job",
    [
        SyncJob(TECH, "reconcile", "t"),
        SyncJob(TECH, "syncro-notification", "t"),
        SyncJob(TECH, "busy-follow-up", "t"),
        SyncJob(TECH, JobReason.GRAPH_RECHECK, "t"),  # queued by the version before schedules: one look only
        SyncJob(TECH, JobReason.GRAPH_RECHECK, "t", attempt=len(RECHECK_DELAYS)),
        SyncJob(TECH, JobReason.GRAPH_RECHECK, "t", attempt=-1),
    ],
)
def test_only_a_notification_job_or_a_recheck_with_steps_left_asks_for_one(job: SyncJob) -> None:
    assert next_recheck(job, QUIET, NOW) is None


@pytest.mark.parametrize("status", ["busy", "failed", "not_linked", "inactive", "unlinked"])
def test_a_notification_job_that_did_not_sync_asks_for_no_recheck(status: str) -> None:
    assert next_recheck(SyncJob(TECH, "graph-notification", "t"), SyncReport(TECH, status=status), NOW) is None


def test_the_attempt_travels_in_the_message_and_other_jobs_read_as_before() -> None:
    recheck = SyncJob(TECH, JobReason.GRAPH_RECHECK, "t", attempt=2)
    assert parse_message(recheck.to_json()) == recheck
    plain = SyncJob(TECH, "reconcile", "t")
    assert "attempt" not in plain.to_json()
    assert parse_message('{"syncro_user_id": 5, "reason": "graph-recheck", "requested_at": "t"}').attempt == 0  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="not a sync job"):
        parse_message('{"syncro_user_id": 5, "reason": "graph-recheck", "requested_at": "t", "attempt": "x"}')


# -- looking again inside the notification's own job ---------------------------------------------


class _Clock:
    def __init__(self, sync_takes: float = 0.3) -> None:
        self.now = 100.0
        self.sync_takes = sync_takes
        self.starts: list[float] = []

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds

    def sync(self, outcome: SyncReport) -> SyncReport:
        self.starts.append(self.now)
        self.now += self.sync_takes
        return outcome


def _look(clock: _Clock, outcomes: list[SyncReport], seconds: float = 3.0) -> SyncReport:
    from realtime.rechecks import look_again

    results = iter(outcomes)
    return look_again(lambda: clock.sync(next(results)), QUIET, seconds, sleep=clock.sleep, monotonic=lambda: clock.now)


def test_a_quiet_notification_job_looks_again_every_half_second_until_its_window_ends() -> None:
    clock = _Clock()
    report = _look(clock, [QUIET] * 20, seconds=2.5)

    assert report is QUIET  # still quiet: the queued rechecks follow
    assert [round(start - 100.0, 2) for start in clock.starts] == [0.5, 1.0, 1.5, 2.0, 2.5]


def test_the_first_look_that_writes_is_the_jobs_report_and_ends_the_looks() -> None:
    clock = _Clock()
    wrote = SyncReport(TECH, created={"syncro": 1, "outlook": 0})

    assert _look(clock, [QUIET, wrote, QUIET]) is wrote
    assert len(clock.starts) == 2


def test_looks_are_bounded_in_number_and_stop_at_a_sync_that_did_not_run() -> None:
    from realtime.rechecks import LOOK_AGAIN_MAX

    clock = _Clock(sync_takes=0.0)
    assert _look(clock, [QUIET] * 50, seconds=3600) is QUIET
    assert len(clock.starts) == LOOK_AGAIN_MAX
    busy = _Clock()
    assert _look(busy, [SyncReport(TECH, status="busy"), QUIET]) is QUIET and len(busy.starts) == 1


def test_a_job_that_starts_after_its_window_does_not_look_again() -> None:
    from realtime.rechecks import seconds_left

    job = SyncJob(TECH, "graph-notification", "2026-12-07T21:59:59+00:00")
    assert seconds_left(job, NOW, 3.0) == pytest.approx(2.0)
    assert seconds_left(SyncJob(TECH, "graph-notification", "2026-12-07T21:59:00+00:00"), NOW, 3.0) == 0.0
    assert seconds_left(SyncJob(TECH, "graph-notification", "t"), NOW, 3.0) == 0.0
    clock = _Clock()
    assert _look(clock, [QUIET], seconds=0.0) is QUIET and clock.starts == []


def test_the_queue_trigger_looks_again_and_a_direct_run_does_not_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect
    from types import SimpleNamespace

    from realtime import jobs

    assert inspect.signature(jobs.run_job).parameters["look_again_for"].default == 0.0
    seen: list[float] = []
    monkeypatch.setattr(jobs, "run_job", lambda delivery, **kwargs: seen.append(kwargs["look_again_for"]) or "synced")
    message = SimpleNamespace(get_body=lambda: b"{}", id="m", dequeue_count=1)
    assert jobs.handle_queue_message(message) == "synced"
    assert seen == [jobs.LOOK_AGAIN_FOR]
