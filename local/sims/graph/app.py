"""``GraphSim``: the Microsoft Graph simulator assembled as a Starlette app.

Everything under ``/v1.0`` goes through one dispatcher (also used by ``$batch``); the shared
control routes and the Graph-specific ``/_sim/...`` routes sit beside it.
"""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from local.sims.control import ControlMiddleware, SimControl, control_routes
from local.sims.graph.batch import BatchRunner
from local.sims.graph.context import GraphRequest
from local.sims.graph.delta import DeltaTracker
from local.sims.graph.dispatch import GraphDispatcher
from local.sims.graph.errors import GraphError, GraphResponse, error_body, fault_error_body
from local.sims.graph.events import EventRoutes
from local.sims.graph.gate import MailboxThrottle
from local.sims.graph.notifications import Notifier
from local.sims.graph.router import GraphRouter
from local.sims.graph.seed import seed_store
from local.sims.graph.settings import GraphSettings
from local.sims.graph.simroutes import sim_routes, stored_events
from local.sims.graph.store import GraphStore
from local.sims.graph.subscriptions import SubscriptionRoutes
from local.sims.tokens import TokenIssuer

JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
ALL_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS"]


class GraphSim:
    """The Graph simulator; ``app`` is the ASGI app to serve (e.g. with ``serve_in_thread``)."""

    def __init__(
        self,
        *,
        control: SimControl,
        issuer: TokenIssuer,
        settings: GraphSettings | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        self.control = control
        self.settings = settings or GraphSettings()
        self._initial_settings = dataclasses.replace(self.settings)
        clock = control.clock
        self.store = GraphStore(clock, self.settings)
        self.notifier = Notifier(self.settings, clock, ca_bundle)
        self.throttle = MailboxThrottle(clock, self.settings)
        router = GraphRouter()
        EventRoutes(self.store, self.settings).register(router)
        self.delta = DeltaTracker(self.store, self.settings, clock)
        self.delta.register(router)
        self.subscriptions = SubscriptionRoutes(self.store, self.settings, clock, self.notifier, ca_bundle)
        self.subscriptions.register(router)
        self.dispatcher = GraphDispatcher(
            router=router, store=self.store, issuer=issuer, clock=clock, settings=self.settings, throttle=self.throttle
        )
        self.batch = BatchRunner(self.dispatcher, self.settings, control)
        routes = [
            *control_routes(control, reset=self.reset, seed=self.seed),
            *sim_routes(self),
            Route("/v1.0/{path:path}", self._graph, methods=ALL_METHODS),
            Route("/{path:path}", self._unknown_version, methods=ALL_METHODS),
        ]
        starlette = Starlette(routes=routes, exception_handlers={Exception: self._crash})
        self.app = ControlMiddleware(starlette, control, fault_body=lambda rule: fault_error_body(rule.status))

    # --- Python-level controls (same process) ------------------------------------------------
    def seed(self, payload: dict) -> dict:
        """Load mailboxes, calendars and events (format in seed.py); ValueError on bad input."""
        try:
            return seed_store(self.store, payload)
        except GraphError as error:
            raise ValueError(f"{error.code}: {error.message}") from None

    def reset(self) -> None:
        self.store.clear()
        self.delta.reset()
        self.subscriptions.reset()
        self.notifier.clear()
        self.throttle.reset()
        self.settings.apply(self._initial_settings.to_dict())

    def stored_events(self, oid: str) -> list[dict[str, Any]]:
        return stored_events(self, oid) or []

    def sent_mail(self, oid: str) -> list[dict[str, Any]]:
        with self.store.lock:
            mailbox = self.store.mailboxes.get(oid)
            return [dataclasses.asdict(m) for m in mailbox.sent] if mailbox else []

    def close(self) -> None:
        """Stop the notification threads."""
        self.notifier.stop()

    # --- HTTP ------------------------------------------------------------------------------
    async def _graph(self, request: Request) -> Response:
        graph_request = GraphRequest(
            method=request.method,
            path="/" + request.path_params["path"],
            query=dict(request.query_params),
            headers=_headers(request),
            body=await request.body(),
            base_url=f"{request.url.scheme}://{request.url.netloc}",
        )
        if graph_request.path.lower() == "/$batch" and request.method == "POST":
            response, template = await self._batch(graph_request), "/v1.0/$batch"
        else:
            response, template = await self.dispatcher.dispatch(graph_request)
        # The counters name requests by Graph's route template, not by our catch-all route.
        request.scope["route"] = SimpleNamespace(path=template)
        return _to_http(response)

    async def _batch(self, request: GraphRequest) -> GraphResponse:
        try:
            return await self.batch.run(request)
        except GraphError as error:
            return GraphResponse(error.status, error_body(error.code, error.message), dict(error.headers))

    async def _unknown_version(self, request: Request) -> Response:
        segment = request.url.path.strip("/").split("/")[0]
        body = error_body("BadRequest", f"Invalid version: {segment}")
        return _to_http(GraphResponse(400, body))

    async def _crash(self, request: Request, exc: Exception) -> Response:
        return _to_http(GraphResponse(500, error_body("generalException", "An internal server error occurred.")))


def _headers(request: Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _to_http(response: GraphResponse) -> Response:
    if response.body is None:
        return Response(status_code=response.status, headers=response.headers)
    content = json.dumps(response.body, separators=(",", ":"))
    headers = {"Content-Type": JSON_TYPE, "OData-Version": "4.0", **response.headers}
    return Response(content, status_code=response.status, headers=headers)
