"""Step 5's acceptance, end to end: the product as ``make run`` runs it (the local host with its
queue triggers and timers, Azurite, the three simulators over TLS), a tech linked through the
product's pages (the subscription made by the product itself), two-way on. Changes are made the
way people make them (a dispatcher in Syncro's UI, the tech's own Graph calls) and only watched:
nothing here calls ``sync_tech``, and the reconciliation timer is parked on a schedule that
cannot fire during the run, so what reaches the other side came by a webhook, a lifecycle job or
the poll timer (every 5 s). Faults (duplicated, reordered and dropped notifications, a subscription
Graph dropped silently, each lifecycle event) must still leave both calendars converged with no
duplicate; only dropped and silently lost notifications may wait for a reconciliation, which those
tests run themselves. `bench/propagation.py` times the same paths on the same stack."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from local import demo
from local.azurite import Azurite
from local.formwalk import follow, submit
from local.inprocess import Product, start_product
from local.sims.graph.settings import DELTA_QUIRKS
from local.tls import TlsFiles
from tests.app.linking_support import graph_as

# The product starts and settles inside the first test's setup: more than the 300 s default.
pytestmark = pytest.mark.timeout(900)

ALEX = demo.TECHS[0]
TECH = ALEX.syncro_user_id
NEVER = "0 0 0 1 1 *"  # New Year's midnight: parks a timer for any test run
POLL_SECONDS = 5
WEBHOOK_BOUND = 10.0  # seconds a webhook path may take here (2 s targets are bench/propagation.py's)
POLL_BOUND = POLL_SECONDS + WEBHOOK_BOUND


# The demo's delta quirks but for the visibility lag.
NO_DELTA_LAG: dict[str, Any] = {"delta_quirks": True, "delta_visibility_lag_seconds": 0.0}


def background_settings(poll_seconds: int = POLL_SECONDS) -> dict[str, str]:
    """The poll every ``poll_seconds``; reconciliation, upkeep and cleanup parked."""
    return {
        "SYNCRO_POLL_SCHEDULE": f"*/{poll_seconds} * * * * *",
        "RECONCILE_SCHEDULE": NEVER,
        "SUBSCRIPTION_UPKEEP_SCHEDULE": NEVER,
        "CLEANUP_SCHEDULE": NEVER,
    }


class _Records(logging.Handler):
    """Log records of the job and timer loggers, kept for assertions."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class EndToEnd:
    """Both sides of one linked tech, changed as people change them and read as they stand."""

    product: Product
    oid: str
    calendar_id: str
    records: _Records = field(default_factory=_Records)

    # -- Syncro: a dispatcher in Syncro's UI (fires the Notification Center) -------------------------

    def _syncro(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        answer = self.product.browser().request(
            method, f"{self.product.sim_url('syncro')}/_sim/appointments{path}", timeout=30, **kwargs
        )
        assert answer.status_code < 400, answer.text
        return answer

    def syncro_create(self, summary: str, *, days: int = 1, hour: int = 15) -> int:
        # Tomorrow (UTC): within the next 48 hours in any zone, which every poll run lists
        # (docs/poller.md); a later appointment's change arrives within the pass, 15 minutes.
        start = _day(days) + timedelta(hours=hour)
        body = {
            "summary": summary,
            "start_at": _iso(start),
            "end_at": _iso(start + timedelta(hours=1)),
            "user_id": TECH,
        }
        data = self._syncro("POST", "", json=body).json()
        return int(data.get("id") or data["appointment"]["id"])

    def syncro_update(self, appointment_id: int, summary: str) -> None:
        self._syncro("PUT", f"/{appointment_id}", json={"summary": summary})

    def syncro_delete(self, appointment_id: int) -> None:
        self._syncro("DELETE", f"/{appointment_id}")

    def syncro_summaries(self) -> list[str]:
        """Summaries of the tech's appointments, as stored (owner fields included)."""
        listed = self._syncro("GET", "").json()
        items = listed.get("appointments", listed) if isinstance(listed, dict) else listed
        return [str(a.get("summary")) for a in items if TECH in (a.get("user_ids") or [a.get("user_id")])]

    # -- Outlook: the tech's own Graph calls -----------------------------------------------------------

    def _graph(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return graph_as(self.product, TECH, method, path, **kwargs)

    def outlook_create(self, subject: str, *, days: int = 3, hour: int = 10) -> str:
        start = _day(days) + timedelta(hours=hour)
        body = {
            "subject": subject,
            "start": {"dateTime": _iso(start)[:-1], "timeZone": "UTC"},
            "end": {"dateTime": _iso(start + timedelta(hours=1))[:-1], "timeZone": "UTC"},
        }
        return str(self._graph("POST", f"/me/calendars/{self.calendar_id}/events", json=body).json()["id"])

    def outlook_update(self, event_id: str, subject: str) -> None:
        self._graph("PATCH", f"/me/events/{event_id}", json={"subject": subject})

    def outlook_delete(self, event_id: str) -> None:
        self._graph("DELETE", f"/me/events/{event_id}")

    def outlook_subjects(self) -> list[str]:
        """Subjects of the events in the tech's chosen calendar, read in-process from the simulator."""
        events = self.product.sim("graph").stored_events(self.oid)
        calendar = next(c.name for c in self._mailbox().calendars.values() if c.id == self.calendar_id)
        return [str(e.get("subject")) for e in events if e.get("calendarName") == calendar]

    def _mailbox(self) -> Any:
        return self.product.sim("graph").store.mailboxes[self.oid]

    # -- simulators' knobs -----------------------------------------------------------------------------

    def graph_settings(self, **changes: Any) -> None:
        answer = self.product.browser().patch(f"{self.product.sim_url('graph')}/_sim/settings", json=changes)
        assert answer.status_code == 200, answer.text

    def graph_control(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        answer = self.product.browser().request(
            method, f"{self.product.sim_url('graph')}/_sim{path}", timeout=30, **kwargs
        )
        assert answer.status_code < 400, answer.text
        return answer

    def subscriptions(self) -> list[dict[str, Any]]:
        """The tech's live subscriptions at Graph."""
        listed = self.graph_control("GET", "/subscriptions").json()["subscriptions"]
        return [s for s in listed if s["resource"].lower().endswith(f"/calendars/{self.calendar_id}/events".lower())]

    # -- watching --------------------------------------------------------------------------------------

    def graph_notified(self, event_id: str) -> bool:
        """Graph delivered a change notification about ``event_id`` and the product answered 2xx."""
        deliveries = self.graph_control("GET", "/notifications?status=delivered").json()["deliveries"]
        return any(
            item.get("resourceData", {}).get("id") == event_id
            for delivery in deliveries
            for item in delivery["body"].get("value", [])
        )

    def syncro_notified(self, appointment_id: int) -> bool:
        """Syncro's Notification Center delivered the creation of ``appointment_id`` (answered 2xx)."""
        return any(
            d["state"] == "delivered" and d["payload"].get("attributes", {}).get("id") == appointment_id
            for d in self.product.sim("syncro").notifications.deliveries()
        )

    def jobs(self, since: int = 0) -> list[tuple[str, str]]:
        """(reason, outcome) of every sync job of the tech since record ``since``."""
        return [
            (str(r.reason), str(r.outcome))
            for r in self.records.records[since:]
            if r.name == "realtime.jobs" and getattr(r, "syncro_user_id", None) == str(TECH)
        ]

    def reconcile_runs(self, since: int = 0) -> int:
        return sum(
            1
            for r in self.records.records[since:]
            if r.name == "realtime.timers" and getattr(r, "timer", None) == "reconcile" and "ran" in r.getMessage()
        )

    def mark(self) -> int:
        return len(self.records.records)

    def settled(self, *, quiet: bool = False) -> None:
        """Wait until no sync job is waiting or asked for, no subscription job is queued, and both
        calendars read the same for a second. A busy job's follow-up, queued 15 s ahead, may still
        come (it finds nothing to do) unless ``quiet``: then no message at all is left, so no sync
        runs until something asks for one."""
        last: list[Any] = []

        def still() -> bool:
            busy = self._queued() or (quiet and self.product.storage().sync_queue.depth() > 0)
            now = [busy, sorted(self.outlook_subjects()), sorted(self.syncro_summaries())]
            same = now == last and not now[0]
            last[:] = now
            return same

        # Generous: on a busy CI machine the product's first subscription job may be retried (30 s
        # visibility timeout) before it succeeds, and the queue counts it until then.
        wait_until(still, timeout=240, every=1.0, what="the jobs to settle")

    def _queued(self) -> bool:
        from realtime import SUBSCRIPTION_QUEUE
        from realtime.enqueue import pending_since

        account = self.product.storage()
        subscription_jobs = account.queue(SUBSCRIPTION_QUEUE).get_queue_properties().approximate_message_count
        return bool(account.sync_queue.peek_jobs() or subscription_jobs or pending_since(account, TECH))


def wait_until(check: Callable[[], Any], *, timeout: float, every: float = 0.1, what: str = "") -> float:
    """Seconds until ``check()`` first answers truthy; AssertionError after ``timeout``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(every)
    return time.monotonic() - started


def _day(days: int) -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def link_through_the_pages(product: Product) -> tuple[str, str]:
    """ALEX signs in on the settings page and turns two-way on there; (mailbox oid, calendar id)."""
    session = product.browser()
    page = product.sign_in(session, ALEX.sign_in)
    assert page.status_code == 200 and "linked=1" in page.url, page.text[:500]
    link = product.storage().links.get_link(TECH)
    saved = follow(
        session, submit(session, page, form_id="choices", fields={"calendar_id": link.calendar_id, "two_way": "on"})
    )
    assert saved.status_code == 200, saved.text[:500]
    assert product.storage().links.get_link(TECH).two_way
    graph = product.sim("graph")
    oid = next(m.oid for m in graph.store.mailboxes.values() if m.email.lower() == ALEX.email.lower())
    return oid, link.calendar_id


@contextmanager
def end_to_end(azurite_connection: str, tls: TlsFiles, *, poll_seconds: int = POLL_SECONDS) -> Iterator[EndToEnd]:
    """The product with its queue triggers and timers, ALEX linked with two-way on and subscribed."""
    records = _Records()
    loggers = [logging.getLogger(name) for name in ("realtime.jobs", "realtime.timers")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(records)
        logger.setLevel(logging.INFO)
    try:
        with ExitStack() as stack:
            product = start_product(
                stack, tls=tls, storage=azurite_connection, background=background_settings(poll_seconds)
            )
            # The owners of an appointment read from Syncro's own answers (as in test_timers and
            # test_syncro_webhook): the per-tech-token path is the poller's own tests' business.
            product.sim("syncro").update_settings({"withhold_user_fields": False})
            # Delta shows a change as soon as it is notified (the demo's 2 s lag costs Outlook
            # changes a recheck or two: test_an_outlook_change_notified_before_delta_shows_it_...).
            product.sim("graph").settings.apply(NO_DELTA_LAG)
            oid, calendar_id = link_through_the_pages(product)
            sides = EndToEnd(product, oid, calendar_id, records)
            wait_until(lambda: len(sides.subscriptions()) == 1, timeout=30, what="the product's subscription")
            # "Sync now" on the settings page: the first sync, so later changes are steady-state ones.
            session = product.browser()
            page = product.sign_in(session, ALEX.sign_in)
            synced = follow(session, submit(session, page, form_id="sync-now"))
            assert synced.status_code == 200, synced.text[:500]
            wait_until(lambda: "[S] Server swap at Fabrikam" in sides.outlook_subjects(), timeout=30, what="first sync")
            yield sides
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(records)
            logger.setLevel(level)


# -- the tests ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def e2e(azurite: Azurite, tls_files: TlsFiles) -> Iterator[EndToEnd]:
    with end_to_end(azurite.connection_string, tls_files) as sides:
        yield sides


@pytest.fixture
def sides(e2e: EndToEnd) -> Iterator[EndToEnd]:
    e2e.settled()
    e2e.graph_control("DELETE", "/notifications")
    yield e2e
    e2e.graph_settings(notification_copies=1, notification_reorder=False, notification_drop_next=0)
    e2e.graph_control("POST", "/notifications/release")


OURS = "e2e-"  # names made here; the demo's own appointments and events follow their own rules


def _name(what: str) -> str:
    return f"{OURS}{uuid.uuid4().hex[:6]} {what}"


def assert_converged(sides: EndToEnd) -> None:
    """Nothing twice on either side; every copy has its original; every appointment and event
    made here has its copy on the other side (`[S]` in Outlook, `[O]` in Syncro)."""
    outlook, syncro = Counter(sides.outlook_subjects()), Counter(sides.syncro_summaries())
    assert [s for s, n in outlook.items() if n > 1] == [], outlook
    assert [s for s, n in syncro.items() if n > 1] == [], syncro
    for summary in syncro:
        if summary.startswith("[O] "):
            assert summary.removeprefix("[O] ") in outlook, (summary, outlook)
        elif summary.startswith(OURS):
            assert f"[S] {summary}" in outlook, (summary, outlook)
    for subject in outlook:
        if subject.startswith("[S] "):
            assert subject.removeprefix("[S] ") in syncro, (subject, syncro)
        elif subject.startswith(OURS):
            assert f"[O] {subject}" in syncro, (subject, syncro)


def test_syncro_create_update_delete_reach_outlook_in_seconds(sides: EndToEnd) -> None:
    mark, name = sides.mark(), _name("Router swap")
    appointment = sides.syncro_create(name)
    created = wait_until(lambda: f"[S] {name}" in sides.outlook_subjects(), timeout=WEBHOOK_BOUND, what="create")
    # Whichever job carried it (a running job's follow-up may), the Notification Center told the product.
    assert sides.syncro_notified(appointment)

    sides.syncro_update(appointment, f"{name} (moved)")
    updated = wait_until(
        lambda: f"[S] {name} (moved)" in sides.outlook_subjects(), timeout=POLL_BOUND, what="update by the poll"
    )
    sides.syncro_delete(appointment)
    deleted = wait_until(
        lambda: not any(name in s for s in sides.outlook_subjects()), timeout=POLL_BOUND, what="delete by the poll"
    )
    assert sides.reconcile_runs(mark) == 0 and "reconcile" not in dict(sides.jobs(mark))
    print(f"syncro -> outlook: create {created:.1f} s, update {updated:.1f} s, delete {deleted:.1f} s")
    sides.settled()
    assert_converged(sides)


def test_outlook_create_update_delete_reach_syncro_in_seconds(sides: EndToEnd) -> None:
    mark, name = sides.mark(), _name("Dentist follow-up")
    event = sides.outlook_create(name)
    created = wait_until(lambda: f"[O] {name}" in sides.syncro_summaries(), timeout=WEBHOOK_BOUND, what="create")
    sides.outlook_update(event, f"{name} (later)")
    updated = wait_until(
        lambda: f"[O] {name} (later)" in sides.syncro_summaries(), timeout=WEBHOOK_BOUND, what="update"
    )
    sides.outlook_delete(event)
    deleted = wait_until(
        lambda: not any(name in s for s in sides.syncro_summaries()), timeout=WEBHOOK_BOUND, what="delete"
    )
    assert sides.graph_notified(event)
    assert sides.reconcile_runs(mark) == 0 and "reconcile" not in dict(sides.jobs(mark))
    print(f"outlook -> syncro: create {created:.1f} s, update {updated:.1f} s, delete {deleted:.1f} s")
    sides.settled()
    assert_converged(sides)


def test_an_outlook_change_notified_before_delta_shows_it_still_reaches_syncro(sides: EndToEnd) -> None:
    """Graph's delta can show a change seconds after its notification (the demo's preset: 2 s): the
    job the notification started finds nothing at first, and its own looks (every 0.5 s for 3 s,
    `realtime.jobs.look_again`) or one of its rechecks (1, 1, 2, 4 s apart) carry the change."""
    sides.settled(quiet=True)
    sides.graph_settings(delta_visibility_lag_seconds=DELTA_QUIRKS["delta_visibility_lag_seconds"])
    try:
        mark, name = sides.mark(), _name("Lagging")
        event = sides.outlook_create(name)
        wait_until(lambda: f"[O] {name}" in sides.syncro_summaries(), timeout=WEBHOOK_BOUND, what="the create")
        assert sides.graph_notified(event)
        looked = {"graph-notification", "graph-recheck"}
        wait_until(lambda: looked & set(dict(sides.jobs(mark))), timeout=WEBHOOK_BOUND, what="the looks")
        # The notification's job looked again or asked for a recheck (a poll's job, which the poll
        # can start for no Syncro change at all, sometimes carries the change first); never the
        # reconciliation.
        assert "reconcile" not in dict(sides.jobs(mark)) and sides.reconcile_runs(mark) == 0
    finally:
        sides.graph_settings(**NO_DELTA_LAG)
        sides.settled()


def test_duplicated_and_reordered_notifications_change_nothing_twice(sides: EndToEnd) -> None:
    mark = sides.mark()
    sides.graph_settings(notification_copies=3, notification_reorder=True)
    sides.graph_control("POST", "/notifications/pause")
    first, second = _name("Duplicated"), _name("Reordered")
    event = sides.outlook_create(first)
    sides.outlook_update(event, f"{first} v2")
    other = sides.outlook_create(second, days=4)
    sides.outlook_delete(other)
    sides.graph_control("POST", "/notifications/release")  # newest first, each POST three times
    wait_until(lambda: f"[O] {first} v2" in sides.syncro_summaries(), timeout=WEBHOOK_BOUND, what="the update")
    # Syncro's Notification Center delivering one creation three times.
    appointment_name = _name("Thrice notified")
    sides.syncro_create(appointment_name)
    assert sides.product.sim("syncro").notifications.wait_idle()
    [delivery] = [d for d in sides.product.sim("syncro").notifications.deliveries() if appointment_name in str(d)]
    for _ in range(2):
        again = requests.post(delivery["url"], json=delivery["payload"], timeout=30)
        assert again.status_code == 202, again.text
    wait_until(lambda: f"[S] {appointment_name}" in sides.outlook_subjects(), timeout=WEBHOOK_BOUND, what="create")
    sides.settled()
    assert_converged(sides)
    assert sides.syncro_summaries().count(f"[O] {first} v2") == 1
    assert not any(second in s for s in sides.syncro_summaries())
    assert sides.outlook_subjects().count(f"[S] {appointment_name}") == 1
    assert sides.reconcile_runs(mark) == 0


def test_dropped_notifications_converge_at_the_next_reconciliation(sides: EndToEnd) -> None:
    from realtime import timers

    sides.settled(quiet=True)
    sides.graph_settings(notification_drop_next=50)
    name = _name("Never notified")
    sides.outlook_create(name)
    time.sleep(3)
    assert f"[O] {name}" not in sides.syncro_summaries()  # nothing told the product
    sides.graph_settings(notification_drop_next=0)
    run = timers.reconcile(account=sides.product.storage())
    assert run is not None and TECH in run.queued + run.coalesced
    wait_until(lambda: f"[O] {name}" in sides.syncro_summaries(), timeout=WEBHOOK_BOUND, what="the reconciliation")
    # A Syncro creation whose notification is lost: the poll finds it.
    dropped = sides.product.browser().post(
        f"{sides.product.sim_url('syncro')}/_sim/notifications/drop", json={"count": 1}, timeout=30
    )
    assert dropped.status_code < 400, dropped.text
    lost = _name("Unannounced")
    sides.syncro_create(lost)
    wait_until(lambda: f"[S] {lost}" in sides.outlook_subjects(), timeout=POLL_BOUND, what="the poll")
    sides.settled()
    assert_converged(sides)


def test_a_subscription_graph_dropped_silently_is_replaced_and_its_changes_caught_up(sides: EndToEnd) -> None:
    from realtime import timers

    [old] = sides.subscriptions()
    sides.graph_control("DELETE", f"/subscriptions/{old['id']}")  # as Graph does at expiry: no word
    name = _name("While unsubscribed")
    sides.outlook_create(name)
    assert timers.subscription_upkeep(account=sides.product.storage()) is not None
    [new] = sides.subscriptions()
    assert new["id"] != old["id"]
    assert timers.reconcile(account=sides.product.storage()) is not None
    wait_until(lambda: f"[O] {name}" in sides.syncro_summaries(), timeout=WEBHOOK_BOUND, what="the reconciliation")
    after = _name("Subscribed again")
    mark = sides.mark()
    after_id = sides.outlook_create(after)
    wait_until(lambda: f"[O] {after}" in sides.syncro_summaries(), timeout=WEBHOOK_BOUND, what="the new subscription")
    assert sides.graph_notified(after_id) and sides.reconcile_runs(mark) == 0
    sides.settled()
    assert_converged(sides)


@pytest.mark.parametrize("event", ["reauthorizationRequired", "subscriptionRemoved", "missed"])
def test_each_lifecycle_event_leaves_one_working_subscription_and_converged_calendars(
    sides: EndToEnd, event: str
) -> None:
    mark = sides.mark()
    [old] = sides.subscriptions()
    during = _name(f"During {event}")

    def lifecycle() -> None:
        sides.graph_control("POST", f"/subscriptions/{old['id']}/lifecycle", json={"event": event})

    if event == "missed":  # a change whose notification Graph lost, then Graph says so
        sides.graph_settings(notification_drop_next=50)
        sides.outlook_create(during)
        time.sleep(1)
        sides.graph_settings(notification_drop_next=0)
        lifecycle()
    else:  # a change while the subscription is challenged (Graph holds back and loses) or gone
        lifecycle()
        sides.outlook_create(during)
    wait_until(lambda: f"[O] {during}" in sides.syncro_summaries(), timeout=WEBHOOK_BOUND, what=f"after {event}")
    wait_until(lambda: len(sides.subscriptions()) == 1, timeout=WEBHOOK_BOUND, what="one subscription")
    [now] = sides.subscriptions()
    if event == "subscriptionRemoved":
        assert now["id"] != old["id"]
    else:
        assert now["id"] == old["id"]
    if event == "reauthorizationRequired":
        wait_until(
            lambda: sides.subscriptions()[0]["reauthorization"]["challengedSince"] is None,
            timeout=WEBHOOK_BOUND,
            what="the renewal to answer the challenge",
        )
    after = _name(f"After {event}")
    after_id = sides.outlook_create(after)
    wait_until(lambda: f"[O] {after}" in sides.syncro_summaries(), timeout=WEBHOOK_BOUND, what="notifications again")
    assert sides.graph_notified(after_id)
    assert sides.reconcile_runs(mark) == 0 and "reconcile" not in dict(sides.jobs(mark))
    sides.settled()
    assert len(sides.subscriptions()) == 1
    assert_converged(sides)
