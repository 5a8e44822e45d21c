"""The two-instance budget test (issue 19, item 3): two local host processes
(``python -m local.host``) on one storage account, queue and Syncro simulator, every Syncro
caller busy at once (the poll timer every second, Syncro webhooks posted to both, sync jobs that
create Syncro appointments from Outlook events), with SYNCRO_REQUESTS_PER_MINUTE far below what
they would send. The simulator keeps every request's arrival: in no 60 s, however aligned, does
it see more than the budget, and still every piece of work lands (deferred, never dropped)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local.inprocess import Product
from storage.sync_queue import SyncJob
from tests.app.linking_support import graph_as
from tests.realtime.support import (
    FleetTech,
    HostProcess,
    appointment,
    outlook_subjects,
    private_queue,
    seed_fleet,
    start_host_process,
    wait_for,
)

pytest_plugins = ["tests.app.linking_support"]

BUDGET = 30  # requests a minute for both hosts together; the poller alone would send 180
TECHS = 5
FIRST_ID = 5_560_000_000  # Syncro ids past 2**32, as a live account's
MIN_RUN_SECONDS = 150  # two windows and more: the limit must hold as old grants leave and new come


@dataclass
class Run:
    product: Product
    fleet: list[FleetTech]
    hosts: list[HostProcess]
    webhook_answers: list[int]
    syncro_born: dict[int, list[str]]  # tech -> summaries made in Syncro
    outlook_born: dict[int, str]  # tech -> subject made in Outlook


def _stored_syncro(product: Product) -> list[dict]:
    answer = product.browser().get(f"{product.sim_url('syncro')}/_sim/appointments", timeout=30)
    listed = answer.json()
    return listed.get("appointments", listed) if isinstance(listed, dict) else listed


def _outlook_event(product: Product, tech: FleetTech, subject: str) -> None:
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=3, hours=14)
    body = {
        "subject": subject,
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
    }
    graph_as(product, tech.syncro_user_id, "POST", f"/me/calendars/{tech.calendar_id}/events", json=body)


@pytest.fixture(scope="module")
def run(linking_stack: Product, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    product = linking_stack
    syncro = product.sim("syncro")
    syncro.update_settings({"withhold_user_fields": False, "notification_urls": []})
    private_queue(product)
    fleet = seed_fleet(product, TECHS, first_id=FIRST_ID)
    syncro_born = {t.syncro_user_id: [f"Visit {n} for {t.syncro_user_id}" for n in range(2)] for t in fleet}
    seeded = syncro.seed(
        {
            "appointments": [
                appointment(tech, summary, days=1 + n, hour=9)
                for tech, summaries in syncro_born.items()
                for n, summary in enumerate(summaries)
            ]
        }
    )
    ids = [int(appointment_id) for appointment_id in seeded["appointments"]]
    outlook_born = {t.syncro_user_id: f"Outlook plan of {t.syncro_user_id}" for t in fleet}
    for tech in fleet:
        _outlook_event(product, tech, outlook_born[tech.syncro_user_id])
    storage = product.storage()
    syncro.rate_limiter.reset()  # count only what the two hosts send from here on
    logs = Path(tmp_path_factory.mktemp("budget-hosts"))
    hosts: list[HostProcess] = []
    answers: list[int] = []
    try:
        started = time.monotonic()
        for name in ("host-a", "host-b"):
            hosts.append(
                start_host_process(
                    product,
                    logs,
                    name=name,
                    SYNCRO_POLL_SCHEDULE="* * * * * *",
                    SYNCRO_POLL_REQUESTS_PER_MINUTE="180",
                    SYNCRO_REQUESTS_PER_MINUTE=str(BUDGET),
                )
            )
        for tech in fleet:  # the sync jobs: each creates its tech's Outlook event in Syncro
            storage.sync_queue.enqueue(SyncJob(tech.syncro_user_id, "budget-test", datetime.now(UTC).isoformat()))
        secret = product.env["SYNCRO_WEBHOOK_SECRET"]
        for n, appointment_id in enumerate(ids):  # Syncro's Notification Center, to both hosts
            body = json.dumps({"text": "Appointment was created", "attributes": {"id": appointment_id}})
            answer = product.browser().post(
                f"{hosts[n % 2].url}/api/syncro/notifications/{secret}",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
            answers.append(answer.status_code)

        def landed() -> bool:
            stored = [str(a.get("summary")) for a in _stored_syncro(product)]
            for tech in fleet:
                subjects = outlook_subjects(product, tech.oid)
                if any(f"[S] {s}" not in subjects for s in syncro_born[tech.syncro_user_id]):
                    return False
                if f"[O] {outlook_born[tech.syncro_user_id]}" not in stored:
                    return False
            return True

        wait_for(landed, timeout=420, every=2, what="every appointment and event on the other side")
        wait_for(lambda: storage.sync_queue.depth() == 0, timeout=180, every=1, what="the queue")
        left = MIN_RUN_SECONDS - (time.monotonic() - started)
        if left > 0:
            time.sleep(left)  # the poller keeps asking meanwhile: the budget must still hold
    finally:
        for host in hosts:
            host.stop()
    yield Run(product, fleet, hosts, answers, syncro_born, outlook_born)


def test_the_simulator_never_sees_more_than_the_budget_in_any_60_seconds(run: Run) -> None:
    report = run.product.browser().get(f"{run.product.sim_url('syncro')}/_sim/rate_limit", timeout=30).json()
    print("syncro simulator:", report["requests_seen"], "requests, busiest 60 s:", report["busiest_minute"])
    assert report["requests_seen"] > BUDGET  # the hosts did use Syncro, more than one minute's worth
    assert report["busiest_minute"]["requests"] <= BUDGET, report


def test_the_budget_bound_and_those_it_refused_deferred(run: Run) -> None:
    """Demand exceeded the budget (so the test proves something): the budget refused, the refused
    callers said so in the log, and the shared status names them."""
    refusals = [
        line
        for host in run.hosts
        for line in host.log_lines()
        if line.get("logger") == "sync.budget" and "budget_caller" in line
    ]
    assert refusals, "the budget never ran out: the test asked too little of it"
    assert {line["budget_caller"] for line in refusals} >= {"poll"}
    import services

    status = services.syncro_budget().status().to_json()
    assert "poll" in status["callers"] and status["callers"]["poll"]["last_refused_at"]


def test_nothing_was_lost_or_done_twice(run: Run) -> None:
    assert set(run.webhook_answers) == {202}
    stored = [str(a.get("summary")) for a in _stored_syncro(run.product)]
    for tech in run.fleet:
        subjects = outlook_subjects(run.product, tech.oid)
        for summary in run.syncro_born[tech.syncro_user_id]:
            assert subjects.count(f"[S] {summary}") == 1, (tech, subjects)
        assert stored.count(f"[O] {run.outlook_born[tech.syncro_user_id]}") == 1
    assert run.product.storage().sync_queue.poison_depth() == 0


def test_both_hosts_spent_from_the_one_budget(run: Run) -> None:
    """Each host sent Syncro requests (its webhooks re-read their appointments), yet the sum kept
    to one budget: the limit is the app's, not each instance's."""
    for host in run.hosts:
        webhook_lines = [line for line in host.log_lines() if '"webhook.syncro"' in str(line.get("msg", ""))]
        assert webhook_lines or any("left to the poller" in str(line.get("msg", "")) for line in host.log_lines()), (
            host.log_path
        )
