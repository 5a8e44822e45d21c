"""The soak: techs edit both sides at random while every simulator injects faults and the host
processes are killed and restarted; at the end both sides must agree, with nothing duplicated,
lost or deleted that no user deleted.

    SOAK_SECONDS=90 .venv/bin/python bench/soak.py        # make soak (600 s by default)

Set-up: Azurite behind two fault-injecting TCP proxies (`bench/soak_storage.py`, one for Table
and one for Queue storage: the product's connection string names the proxies), the three
simulators, the product's HTTP front in a process of its own (`bench/soak_front.py`: HTTP only,
on the product's public address, where Graph and Syncro send their webhooks and the techs open
their pages), and two ``python -m local.host`` processes on the same storage and queue running
the queue trigger and the timers (poll every 10 s, reconcile every minute, subscription upkeep
every 20 s). ``SOAK_TECHS`` techs (default 4) link through the product's own pages, Syncro token
step included (Syncro hides appointment owners, as live Syncro most likely does).

For ``SOAK_SECONDS`` (the chaos):
- users act about twice a second: a dispatcher creates, edits and deletes appointments in
  Syncro's screens (the simulator's dispatcher routes), each tech does the same in Outlook
  (Graph, with the tech's own token). Timed and all-day appointments, Syncro jobs with two linked
  techs (one tech deleting it in Outlook takes only them off it), and daily series made in
  Outlook whose occurrences are edited and deleted one at a time; the rules that keep the
  expected outcome free of the conflict policy are in `bench/soak_model.py`;
- every few seconds one fault (`bench/soak_faults.py`): Graph and Syncro 429 storms, 5xx,
  timeouts before and after the service acted, dropped notifications (both services), an expired
  delta token, a removed subscription (silently or with a lifecycle notification), a ``missed``
  lifecycle notification, a ``reauthorizationRequired`` challenge, Exchange's transient 412 and
  its server-side changeKey moves, the identity platform answering 503 to refreshes, storage
  (Table, Queue or both) unreachable for seconds, answering 500/503, or holding a request past
  the product's timeout before or after Azurite acted, Syncro starting or stopping to show
  appointment owners, a tech's Microsoft grant revoked (re-linked through the pages once the
  status says so) and a tech's Syncro token revoked (a new one set once the status says so);
  throughout, Graph sends every notification twice, newest first, and drops some;
- the web front and each host process are killed (SIGKILL) at random moments, independently,
  and restarted.

Then the quiet: faults cleared, both hosts up, and "Sync now" (`POST /api/admin/sync/{id}`,
what an admin presses) for every tech until both sides agree twice in a row, or
``SOAK_QUIET_SECONDS`` (default 240: a tech whose sync was running in a killed process stays
"busy" until that process's lease on it runs out, a minute: `storage.leases.KeptLease`) pass. The last line, exactly::

    soak: techs=N edits=N faults=N kills=N duplicates=0 lost=0 unintended_deletions=0 unconverged=0

and the exit status is 1 when any of the last four is not 0. ``unconverged`` counts techs whose
two sides differ at the end, whose items carry wrong tags, whose link is not active, or for
whom an injected error never showed in status in words.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msal  # noqa: E402
import requests  # noqa: E402

from bench.soak_faults import Faults  # noqa: E402
from bench.soak_model import (  # noqa: E402
    OUTLOOK,
    SIDES,
    SYNCRO,
    UNITS,
    Item,
    Thing,
    Verdict,
    agrees_for_all,
    by_key,
    edited,
    expected_title,
    fresh_content,
    judge,
    occurrences,
    outlook_items,
    syncro_items,
)
from bench.soak_storage import StorageProxy  # noqa: E402
from local import demo  # noqa: E402
from local.azurite import connection_string, start_azurite  # noqa: E402
from local.demo_link import link_through_pages  # noqa: E402
from local.formwalk import follow, submit  # noqa: E402
from local.inprocess import Product, start_product  # noqa: E402
from local.sims.identity import msal_session  # noqa: E402
from local.tls import make_tls_files  # noqa: E402
from sync.model import Appointment  # noqa: E402
from tests.realtime.support import HostProcess, private_queue, start_host_process  # noqa: E402
from tests.sync.engine_world import GRAPH_ZONE, event_header, graph_form, syncro_form  # noqa: E402

ZONE = ZoneInfo(demo.TIME_ZONE)
CALENDAR = "Calendar"
SCHEDULES = {
    "SYNCRO_POLL_SCHEDULE": "*/10 * * * * *",
    "RECONCILE_SCHEDULE": "15 * * * * *",
    "SUBSCRIPTION_UPKEEP_SCHEDULE": "*/20 * * * * *",
}
MAX_LIVE = 8  # appointments per tech at most, so the soak stays light
SHARED_SHARE = 0.25  # of new appointments: a Syncro job with two linked techs
SERIES_SHARE = 0.15  # of new appointments: a daily series made in Outlook
SERIES_LENGTH = 3
# How long an injected error may take to show in status: past the minute a killed process's
# lease keeps a tech "busy" (sync.engine.SyncDeps.lease, kept alive only while its holder lives),
# when no sync of them can notice anything, and a few polls and jobs after.
PATIENCE = 180.0
WORDS = re.compile(r"[A-Za-z]{3,}[^A-Za-z]+[A-Za-z]{3,}[^A-Za-z]+[A-Za-z]{3,}")


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@dataclass
class Tech:
    syncro_user_id: int
    upn: str
    oid: str
    calendar_id: str
    syncro_token: str
    app: Any = None  # MSAL, for the tech's own Graph token
    token: str = ""
    token_until: float = 0.0
    grant_revoked_at: float = 0.0
    grant_shown: str = ""  # what the status said about it
    syncro_token_revoked_at: float = 0.0
    token_shown: str = ""
    new_syncro_token: str = ""  # made in Syncro, not yet taken by the product
    retry_at: float = 0.0  # a repair that met a fault is tried again from then
    sync_now_note: str = ""  # what the last 'Sync now' said about the poll


# -- the hosts ---------------------------------------------------------------------------------


class HostSlot:
    """One host process, killed and restarted by its own thread while the chaos lasts."""

    def __init__(
        self,
        product: Product,
        logs: Path,
        name: str,
        rng: random.Random,
        launch: Callable[[Product, Path, str], HostProcess] | None = None,
    ) -> None:
        self.product, self.logs, self.name, self.rng = product, logs, name, rng
        self.launch = launch or (lambda product, logs, name: start_host_process(product, logs, name=name, **SCHEDULES))
        self.host: HostProcess | None = None
        self.generation = 0
        self.kills = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._chaos, name=f"kill-{name}", daemon=True)

    def start(self) -> None:
        self.generation += 1
        host = self.launch(self.product, self.logs, f"{self.name}-{self.generation}")
        with self.lock:
            self.host = host

    def url(self) -> str | None:
        with self.lock:
            return self.host.url if self.host and self.host.process.poll() is None else None

    def _chaos(self) -> None:
        while not self.stopping.wait(self.rng.uniform(8, 40)):
            with self.lock:
                host, self.host = self.host, None
            if host is not None:
                host.process.kill()  # SIGKILL: no goodbye, mid-job or not
                host.process.wait(10)
                self.kills += 1
                say(f"killed {self.name}")
            if self.stopping.wait(self.rng.uniform(1, 5)):
                break
            self._restart()

    def _restart(self) -> None:
        for attempt in range(5):  # a start may meet a storage fault
            try:
                self.start()
                return
            except (AssertionError, OSError) as error:
                say(f"{self.name} did not start ({str(error)[:200]}); again")
                time.sleep(2 + attempt)

    def settle(self) -> None:
        """Stop killing; make sure the process runs."""
        self.stopping.set()
        self.thread.join(120)
        if self.url() is None:
            self._restart()

    def stop(self) -> None:
        with self.lock:
            host = self.host
        if host is not None:
            host.stop()


def start_front(product: Product, logs: Path, name: str) -> HostProcess:
    """The web front (`bench/soak_front.py`: HTTP only) on the product's public address, where
    the simulators send webhooks and the techs open their pages."""
    env = {
        **os.environ,
        **product.env,
        "LOCAL_FUNCTION_KEY": product.function_key,
        "LOCAL_MASTER_KEY": product.master_key,
    }
    log_path = logs / f"{name}.log"
    port = str(urlsplit(product.host_url).port)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "soak_front.py"), "--port", port],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    front = HostProcess(process, product.host_url, log_path)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{name} exited: {log_path.read_text()[-1000:]}")
        try:
            requests.get(f"{product.host_url}/api/health", timeout=2)
            return front
        except requests.RequestException:
            if time.monotonic() > deadline:
                front.stop()
                raise AssertionError(f"{name} did not answer in 60 s") from None
            time.sleep(0.3)


# -- the soak ----------------------------------------------------------------------------------


@dataclass
class Soak:
    product: Product
    techs: list[Tech]
    rng: random.Random
    hosts: list[HostSlot]
    http: requests.Session
    things: list[Thing] = field(default_factory=list)
    edits: int = 0
    serial: int = 0
    verdict: Verdict = field(default_factory=Verdict)
    pending: list[tuple[float, str, Tech]] = field(default_factory=list)  # (when, what, tech): repairs due
    series: set[str] = field(default_factory=set)  # the keys of the recurring series made in Outlook
    owners_shown: bool = False  # Syncro hides appointment owners at the start (withhold_user_fields)
    unsettled: list[Thing] = field(default_factory=list)  # two-tech jobs deleted in Outlook, not yet synced
    actions: Counter[str] = field(default_factory=Counter)  # the kinds beyond a timed single, for the log

    # -- simulators and the product ------------------------------------------------------------

    def sim(self, name: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        answer = self.http.request(method, f"{self.product.sim_url(name)}{path}", timeout=30, **kwargs)
        if answer.status_code >= 400:
            raise RuntimeError(f"{name} {method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer

    def admin(self, method: str, path: str, *, timeout: float = 30, **kwargs: Any) -> requests.Response:
        """An admin request to the web front, or to a host process while the front is down."""
        urls = [self.product.host_url, *(url for slot in self.hosts if (url := slot.url()))]
        for n, url in enumerate(urls):
            try:
                return self.http.request(
                    method,
                    f"{url}/api/{path}",
                    headers={"x-functions-key": self.product.function_key},
                    timeout=timeout,
                    **kwargs,
                )
            except requests.ConnectionError:
                if n == len(urls) - 1:
                    raise
        raise AssertionError("unreachable")

    def links(self) -> dict[int, dict[str, Any]]:
        """Every link as the admin page lists them (asked again while storage or a host is down)."""
        for attempt in range(30):
            try:
                answer = self.admin("GET", "admin/links")
                if answer.status_code == 200:
                    return {int(link["syncro_user_id"]): link for link in answer.json()["links"]}
                problem = f"{answer.status_code} {answer.text[:200]}"
            except requests.RequestException as error:
                problem = str(error)[:200]
            if attempt % 10 == 9:
                say(f"the admin's list of links: {problem}; asked again")
            time.sleep(1)
        raise RuntimeError(f"the admin's list of links kept failing: {problem}")

    # -- what each side holds ------------------------------------------------------------------

    def observe(self) -> dict[int, dict[str, dict[str, list[Item]]]]:
        records = self.sim("syncro", "GET", "/_sim/appointments").json()["appointments"]
        held: dict[int, dict[str, dict[str, list[Item]]]] = {}
        for tech in self.techs:
            events = outlook_view(self.product.sim("graph"), tech.oid)
            held[tech.syncro_user_id] = {
                SYNCRO: by_key(syncro_items(records, tech.syncro_user_id, ZONE), self.series, ZONE),
                OUTLOOK: by_key(outlook_items(events, CALENDAR, ZONE), self.series, ZONE),
            }
        return held

    # -- the users -----------------------------------------------------------------------------

    def graph_token(self, tech: Tech) -> str:
        if time.monotonic() > tech.token_until:
            result = tech.app.acquire_token_by_username_password(
                tech.upn, self.product.secrets.password, scopes=["Calendars.ReadWrite"]
            )
            if "access_token" not in result:
                raise RuntimeError(f"the soak's own sign-in for {tech.upn} failed: {result.get('error_description')}")
            tech.token, tech.token_until = result["access_token"], time.monotonic() + 30
        return tech.token

    def outlook(self, tech: Tech, method: str, path: str, **kwargs: Any) -> requests.Response | None:
        """The tech in Outlook (through ``/users/{oid}``: faults aim at the product's ``/me``);
        retried as Outlook retries a throttled save. None when it kept failing."""
        url = f"{self.product.sim_url('graph')}/v1.0/users/{tech.oid}/calendars/{tech.calendar_id}/events{path}"
        for attempt in range(6):
            headers = {"Authorization": f"Bearer {self.graph_token(tech)}", "Prefer": 'IdType="ImmutableId"'}
            answer = self.http.request(method, url, headers=headers, timeout=30, **kwargs)
            if answer.status_code < 400:
                return answer
            # Exchange's transient 412 (the user sends no If-Match) is retried as a throttle is.
            if answer.status_code not in (412, 429, 503) and answer.status_code < 500:
                say(f"outlook {method} {path}: {answer.status_code} {answer.text[:200]}")
                return None
            time.sleep(0.5 * (attempt + 1))
        return None

    def create(self, tech: Tech, side: str, *, also: Tech | None = None) -> None:
        """A new appointment of ``tech`` made on ``side``; with ``also``, a Syncro job of two techs."""
        self.serial += 1
        key = f"k{self.techs.index(tech)}.{self.serial}"
        content = fresh_content(self.rng, key, ZONE, datetime.now(ZONE).date())
        techs = [tech.syncro_user_id] + ([also.syncro_user_id] if also else [])
        if side == SYNCRO:
            body = {**syncro_form(content), "user_id": tech.syncro_user_id, "user_ids": techs}
            item_id = str(self.sim("syncro", "POST", "/_sim/appointments", json=body).json()["appointment"]["id"])
        else:
            answer = self.outlook(tech, "POST", "", json=graph_form(content))
            if answer is None:
                return
            item_id = str(answer.json()["id"])
        self.things.append(Thing(key, tech.syncro_user_id, side, content, ids={side: item_id}, techs=techs))
        self.edits += 1
        self.actions.update(["all-day made"] * content.all_day + ["two-tech job made"] * bool(also))

    def create_series(self, tech: Tech) -> None:
        """A tech makes a daily series of three in Outlook; each occurrence is a thing of its own."""
        self.serial += 1
        key = f"k{self.techs.index(tech)}.{self.serial}"
        content = fresh_content(self.rng, key, ZONE, datetime.now(ZONE).date())
        while content.all_day:
            content = fresh_content(self.rng, key, ZONE, datetime.now(ZONE).date())
        start, end = content.start.astimezone(ZONE), content.end.astimezone(ZONE)
        body = {
            **graph_form(content),
            "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": GRAPH_ZONE},
            "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": GRAPH_ZONE},
            "recurrence": {
                "pattern": {"type": "daily", "interval": 1},
                "range": {
                    "type": "numbered",
                    "numberOfOccurrences": SERIES_LENGTH,
                    "startDate": start.date().isoformat(),
                    "recurrenceTimeZone": GRAPH_ZONE,
                },
            },
        }
        answer = self.outlook(tech, "POST", "", json=body)
        if answer is None:
            return
        self.series.add(key)
        master = str(answer.json()["id"])
        for occurrence in occurrences(content, SERIES_LENGTH, ZONE):
            day = occurrence.start.astimezone(ZONE).date().isoformat()
            self.things.append(Thing(f"{key}@{day}", tech.syncro_user_id, OUTLOOK, occurrence, series=master))
        say(f"tech {tech.syncro_user_id} made a series of {SERIES_LENGTH} in Outlook: {key}")
        self.edits += 1
        self.actions["series made"] += 1

    def edit(self, thing: Thing, unit: str, item: Item) -> None:
        tech = self.tech(thing.tech)
        content = edited(thing, unit, self.rng, ZONE, datetime.now(ZONE).date())
        side = thing.owner[unit]
        if side == SYNCRO:
            fields = syncro_form(content, iter([unit]))
            if unit == "summary":
                fields["summary"] = expected_title(_with(thing, content), SYNCRO)
            self.sim("syncro", "PUT", f"/_sim/appointments/{item.id}", json=fields)
        else:
            header = self.header(tech, item.id) if unit == "description" and thing.origin == SYNCRO else ""
            fields = graph_form(content, iter([unit]), header=header)
            if unit == "summary":
                fields["subject"] = expected_title(_with(thing, content), OUTLOOK)
            if self.outlook(tech, "PATCH", f"/{item.id}", json=fields) is None:
                return
        if thing.series:
            self.actions["occurrence edited"] += 1
        elif content.all_day != thing.content.all_day:
            self.actions["timed <-> all-day"] += 1
        thing.content = content
        self.edits += 1

    def header(self, tech: Tech, event_id: str) -> str:
        """The block a Syncro-born event shows above its notes, which the tech leaves alone."""
        event = next((e for e in self.product.sim("graph").stored_events(tech.oid) if e["id"] == event_id), None)
        return event_header(event or {})

    def delete(self, thing: Thing, side: str, held: dict[int, dict[str, dict[str, list[Item]]]]) -> None:
        """Deleted by the dispatcher in Syncro, or by one of its techs in Outlook: for a job with
        several techs that takes only that tech off it."""
        tech = self.rng.choice(thing.techs) if side == OUTLOOK else thing.tech
        item = held[tech][side][thing.key][0]
        if side == SYNCRO:
            self.sim("syncro", "DELETE", f"/_sim/appointments/{item.id}")
        elif self.outlook(self.tech(tech), "DELETE", f"/{item.id}") is None:
            return
        if side == OUTLOOK and len(thing.techs) > 1:
            # docs/sync.md: where Syncro shows a job's techs, the tech is taken off it; where it
            # hides them, the copy is put back (and the tech told to ask the dispatcher).
            self.unsettled.append(thing)  # owners are not flipped until the sync has decided
            if self.owners_shown:
                thing.leave(tech)
                say(f"tech {tech} took themselves off {thing.key} in Outlook; it stays for {thing.techs}")
                self.actions["a tech left a two-tech job (owners shown)"] += 1
            else:
                say(f"tech {tech} deleted {thing.key} in Outlook; owners hidden, so it must come back")
                self.actions["a tech's delete of a two-tech job put back (owners hidden)"] += 1
        else:
            thing.deleted_on = side
            self.actions["occurrence deleted"] += bool(thing.series)
        self.edits += 1

    def tech(self, syncro_user_id: int) -> Tech:
        return next(t for t in self.techs if t.syncro_user_id == syncro_user_id)

    def act(self) -> None:
        """One user action, chosen at random among those the model allows now."""
        held = self.observe()
        tech = self.rng.choice(self.techs)
        live = [t for t in self.things if t.tech == tech.syncro_user_id and not t.deleted_on]
        roll = self.rng.random()
        if len(live) < 3 or (roll < 0.15 and len(live) < MAX_LIVE):
            others = [t for t in self.techs if t is not tech]
            kind = self.rng.random()
            if others and kind < SHARED_SHARE:  # a Syncro job of two techs
                self.create(tech, SYNCRO, also=self.rng.choice(others))
            elif kind < SHARED_SHARE + SERIES_SHARE and len(live) + SERIES_LENGTH <= MAX_LIVE:
                self.create_series(tech)
            else:
                self.create(tech, self.rng.choice(SIDES))
            return
        thing = self.rng.choice(live)
        sides = held[thing.tech]
        # an occurrence or a two-tech job is deleted more often: the cases a deletion must not spread
        special = bool(thing.series) or len(thing.techs) > 1
        if roll < 0.22 or (special and roll < 0.4):
            if agrees_for_all(thing, held):  # an occurrence is deleted in Outlook
                # mostly in Outlook for a job of two techs: one of them takes themselves off it
                shared = len(thing.techs) > 1 and self.rng.random() < 0.75
                self.delete(thing, OUTLOOK if thing.series or shared else self.rng.choice(SIDES), held)
            return
        if thing.series:  # an occurrence edited in Outlook (its title, notes or place)
            unit = self.rng.choice([u for u in UNITS if u != "when"])
            items = sides[OUTLOOK].get(thing.key, [])
            if len(items) == 1:
                self.edit(thing, unit, items[0])
            return
        unit = self.rng.choice(UNITS)
        if agrees_for_all(thing, held) and self.rng.random() < 0.5:
            thing.owner[unit] = OUTLOOK if thing.owner[unit] == SYNCRO else SYNCRO  # now edited there
        items = sides[thing.owner[unit]].get(thing.key, [])
        if len(items) == 1:
            self.edit(thing, unit, items[0])

    # -- revocations and their repair ----------------------------------------------------------

    def _unrevoked_tech(self) -> Tech | None:
        """A tech with neither their grant nor their Syncro token revoked, or None."""
        free = [t for t in self.techs if not t.grant_revoked_at and not t.syncro_token_revoked_at]
        return self.rng.choice(free) if free else None

    def revoke_grant(self) -> bool:
        tech = self._unrevoked_tech()
        if tech is None:
            return False
        self.sim("identity", "POST", f"/_sim/users/{tech.upn}/revoke")
        tech.grant_revoked_at = time.monotonic()
        say(f"revoked {tech.upn}'s Microsoft grant")
        return True

    def flip_owners(self) -> bool:
        """Syncro starts showing appointment owners (``user_id``/``user_ids``), or hides them again."""
        if self.unsettled:  # a two-tech job's Outlook delete is decided by what Syncro shows then
            held = self.observe()
            self.unsettled = [t for t in self.unsettled if not agrees_for_all(t, held)]
            if self.unsettled:
                return False
        hidden = not self.owners_shown
        self.sim("syncro", "PATCH", "/_sim/settings", json={"withhold_user_fields": not hidden})
        self.owners_shown = hidden
        say(f"Syncro now {'shows' if hidden else 'hides'} appointment owners")
        return True

    def revoke_syncro_token(self) -> bool:
        tech = self._unrevoked_tech()
        if tech is None:
            return False
        self.sim("syncro", "DELETE", f"/_sim/tokens/{tech.syncro_token}")
        tech.syncro_token_revoked_at = time.monotonic()
        say(f"revoked tech {tech.syncro_user_id}'s Syncro token")
        return True

    def repair(self, *, patience: float) -> None:
        """Re-link a tech whose grant was revoked once their status says so in words, and give a
        tech whose Syncro token was revoked a new one once the status says so; after ``patience``
        seconds without a word, the error counts as not shown (and is repaired all the same).
        A repair that meets a fault (the pages answer 503 then) is tried again later, as a tech
        would."""
        now = time.monotonic()
        for tech in self.techs:
            if tech.grant_revoked_at and not tech.grant_shown:
                tech.grant_shown = self.grant_status(tech)
                if not tech.grant_shown and now - tech.grant_revoked_at > patience:
                    self.verdict.note(tech.syncro_user_id, "its revoked grant never showed in its status")
                    tech.grant_shown = "(never shown)"
            if tech.grant_shown and self.relink(tech):
                tech.grant_revoked_at, tech.grant_shown = 0.0, ""
            if tech.syncro_token_revoked_at and not tech.token_shown:
                tech.token_shown = self.token_status(tech)
                if not tech.token_shown and now - tech.syncro_token_revoked_at > patience:
                    self.verdict.note(tech.syncro_user_id, "its revoked Syncro token never showed in status")
                    tech.token_shown = "(never shown)"
            if tech.token_shown and self.new_syncro_token(tech):
                tech.syncro_token_revoked_at, tech.token_shown = 0.0, ""

    def grant_status(self, tech: Tech) -> str:
        link = self.links().get(tech.syncro_user_id) or {}
        detail = str(link.get("status_detail") or "")
        if link.get("status") == "needs_relink" and WORDS.search(detail) and "Traceback" not in detail:
            say(f"status of {tech.upn}: needs_relink: {detail}")
            return detail
        return ""

    def token_status(self, tech: Tech) -> str:
        """Where a refused Syncro token shows: the tech's link, their last job, the last poll, or
        what 'Sync now' answered (the last two account-wide, so they must name the tech)."""
        from storage.job_status import JobStatusStore

        statuses = JobStatusStore(self.product.storage())
        link = self.links().get(tech.syncro_user_id) or {}
        try:  # through the storage proxy, like the product
            poll = statuses.get_poll_status().detail
            own = [str(link.get("status_detail") or ""), statuses.get_status(tech.syncro_user_id).last_job_detail]
        except Exception as error:
            say(f"reading the status of {tech.syncro_user_id}: {type(error).__name__}")
            return ""
        named = [t for t in (poll, tech.sync_now_note) if str(tech.syncro_user_id) in t or tech.upn in t]
        for text in own + named:
            if "token" in text.lower() and WORDS.search(text) and "Traceback" not in text:
                say(f"status for tech {tech.syncro_user_id}'s Syncro token: {text}")
                return text
        return ""

    def relink(self, tech: Tech) -> bool:
        """The tech signs in again on the settings page (a re-link keeps their choices); False
        when that met a fault (an error page), to be tried again later."""
        if time.monotonic() < tech.retry_at:
            return False
        session = self.product.browser()
        try:
            page = follow(session, self.product.authorize(session, tech.upn))
            if page.status_code == 200 and urlsplit(page.url).path == "/api/settings/syncro-token":
                page = follow(
                    session, submit(session, page, form_id="syncro-token", fields={"token": tech.syncro_token})
                )
        except (requests.RequestException, RuntimeError, LookupError) as error:
            page, problem = None, str(error)
        else:
            problem = f"{page.status_code} at {page.url}"
        finally:
            session.close()
        status = (self.links().get(tech.syncro_user_id) or {}).get("status")
        if page is None or page.status_code != 200 or status != "active":
            say(f"re-linking {tech.upn} did not take ({problem}; link {status}): tried again in 10 s")
            tech.retry_at = time.monotonic() + 10
            return False
        say(f"{tech.upn} re-linked through the pages")
        return True

    def new_syncro_token(self, tech: Tech) -> bool:
        """The tech makes a new token in Syncro; the admin sets it (checked with Syncro first)."""
        if time.monotonic() < tech.retry_at:
            return False
        if not tech.new_syncro_token:
            tech.new_syncro_token = uuid.uuid4().hex
            seed = {"tokens": [{"token": tech.new_syncro_token, "user_id": tech.syncro_user_id}]}
            self.sim("syncro", "POST", "/_sim/seed", json=seed)
        path = f"admin/syncro-tokens/{tech.syncro_user_id}"
        answer = self.admin("PUT", path, json={"token": tech.new_syncro_token}, timeout=60)
        if answer.status_code != 200:
            say(
                f"the new Syncro token of {tech.syncro_user_id} was not taken, tried again in 10 s: {answer.text[:200]}"
            )
            tech.retry_at = time.monotonic() + 10
            return False
        tech.syncro_token, tech.new_syncro_token = tech.new_syncro_token, ""
        say(f"tech {tech.syncro_user_id} has a new Syncro token")
        return True

    # -- the end -------------------------------------------------------------------------------

    def sync_now(self, tech: Tech) -> None:
        """What an admin presses: poll Syncro, sync the tech, answer when done (on a host process)."""
        url = next((slot.url() for slot in self.hosts if slot.url()), None) or self.product.host_url
        try:
            answer = self.http.post(
                f"{url}/api/admin/sync/{tech.syncro_user_id}",
                headers={"x-functions-key": self.product.function_key},
                timeout=180,
            )
            if answer.status_code >= 400:
                say(f"sync now of {tech.syncro_user_id}: {answer.status_code} {answer.text[:300]}")
            else:
                poll = answer.json().get("poll") or {}
                tech.sync_now_note = str(poll.get("ownership_note") or poll.get("error") or "")
        except requests.RequestException as error:
            say(f"sync now of {tech.syncro_user_id}: {error}")

    def converge(self, quiet_seconds: float) -> dict[int, dict[str, dict[str, list[Item]]]]:
        """'Sync now' for every tech until both sides agree twice in a row (or time runs out)."""
        deadline = time.monotonic() + quiet_seconds
        streak, rounds = 0, 0
        while True:
            rounds += 1
            for tech in self.techs:
                self.sync_now(tech)
            held = self.observe()
            live = [t for t in self.things if not t.deleted_on]
            done = all(agrees_for_all(t, held) for t in live) and not any(
                held[tech][side].get(t.key) for t in self.things if t.deleted_on for tech in t.techs for side in SIDES
            )
            streak = streak + 1 if done else 0
            if rounds % 5 == 1 or done:
                apart = sorted({t.tech for t in live if not agrees_for_all(t, held)})
                say(f"'Sync now' round {rounds}: {'both sides agree' if done else f'techs {apart} still differ'}")
                if rounds % 10 == 6:  # what differs, for the log
                    for thing in [t for t in live if not agrees_for_all(t, held)][:4]:
                        seen = {
                            (tech, side): [i.title for i in held[tech][side].get(thing.key, [])]
                            for tech in thing.techs
                            for side in SIDES
                        }
                        say(f"  {thing.key} ({thing.origin}-born, techs {thing.techs}): expected "
                            f"{thing.content.summary!r}, all_day={thing.content.all_day}; held {seen}")  # fmt: skip
            if streak >= 2 or time.monotonic() > deadline:
                say(f"quiet after {rounds} rounds of 'Sync now': {'agreed' if done else 'NOT agreed'}")
                return held
            time.sleep(3)


def outlook_view(sim: Any, oid: str) -> list[dict[str, Any]]:
    """A mailbox's events as Outlook shows them (calendarView): singles, and each series'
    occurrences and exceptions, read in process from the Graph simulator."""
    from datetime import UTC, timedelta

    from local.sims.graph.instances import instances_between
    from local.sims.graph.render import ReadOptions, render_event

    now = datetime.now(UTC)
    with sim.store.lock:
        mailbox = sim.store.mailboxes[oid]
        shown = []
        for instance in instances_between(
            list(mailbox.events.values()), now - timedelta(days=3), now + timedelta(days=40)
        ):
            rendered = render_event(instance, mailbox, ReadOptions())
            rendered["calendarName"] = mailbox.calendars[instance.event.calendar_id].name
            shown.append(rendered)
        return shown


def _with(thing: Thing, content: Appointment) -> Thing:
    return Thing(thing.key, thing.tech, thing.origin, content, techs=list(thing.techs))


# -- set-up ------------------------------------------------------------------------------------


def seed_techs(product: Product, count: int) -> list[Tech]:
    """``count`` techs in the three simulators, each with a Syncro API token of their own."""
    tag = uuid.uuid4().hex[:6]
    users = [
        {"upn": f"soak{n}.{tag}@contoso.example", "password": product.secrets.password, "name": f"Soak Tech {n}"}
        for n in range(count)
    ]
    seeded = product.sim("identity").seed({"users": users})["users"]
    mailboxes = product.sim("graph").seed(
        {
            "mailboxes": [
                {
                    "oid": u["oid"],
                    "email": u["email"],
                    "upn": u["upn"],
                    "mail": u["mail"],
                    "name": u["name"],
                    "tenant_id": u["tenant_id"],
                    "calendars": [{"name": CALENDAR, "is_default": True}, {"name": "Work Orders"}],
                }
                for u in seeded
            ]
        }
    )["mailboxes"]
    techs = [
        Tech(2_100_000 + n, u["upn"], u["oid"], box["calendars"][CALENDAR], uuid.uuid4().hex)
        for n, (u, box) in enumerate(zip(seeded, mailboxes, strict=True))
    ]
    product.sim("syncro").seed(
        {
            "users": [
                {"id": t.syncro_user_id, "email": t.upn, "full_name": f"Soak Tech {n}", "group": "Techs"}
                for n, t in enumerate(techs)
            ],
            "tokens": [{"token": t.syncro_token, "user_id": t.syncro_user_id} for t in techs],
        }
    )
    http = msal_session(product.sim_url("identity"), str(product.tls.ca_bundle))
    for tech in techs:
        tech.app = msal.ConfidentialClientApplication(
            product.env["MS_CLIENT_ID"],
            client_credential=product.env["MS_CLIENT_SECRET"],
            authority=product.env["MS_AUTHORITY"],
            http_client=http,
            instance_discovery=False,
        )
    return techs


def run(seconds: float, *, techs_count: int, quiet_seconds: float, seed: int) -> int:
    rng = random.Random(seed)
    started = time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="soak-"))
    with ExitStack() as stack:
        azurite = start_azurite()
        stack.callback(azurite.stop)
        # The product reaches Table and Queue storage through the fault-injecting proxies.
        proxies = {name: StorageProxy(getattr(azurite, f"{name}_port"), name) for name in ("table", "queue")}
        for proxy in proxies.values():
            proxy.start()
            stack.callback(proxy.stop)
        storage = connection_string(
            blob_port=azurite.blob_port, queue_port=proxies["queue"].port, table_port=proxies["table"].port
        )
        tls = make_tls_files(logs / "tls")
        product = start_product(stack, tls=tls, storage=storage)
        private_queue(product)
        http = product.browser()
        stack.callback(http.close)
        # Access tokens short-lived, so a revoked grant bites within minutes, as it does for real
        # once the product's access token runs out (Graph itself does not check revocation here).
        http.patch(
            f"{product.sim_url('identity')}/_sim/settings", json={"access_token_lifetime_seconds": 240}, timeout=30
        ).raise_for_status()
        techs = seed_techs(product, techs_count)
        for tech in techs:
            link_through_pages(
                product.host_url,
                sign_in=tech.upn,
                password=product.secrets.password,
                ca_bundle=str(tls.ca_bundle),
                syncro_token=tech.syncro_token,
            )
        say(f"{len(techs)} techs linked; seed {seed}; logs in {logs}")
        product.front.stop()  # the web front moves to a process of its own, which the soak kills too
        front = HostSlot(product, logs, "front", random.Random(rng.random()), launch=start_front)
        hosts = [front] + [HostSlot(product, logs, name, random.Random(rng.random())) for name in ("host-a", "host-b")]
        for slot in hosts:
            slot.start()
            stack.callback(slot.stop)
        soak = Soak(product, techs, rng, hosts, http)
        faults = Faults(
            sim=soak.sim,
            rng=rng,
            mailboxes=lambda: [t.oid for t in techs],
            revoke_grant=soak.revoke_grant,
            revoke_syncro_token=soak.revoke_syncro_token,
            storage=proxies,
            owners=soak.flip_owners,
        )
        for _ in range(2 * len(techs)):
            soak.act()
        faults.begin()
        for slot in hosts:
            slot.thread.start()
        chaos_until = time.monotonic() + seconds
        next_fault = time.monotonic() + rng.uniform(1, 4)
        while time.monotonic() < chaos_until:
            soak.act()
            if time.monotonic() >= next_fault:
                kind = faults.strike()
                say(f"fault: {kind}")
                next_fault = time.monotonic() + rng.uniform(1.5, 3.5)
            soak.repair(patience=PATIENCE)
            time.sleep(rng.uniform(0.2, 0.6))
        say("chaos over: clearing faults, settling the hosts")
        faults.end()
        for slot in hosts:
            slot.settle()
        repairs_until = time.monotonic() + PATIENCE + 120
        while any(t.grant_revoked_at or t.syncro_token_revoked_at for t in techs):
            for tech in techs:  # the admin presses 'Sync now' to see what is wrong
                if (tech.grant_revoked_at and not tech.grant_shown) or (
                    tech.syncro_token_revoked_at and not tech.token_shown
                ):
                    soak.sync_now(tech)
            soak.repair(patience=PATIENCE)  # the status must say so within that, faults cleared or not
            if time.monotonic() > repairs_until:
                for tech in techs:
                    if tech.grant_revoked_at or tech.syncro_token_revoked_at:
                        soak.verdict.note(tech.syncro_user_id, "its re-link or new Syncro token never took")
                break
            time.sleep(5)
        held = soak.converge(quiet_seconds)
        judge(soak.things, held, soak.verdict)
        links = soak.links()
        for tech in techs:
            link = links.get(tech.syncro_user_id) or {}
            if link.get("status") != "active":
                soak.verdict.note(
                    tech.syncro_user_id, f"its link ends {link.get('status')}: {link.get('status_detail')}"
                )
        kills = sum(slot.kills for slot in hosts)
        fault_count = sum(faults.counts.values())
        say(f"faults by kind: {dict(faults.counts)}")
        say(f"user actions beyond timed singles: {dict(soak.actions)}")
        for problem in soak.verdict.problems:
            say(f"problem: {problem}")
        say(f"{time.monotonic() - started:.0f} s in all; host logs in {logs}")
        verdict = soak.verdict
        print(
            f"soak: techs={len(techs)} edits={soak.edits} faults={fault_count} kills={kills} "
            f"duplicates={verdict.duplicates} lost={verdict.lost} "
            f"unintended_deletions={verdict.unintended_deletions} unconverged={len(verdict.unconverged_techs)}",
            flush=True,
        )
        failed = verdict.duplicates or verdict.lost or verdict.unintended_deletions or verdict.unconverged_techs
    return 1 if failed else 0


def main() -> int:
    seconds = float(os.environ.get("SOAK_SECONDS", "600"))
    techs = int(os.environ.get("SOAK_TECHS", "4"))
    # Past the minute a killed instance's lease on a tech lasts (sync.engine.SyncDeps.lease).
    quiet = float(os.environ.get("SOAK_QUIET_SECONDS", "240"))
    seed = int(os.environ.get("SOAK_SEED") or random.randrange(1_000_000))
    return run(seconds, techs_count=techs, quiet_seconds=quiet, seed=seed)


if __name__ == "__main__":
    sys.exit(main())
