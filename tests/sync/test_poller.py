"""The Syncro poller: pure window planning and diffing, then whole polls against the Syncro
simulator over real TLS and Azurite, with the simulator's strict defaults (ids above 2^32, owner
fields withheld unless a test names ``withhold_user_fields: false``, times in the account's offset)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settings import StorageSettings
from storage import StorageAccount
from storage.mirror import MirrorEntry
from storage.sync_queue import SyncJob
from sync.budget import RequestBudget
from sync.client_http import RetryPolicy
from sync.ownership import OwnershipMode, OwnershipUnknown, owners_of, read_ownership
from sync.poll_diff import Changes, content_hash, diff, suspicious_listing
from sync.poll_windows import RoundState, Unit, plan_windows, runs_per_pass
from sync.poller import PollReport, poll_once
from sync.syncro import SyncroClient
from tests.sims.test_syncro import ADMIN_TOKEN, JOE, OWN_ONLY_TOKEN, SAM, TECH_TOKEN, TINA, Stack

pytest_plugins = ["tests.sims.test_syncro"]

LA = ZoneInfo("America/Los_Angeles")
BY_ID = "GET /api/v1/appointments/{appointment_id:int}"
LIST = "GET /api/v1/appointments"


# -- budget -------------------------------------------------------------------------------------


class Seconds:
    """A monotonic clock tests move by hand."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


def test_the_budget_allows_a_minute_at_once_and_refills_over_the_minute() -> None:
    clock = Seconds()
    budget = RequestBudget(6, clock=clock)
    assert budget.available() == 6
    budget.charge(6)
    assert budget.available() == 0 and budget.seconds_until_available() == pytest.approx(10.0)
    clock.value += 10
    assert budget.available() == 1
    clock.value += 3600
    assert budget.available() == 6  # never more than a minute's worth


def test_retries_that_overdraw_the_budget_are_paid_by_the_next_minute() -> None:
    clock = Seconds()
    budget = RequestBudget(6, clock=clock)
    budget.charge(9)
    clock.value += 30
    assert budget.available() == 0  # 3 back, 3 owed
    clock.value += 10
    assert budget.available() == 1


def test_a_budget_needs_at_least_one_request() -> None:
    with pytest.raises(ValueError):
        RequestBudget(0)


# -- plan_windows -------------------------------------------------------------------------------

TODAY = date(2026, 3, 10)
# The mechanics below are shown on a wide near window (yesterday to 14 days ahead) and 7-day slices.
WIDE = {"near": (1, 14), "slice_days": 7}


def test_by_default_every_run_covers_the_next_48_hours_and_a_pass_takes_12_runs() -> None:
    windows, following = plan_windows(TODAY, None)
    assert windows[0] == (date(2026, 3, 10), date(2026, 3, 13))  # today, tomorrow, the day after
    assert windows[1] == (date(2026, 1, 9), date(2026, 1, 19)) and following == 10
    assert runs_per_pass() == 12  # 118 far days, 10 a run: any edit is seen within 15 minutes


def test_a_round_is_the_near_window_and_the_oldest_slice() -> None:
    windows, following = plan_windows(TODAY, None, **WIDE)
    assert windows == [(date(2026, 3, 9), date(2026, 3, 25)), (date(2026, 1, 9), date(2026, 1, 16))]
    assert following == 7


def test_a_slice_crossing_the_near_window_comes_as_two_windows() -> None:
    windows, following = plan_windows(TODAY, 56, **WIDE)
    assert windows[1:] == [(date(2026, 3, 6), date(2026, 3, 9)), (date(2026, 3, 25), date(2026, 3, 29))]
    assert following == 63


def test_the_last_slice_is_short_and_the_next_round_starts_over() -> None:
    # 59 far days back and 46 ahead: 105; the slice from 100 holds the last 5 (up to May 9, 60 days on).
    windows, following = plan_windows(TODAY, 100, **WIDE)
    assert windows[1:] == [(date(2026, 5, 5), date(2026, 5, 10))]
    assert following == 0
    assert plan_windows(TODAY, 105, **WIDE)[0] == plan_windows(TODAY, 0, **WIDE)[0]  # out of range: from the start
    assert runs_per_pass(**WIDE) == 15


def test_a_window_no_larger_than_the_near_one_has_no_slices() -> None:
    assert plan_windows(TODAY, 3, past_days=1, future_days=14, **WIDE) == ([(date(2026, 3, 9), date(2026, 3, 25))], 0)
    assert plan_windows(datetime(2026, 3, 10, 23, 0, tzinfo=UTC), None, **WIDE)[0][0][0] == date(2026, 3, 9)


def test_bad_window_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        plan_windows(TODAY, None, slice_days=0)
    with pytest.raises(ValueError):
        plan_windows(TODAY, None, past_days=-1)


@given(
    today=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    past=st.integers(0, 120),
    future=st.integers(0, 120),
    near=st.tuples(st.integers(0, 20), st.integers(0, 30)),
    slice_days=st.integers(1, 40),
    start=st.integers(-5, 300) | st.none(),
)
def test_a_full_rotation_covers_the_whole_window(
    today: date, past: int, future: int, near: tuple[int, int], slice_days: int, start: int | None
) -> None:
    options = {"past_days": past, "future_days": future, "near": near, "slice_days": slice_days}
    first, last = today - timedelta(days=past), today + timedelta(days=future)
    runs = runs_per_pass(**options)
    covered: set[date] = set()
    cursor = start
    for round_number in range(runs + 1):  # from any cursor: the rest of a pass, then the start of the next
        windows, cursor = plan_windows(today, cursor, **options)
        days = [low + timedelta(days=n) for low, high in windows for n in range((high - low).days)]
        assert len(days) == len(set(days))  # a round lists no day twice
        assert all(first <= day <= last for day in days)  # nor a day outside the sync window
        if round_number < runs or start not in (None, 0):
            covered.update(days)
        if round_number == runs - 1 and start in (None, 0):
            assert cursor == 0  # from the start, a pass takes exactly runs_per_pass rounds
    assert covered == {first + timedelta(days=n) for n in range((last - first).days + 1)}


# -- diff ---------------------------------------------------------------------------------------

BIG = 5_560_138_523


def appointment(appointment_id: int, start: str, *, updated: str = "2026-03-01T10:00:00.000-08:00", **more: Any):
    return {"id": appointment_id, "summary": "Visit", "start_at": start, "updated_at": updated, **more}


def entry(record: dict[str, Any], tech: int = TINA) -> MirrorEntry:
    return MirrorEntry(
        tech, record["id"], record["updated_at"], content_hash(record), record, datetime(2026, 3, 1, tzinfo=UTC)
    )


def test_diff_finds_new_changed_and_vanished_inside_the_window() -> None:
    same = appointment(BIG, "2026-03-10T09:00:00.000-07:00")
    moved = appointment(BIG + 1, "2026-03-11T09:00:00.000-07:00")
    edited_quietly = appointment(BIG + 2, "2026-03-12T09:00:00.000-07:00")
    gone = appointment(BIG + 3, "2026-03-13T09:00:00.000-07:00")
    outside = appointment(BIG + 4, "2026-04-20T09:00:00.000-07:00")
    mirror = [entry(record) for record in (same, moved, edited_quietly, gone, outside)]
    fresh = appointment(BIG + 5, "2026-03-14T09:00:00.000-07:00")
    listed = [
        same,
        {**moved, "updated_at": "2026-03-02T10:00:00.000-08:00"},
        {**edited_quietly, "summary": "Visit (2)"},  # same marker, new content: still a change
        fresh,
    ]
    changes = diff(mirror, listed, (date(2026, 3, 9), date(2026, 3, 25)), zone=LA)
    assert [item["id"] for item in changes.new] == [BIG + 5]
    assert [item["id"] for item in changes.changed] == [BIG + 1, BIG + 2]
    assert [vanished.appointment_id for vanished in changes.vanished] == [BIG + 3]


def test_a_partial_listing_loses_nothing_and_ids_listed_earlier_are_not_vanished() -> None:
    gone = appointment(BIG, "2026-03-13T09:00:00.000-07:00")
    assert diff([entry(gone)], [], None) == Changes()
    assert not diff([entry(gone)], [], (date(2026, 3, 9), date(2026, 3, 25)), seen={BIG}, zone=LA)
    assert not diff([entry(gone)], [gone], (date(2026, 3, 9), date(2026, 3, 25)), zone=LA)


def test_the_window_is_read_in_the_accounts_days() -> None:
    # 23:30 on the 10th in Los Angeles is the 11th in UTC; Syncro's filter reads the account's day.
    late = appointment(BIG, "2026-03-11T06:30:00.000Z")
    tenth = (date(2026, 3, 10), date(2026, 3, 11))
    assert diff([entry(late)], [], tenth, zone=LA).vanished
    assert not diff([entry(late)], [], tenth, zone=UTC).vanished


def test_owners_come_from_user_id_and_user_ids_or_are_unknown() -> None:
    assert owners_of({"id": 1}) is None
    assert owners_of({"id": 1, "user_id": None, "user_ids": []}) == frozenset()
    assert owners_of({"id": 1, "user_id": TINA, "user_ids": [JOE, TINA]}) == {TINA, JOE}


def test_the_rounds_progress_round_trips_and_a_damaged_row_starts_afresh() -> None:
    state = RoundState(
        far_cursor=14, units=[Unit(None, (TODAY, TODAY + timedelta(days=1))), Unit(2**40, (TODAY, TODAY))]
    )
    state.unit, state.page, state.seen = 1, 3, [BIG]
    assert RoundState.from_json(state.to_json()) == state
    assert RoundState.from_json('{"units": 5}') == RoundState(far_cursor=0)
    assert RoundState.from_json("not json").complete


def test_the_ownership_explanation_names_techs_without_a_token_only_when_there_are_some() -> None:
    assert "No API token" not in OwnershipUnknown().explanation
    assert "1300103" in OwnershipUnknown(techs_without_token=(SAM,)).explanation


# -- whole polls against the simulator and Azurite ----------------------------------------------


def drain(account: StorageAccount) -> list[int]:
    """The techs of the queued jobs (sorted), removing them."""
    queue = account.queue(account.sync_queue.name)
    techs = []
    for message in queue.receive_messages(messages_per_page=32, visibility_timeout=5):
        job = SyncJob.from_json(message.content)
        assert job.reason == "syncro-poll"
        techs.append(job.syncro_user_id)
        queue.delete_message(message)
    return sorted(techs)


@dataclass
class Poller:
    """A poller wired to the simulator and Azurite, as the timer function will wire it."""

    stack: Stack
    account: StorageAccount
    seconds: Seconds = field(default_factory=Seconds)
    per_minute: int = 60
    techs: tuple[int, ...] = (JOE, TINA, SAM)
    tech_tokens: dict[int, str] = field(default_factory=dict)
    reports: list[PollReport] = field(default_factory=list)
    # The wide near window (yesterday to 14 days ahead): these tests' appointments, a few days
    # out, are listed by every run, so one poll shows what a change does.
    windows: dict[str, Any] = field(default_factory=lambda: dict(WIDE))

    def __post_init__(self) -> None:
        self.budget = RequestBudget(self.per_minute, clock=self.seconds)
        self.client = self.new_client(ADMIN_TOKEN)

    def new_client(self, token: str) -> SyncroClient:
        retry = RetryPolicy(max_attempts=1)  # a refused request is the test's failure, not a wait
        return SyncroClient(self.stack.api, api_token=token, ca_bundle=str(self.stack.tls.ca_bundle), retry=retry)

    def today(self) -> date:
        return self.stack.sim.control.clock.now().astimezone(LA).date()

    def poll(self, *, feed_base_url: str | None = None) -> PollReport:
        tech_clients = {tech: self.new_client(token) for tech, token in self.tech_tokens.items()}
        before = self.counters()
        report = poll_once(
            client=self.client,
            mirror=self.account.mirror,
            cursors=self.account.cursors,
            queue=self.account.sync_queue,
            budget=self.budget,
            clock=self.stack.sim.control.clock.now,
            techs=self.techs,
            tech_clients=tech_clients,
            zone=LA,
            feed_base_url=feed_base_url,
            **self.windows,
        )
        after = self.counters()
        sent = sum(after.get(key, 0) - before.get(key, 0) for key in after if " /api/v1/" in key)
        assert sent == report.requests_made  # the report counts what Syncro received
        self.reports.append(report)
        return report

    def next_minute(self) -> None:
        self.seconds.value += 60

    def counters(self) -> dict[str, int]:
        return self.stack.client(None).get(f"{self.stack.server.url}/_sim/counters").json()["counters"]

    def sim(self, verb: str, path: str, /, **body: Any) -> dict[str, Any]:
        response = self.stack.client(None).request(verb, f"{self.stack.server.url}/_sim/{path}", json=body or None)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def settings(self, **changes: Any) -> None:
        self.sim("PATCH", "settings", **changes)

    def seed(self, tech: int, *days: int, hour: int = 9) -> list[int]:
        """Appointments of ``tech`` starting ``days`` from today at ``hour`` (account time)."""
        entries = []
        for index, offset in enumerate(days):
            start = datetime.combine(self.today() + timedelta(days=offset), datetime.min.time(), LA)
            start += timedelta(hours=hour, minutes=index)
            entries.append(
                {
                    "summary": f"Visit {tech} {offset}",
                    "start_at": start.isoformat(),
                    "end_at": (start + timedelta(hours=1)).isoformat(),
                    "user_id": tech,
                    "user_ids": [tech],
                }
            )
        return self.stack.sim.seed({"appointments": entries})["appointments"]

    def mirrored(self, tech: int) -> dict[int, MirrorEntry]:
        return {item.appointment_id: item for item in self.account.mirror.list_entries(tech)}


@pytest.fixture
def account(storage_connection_string: str) -> StorageAccount:
    prefix = "t" + uuid.uuid4().hex[:10]
    settings = StorageSettings(storage_connection_string, None, None, table_prefix=prefix)
    return StorageAccount(settings, sync_queue_name=f"{prefix}-jobs")


@pytest.fixture
def poller(stack: Stack, account: StorageAccount) -> Iterator[Poller]:
    poller = Poller(stack, account)
    yield poller
    poller.client.close()


@pytest.fixture
def fields_shown(poller: Poller) -> Poller:
    """Syncro showing user_id/user_ids (the lenient value, named)."""
    poller.settings(withhold_user_fields=False)
    return poller


def test_the_first_poll_fills_the_mirror_and_queues_one_job_per_tech(fields_shown: Poller) -> None:
    poller = fields_shown
    tinas = poller.seed(TINA, 0, 2, 13)
    joes = poller.seed(JOE, 5, -59)  # -59 lies in the first far slice (60 back to 54 back)
    poller.seed(TINA, 30)  # in a later slice: not read this round
    report = poller.poll()
    assert report.ownership is OwnershipMode.FIELDS and report.ownership_unknown is None
    assert (report.requests_made, report.pages, report.round_complete) == (2, 2, True)  # one listing per window
    assert report.changed_techs == (JOE, TINA) and drain(poller.account) == [JOE, TINA]
    assert set(poller.mirrored(TINA)) == set(tinas) and set(poller.mirrored(JOE)) == set(joes)
    assert all(appointment_id > 2**32 for appointment_id in tinas + joes)
    stored = poller.mirrored(TINA)[tinas[0]]
    assert stored.appointment["summary"] == f"Visit {TINA} 0" and stored.updated_at.endswith(("-08:00", "-07:00"))
    assert poller.mirrored(SAM) == {}
    assert read_ownership(poller.account.cursors) is OwnershipMode.FIELDS

    assert poller.poll().changed_techs == () and drain(poller.account) == []  # nothing changed: no job


def test_a_dispatcher_change_is_found_next_poll_and_only_that_techs_job_is_queued(fields_shown: Poller) -> None:
    poller = fields_shown
    tinas = poller.seed(TINA, 1, 3)
    poller.seed(JOE, 4)
    poller.poll()
    drain(poller.account)
    poller.sim("PUT", f"appointments/{tinas[1]}", summary="Moved by dispatch")
    report = poller.poll()
    assert report.changed_techs == (TINA,) and drain(poller.account) == [TINA]
    assert poller.mirrored(TINA)[tinas[1]].appointment["summary"] == "Moved by dispatch"
    assert poller.counters().get(BY_ID, 0) == 0  # nothing vanished, nothing to confirm


def test_a_reassignment_moves_the_appointment_between_mirrors_without_a_lookup(fields_shown: Poller) -> None:
    poller = fields_shown
    [shared] = poller.seed(TINA, 2)
    poller.poll()
    drain(poller.account)
    poller.sim("PUT", f"appointments/{shared}", user_id=JOE, user_ids=[JOE])
    report = poller.poll()
    assert report.changed_techs == (JOE, TINA)
    assert shared in poller.mirrored(JOE) and shared not in poller.mirrored(TINA)
    assert poller.counters().get(BY_ID, 0) == 0  # listed under its new owner: it exists


def test_a_deletion_is_confirmed_by_a_404_before_the_mirror_forgets_it(fields_shown: Poller) -> None:
    poller = fields_shown
    kept, deleted = poller.seed(TINA, 1, 2)
    poller.poll()
    drain(poller.account)
    poller.sim("DELETE", f"appointments/{deleted}")
    report = poller.poll()
    assert report.deleted == 1 and report.changed_techs == (TINA,) and drain(poller.account) == [TINA]
    assert set(poller.mirrored(TINA)) == {kept}
    assert poller.counters()[BY_ID] == 1


def test_a_confirmation_that_fails_outright_is_listed_again_on_the_next_run(fields_shown: Poller) -> None:
    from sync.errors import SyncroError

    poller = fields_shown
    kept, deleted = poller.seed(TINA, 1, 2)
    poller.poll()
    drain(poller.account)
    poller.sim("DELETE", f"appointments/{deleted}")
    poller.sim("POST", "faults", method="GET", path=r"/api/v1/appointments/\d+$", status=500, times=1)
    with pytest.raises(SyncroError):
        poller.poll()  # the 404 that would confirm it never came
    assert deleted in poller.mirrored(TINA)  # not believed yet
    report = poller.poll()
    assert report.deleted == 1 and set(poller.mirrored(TINA)) == {kept}
    assert TINA in drain(poller.account)


def test_an_empty_listing_where_data_was_deletes_nothing(fields_shown: Poller) -> None:
    poller = fields_shown
    tinas = poller.seed(TINA, 1, 2, 3)
    poller.poll()
    drain(poller.account)
    empty = {"appointments": [], "meta": {"total_pages": 0, "total_entries": 0, "per_page": 25, "page": 1}}
    poller.sim("POST", "faults", method="GET", path="/api/v1/appointments$", status=200, body=empty, times=1)
    report = poller.poll()
    assert report.deleted == 0 and report.changed_techs == () and drain(poller.account) == []
    assert set(poller.mirrored(TINA)) == set(tinas)
    assert poller.counters()[BY_ID] == 3  # each one looked up, each one still there


def test_an_appointment_moved_out_of_the_window_is_kept_with_its_new_times(fields_shown: Poller) -> None:
    poller = fields_shown
    [moving] = poller.seed(TINA, 2)
    poller.poll()
    drain(poller.account)
    later = datetime.combine(poller.today() + timedelta(days=40), datetime.min.time(), LA) + timedelta(hours=9)
    poller.sim(
        "PUT", f"appointments/{moving}", start_at=later.isoformat(), end_at=(later + timedelta(hours=1)).isoformat()
    )
    report = poller.poll()
    assert report.deleted == 0 and report.changed_techs == (TINA,)
    assert (
        poller.mirrored(TINA)[moving]
        .appointment["start_at"]
        .startswith((poller.today() + timedelta(days=40)).isoformat())
    )


def test_a_round_the_budget_stopped_lists_the_next_48_hours_afresh_before_it_goes_on(fields_shown: Poller) -> None:
    """The default windows: a round that needs more than a run's budget must not leave an edit
    to today's job waiting for the round to end. The next run lists the near window first."""
    poller = fields_shown
    poller.windows = {}  # the product's own windows: today to 2 days ahead, then 10-day slices
    poller.settings(per_page=1)  # a page per appointment
    poller.budget = RequestBudget(5, clock=poller.seconds)
    today, tomorrow = poller.seed(TINA, 0, 1)
    far = poller.seed(TINA, *[-55] * 6)  # six pages in the first far slice
    first = poller.poll()
    assert first.requests_made == 5 and not first.round_complete  # 2 near pages, 3 far ones
    poller.sim("PUT", f"appointments/{tomorrow}", summary="Moved by dispatch")
    poller.next_minute()
    second = poller.poll()
    assert second.requests_made == 5 and second.round_complete  # 2 near pages again, the last 3 far ones
    assert poller.mirrored(TINA)[tomorrow].appointment["summary"] == "Moved by dispatch"
    assert set(poller.mirrored(TINA)) == {today, tomorrow, *far}


def test_a_small_budget_is_never_exceeded_and_the_round_finishes_over_several_runs(fields_shown: Poller) -> None:
    poller = fields_shown
    poller.settings(per_page=1)  # a page per appointment
    poller.budget = RequestBudget(5, clock=poller.seconds)
    ids = poller.seed(TINA, *range(0, 10))  # ten near-window pages
    runs = []
    while not (runs and runs[-1].round_complete):
        runs.append(poller.poll())
        assert runs[-1].requests_made <= 5
        poller.next_minute()
        assert len(runs) < 10
    # Then the (empty) far slice, and, the pass being two runs behind, the next two slices in the
    # same run: a pass still takes about as many runs as it has slices.
    assert [run.requests_made for run in runs] == [5, 5, 3]
    assert runs[0].skipped_for_budget == 2 and not runs[0].round_complete
    assert set(poller.mirrored(TINA)) == set(ids)
    assert poller.counters().get(BY_ID, 0) == 0  # the near window's pages spanned two runs: nothing vanished
    assert drain(poller.account) == [TINA, TINA]  # one job per run that found changes


def test_an_empty_budget_sends_nothing_and_the_next_run_resumes(fields_shown: Poller) -> None:
    poller = fields_shown
    poller.seed(TINA, 1)
    poller.budget.charge(60)
    report = poller.poll()
    assert (report.requests_made, report.skipped_for_budget, report.round_complete) == (0, 2, False)
    poller.next_minute()
    assert poller.poll().changed_techs == (TINA,)


def test_withheld_owner_fields_fall_back_to_each_techs_own_token(poller: Poller) -> None:
    """The simulator's default: Syncro's responses never say whose an appointment is."""
    poller.tech_tokens = {TINA: TECH_TOKEN, JOE: ADMIN_TOKEN}  # no token for Sam
    tinas = poller.seed(TINA, 1, 3)
    joes = poller.seed(JOE, 2)
    poller.seed(SAM, 4)
    report = poller.poll()
    assert report.ownership is OwnershipMode.TOKENS
    assert report.ownership_unknown == OwnershipUnknown(techs_without_token=(SAM,))
    assert "user_id" in report.ownership_unknown.explanation and str(SAM) in report.ownership_unknown.explanation
    # The account-wide probe, then per window (near, slice) one listing per tech with a token.
    assert (report.requests_made, report.round_complete) == (1 + 2 * 2, True)
    assert report.changed_techs == (JOE, TINA) and drain(poller.account) == [JOE, TINA]
    assert set(poller.mirrored(TINA)) == set(tinas) and set(poller.mirrored(JOE)) == set(joes)
    assert read_ownership(poller.account.cursors) is OwnershipMode.TOKENS

    before = poller.client.requests_made
    second = poller.poll()
    assert poller.client.requests_made == before  # decided: no more account-wide listings
    assert second.requests_made == 2 * 2 and second.changed_techs == ()


def test_a_techs_refused_token_leaves_the_others_polled_and_names_that_tech(poller: Poller) -> None:
    """Found by the soak (bench/soak.py): a tech deleted their Syncro API token. Their own listing
    is refused, but that must not stop the poll for every tech after them (each run failed there
    with an error blaming the app's SYNCRO_API_TOKEN), and the poll's report must say whose token
    it was, so the status can tell them to set a new one."""
    poller.tech_tokens = {TINA: TECH_TOKEN, JOE: "deleted-in-syncro"}  # Joe's listing comes first
    poller.seed(JOE, 2)
    tinas = poller.seed(TINA, 1, 3)
    report = poller.poll()
    assert set(poller.mirrored(TINA)) == set(tinas) and poller.mirrored(JOE) == {}
    assert report.changed_techs == (TINA,) and report.round_complete
    assert report.ownership_unknown is not None and report.ownership_unknown.techs_token_refused == (JOE,)
    explanation = report.ownership_unknown.explanation
    assert f"refused the API token of Syncro user(s) {JOE}" in explanation and "set a new one" in explanation
    poller.tech_tokens = {TINA: TECH_TOKEN, JOE: ADMIN_TOKEN}  # a new token: Joe is polled again
    poller.next_minute()
    again = poller.poll()
    assert again.ownership_unknown is not None and again.ownership_unknown.techs_token_refused == ()
    assert JOE in again.changed_techs and len(poller.mirrored(JOE)) == 1


def test_with_tokens_a_reassignment_is_confirmed_and_moves_mirrors(poller: Poller) -> None:
    poller.tech_tokens = {TINA: TECH_TOKEN, JOE: ADMIN_TOKEN}
    [moving, _staying] = poller.seed(TINA, 3, 4)
    poller.poll()
    drain(poller.account)
    poller.sim("PUT", f"appointments/{moving}", user_id=JOE, user_ids=[JOE])
    report = poller.poll()
    assert report.changed_techs == (JOE, TINA) and report.deleted == 0
    assert moving in poller.mirrored(JOE) and moving not in poller.mirrored(TINA)
    assert poller.counters()[BY_ID] == 1  # still there: someone else's now


def test_with_tokens_a_techs_last_appointment_moves_once_the_new_owners_listing_shows_it(poller: Poller) -> None:
    poller.tech_tokens = {TINA: TECH_TOKEN, JOE: ADMIN_TOKEN}
    [moving] = poller.seed(TINA, 3)
    poller.poll()
    drain(poller.account)
    poller.sim("PUT", f"appointments/{moving}", user_id=JOE, user_ids=[JOE])
    # Tina's listing is now empty where data was: not believed on its own, only once Joe's listing
    # shows the appointment (this poll if his unit came first, else the next).
    poller.poll()
    assert moving in poller.mirrored(JOE)
    poller.poll()
    assert moving in poller.mirrored(JOE) and moving not in poller.mirrored(TINA)
    assert poller.counters()[BY_ID] >= 1  # looked up, never believed deleted


def test_with_tokens_an_empty_own_listing_is_never_taken_for_reassignments(poller: Poller) -> None:
    poller.tech_tokens = {TINA: TECH_TOKEN}
    tinas = poller.seed(TINA, 1, 2, 3)
    poller.poll()
    drain(poller.account)
    empty = {"appointments": [], "meta": {"total_pages": 0, "total_entries": 0, "per_page": 25, "page": 1}}
    poller.sim("POST", "faults", method="GET", path="/api/v1/appointments$", status=200, body=empty, times=0)
    report = poller.poll()
    poller.stack.client(None).delete(f"{poller.stack.server.url}/_sim/faults")
    assert report.deleted == 0 and report.changed_techs == () and drain(poller.account) == []
    assert set(poller.mirrored(TINA)) == set(tinas)  # each looked up, still there, kept


@pytest.mark.parametrize(
    ("listed", "held", "vanished", "suspicious"),
    [(0, 3, 3, True), (0, 0, 0, False), (5, 6, 1, False), (10, 30, 20, True), (30, 40, 9, False), (20, 38, 18, False)],
)
def test_a_listing_is_suspicious_when_empty_where_data_was_or_missing_many(
    listed: int, held: int, vanished: int, suspicious: bool
) -> None:
    assert suspicious_listing(listed=listed, held=held, vanished=vanished) is suspicious


def test_with_the_feed_url_each_stored_appointment_keeps_its_ics_event_bytes(fields_shown: Poller) -> None:
    from ics.fragments import with_fragment

    poller = fields_shown
    poller.seed(TINA, 1, 2)
    poller.poll(feed_base_url="https://sync.msp.example")
    entries = list(poller.account.mirror.list_entries(TINA))
    assert entries and all(entry.feed_fragment for entry in entries)
    for entry in entries:
        fresh = with_fragment(replace(entry, feed_fragment=None), zone=LA, base_url="https://sync.msp.example")
        assert (entry.feed_fragment, entry.feed_fragment_key) == (fresh.feed_fragment, fresh.feed_fragment_key)
        assert b"BEGIN:VEVENT" in entry.feed_fragment


def test_techs_and_appointments_with_ids_above_2_to_the_32(poller: Poller) -> None:
    big_tech = 2**32 + 1_300_104
    poller.stack.sim.seed(
        {
            "users": [{"id": big_tech, "email": "big@acme.test", "full_name": "Bea Big"}],
            "tokens": [{"token": "tok-big", "user_id": big_tech}],
        }
    )
    poller.techs = (big_tech, SAM)
    poller.tech_tokens = {big_tech: "tok-big", SAM: OWN_ONLY_TOKEN}
    [appointment_id] = poller.seed(big_tech, 1)
    report = poller.poll()
    assert report.changed_techs == (big_tech,) and drain(poller.account) == [big_tech]
    assert list(poller.mirrored(big_tech)) == [appointment_id] and appointment_id > 2**32
    poller.sim("DELETE", f"appointments/{appointment_id}")
    assert poller.poll().deleted == 1 and poller.mirrored(big_tech) == {}


def test_throttling_stops_the_run_without_an_error_and_the_next_run_resumes(fields_shown: Poller) -> None:
    poller = fields_shown
    poller.seed(TINA, 1)
    poller.sim("POST", "faults", method="GET", path="/api/v1/appointments$", status=429, times=1)
    report = poller.poll()
    assert report.throttled and report.requests_made == 1 and report.changed_techs == ()
    assert poller.poll().changed_techs == (TINA,)


def test_before_any_appointment_is_seen_ownership_is_unknown_and_not_reported(poller: Poller) -> None:
    report = poller.poll()
    assert report.ownership is OwnershipMode.UNKNOWN and report.ownership_unknown is None
    assert report.requests_made == 2 and report.round_complete


def test_without_techs_nothing_is_listed(poller: Poller) -> None:
    poller.techs = ()
    poller.seed(TINA, 1)
    report = poller.poll()
    assert report.requests_made == 0 and report.round_complete


def test_a_round_that_lists_the_near_window_counts_its_pages_afresh() -> None:
    """The near listing's page count decides whether a resumed round may list it afresh: it must
    be this round's count, not a sum over rounds (which would soon exceed any budget)."""
    from sync.poller import _next_round

    class Run:
        mode, techs, tech_clients = OwnershipMode.FIELDS, frozenset({TINA}), {}

    near = (TODAY, TODAY + timedelta(days=3))
    done = RoundState(far_cursor=10, units=[], near_pages=38, pass_runs=2)
    planned = plan_windows(TODAY, 10)
    fresh = _next_round(done, planned, Run(), near_window=None)  # a new run's round: near first
    assert fresh.near_pages == 0 and fresh.pass_runs == 3 and fresh.units[0].window == near
    caught_up = _next_round(done, planned, Run(), near_window=near)  # the same run, near already listed
    assert caught_up.near_pages == 38 and caught_up.pass_runs == 2 and near not in [u.window for u in caught_up.units]
    assert RoundState.from_json(caught_up.to_json()) == caught_up


def test_a_window_longer_than_a_listing_can_page_is_listed_in_halves_and_nothing_is_dropped(
    fields_shown: Poller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Syncro pages 25 at a time and the poller reads at most `MAX_PAGES` pages of one listing (a
    list that never ends is read once). A window that holds more is listed again in halves, so an
    account with more appointments in a window than that (1,000 techs) loses none of them."""
    monkeypatch.setattr("sync.poller.MAX_PAGES", 2)
    poller = fields_shown
    seeded = poller.seed(TINA, *[day for day in range(1, 7) for _ in range(10)])  # 60: three pages
    for _ in range(4):
        report = poller.poll()
        if report.round_complete:
            break
        poller.next_minute()
    assert set(poller.mirrored(TINA)) == set(seeded)
