"""The status the settings page and the admin overview show, end to end: the in-process product
(the local host serving function_app.py, Azurite, the identity, Graph and Syncro simulators over
TLS), a tech linked through the sign-in pages, the Graph subscription made, the Syncro poll run,
Outlook's notification delivered to the webhook, and the jobs run by the local host's queue pump
on a queue of this module's own. Then the pages, fetched over HTTP, say what happened."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
import requests

import services
from local import demo
from local.formwalk import follow, submit
from local.inprocess import Product
from realtime.enqueue import pending_since, request_sync
from realtime.timers import poll_syncro
from storage.job_status import NOTICES_KEPT, SKIPPED_KEPT, JobOutcome, JobStatusStore
from storage.mirror import MirrorEntry
from storage.subscriptions import SubscriptionState
from storage.syncro_tokens import SyncroTokenStore
from sync import subscriptions
from tests.app.linking_support import graph_as
from tests.realtime.support import private_queue, queue_pump, wait_for

pytest_plugins = ["tests.app.linking_support"]

ALEX = demo.TECHS[0]
TECH = ALEX.syncro_user_id


class Texts(HTMLParser):
    """The text of each element with an id (nested ids each get the whole text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.by_id: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"br", "input", "meta", "link"}:
            return
        ident = dict(attrs).get("id")
        self._open.append((tag, ident))
        if ident:
            self.by_id.setdefault(ident, "")

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, ident in self._open:
            if ident:
                self.by_id[ident] += data


def texts(html: str) -> dict[str, str]:
    parser = Texts()
    parser.feed(html)
    return {key: " ".join(value.split()) for key, value in parser.by_id.items()}


@pytest.fixture(scope="module")
def product(linking_stack: Product) -> Product:
    private_queue(linking_stack)
    return linking_stack


@pytest.fixture
def alex(product: Product) -> Iterator[requests.Session]:
    """Alex linked through the sign-in pages, with his own Syncro API token (the simulator hides
    appointment owners, as Syncro does)."""
    session = product.browser()
    page = product.sign_in(session, ALEX.sign_in)
    assert page.status_code == 200, page.text
    token = secrets.token_hex(20)
    product.sim("syncro").seed({"tokens": [{"token": token, "user_id": TECH}]})
    services.syncro_token_service().save(TECH, token, set_by="admin")
    yield session
    subscriptions.remove_for_link(TECH, deps=services.subscription_deps())
    JobStatusStore(product.storage()).delete_status(TECH)
    SyncroTokenStore(product.storage()).delete_token(TECH)
    product.forget_link(TECH)


def _poll_until_mirrored(product: Product, appointment: int) -> None:
    """The poll timer's runs (each within its request budget) until the appointment is read."""
    account = product.storage()

    def mirrored() -> bool:
        poll_syncro(account=account)
        return any(entry.appointment_id == appointment for entry in account.mirror.list_entries(TECH))

    wait_for(mirrored, timeout=60, every=0.5, what="the poll to read the appointment")


def _graph(product: Product, method: str, path: str, **kwargs: Any) -> requests.Response:
    return graph_as(product, TECH, method, path, **kwargs)


def _syncro_create(product: Product, summary: str) -> int:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    body = {
        "summary": summary,
        "start_at": start.isoformat(),
        "end_at": (start + timedelta(hours=1)).isoformat(),
        "user_id": TECH,
    }
    answer = product.browser().post(f"{product.sim_url('syncro')}/_sim/appointments", json=body, timeout=30)
    assert answer.status_code < 400, answer.text
    created = answer.json()
    return int(created.get("id") or created["appointment"]["id"])


def _drain(product: Product) -> None:
    account = product.storage()
    with queue_pump(product):
        wait_for(
            lambda: account.sync_queue.depth() == 0 and pending_since(account, TECH) is None,
            timeout=60,
            what="the sync jobs to run",
        )


def _page(product: Product, session: requests.Session, path: str) -> str:
    page = session.get(f"{product.host_url}{path}", timeout=30)
    assert page.status_code == 200, page.text
    assert "Traceback" not in page.text
    return page.text


def test_the_settings_page_shows_the_subscription_notification_poll_and_skipped_items(
    product: Product, alex: requests.Session
) -> None:
    account = product.storage()
    statuses = JobStatusStore(account)
    shown = texts(_page(product, alex, "/api/settings"))
    assert shown["outlook-updates"].startswith("Being set up")  # nothing tried for Alex yet
    assert shown["last-notification"] == "None yet."

    link = account.links.get_link(TECH)
    assert subscriptions.ensure_for_link(link, deps=services.subscription_deps()) is subscriptions.Outcome.CREATED
    appointment = _syncro_create(product, "Status page check")
    _poll_until_mirrored(product, appointment)  # the poll timer's work: reads it, queues Alex's job
    assert statuses.get_poll_status().last_poll_at is not None
    _drain(product)
    assert statuses.get_status(TECH).last_job_outcome == JobOutcome.SYNCED

    # Outlook tells the webhook of a change; the job it queues records the notification's time.
    day = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=3)
    event = {
        "subject": "Dentist",
        "start": {"dateTime": day.isoformat()[:19], "timeZone": "UTC"},
        "end": {"dateTime": (day + timedelta(hours=1)).isoformat()[:19], "timeZone": "UTC"},
    }
    _graph(product, "POST", f"/me/calendars/{link.calendar_id}/events", json=event)
    assert product.sim("graph").notifier.wait_until_settled()
    _drain(product)
    wait_for(lambda: statuses.get_status(TECH).last_notification_at, timeout=30, what="the notification's time")

    # An appointment the sync cannot read: left alone, and named with its reason.
    mirror = account.mirror
    entry = mirror.get_entry(TECH, appointment)
    broken = {**entry.appointment, "start_at": None}
    mirror.put_entry(MirrorEntry(TECH, appointment, entry.updated_at, "broken", broken, entry.seen_at))
    request_sync(account, TECH, "reconcile")
    _drain(product)
    status = statuses.get_status(TECH)
    assert status.last_job_skipped_count == 1 and status.last_job_skipped[0].id == str(appointment)

    html = _page(product, alex, "/api/settings")
    shown = texts(html)
    assert shown["outlook-updates"].startswith("On: Outlook tells us of your changes within seconds.")
    assert "the current one ends in 6 days" in shown["outlook-updates"]  # 10,080 minutes, less a moment
    assert shown["last-notification"] in ("just now", "1 minute ago")
    assert shown["last-poll"] in ("just now", "1 minute ago")
    assert shown["skipped-h"] == "1 appointment could not be synced"
    assert f"Syncro appointment {appointment} “" in html and "start_at" in html  # named by its title too
    assert "Nothing: all changes we know of are synced." in html
    subscription = account.subscriptions.get_status(TECH)
    assert subscription is not None and subscription.state is SubscriptionState.ACTIVE
    assert subscription.subscription_id not in html  # nor any other id of ours or Graph's


def test_the_admin_overview_shows_jobs_waiting_a_poisoned_tech_and_the_subscription(
    product: Product, alex: requests.Session
) -> None:
    account = product.storage()
    statuses = JobStatusStore(account)
    assert (
        subscriptions.ensure_for_link(account.links.get_link(TECH), deps=services.subscription_deps())
        is subscriptions.Outcome.CREATED
    )
    admin = product.browser()
    assert product.sign_in(admin, demo.DISPATCHER.sign_in, purpose="admin").status_code == 200
    _drain(product)  # the first sync that linking asked for runs before the fault below

    # Every attempt of Alex's job fails (Graph refuses the calendar read): the host's pump moves it
    # to the poison queue after maxDequeueCount attempts, and the job marks Alex.
    fault = {"method": "GET", "path": "calendarView/delta", "status": 403, "times": 0}
    graph_control = product.browser()
    assert graph_control.post(f"{product.sim_url('graph')}/_sim/faults", json=fault, timeout=30).status_code < 400
    poison = account.queue(account.sync_queue.name + "-poison")
    try:
        request_sync(account, TECH, "reconcile")
        with queue_pump(product):
            wait_for(lambda: list(poison.peek_messages(max_messages=1)), timeout=90, what="the poisoned job")
    finally:
        graph_control.delete(f"{product.sim_url('graph')}/_sim/faults", timeout=30)
    assert statuses.get_status(TECH).poisoned
    request_sync(account, TECH, "sync-now")  # one waiting, no pump running
    try:
        html = _page(product, admin, "/api/admin")
        shown = texts(html)
        assert shown["queue-line"].startswith("1 sync job waiting, 1 set aside after failing every retry")
        assert shown["poll-line"].startswith("Syncro last checked for changes:")
        row = next(card for card in html.split("<article")[1:] if f"#{TECH}<" in card)
        assert "Failed every retry, set aside" in row and "Set aside" in row and "Job waiting" in row
        assert ">On</span>" in row and "renewed before then" in row and "in 6 days" in row
        assert "403" in row or "denied" in row.lower()  # the last error, for the admin

        # Alex sees it too, in words, with the last good sync kept.
        mine = texts(_page(product, alex, "/api/settings"))
        assert mine["outlook-updates"].startswith("On:")
        assert "Changes are queued and sync within seconds." in _page(product, alex, "/api/settings")
        assert "failed five times in a row and was set aside" in _page(product, alex, "/api/settings")
    finally:
        poison.clear_messages()
        _drain(product)
    assert not statuses.get_status(TECH).poisoned  # the next good job clears it
    cards = _page(product, admin, "/api/admin").split("<article")[1:]
    assert "Set aside" not in next(card for card in cards if f"#{TECH}<" in card)


def test_sync_now_counts_as_the_last_sync_on_the_page(product: Product, alex: requests.Session) -> None:
    page = alex.get(f"{product.host_url}/api/settings", timeout=30)
    assert "Not yet. The first sync starts within a minute of linking." in page.text
    done = follow(alex, submit(alex, page, form_id="sync-now"))
    assert done.status_code == 200 and "Synced:" in done.text, done.text
    status = JobStatusStore(product.storage()).get_status(TECH)
    assert (status.last_job_outcome, status.last_job_reason) == (JobOutcome.SYNCED, "sync-now")
    assert status.last_success_at == status.last_job_at
    assert "Not yet. The first sync starts" not in done.text and "Last successful sync" in done.text


def test_the_skipped_items_kept_are_bounded_and_a_failed_job_keeps_the_last_good_ones(product: Product) -> None:
    statuses = JobStatusStore(product.storage())
    tech = 9_000_000_001
    now = datetime.now(UTC)
    many = [{"side": "syncro", "id": str(n), "reason": "r" * 1000} for n in range(15)]
    try:
        statuses.record_job(tech, outcome=JobOutcome.PARTIAL, reason="t", at=now, skipped=many)
        status = statuses.get_status(tech)
        assert status.last_job_skipped_count == 15 and len(status.last_job_skipped) == SKIPPED_KEPT
        assert [item.id for item in status.last_job_skipped] == [str(n) for n in range(SKIPPED_KEPT)]
        assert all(len(item.reason) <= 200 for item in status.last_job_skipped)
        later = now + timedelta(minutes=1)
        statuses.record_job(tech, outcome=JobOutcome.FAILED, reason="t", detail="Graph 503", at=later)
        failed = statuses.get_status(tech)
        assert failed.last_job_at == later and failed.last_success_at == now
        assert failed.last_job_skipped == status.last_job_skipped  # what the last sync that ran found
        statuses.record_job(tech, outcome=JobOutcome.SYNCED, reason="t", at=later)
        assert (
            statuses.get_status(tech).last_job_skipped == () and statuses.get_status(tech).last_job_skipped_count == 0
        )
    finally:
        statuses.delete_status(tech)


def _drain_all(product: Product, *techs: int) -> None:
    account = product.storage()
    with queue_pump(product):
        wait_for(
            lambda: account.sync_queue.depth() == 0 and all(pending_since(account, t) is None for t in techs),
            timeout=60,
            what="the sync jobs to run",
        )


def test_a_syncs_notice_reaches_the_techs_page_live_status_and_the_admins_card(
    product: Product, alex: requests.Session
) -> None:
    """Blake (two-way) deletes his copy of a job he shares with Alex. Syncro hides who is on a job, so his
    sync puts the copy back rather than guess, and says so: in words on his settings page, in the
    status JSON the page's live line reads, and on his card in the admin overview. Quiet syncs
    after it do not wipe it."""
    import services

    blake_id = demo.TECHS[1].syncro_user_id
    account = product.storage()
    statuses = JobStatusStore(account)
    blake = product.browser()
    assert product.sign_in(blake, demo.TECHS[1].sign_in).status_code == 200
    token = secrets.token_hex(20)
    product.sim("syncro").seed({"tokens": [{"token": token, "user_id": blake_id}]})
    services.syncro_token_service().save(blake_id, token, set_by="admin")
    links = account.links
    links.update_link(links.get_link(blake_id).with_changes(two_way=True))  # his delete goes to Syncro
    try:
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
        body = {
            "summary": "Shared rack install",
            "start_at": start.isoformat(),
            "end_at": (start + timedelta(hours=2)).isoformat(),
            "user_id": TECH,
            "user_ids": [TECH, blake_id],
        }
        answer = product.browser().post(f"{product.sim_url('syncro')}/_sim/appointments", json=body, timeout=30)
        assert answer.status_code < 400, answer.text
        created = answer.json()
        appointment = int(created.get("id") or created["appointment"]["id"])

        def both_mirrored() -> bool:
            poll_syncro(account=account)
            return all(
                any(e.appointment_id == appointment for e in account.mirror.list_entries(t)) for t in (TECH, blake_id)
            )

        wait_for(both_mirrored, timeout=60, every=0.5, what="the poll to read the job for both techs")
        _drain_all(product, TECH, blake_id)
        calendar = account.links.get_link(blake_id).calendar_id

        def blakes_copy() -> list[dict[str, Any]]:
            events = graph_as(product, blake_id, "GET", f"/me/calendars/{calendar}/events?$top=200").json()["value"]
            return [e for e in events if e["subject"] == "[S] Shared rack install"]

        request_sync(account, blake_id, "reconcile")  # Graph's delta shows his copy back once
        _drain_all(product, blake_id)
        (copy,) = blakes_copy()
        assert statuses.get_status(blake_id).notices == ()
        graph_as(product, blake_id, "DELETE", f"/me/calendars/{calendar}/events/{copy['id']}")

        def told() -> bool:  # Graph's delta shows a change after a lag of seconds
            request_sync(account, blake_id, "reconcile")
            _drain_all(product, blake_id)
            return bool(statuses.get_status(blake_id).notices)

        wait_for(told, timeout=60, every=1, what="Blake's sync to see his delete")
        request_sync(account, blake_id, "reconcile")  # a quiet sync after it keeps the notice
        _drain_all(product, blake_id)
        assert len(blakes_copy()) == 1  # put back
        (notice,) = statuses.get_status(blake_id).notices
        said = "Shared rack install: other technicians are on this job, so it was put back in your calendar"
        assert notice.text.startswith(said), notice

        shown = texts(_page(product, blake, "/api/settings"))
        assert shown["notices-h"] == "What your syncs did that you should know"
        assert shown["notices"].startswith(said) and "ask the dispatcher to take you off it" in shown["notices"]
        assert shown["notices"].endswith(("(just now)", "(1 minute ago)")), shown["notices"]
        live = blake.get(f"{product.host_url}/api/settings/status", timeout=30)
        assert live.status_code == 200 and live.json()["notices"][0].startswith(said), live.text
        alexs = _page(product, alex, "/api/settings")
        assert texts(alexs)["notices"] == "" and '<div id="notices-box" hidden>' in alexs  # Alex was told nothing

        admin = product.browser()
        assert product.sign_in(admin, demo.DISPATCHER.sign_in, purpose="admin").status_code == 200
        cards = texts(_page(product, admin, "/api/admin"))
        assert cards[f"notices-{blake_id}"].startswith(said), cards[f"notices-{blake_id}"]
        assert f"notices-{TECH}" not in cards
    finally:
        subscriptions.remove_for_link(blake_id, deps=services.subscription_deps())
        statuses.delete_status(blake_id)
        SyncroTokenStore(account).delete_token(blake_id)
        product.forget_link(blake_id)


def test_notices_are_kept_newest_first_bounded_and_through_quiet_and_failed_jobs(product: Product) -> None:
    statuses = JobStatusStore(product.storage())
    tech = 9_000_000_002
    now = datetime.now(UTC)
    try:
        for n in range(NOTICES_KEPT + 3):
            statuses.record_job(
                tech, outcome=JobOutcome.SYNCED, reason="t", at=now + timedelta(seconds=n), notices=[f"n{n}"]
            )
        statuses.record_job(tech, outcome=JobOutcome.SYNCED, reason="t", at=now + timedelta(minutes=1))
        statuses.record_job(tech, outcome=JobOutcome.FAILED, reason="t", at=now + timedelta(minutes=2))
        kept = statuses.get_status(tech).notices
        assert [n.text for n in kept] == [f"n{n}" for n in reversed(range(3, NOTICES_KEPT + 3))]
        assert kept[0].at == now + timedelta(seconds=NOTICES_KEPT + 2)
    finally:
        statuses.delete_status(tech)
