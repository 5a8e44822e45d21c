"""One technician's two calendars, the real sync engine between them, and the faults that can
strike it: the world `tests/sync/test_engine_convergence.py` drives.

Everything is real: the in-process product (`local.inprocess`) with its simulators over TLS,
Azurite, the Graph token MSAL got when ALEX linked through the pages, the Syncro and Graph
clients, the poller and `sync.engine.sync_tech`. A user acts as people do: in Syncro as a
dispatcher (``/_sim/appointments``), in Outlook through Graph with ALEX's token.

Each example starts clean and cheap (`EngineWorld.begin`): Syncro's appointments and ALEX's
events are dropped through the simulators' controls, and a new technician is seeded in Syncro
and linked to ALEX's Microsoft account and calendar, so every row the engine keeps (all of them
are per technician) starts empty without a table being cleared or created.

Faults:
- the simulators' ``/_sim/faults`` (a 429 with ``Retry-After``, a 500) and Graph's delta
  invalidation (410 ``SyncStateNotFound``);
- `FlakyTransport`, the clients' HTTPS adapter, loses one exchange: before it leaves (a connect
  timeout) or after the service did the work (the answer is lost: a read timeout);
- `CrashSwitch`: the engine's storage raises `SimulatedCrash` instead of one write, right after a
  service write (between the write and its mirror or mapping row) or at the nth storage write.
Retries wait on the simulators' clock (`EngineWorld.waits` records each wait), not in real time.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests
from requests.adapters import HTTPAdapter

from local import demo
from local.inprocess import Product
from settings import get_settings
from storage.account import StorageAccount
from storage.errors import NotFound
from storage.links import Link, LinkStatus
from storage.mappings import Mapping
from storage.recycle_bin import RecycleEntry
from sync.budget import RequestBudget
from sync.engine import SyncDeps, SyncReport, sync_tech
from sync.errors import SyncroError
from sync.graph import GraphClient
from sync.html_text import html_to_text
from sync.mapping import CONTEXT_SEPARATOR, appointment_from_graph, appointment_from_syncro
from sync.model import Appointment
from sync.poller import PollReport, poll_once
from sync.syncro import SyncroClient

ALEX = demo.TECHS[0]
ZONE = ZoneInfo(demo.TIME_ZONE)
GRAPH_ZONE = "Pacific Standard Time"  # what Outlook writes for an all-day event in ALEX's zone
QUEUE = "jobs-convergence"
SECOND_CUSTOMER_ID = demo.CUSTOMER_ID + 1  # seeded by the world: the dispatcher moves jobs between the two
OTHER_CALENDARS = ("Work Orders", "Jobs B")  # ALEX's calendars the tech may switch to, beside his first
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SimulatedCrash(Exception):
    """The process died here (injected by the test, never raised by product code)."""


# -- the network loses one exchange ----------------------------------------------------------------


@dataclass
class LostExchange:
    method: str
    path: str  # a regex searched in the URL's path
    when: Literal["before", "after"]  # before it leaves, or after the service did the work


class FlakyTransport(HTTPAdapter):
    """A real HTTPS adapter that loses the next exchange matching an armed `LostExchange`, and
    tells ``on_write`` about every write the service answered (for `CrashSwitch`)."""

    def __init__(self, name: str, on_write: Callable[[str], None]) -> None:
        super().__init__()
        self.name = name
        self._lock = threading.Lock()
        self._pending: list[LostExchange] = []
        self._on_write = on_write
        self.lost = 0

    def arm(self, exchange: LostExchange) -> None:
        with self._lock:
            self._pending.append(exchange)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def _take(self, method: str, path: str) -> LostExchange | None:
        with self._lock:
            for exchange in self._pending:
                if exchange.method == method and re.search(exchange.path, path):
                    self._pending.remove(exchange)
                    self.lost += 1
                    return exchange
        return None

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        method, path = str(request.method), urlsplit(str(request.url)).path
        lost = self._take(method, path)
        if lost is not None and lost.when == "before":
            raise requests.ConnectTimeout(f"injected: {method} {path} never left", request=request)
        response = super().send(request, *args, **kwargs)
        if method in WRITE_METHODS and response.status_code < 300:
            self._on_write(f"a {self.name} {method}")
        if lost is not None:
            response.close()
            raise requests.ReadTimeout(f"injected: the answer to {method} {path} was lost", request=request)
        return response


# -- the process dies between two writes ---------------------------------------------------------

# The engine's storage writes a crash can replace: its mapping rows, both mirrors, the delta link.
WATCHED: dict[str, frozenset[str]] = {
    "mappings": frozenset({"create_mapping", "update_mapping", "delete_mapping"}),
    "mirror": frozenset({"put_entry", "delete_entry"}),
    "outlook_mirror": frozenset({"upsert_entry", "delete_entry"}),
    "cursors": frozenset({"save_cursor"}),
}


@dataclass
class CrashSwitch:
    """Armed with ``after_write`` (the first watched storage write after a service write) or
    ``nth`` (the nth watched storage write of the sync), it raises `SimulatedCrash` once."""

    mode: Literal["after_write", "nth"] | None = None
    countdown: int = 0
    wrote: str = ""  # the last service write since armed
    fired: int = 0
    where: list[str] = field(default_factory=list)  # what each crash interrupted
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, mode: Literal["after_write", "nth"], nth: int = 1) -> None:
        with self.lock:
            self.mode, self.countdown, self.wrote = mode, nth, ""

    def disarm(self) -> None:
        with self.lock:
            self.mode = None

    def service_wrote(self, what: str) -> None:
        with self.lock:
            self.wrote = what

    def before_storage_write(self, where: str) -> None:
        with self.lock:
            if self.mode == "after_write" and self.wrote:
                pass
            elif self.mode == "nth":
                self.countdown -= 1
                if self.countdown > 0:
                    return
            else:
                return
            self.mode = None
            self.fired += 1
            self.where.append(f"{where} ({self.wrote or 'no write'} before)")
        raise SimulatedCrash(f"the process died instead of {where}")


class _Repository:
    def __init__(self, inner: Any, name: str, switch: CrashSwitch) -> None:
        self._inner, self._name, self._switch = inner, name, switch

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._inner, attribute)
        if attribute not in WATCHED[self._name]:
            return value

        def write(*args: Any, **kwargs: Any) -> Any:
            self._switch.before_storage_write(f"{self._name}.{attribute}")
            return value(*args, **kwargs)

        return write


class CrashingStorage:
    """The engine's StorageAccount, with the writes in `WATCHED` going past a `CrashSwitch`."""

    def __init__(self, inner: StorageAccount, switch: CrashSwitch) -> None:
        self._inner, self._switch = inner, switch

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        return _Repository(value, name, self._switch) if name in WATCHED else value


# -- the world ---------------------------------------------------------------------------------


@dataclass
class Observed:
    """One item as a side holds it: its id, its title as stored, its neutral content."""

    id: str
    title: str
    content: Appointment


class EngineWorld:
    """ALEX's Syncro appointments and Outlook calendar, and the engine syncing them (see the
    module docstring). Built once per module; `begin` starts each example."""

    def __init__(self, stack: Product, *, graph_token: str, link: Link, oid: str) -> None:
        settings = get_settings()
        self.stack, self.oid, self.product_link = stack, oid, link
        self.clock = stack.sim("graph").control.clock  # the stack's one clock
        self.http = stack.browser()
        self.graph_url = stack.sim_url("graph")
        self.syncro_url = stack.sim_url("syncro")
        self._graph_headers = {
            "Authorization": f"Bearer {graph_token}",
            "Prefer": 'outlook.timezone="UTC", IdType="ImmutableId"',
        }
        self.switch = CrashSwitch()
        self.waits: list[float] = []
        from sync.client_http import RetryPolicy

        retry = RetryPolicy(backoff_seconds=0.2, sleep=self._wait, now=self.clock.now)
        self.transports = {name: FlakyTransport(name, self.switch.service_wrote) for name in ("graph", "syncro")}
        ca = settings.ca_bundle
        timeout = (5.0, 10.0)
        self.graph = GraphClient(
            settings.graph_base_url,
            token=lambda: graph_token,
            ca_bundle=ca,
            session=self._session("graph", ca),
            retry=retry,
            timeout=timeout,
        )
        self.syncro = SyncroClient(
            settings.syncro_base_url,
            api_token=settings.syncro_api_token,
            ca_bundle=ca,
            session=self._session("syncro", ca),
            retry=retry,
            timeout=timeout,
        )
        self._client_options = {"ca_bundle": ca, "retry": retry, "timeout": timeout}
        self.base_url = settings.syncro_base_url
        self.storage = StorageAccount(settings.storage, sync_queue_name=QUEUE)
        self.tech, self.own_syncro = 0, self.syncro  # set by `begin`
        self.two_way, self.conflict = True, "latest"
        self._next_tech = 7_000_000 + int(uuid.uuid4().int % 1_000_000) * 100
        self.signed_in = False  # the tech holds ALEX's sign-in (for the settings page's calendar list)
        customer = {"id": SECOND_CUSTOMER_ID, "business_name": "Northwind Traders", "address": "12 Pier Road"}
        self.sim("syncro", "POST", "/_sim/seed", json={"customers": [customer]})
        self.other_calendars = self._ensure_calendars()

    def _ensure_calendars(self) -> list[str]:
        """The ids of `OTHER_CALENDARS`, made through Graph (as the tech would in Outlook) when missing."""
        have = {c["name"]: c["id"] for c in self.graph_call("GET", "/me/calendars").json()["value"]}
        for name in OTHER_CALENDARS:
            if name not in have:
                have[name] = self.graph_call("POST", "/me/calendars", json={"name": name}).json()["id"]
        return [have[name] for name in OTHER_CALENDARS]

    def _session(self, name: str, ca: str | None) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.verify = ca if ca else True
        session.mount("https://", self.transports[name])
        return session

    def _wait(self, seconds: float) -> None:
        """A retry's wait, spent on the simulators' clock (the rate limit and Retry-After use it)."""
        self.waits.append(seconds)
        self.clock.advance(seconds)

    def close(self) -> None:
        for client in (self.graph, self.syncro):
            client._session.close()
        self.http.close()

    # -- simulators ------------------------------------------------------------------------------

    def sim(self, name: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        answer = self.http.request(method, f"{self.stack.sim_url(name)}{path}", timeout=30, **kwargs)
        assert answer.status_code < 400, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer

    def tick(self, seconds: float = 1.0) -> None:
        self.clock.advance(seconds)

    def now(self) -> datetime:
        return self.clock.now()

    def clear_faults(self) -> None:
        for name in ("graph", "syncro"):
            self.sim(name, "DELETE", "/_sim/faults")
            self.transports[name].clear()
        self.switch.disarm()

    # -- an example --------------------------------------------------------------------------------

    def begin(self) -> None:
        """Empty calendars on both sides, no faults, and a new technician in Syncro (with their own
        API token, for the poller's ``mine`` listing), not linked yet."""
        self.clear_faults()
        self.sim("syncro", "DELETE", "/_sim/appointments")
        self.sim("graph", "DELETE", f"/_sim/mailboxes/{self.oid}/events")
        self._next_tech += 2
        self.tech, token = self._next_tech, uuid.uuid4().hex
        self.colleague = self.tech + 1  # another tech in Syncro, not linked: jobs are given to them
        self.signed_in = False
        users = [
            {"id": tech, "email": f"tech{tech}@contoso.example", "full_name": f"Tech {tech}"}
            for tech in (self.tech, self.colleague)
        ]
        self.sim(
            "syncro", "POST", "/_sim/seed", json={"users": users, "tokens": [{"token": token, "user_id": self.tech}]}
        )
        self.own_syncro = SyncroClient(
            self.base_url,
            api_token=token,
            session=self.syncro._session,
            **self._client_options,  # type: ignore[arg-type]
        )
        self.waits.clear()

    def link(self, *, two_way: bool, conflict: str) -> None:
        """ALEX's link as the pages made it, from now (what exists already is "from before")."""
        self.two_way, self.conflict = two_way, conflict
        self.tick()
        link = replace(
            self.product_link,
            syncro_user_id=self.tech,
            two_way=two_way,
            linked_at=self.now(),
            status=LinkStatus.ACTIVE,
            etag=None,
        )
        self.storage.links.create_link(link)

    def switch_calendar(self, calendar_id: str) -> None:
        """The tech saves another calendar on the settings page (`web.links.save_link_choices`, what
        the page's save calls). The page lists his calendars with his own sign-in: the example's
        tech is given ALEX's (the link is ALEX's Microsoft account already)."""
        from storage.token_caches import TokenCacheRecord
        from web.links import save_link_choices

        if not self.signed_in:
            alex = self.storage.token_caches.get_cache(ALEX.syncro_user_id)
            self.storage.token_caches.save_cache(TokenCacheRecord(self.tech, alex.encrypted, self.now()))
            self.signed_in = True
        link = self.storage.links.get_link(self.tech)
        refused = save_link_choices(
            self.tech, calendar_id=calendar_id, two_way=link.two_way, share_private=link.share_private
        )
        assert refused is None, refused
        self.tick()

    def calendar(self) -> tuple[str, str]:
        """The synced calendar's id and name: the link's, as it is now."""
        try:
            link = self.storage.links.get_link(self.tech)
        except NotFound:  # not linked yet: ALEX's first calendar
            link = self.product_link
        return link.calendar_id, link.calendar_name

    def deps(self) -> SyncDeps:
        return SyncDeps(
            storage=CrashingStorage(self.storage, self.switch),  # type: ignore[arg-type]
            graph_for=lambda _tech: self.graph,
            syncro=self.syncro,
            syncro_web_url=self.syncro_url,
            conflict=self.conflict,
            clock=self.now,
            zone=ZONE,
        )

    def poll(self) -> str | None:
        """One Syncro poll as the timer runs it (owner fields withheld: the tech's own token lists
        theirs); the error in words when Syncro failed it. ``last_poll``: its report."""
        self.last_poll: PollReport | None = None
        try:
            self.last_poll = poll_once(
                client=self.syncro,
                mirror=self.storage.mirror,
                cursors=self.storage.cursors,
                queue=self.storage.sync_queue,
                budget=RequestBudget(10_000),
                clock=self.now,
                techs=[self.tech],
                tech_clients={self.tech: self.own_syncro},
                zone=ZONE,
                slice_days=200,  # every poll reads the whole window: each sync sees all of Syncro
            )
        except SyncroError as error:
            return str(error)
        return None

    def sync(self) -> SyncReport:
        """One sync of the technician. Graph shows a change in delta about 2 s after it happened (the
        stack's delta quirks): the clock moves past that first."""
        self.tick(3)
        return sync_tech(self.tech, deps=self.deps())

    def sync_twice_at_once(self) -> list[SyncReport | BaseException]:
        """The same job delivered twice and run by two instances at the same time."""
        self.tick(3)
        results: list[SyncReport | BaseException] = []

        def run() -> None:
            try:
                results.append(sync_tech(self.tech, deps=self.deps()))
            except BaseException as error:
                results.append(error)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        return results

    # -- what each side holds ----------------------------------------------------------------------

    def syncro_items(self) -> dict[str, Observed]:
        records = self.sim("syncro", "GET", "/_sim/appointments").json()["appointments"]
        return {
            str(r["id"]): Observed(str(r["id"]), str(r.get("summary") or ""), appointment_from_syncro(r, zone=ZONE))
            for r in records
            if r.get("user_id") == self.tech or self.tech in (r.get("user_ids") or [])
        }

    def syncro_records(self) -> list[dict[str, Any]]:
        """Every appointment as Syncro holds it (owners shown), raw."""
        return self.sim("syncro", "GET", "/_sim/appointments").json()["appointments"]

    def outlook_events(self) -> list[dict[str, Any]]:
        """The synced calendar's events (the link's calendar now), raw."""
        name = self.calendar()[1]
        return [e for e in self.every_event() if e.get("calendarName") == name]

    def every_event(self) -> list[dict[str, Any]]:
        """ALEX's events in all his calendars, raw (``calendarName`` tells where each lives)."""
        return self.sim("graph", "GET", f"/_sim/mailboxes/{self.oid}/events").json()["events"]

    def outlook_items(self) -> dict[str, Observed]:
        return {
            str(e["id"]): Observed(str(e["id"]), str(e.get("subject") or ""), appointment_from_graph(e, zone=ZONE))
            for e in self.outlook_events()
        }

    def rows(self) -> list[Mapping]:
        return list(self.storage.mappings.list_mappings(self.tech))

    def recycle_bin(self) -> list[RecycleEntry]:
        return self.storage.recycle_bin.list_entries(self.tech)

    # -- the user in Syncro (a dispatcher in Syncro's UI) -------------------------------------------

    def syncro_create(self, content: Appointment, *, title: str | None = None, ticket: bool = False) -> str:
        body: dict[str, Any] = {**syncro_form(content), "user_id": self.tech, "user_ids": [self.tech]}
        if title is not None:
            body["summary"] = title
        if ticket:
            body.update(customer_id=demo.CUSTOMER_ID, ticket_id=demo.FIRST_TICKET_ID)
        answer = self.sim("syncro", "POST", "/_sim/appointments", json=body).json()
        self.tick()
        return str(answer["appointment"]["id"])

    def syncro_update(self, item_id: str, fields: dict[str, Any]) -> None:
        self.sim("syncro", "PUT", f"/_sim/appointments/{item_id}", json=fields)
        self.tick()

    def syncro_reassign(self, item_id: str) -> None:
        """The dispatcher gives the appointment to the colleague (off this tech)."""
        self.syncro_update(item_id, {"user_id": self.colleague, "user_ids": [self.colleague]})

    def syncro_delete(self, item_id: str) -> None:
        self.sim("syncro", "DELETE", f"/_sim/appointments/{item_id}")
        self.tick()

    # -- the user in Outlook (ALEX, through Graph) -------------------------------------------------

    def graph_call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        answer = self.http.request(
            method, f"{self.graph_url}/v1.0{path}", headers=self._graph_headers, timeout=30, **kwargs
        )
        assert answer.status_code < 400, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer

    def outlook_create(self, content: Appointment) -> str:
        path = f"/me/calendars/{self.calendar()[0]}/events"
        event = self.graph_call("POST", path, json=graph_form(content)).json()
        self.tick()
        return str(event["id"])

    def outlook_update(self, item_id: str, fields: dict[str, Any]) -> None:
        self.graph_call("PATCH", f"/me/events/{item_id}", json=fields)  # in whichever calendar holds it
        self.tick()

    def outlook_delete(self, item_id: str) -> None:
        self.graph_call("DELETE", f"/me/events/{item_id}")
        self.tick()

    def outlook_header(self, item_id: str) -> str:
        """The block above the notes of a Syncro-born event (customer, ticket, link), which a
        tech leaves alone when editing the notes; "" when there is none."""
        return event_header(self.graph_call("GET", f"/me/events/{item_id}").json())


# -- what a user types -----------------------------------------------------------------------------


def _local(moment: datetime) -> str:
    return moment.astimezone(ZONE).isoformat(timespec="seconds")


def syncro_form(content: Appointment, units: Iterator[str] | None = None) -> dict[str, Any]:
    """The fields a dispatcher sets in Syncro for ``content`` (only ``units`` of it when given:
    ``summary``, ``description``, ``location``, ``when``)."""
    every = {
        "summary": {"summary": content.summary},
        "description": {"description": content.description},
        "location": {"location": content.location},
        "when": {"start_at": _local(content.start), "end_at": _local(content.end), "all_day": content.all_day},
    }
    wanted = list(units) if units is not None else list(every)
    return {k: v for unit in wanted for k, v in every[unit].items()}


def _graph_time(moment: datetime, *, all_day: bool) -> dict[str, str]:
    if all_day:
        return {"dateTime": f"{moment.astimezone(ZONE).date().isoformat()}T00:00:00", "timeZone": GRAPH_ZONE}
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def graph_form(content: Appointment, units: Iterator[str] | None = None, *, header: str = "") -> dict[str, Any]:
    """What Outlook sends for ``content`` (only ``units`` of it when given); ``header`` is kept
    above the notes."""
    every = {
        "summary": {"subject": content.summary},
        "description": {"body": {"contentType": "text", "content": header + content.description}},
        "location": {"location": {"displayName": content.location}},
        "when": {
            "isAllDay": content.all_day,
            "start": _graph_time(content.start, all_day=content.all_day),
            "end": _graph_time(content.end, all_day=content.all_day),
        },
    }
    wanted = list(units) if units is not None else list(every)
    return {k: v for unit in wanted for k, v in every[unit].items()}


def event_header(event: dict[str, Any]) -> str:
    """The block above the notes of a Syncro-born event as Graph holds it (customer, ticket, link,
    then `CONTEXT_SEPARATOR`), verbatim; "" when there is none."""
    body = event.get("body") or {}
    text = str(body.get("content") or "")
    if str(body.get("contentType") or "html").lower() == "html":
        text = html_to_text(text)
    lines = text.split("\n")
    stripped = [line.strip() for line in lines]
    if CONTEXT_SEPARATOR not in stripped:
        return ""
    return "\n".join(lines[: stripped.index(CONTEXT_SEPARATOR) + 1]) + "\n"
