"""The sync engine end to end: the in-process product (host, Azurite, the three simulators with
their strict defaults and Graph's delta quirks), ALEX linked through the pages with two-way on,
Syncro polled as the poller does (owner fields withheld: ALEX's own Syncro token), then
`sync.engine.sync_tech`. Each test is named for the behaviour it proves."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from local import demo
from services import sync_deps
from storage.errors import NotFound
from storage.job_status import JobStatusStore
from sync.budget import RequestBudget
from sync.engine import SyncReport, sync_tech
from sync.poller import poll_once
from sync.syncro import SyncroClient
from tests.app.linking_support import LinkingStack, graph_as

pytest_plugins = ["tests.app.linking_support"]

ALEX = demo.TECHS[0]
TECH = ALEX.syncro_user_id


def _at(days: int, hour: int) -> str:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days, hours=hour)
    return day.isoformat().replace("+00:00", "Z")


@dataclass
class World:
    stack: LinkingStack
    http: requests.Session
    alex_token: str
    calendar_id: str
    mailbox_oid: str
    others: dict[int, str] = field(default_factory=dict)  # more linked techs: Syncro user id -> their token

    # -- the simulators --------------------------------------------------------------------------

    def sim(self, name: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        answer = self.http.request(method, f"{self.stack.sim_url(name)}{path}", timeout=30, **kwargs)
        assert answer.status_code < 400, answer.text
        return answer

    def counters(self) -> dict[str, dict[str, int]]:
        return {name: self.sim(name, "GET", "/_sim/counters").json() for name in ("graph", "syncro")}

    def reset_counters(self) -> None:
        for name in ("graph", "syncro"):
            self.sim(name, "DELETE", "/_sim/counters")

    def writes(self, counters: dict[str, dict[str, int]], name: str) -> int:
        prefix = "/v1.0/" if name == "graph" else "/api/v1/"
        return sum(
            count
            for route, count in _routes(counters[name]).items()
            if route.split(" ", 1)[0] in ("POST", "PATCH", "PUT", "DELETE") and prefix in route
        )

    # -- Syncro, as a dispatcher does it in Syncro's UI -------------------------------------------

    def syncro_create(self, summary: str, *, days: int = 2, hour: int = 17) -> int:
        body = {"summary": summary, "start_at": _at(days, hour), "end_at": _at(days, hour + 1), "user_id": TECH}
        answer = self.sim("syncro", "POST", "/_sim/appointments", json=body).json()
        return int(answer.get("id") or answer["appointment"]["id"])

    def syncro_record(self, appointment_id: int) -> dict[str, Any] | None:
        answer = self.http.get(f"{self.stack.sim_url('syncro')}/_sim/appointments/{appointment_id}", timeout=30)
        return None if answer.status_code == 404 else answer.json()

    def syncro_all(self) -> list[dict[str, Any]]:
        body = self.sim("syncro", "GET", "/_sim/appointments").json()
        return body if isinstance(body, list) else body.get("appointments", [])

    # -- Outlook, as ALEX does it ------------------------------------------------------------------

    def graph(self, method: str, path: str, *, tech: int = TECH, **kwargs: Any) -> requests.Response:
        prefer = {"Prefer": 'outlook.timezone="UTC", IdType="ImmutableId"'}
        return graph_as(self.stack, tech, method, path, session=self.http, headers=prefer, **kwargs)

    def outlook_create(self, subject: str, *, days: int = 3, hour: int = 18) -> str:
        body = {
            "subject": subject,
            "start": {"dateTime": _at(days, hour)[:-1], "timeZone": "UTC"},
            "end": {"dateTime": _at(days, hour + 1)[:-1], "timeZone": "UTC"},
        }
        return self.graph("POST", f"/me/calendars/{self.calendar_id}/events", json=body).json()["id"]

    def outlook_events(self) -> list[dict[str, Any]]:
        return self.graph("GET", f"/me/calendars/{self.calendar_id}/events?$top=200").json()["value"]

    def outlook_subjects(self) -> list[str]:
        return [e["subject"] for e in self.outlook_events()]

    # -- the product -------------------------------------------------------------------------------

    def poll(self) -> None:
        storage = self.stack.storage()
        deps = sync_deps()
        ca = str(self.stack.tls.ca_bundle)
        tokens = {TECH: self.alex_token, **self.others}
        own = {
            tech: SyncroClient(f"{self.stack.sim_url('syncro')}/api/v1", api_token=token, ca_bundle=ca)
            for tech, token in tokens.items()
        }
        poll_once(
            client=deps.syncro,
            mirror=storage.mirror,
            cursors=storage.cursors,
            queue=storage.sync_queue,
            budget=RequestBudget(10_000),
            clock=lambda: datetime.now(UTC),
            techs=sorted(own),
            tech_clients=own,
            zone=deps.account_zone(),
            slice_days=200,  # every round reads the whole window: the tests' syncs are then exact
        )

    def sync(self, *, poll: bool = True, tech: int = TECH) -> SyncReport:
        # Graph's delta shows a change about 2 s after it happened (the quirks preset): let it.
        self.sim("graph", "POST", "/_sim/clock", json={"advance_seconds": 3})
        if poll:
            self.poll()
        report = sync_tech(tech, deps=sync_deps())
        assert report.status == "synced" and not report.errors, report
        return report


def _routes(counters: dict[str, Any]) -> dict[str, int]:
    inner = counters.get("counters", counters)
    return {str(k): int(v) for k, v in inner.items() if isinstance(v, int)}


@pytest.fixture(scope="module")
def world(linking_stack: LinkingStack) -> Iterator[World]:
    import functools

    import services
    from storage.syncro_budget import SyncroBudgetStore
    from sync.budget import SharedBudget

    # These scenarios are about the engine, not Syncro's rate: they spend minutes' worth of
    # requests in seconds, which the app-wide budget (docs/budget.md, tested on its own in
    # tests/sync/test_shared_budget.py and tests/realtime/test_shared_budget.py) would defer at
    # random points. It is set above their need here; the Syncro simulator still answers 429 past
    # its own limit, as before the budget existed.
    shared = services.syncro_budget
    services.syncro_budget = functools.cache(
        lambda: SharedBudget(SyncroBudgetStore(services.storage_account()), 100_000)
    )
    services.reset()
    alex_token = secrets.token_hex(16)
    linking_stack.sim("syncro").seed({"tokens": [{"token": alex_token, "user_id": TECH}]})
    browser = linking_stack.browser()
    page = linking_stack.sign_in(browser, ALEX.sign_in)
    assert page.status_code == 200, page.text
    links = linking_stack.storage().links
    link = links.get_link(TECH)
    links.update_link(link.with_changes(two_way=True))
    http = linking_stack.browser()
    mailboxes = http.get(f"{linking_stack.sim_url('graph')}/_sim/mailboxes", timeout=30).json()
    mailboxes = mailboxes if isinstance(mailboxes, list) else mailboxes.get("mailboxes", mailboxes.get("value", []))
    oid = next(m["oid"] for m in mailboxes if str(m.get("email", "")).lower() == ALEX.email)
    world = World(linking_stack, http, alex_token, link.calendar_id, oid)
    world.sync()  # the first sync: ALEX's demo appointments go to Outlook
    yield world
    for forget in (lambda: services.token_service().forget(TECH), lambda: links.delete_link(TECH)):
        try:
            forget()
        except NotFound:
            pass
    services.syncro_budget = shared
    services.reset()


def _by_subject(world: World, subject: str) -> dict[str, Any]:
    matches = [e for e in world.outlook_events() if e["subject"] == subject]
    assert len(matches) == 1, [e["subject"] for e in world.outlook_events()]
    return matches[0]


def _by_summary(world: World, summary: str) -> list[dict[str, Any]]:
    return [a for a in world.syncro_all() if a.get("summary") == summary]


def test_syncro_appointments_appear_in_outlook_tagged_s_with_the_ticket_context(world: World) -> None:
    event = _by_subject(world, "[S] Server swap at Fabrikam")
    assert "Fabrikam Ltd" in event["body"]["content"] and "20410" in event["body"]["content"]
    assert "400 Harbor Way" in event["location"]["displayName"]  # the customer's address stands in
    world.syncro_create("Install rack")
    report = world.sync()
    assert report.created["outlook"] == 1
    _by_subject(world, "[S] Install rack")


def test_an_outlook_event_appears_in_syncro_tagged_o_and_assigned_to_the_tech(world: World) -> None:
    world.outlook_create("Vendor meeting")
    report = world.sync()
    assert report.created == {"syncro": 1, "outlook": 0}
    (created,) = _by_summary(world, "[O] Vendor meeting")
    record = world.syncro_record(created["id"])
    assert record is not None
    assert record["user_id"] == TECH or TECH in record.get("user_ids", [])
    assert record.get("do_not_email") in (True, "1", 1)
    assert "Vendor meeting" in world.outlook_subjects()  # the Outlook original keeps its own subject


def test_events_from_before_the_link_stay_in_outlook_only(world: World) -> None:
    assert "Dentist" in world.outlook_subjects()
    assert _by_summary(world, "[O] Dentist") == [] and _by_summary(world, "Dentist") == []


def test_an_edit_in_syncro_reaches_outlook_and_an_edit_in_outlook_reaches_syncro(world: World) -> None:
    appointment = world.syncro_create("Patch servers")
    world.sync()
    world.sim("syncro", "PUT", f"/_sim/appointments/{appointment}", json={"summary": "Patch all servers"})
    report = world.sync()
    assert report.updated == {"syncro": 0, "outlook": 1}
    event = _by_subject(world, "[S] Patch all servers")
    world.graph("PATCH", f"/me/calendars/{world.calendar_id}/events/{event['id']}", json={"subject": "[S] Patch DCs"})
    report = world.sync()
    assert report.updated == {"syncro": 1, "outlook": 0}
    assert world.syncro_record(appointment)["summary"] == "Patch DCs"


def test_one_edit_costs_one_write_each_way_and_then_the_calendars_stay_quiet(world: World) -> None:
    appointment = world.syncro_create("Quiet check")
    world.sync()
    world.sync()
    world.reset_counters()
    world.sim("syncro", "PUT", f"/_sim/appointments/{appointment}", json={"location": "Back office"})
    world.sync()
    counters = world.counters()
    assert (world.writes(counters, "graph"), world.writes(counters, "syncro")) == (1, 0), counters
    event = _by_subject(world, "[S] Quiet check")
    world.reset_counters()
    world.graph(
        "PATCH", f"/me/calendars/{world.calendar_id}/events/{event['id']}", json={"location": {"displayName": "Lab"}}
    )
    world.sync()
    counters = world.counters()
    # the test's own PATCH is one of the Graph writes
    assert (world.writes(counters, "graph"), world.writes(counters, "syncro")) == (1, 1), counters
    world.reset_counters()
    quiet = world.sync()
    counters = world.counters()
    assert quiet.writes == 0 and quiet.rounds == 0
    assert (world.writes(counters, "graph"), world.writes(counters, "syncro")) == (0, 0), counters
    # steady state: Graph is asked for the delta round only (its pages: the quirks add an empty one)
    assert all("calendarView/delta" in route for route in _routes(counters["graph"])), counters


def test_a_deletion_in_syncro_lands_in_the_recycle_bin_and_restores(world: World) -> None:
    appointment = world.syncro_create("Old visit")
    world.sync()
    event = _by_subject(world, "[S] Old visit")
    world.sim("syncro", "DELETE", f"/_sim/appointments/{appointment}")
    report = world.sync()
    assert report.deleted == {"syncro": 0, "outlook": 1}
    assert "[S] Old visit" not in world.outlook_subjects()
    admin = {"x-functions-key": world.stack.function_key}
    listed = world.http.get(f"{world.stack.host_url}/api/admin/recycle-bin/{TECH}", headers=admin, timeout=30)
    assert listed.status_code == 200, listed.text
    (entry,) = [e for e in listed.json()["entries"] if e["original_id"] == event["id"]]
    assert (entry["side"], entry["origin"], entry["content"]["summary"]) == ("outlook", "syncro", "Old visit")
    restored = world.http.post(
        f"{world.stack.host_url}/api/admin/recycle-bin/{TECH}/{entry['entry']}/restore", headers=admin, timeout=30
    )
    assert restored.status_code == 200, restored.text
    assert restored.json()["restored"]["side"] == "syncro"
    world.sync()
    _by_subject(world, "[S] Old visit")
    assert len(_by_summary(world, "Old visit")) == 1


def test_a_deletion_in_outlook_deletes_in_syncro_through_the_recycle_bin(world: World) -> None:
    world.outlook_create("Team lunch")
    world.sync()
    (copy,) = _by_summary(world, "[O] Team lunch")
    event = _by_subject(world, "Team lunch")
    world.graph("DELETE", f"/me/calendars/{world.calendar_id}/events/{event['id']}")
    report = world.sync()
    assert report.deleted == {"syncro": 1, "outlook": 0}
    assert world.syncro_record(copy["id"]) is None
    entries = world.stack.storage().recycle_bin.list_entries(TECH)
    (entry,) = [e for e in entries if e.original_id == str(copy["id"])]
    from sync.recycle import restore_entry

    assert restore_entry(TECH, entry.entry_id, deps=sync_deps())["side"] == "outlook"
    world.sync()
    _by_subject(world, "Team lunch")
    assert len(_by_summary(world, "[O] Team lunch")) == 1


def test_a_job_run_twice_and_an_expired_delta_link_create_nothing_twice(world: World) -> None:
    world.syncro_create("Twice")
    world.outlook_create("Also twice")
    world.sync()
    world.sync(poll=False)
    world.sim("graph", "POST", f"/_sim/mailboxes/{world.mailbox_oid}/delta/invalidate")
    report = world.sync()
    assert report.full_round and report.writes == 0, report
    assert [s for s in world.outlook_subjects() if s in ("[S] Twice", "Also twice")].count("[S] Twice") == 1
    assert world.outlook_subjects().count("Also twice") == 1
    assert len(_by_summary(world, "[O] Also twice")) == 1 and len(_by_summary(world, "Twice")) == 1


def test_the_admin_sync_route_answers_with_the_report(world: World) -> None:
    answer = world.http.post(
        f"{world.stack.host_url}/api/admin/sync/{TECH}",
        headers={"x-functions-key": world.stack.function_key},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["syncro_user_id"] == str(TECH) and body["status"] == "synced"
    assert set(body["created"]) == {"syncro", "outlook"} and body["errors"] == []
    assert body["poll"]["requests"] >= 1, body["poll"]
    storage = world.stack.storage()
    # Its poll is the timer's own run: recorded for the pages, and never beside a running one.
    assert JobStatusStore(storage).get_poll_status().requests == body["poll"]["requests"]
    with pytest.raises(NotFound):
        storage.leases.read("timer:syncro-poll")  # released when it ended
    unknown = world.http.post(
        f"{world.stack.host_url}/api/admin/sync/42", headers={"x-functions-key": world.stack.function_key}, timeout=60
    )
    assert unknown.status_code == 404


def _crash_once(monkeypatch: pytest.MonkeyPatch, side: str) -> None:
    """The sync dies right after its next write of that side (as the side mirrors what the
    service returned), before the mapping row says so."""
    from sync.outlook_side import OutlookCalendar
    from sync.syncro_side import SyncroAppointments

    owner, name = (SyncroAppointments, "mirror_record") if side == "syncro" else (OutlookCalendar, "mirror")
    original = getattr(owner, name)
    state = {"armed": True}

    def crashing(self: Any, record: dict[str, Any]) -> None:
        if state["armed"]:
            state["armed"] = False
            raise RuntimeError("the process died here")
        original(self, record)

    monkeypatch.setattr(owner, name, crashing)


def test_a_crash_after_a_syncro_create_is_adopted_not_duplicated(world: World, monkeypatch) -> None:
    world.outlook_create("Crash lunch")
    _crash_once(monkeypatch, "syncro")
    world.sim("graph", "POST", "/_sim/clock", json={"advance_seconds": 3})
    with pytest.raises(RuntimeError):
        sync_tech(TECH, deps=sync_deps())
    assert len(_by_summary(world, "[O] Crash lunch")) == 1  # created, but no row says so
    report = world.sync()
    assert report.created["syncro"] == 0, report
    assert len(_by_summary(world, "[O] Crash lunch")) == 1
    assert world.sync().writes == 0


def test_a_crash_after_an_outlook_create_is_adopted_not_duplicated(world: World, monkeypatch) -> None:
    world.syncro_create("Crash visit")
    world.poll()
    _crash_once(monkeypatch, "outlook")
    world.sim("graph", "POST", "/_sim/clock", json={"advance_seconds": 3})
    with pytest.raises(RuntimeError):
        sync_tech(TECH, deps=sync_deps())
    report = world.sync()
    assert report.created["outlook"] == 0, report
    assert world.outlook_subjects().count("[S] Crash visit") == 1
    assert world.sync().writes == 0


def test_a_tag_the_tech_deleted_comes_back_with_one_write(world: World) -> None:
    world.syncro_create("Tagged visit")
    world.sync()
    event = _by_subject(world, "[S] Tagged visit")
    world.graph("PATCH", f"/me/calendars/{world.calendar_id}/events/{event['id']}", json={"subject": "Tagged visit"})
    world.reset_counters()
    report = world.sync()
    assert report.updated == {"syncro": 0, "outlook": 1}, report
    _by_subject(world, "[S] Tagged visit")
    assert world.sync().writes == 0


def _set_two_way(world: World, on: bool) -> None:
    links = world.stack.storage().links
    links.update_link(links.get_link(TECH).with_changes(two_way=on))


def test_with_two_way_off_outlook_edits_are_put_back_and_outlook_events_stay_there(world: World) -> None:
    world.syncro_create("One way visit")
    world.sync()
    event = _by_subject(world, "[S] One way visit")
    _set_two_way(world, False)
    try:
        world.graph("PATCH", f"/me/calendars/{world.calendar_id}/events/{event['id']}", json={"subject": "[S] Mine"})
        world.outlook_create("Private errand")
        report = world.sync()
        assert report.updated == {"syncro": 0, "outlook": 1} and report.created["syncro"] == 0, report
        _by_subject(world, "[S] One way visit")
        assert _by_summary(world, "[O] Private errand") == [] and _by_summary(world, "[O] Mine") == []
    finally:
        _set_two_way(world, True)
    world.sync()  # two-way again: the errand goes to Syncro now
    assert len(_by_summary(world, "[O] Private errand")) == 1


def test_an_item_that_cannot_be_read_is_skipped_with_its_reason_and_never_deleted(world: World) -> None:
    from storage.mirror import MirrorEntry

    appointment = world.syncro_create("Unreadable for a while")
    world.sync()
    mirror = world.stack.storage().mirror
    entry = mirror.get_entry(TECH, appointment)
    broken = {**entry.appointment, "start_at": None}
    mirror.put_entry(MirrorEntry(TECH, appointment, entry.updated_at, "broken", broken, entry.seen_at))
    report = world.sync(poll=False)
    assert report.writes == 0, report
    assert [s["id"] for s in report.skipped] == [str(appointment)] and "start_at" in report.skipped[0]["reason"]
    _by_subject(world, "[S] Unreadable for a while")  # not deleted
    report = world.sync()  # the poll reads it whole again
    assert report.writes == 0 and report.skipped == [], report


def test_an_event_moved_out_of_the_window_moves_its_copy_and_deletes_nothing(world: World) -> None:
    world.outlook_create("Far away")
    world.sync()
    (copy,) = _by_summary(world, "[O] Far away")
    event = _by_subject(world, "Far away")
    later = {
        "start": {"dateTime": _at(200, 9)[:-1], "timeZone": "UTC"},
        "end": {"dateTime": _at(200, 10)[:-1], "timeZone": "UTC"},
    }
    world.graph("PATCH", f"/me/calendars/{world.calendar_id}/events/{event['id']}", json=later)
    report = world.sync()
    assert report.deleted == {"syncro": 0, "outlook": 0} and report.updated["syncro"] == 1, report
    record = world.syncro_record(copy["id"])
    assert record is not None and record["start_at"][:10] == _at(200, 9)[:10]
    assert world.sync().writes == 0


def test_a_time_moved_in_syncro_and_a_title_edited_in_outlook_both_survive(world: World) -> None:
    appointment = world.syncro_create("Merge me", days=5, hour=15)
    world.sync()
    event = _by_subject(world, "[S] Merge me")
    moved = {"start_at": _at(5, 16), "end_at": _at(5, 18)}
    world.sim("syncro", "PUT", f"/_sim/appointments/{appointment}", json=moved)
    world.graph("PATCH", f"/me/calendars/{world.calendar_id}/events/{event['id']}", json={"subject": "[S] Merged"})
    report = world.sync()
    assert report.updated == {"syncro": 1, "outlook": 1} and report.conflicts == [], report
    record = world.syncro_record(appointment)
    assert record["summary"] == "Merged"
    event = _by_subject(world, "[S] Merged")
    assert event["start"]["dateTime"].startswith(_at(5, 16)[:16]) and event["end"]["dateTime"].startswith(
        _at(5, 18)[:16]
    )
    assert world.sync().writes == 0


def test_the_same_field_changed_on_both_sides_is_a_conflict_the_latest_edit_wins(world: World) -> None:
    appointment = world.syncro_create("Contested", days=6, hour=15)
    world.sync()
    event = _by_subject(world, "[S] Contested")
    world.sim("syncro", "PUT", f"/_sim/appointments/{appointment}", json={"summary": "Syncro title"})
    world.sim("graph", "POST", "/_sim/clock", json={"advance_seconds": 5})  # Outlook's edit comes later
    world.graph(
        "PATCH", f"/me/calendars/{world.calendar_id}/events/{event['id']}", json={"subject": "[S] Outlook title"}
    )
    report = world.sync()
    assert [c["fields"] for c in report.conflicts] == [["summary"]] and report.conflicts[0]["winner"] == "outlook"
    assert world.syncro_record(appointment)["summary"] == "Outlook title"
    _by_subject(world, "[S] Outlook title")
    assert world.sync().writes == 0
    # The settings page says which version was kept.
    [latest, *_] = world.stack.storage().conflicts.recent(TECH)
    assert (latest.fields, latest.winner, latest.summary) == (("summary",), "outlook", "Outlook title")
    from web import pages, settings_views
    from web.links import linking_overview

    html = pages.render_settings(settings_views.settings_view(linking_overview(TECH), csrf_token="x" * 43))
    assert "Outlook title: the title changed in both Syncro and Outlook; Outlook&#39;s version was kept." in html


def test_many_new_appointments_reach_outlook_in_batches(world: World) -> None:
    for n in range(45):
        world.syncro_create(f"Batch job {n:02}", days=7 + n % 5, hour=6 + n % 10)
    world.poll()
    world.reset_counters()
    report = world.sync(poll=False)
    assert report.created == {"syncro": 0, "outlook": 45}, report
    routes = _routes(world.counters()["graph"])
    # chained batches of 20 (one step at a time), four in flight: no step is throttled and retried
    assert routes.get("POST /v1.0/$batch") == 3, routes
    assert routes.get("POST /v1.0/me/calendars/{calendar}/events") == 45, routes
    subjects = world.outlook_subjects()
    assert all(subjects.count(f"[S] Batch job {n:02}") == 1 for n in range(45))
    assert world.sync().writes == 0


def test_an_appointment_for_two_techs_reaches_both_calendars_and_an_edit_in_one_reaches_the_other(
    world: World,
) -> None:
    import services

    blake = demo.TECHS[1]
    token = secrets.token_hex(16)
    world.stack.sim("syncro").seed({"tokens": [{"token": token, "user_id": blake.syncro_user_id}]})
    page = world.stack.sign_in(world.stack.browser(), blake.sign_in)
    assert page.status_code == 200, page.text
    links = world.stack.storage().links
    links.update_link(links.get_link(blake.syncro_user_id).with_changes(two_way=True))
    world.others[blake.syncro_user_id] = token
    try:
        body = {
            "summary": "Joint install",
            "start_at": _at(8, 17),
            "end_at": _at(8, 19),
            "user_id": TECH,
            "user_ids": [TECH, blake.syncro_user_id],
        }
        answer = world.sim("syncro", "POST", "/_sim/appointments", json=body).json()
        appointment = int(answer.get("id") or answer["appointment"]["id"])
        world.sync()
        world.sync(poll=False, tech=blake.syncro_user_id)

        def blakes_event() -> dict[str, Any]:
            calendar = links.get_link(blake.syncro_user_id).calendar_id
            events = world.graph("GET", f"/me/calendars/{calendar}/events?$top=200", tech=blake.syncro_user_id)
            (event,) = [e for e in events.json()["value"] if "Joint" in e["subject"]]
            return event

        assert blakes_event()["subject"] == "[S] Joint install"
        mine = _by_subject(world, "[S] Joint install")
        world.graph(
            "PATCH", f"/me/calendars/{world.calendar_id}/events/{mine['id']}", json={"subject": "[S] Joint rollout"}
        )
        assert world.sync().updated["syncro"] == 1
        record = world.syncro_record(appointment)
        assert record["summary"] == "Joint rollout" and set(record["user_ids"]) >= {TECH, blake.syncro_user_id}
        report = world.sync(tech=blake.syncro_user_id)
        assert report.updated == {"syncro": 0, "outlook": 1}, report
        assert blakes_event()["subject"] == "[S] Joint rollout"
    finally:
        world.others.pop(blake.syncro_user_id, None)
        for forget in (
            lambda: services.token_service().forget(blake.syncro_user_id),
            lambda: links.delete_link(blake.syncro_user_id),
        ):
            try:
                forget()
            except NotFound:
                pass


def test_syncros_description_rewrite_does_not_start_a_ping_pong(world: World) -> None:
    world.sim("syncro", "PATCH", "/_sim/settings", json={"rewrite_description": "ticket"})
    try:
        event = _by_subject(world, "[S] Server swap at Fabrikam")
        body = {"body": {"contentType": "text", "content": "Bring the spare PSU"}}
        world.graph("PATCH", f"/me/calendars/{world.calendar_id}/events/{event['id']}", json=body)
        first = world.sync()
        assert first.updated["syncro"] == 1
        stored = world.syncro_record(demo.FIRST_APPOINTMENT_ID)
        assert stored is not None and "Bring the spare PSU" in stored["description"]
        assert stored["description"] != "Bring the spare PSU"  # Syncro wrapped it in its own layout
        world.reset_counters()
        for _ in range(2):
            quiet = world.sync()
            assert quiet.writes == 0, quiet
        counters = world.counters()
        assert (world.writes(counters, "graph"), world.writes(counters, "syncro")) == (0, 0), counters
    finally:
        world.sim("syncro", "PATCH", "/_sim/settings", json={"rewrite_description": "off"})


def test_unlink_with_remove_our_events_deletes_the_s_events_through_the_recycle_bin(world: World) -> None:
    # Last in the module: it ends ALEX's link.
    from web.links import unlink

    bin_before = len(world.stack.storage().recycle_bin.list_entries(TECH))
    ours = [s for s in world.outlook_subjects() if s.startswith("[S] ")]
    assert ours
    unlink(TECH, remove_outlook_events=True)
    report = sync_tech(TECH, deps=sync_deps())
    assert report.status == "unlinked" and report.deleted["outlook"] == len(ours), report
    body = world.sim("graph", "GET", f"/_sim/mailboxes/{world.mailbox_oid}/events").json()
    events = body if isinstance(body, list) else body.get("value", body.get("events", []))
    subjects = [e.get("subject", "") for e in events]
    assert not [s for s in subjects if s.startswith("[S] ")], subjects
    assert "Dentist" in subjects and "Vendor meeting" in subjects  # the tech's own events stay
    assert len(world.stack.storage().recycle_bin.list_entries(TECH)) == bin_before + len(ours)
    with pytest.raises(NotFound):
        world.stack.storage().links.get_link(TECH)
    assert sync_tech(TECH, deps=sync_deps()).status == "not_linked"
