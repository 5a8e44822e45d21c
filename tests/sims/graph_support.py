"""Helpers of the Graph simulator tests: a handle on the simulator served over real TLS, tokens
minted directly with TokenIssuer, and a small webhook receiver (plain http on loopback).
The fixtures live in graph_fixtures.py."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import requests
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from local.serve import RunningServer
from local.sims.control import SimControl
from local.sims.graph import GraphSim
from local.sims.tokens import TokenIssuer

TENANT = "11111111-2222-3333-4444-555555555555"
USER = "aaaaaaaa-0000-0000-0000-000000000001"
OTHER_USER = "aaaaaaaa-0000-0000-0000-000000000002"
READ_WRITE = ["Calendars.ReadWrite", "User.Read"]
PROP_ID = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name SyncroAppointmentId"
# The calendarView window the series and delta tests read.
WINDOW = {"startDateTime": "2030-01-01T00:00:00Z", "endDateTime": "2030-02-01T00:00:00Z"}


@dataclass
class GraphHarness:
    sim: GraphSim
    server: RunningServer
    control: SimControl
    issuer: TokenIssuer
    ca_bundle: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def v1(self) -> str:
        return f"{self.server.url}/v1.0"

    def token(
        self,
        *,
        oid: str = USER,
        scopes: list[str] | None = None,
        lifetime: int = 3600,
        username: str = "tech@contoso.example",
    ) -> str:
        return self.issuer.issue(
            tenant_id=TENANT,
            object_id=oid,
            username=username,
            name="Tess Tech",
            scopes=READ_WRITE if scopes is None else scopes,
            client_id="app-client-id",
            now=self.control.clock.timestamp(),
            lifetime_seconds=lifetime,
        )

    def session(self, token: str | None = None, **kwargs: Any) -> requests.Session:
        session = self.plain()
        session.headers["Authorization"] = f"Bearer {token or self.token(**kwargs)}"
        return session

    def plain(self) -> requests.Session:
        session = requests.Session()
        # REQUESTS_CA_BUNDLE in the environment would otherwise override session.verify.
        session.trust_env = False
        session.verify = self.ca_bundle
        return session

    def settings(self, **changes: Any) -> None:
        response = self.plain().patch(f"{self.url}/_sim/settings", json=changes)
        assert response.status_code == 200, response.text


def event_body(
    subject: str = "Visit",
    start: str = "2030-01-07T10:00:00",
    end: str = "2030-01-07T11:00:00",
    zone: str = "UTC",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": start, "timeZone": zone},
        "end": {"dateTime": end, "timeZone": zone},
        **extra,
    }


def initial_delta_url(graph: GraphHarness) -> str:
    """The URL that starts a calendarView/delta round over WINDOW."""
    return (
        f"{graph.v1}/me/calendarView/delta?startDateTime={WINDOW['startDateTime']}&endDateTime={WINDOW['endDateTime']}"
    )


def delta_round(session: requests.Session, url: str, page_size: int = 0) -> tuple[list[list[dict[str, Any]]], str]:
    """Every page of one delta round, and its deltaLink (at most 50 pages)."""
    headers = {"Prefer": f"odata.maxpagesize={page_size}"} if page_size else {}
    pages = []
    for _ in range(50):
        response = session.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["value"])
        if "@odata.deltaLink" in body:
            return pages, body["@odata.deltaLink"]
        url = body["@odata.nextLink"]
    raise AssertionError("the delta round never ended")


def expiry(graph: GraphHarness, minutes: float) -> str:
    """An expirationDateTime ``minutes`` after the simulator clock's now, written as Graph writes it."""
    moment = graph.control.clock.now() + timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def subscription_body(
    graph: GraphHarness,
    receiver: Receiver,
    *,
    resource: str = "/me/events",
    minutes: float = 4000,
    lifecycle: bool = True,
    change_type: str = "created,updated,deleted",
) -> dict[str, Any]:
    """A POST /subscriptions body whose change (and, with ``lifecycle``, lifecycle) URL is ``receiver``'s."""
    body = {
        "changeType": change_type,
        "notificationUrl": f"{receiver.url}/api/graph/notifications",
        "resource": resource,
        "expirationDateTime": expiry(graph, minutes),
        "clientState": "s3cret",
    }
    if lifecycle:
        body["lifecycleNotificationUrl"] = f"{receiver.url}/api/graph/lifecycle"
    return body


@dataclass
class Receiver:
    """A webhook endpoint: answers validation tokens and records notifications."""

    server: RunningServer | None = None
    validation: str = "echo"  # echo | wrong | error | html | slow
    fail_next: int = 0  # answer this many notifications with 500
    delay_seconds: float = 0.0  # answer notifications this late
    received: list[dict[str, Any]] = field(default_factory=list)
    validations: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    async def endpoint(self, request: Request) -> Response:
        token = request.query_params.get("validationToken")
        if token is not None:
            return self._validate(token)
        body = await request.json()
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        with self.cond:
            if self.fail_next > 0:
                self.fail_next -= 1
                return Response(status_code=500)
            self.received.append({"path": request.url.path, "body": body})
            self.cond.notify_all()
        return Response(status_code=202)

    def _validate(self, token: str) -> Response:
        self.validations.append(token)
        if self.validation == "wrong":
            return PlainTextResponse("not the token")
        if self.validation == "error":
            return PlainTextResponse("no", status_code=500)
        if self.validation == "html":
            return Response(token, media_type="text/html")
        return PlainTextResponse(token)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """At least ``count`` notification POSTs (bounded wait; the simulator delivers on a thread)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.received) < count and time.monotonic() < deadline:
                self.cond.wait(0.05)
            return list(self.received)
