"""Shared by the real-time tests and `bench/backlog.py`: a fleet of linked techs on the in-process
product, the local host's queue pump and timers on the product's own queue, and local host
processes (``python -m local.host``) sharing the product's storage and simulators."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msal

from local import demo
from local.azurite import free_port
from local.host import HostConfig
from local.host.functions import QueueFunction, TimerFunction, read_functions
from local.host.queues import QueuePump
from local.host.timers import TimerRunner
from local.inprocess import Product, install_settings
from local.sims.identity import msal_session
from storage.links import Link, LinkStatus

ROOT = Path(__file__).resolve().parents[2]
NEVER = "0 0 0 1 1 *"  # once a year: timers that must stay out of a test's way


def private_queue(product: Product) -> str:
    """Give the product a queue of its own (Azurite is shared by every test module)."""
    name = "jobs-" + uuid.uuid4().hex[:10]
    product.env["SYNC_QUEUE_NAME"] = name
    install_settings({"SYNC_QUEUE_NAME": name})
    return name


def start_fleet_product(stack: ExitStack, tmp: Path, *, graph_latency: float) -> Product:
    """For the benches of many techs: Azurite and the product (stopped with ``stack``), Syncro
    showing owners with no webhooks and no rate limit, Graph answering after ``graph_latency``
    seconds, and a queue of the product's own."""
    from local.azurite import start_azurite
    from local.inprocess import start_product
    from local.tls import make_tls_files

    azurite = start_azurite()
    stack.callback(azurite.stop)
    product = start_product(stack, tls=make_tls_files(tmp), storage=azurite.connection_string)
    product.sim("syncro").update_settings(
        {"withhold_user_fields": False, "notification_urls": [], "rate_limit_per_minute": 100_000}
    )
    product.browser().patch(
        f"{product.sim_url('graph')}/_sim/settings", json={"request_latency_seconds": graph_latency}, timeout=30
    ).raise_for_status()
    private_queue(product)
    return product


def fast_host_config(**overrides: Any) -> HostConfig:
    """host.json as deployed, with ``visibilityTimeout`` 0 so a failed job's retries do not wait 30 s."""
    return HostConfig.from_host_json(ROOT / "host.json", **{"queue_visibility_timeout": 0.0, **overrides})


def _functions(product: Product) -> list[Any]:
    import function_app

    return read_functions(function_app.app, {**os.environ, **product.env})


@contextmanager
def queue_pump(product: Product, *, config: HostConfig | None = None) -> Iterator[QueuePump]:
    """The local host's pump feeding the app's queue trigger from the product's queue."""
    spec = next(f for f in _functions(product) if isinstance(f, QueueFunction))
    spec = dataclasses.replace(spec, queue_name=product.env["SYNC_QUEUE_NAME"])
    pump = QueuePump(spec, product.env["AzureWebJobsStorage"], config or fast_host_config())
    pump.start()
    try:
        yield pump
    finally:
        pump.stop()


@contextmanager
def timer(product: Product, name: str, schedule: str) -> Iterator[TimerRunner]:
    """The local host's runner for the app's timer function ``name`` on ``schedule``."""
    spec = next(f for f in _functions(product) if isinstance(f, TimerFunction) and f.name == name)
    runner = TimerRunner(dataclasses.replace(spec, schedule=schedule))
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


def wait_for(check: Callable[[], Any], *, timeout: float = 60.0, every: float = 0.2, what: str = "") -> Any:
    """``check()``'s first truthy answer; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
        time.sleep(every)


# -- a fleet of linked techs ---------------------------------------------------------------------


@dataclass(frozen=True)
class FleetTech:
    syncro_user_id: int
    email: str
    oid: str
    calendar_id: str


def seed_fleet(product: Product, count: int, *, first_id: int = 1_500_000) -> list[FleetTech]:
    """``count`` techs in all three simulators, each linked (two-way on) as the OAuth callback
    leaves a link: the tech's MSAL cache (from the password grant) encrypted in the token store,
    and the link row. Faster than the sign-in pages, whose Syncro user lookup costs 1 + N requests."""
    import services

    tag = uuid.uuid4().hex[:6]
    users = [
        {"upn": f"fleet{n}.{tag}@contoso.example", "password": product.secrets.password, "name": f"Fleet Tech {n}"}
        for n in range(count)
    ]
    seeded = product.sim("identity").seed({"users": users})["users"]
    mailboxes = product.sim("graph").seed(
        {
            "mailboxes": [
                {
                    "oid": user["oid"],
                    "email": user["email"],
                    "upn": user["upn"],
                    "mail": user["mail"],
                    "name": user["name"],
                    "tenant_id": user["tenant_id"],
                    "calendars": [{"name": "Calendar", "is_default": True}],
                }
                for user in seeded
            ]
        }
    )["mailboxes"]
    techs = [
        FleetTech(first_id + n, user["email"], user["oid"], box["calendars"]["Calendar"])
        for n, (user, box) in enumerate(zip(seeded, mailboxes, strict=True))
    ]
    product.sim("syncro").seed(
        {
            "users": [
                {"id": t.syncro_user_id, "email": t.email, "full_name": f"Fleet Tech {n}", "group": "Techs"}
                for n, t in enumerate(techs)
            ]
        }
    )
    settings = _settings()
    authority = product.env["MS_AUTHORITY"]  # the demo tenant's, as the product signs in at
    http = msal_session(product.sim_url("identity"), str(product.tls.ca_bundle))
    discovery: dict[str, Any] = {}
    tokens, links = services.token_service(), product.storage().links
    for tech in techs:
        cache = msal.SerializableTokenCache()
        app = msal.ConfidentialClientApplication(
            settings.ms_client_id,
            client_credential=settings.ms_client_secret,
            authority=authority,
            token_cache=cache,
            http_client=http,
            http_cache=discovery,
            instance_discovery=False,
        )
        result = app.acquire_token_by_username_password(
            tech.email, product.secrets.password, scopes=["Calendars.ReadWrite", "User.Read"]
        )
        assert "access_token" in result, result
        [account] = app.get_accounts()
        tokens.save_cache(tech.syncro_user_id, cache)
        links.create_link(
            Link(
                syncro_user_id=tech.syncro_user_id,
                email=tech.email,
                ms_account_id=account["home_account_id"],
                ms_username=account["username"],
                ms_tenant_id=demo.TENANT_ID,
                calendar_id=tech.calendar_id,
                calendar_name="Calendar",
                two_way=True,
                status=LinkStatus.ACTIVE,
                linked_at=datetime.now(UTC) - timedelta(minutes=1),
            )
        )
    return techs


def _settings() -> Any:
    from settings import get_settings

    return get_settings()


def appointment(tech: int, summary: str, *, days: int = 1, hour: int = 9) -> dict[str, Any]:
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days, hours=hour)
    return {
        "summary": summary,
        "start_at": start.isoformat().replace("+00:00", "Z"),
        "end_at": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "user_id": tech,
        "user_ids": [tech],
    }


def outlook_subjects(product: Product, oid: str) -> list[str]:
    """Subjects of the events in a mailbox, read in-process from the Graph simulator."""
    return [str(event.get("subject")) for event in product.sim("graph").stored_events(oid)]


# -- local host processes ------------------------------------------------------------------------


@dataclass
class HostProcess:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
        return lines

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_host_process(product: Product, log_dir: Path, *, name: str, **settings: str) -> HostProcess:
    """``python -m local.host`` serving function_app.py with the product's app settings (and
    ``settings``), every timer parked on NEVER unless ``settings`` says otherwise. Returns once
    its HTTP side answers; its JSON log lines go to ``log_dir/<name>.log``."""
    import requests

    port = free_port()
    schedules = {
        key: NEVER
        for key in ("SYNCRO_POLL_SCHEDULE", "RECONCILE_SCHEDULE", "SUBSCRIPTION_UPKEEP_SCHEDULE", "CLEANUP_SCHEDULE")
    }
    env = {
        **os.environ,
        **product.env,
        **schedules,
        **settings,
        "LOCAL_FUNCTION_KEY": product.function_key,
        "LOCAL_MASTER_KEY": product.master_key,
    }
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.host", "--port", str(port), "--settings", str(log_dir / "absent.json")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    host = HostProcess(process, f"http://127.0.0.1:{port}", log_path)

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"host {name} exited: {log_path.read_text()[-2000:]}")
        try:
            return requests.get(f"{host.url}/api/health", timeout=2).status_code < 500
        except requests.RequestException:
            return False

    try:
        wait_for(answers, timeout=60, every=0.3, what=f"host {name} to answer")
    except BaseException:
        host.stop()
        raise
    return host


def job_lines(hosts: list[HostProcess]) -> list[dict[str, Any]]:
    """Every job's log line from the hosts' logs (see realtime.jobs._log)."""
    return [line for host in hosts for line in host.log_lines() if line.get("logger") == "realtime.jobs"]
