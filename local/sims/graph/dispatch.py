"""Runs one Graph request through everything before and around its handler: routing, the token,
its scopes, the user in the path, per-mailbox throttling and simulated latency. HTTP requests and
``$batch`` steps both come through here, so both meet the same rules."""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid

from local.sims.control import SimClock
from local.sims.graph.context import Ctx, GraphRequest, parse_prefer
from local.sims.graph.errors import GraphError, GraphResponse, error_body
from local.sims.graph.gate import MailboxThrottle, authenticate, require_scope
from local.sims.graph.model import Mailbox
from local.sims.graph.router import GraphRouter, Match
from local.sims.graph.settings import GraphSettings
from local.sims.graph.store import GraphStore
from local.sims.tokens import TokenIssuer

log = logging.getLogger(__name__)
THROTTLED_ACCESS = {"read", "write", "user"}


class GraphDispatcher:
    def __init__(
        self,
        *,
        router: GraphRouter,
        store: GraphStore,
        issuer: TokenIssuer,
        clock: SimClock,
        settings: GraphSettings,
        throttle: MailboxThrottle,
    ) -> None:
        self.router = router
        self.store = store
        self.issuer = issuer
        self.clock = clock
        self.settings = settings
        self.throttle = throttle

    async def dispatch(self, request: GraphRequest) -> tuple[GraphResponse, str]:
        """The response and the route template it matched (the raw path when none did)."""
        request_id = str(uuid.uuid4())
        client_request_id = request.header("client-request-id") or request_id
        template = "/v1.0" + request.path
        try:
            match = self.router.match(request.method, request.path)
            template = "/v1.0" + match.template
            response = await self._authorised(request, match)
        except GraphError as error:
            body = error_body(error.code, error.message, request_id=request_id, client_request_id=client_request_id)
            response = GraphResponse(error.status, body, dict(error.headers))
        except Exception:
            # Belt and braces: a bug in the simulator still answers in Graph's shape.
            log.exception("Graph simulator failed on %s %s", request.method, request.path)
            body = error_body(
                "generalException",
                "An internal server error occurred.",
                request_id=request_id,
                client_request_id=client_request_id,
            )
            response = GraphResponse(500, body)
        response.headers.setdefault("request-id", request_id)
        response.headers.setdefault("client-request-id", client_request_id)
        return response, template

    async def _authorised(self, request: GraphRequest, match: Match) -> GraphResponse:
        route, params = match.route, match.params
        claims = authenticate(self.issuer, self.clock, request.header("authorization"))
        require_scope(claims, route.access)
        mailbox = self.store.mailbox_for_claims(claims)
        if "user" in params:
            self._check_user(mailbox, params["user"])
        prefer = parse_prefer([request.header("prefer") or ""])
        ctx = Ctx(request=request, params=params, claims=claims, mailbox=mailbox, prefer=prefer)
        throttled = route.access in THROTTLED_ACCESS
        if throttled:
            self.throttle.acquire(mailbox.oid)
        try:
            if self.settings.request_latency_seconds > 0:
                await asyncio.sleep(self.settings.request_latency_seconds)
            result = route.handler(ctx)
            return await result if inspect.isawaitable(result) else result
        finally:
            if throttled:
                self.throttle.release(mailbox.oid)

    def _check_user(self, mailbox: Mailbox, user: str) -> None:
        """Delegated tokens reach only their own mailbox here."""
        target = self.store.find_mailbox(user)
        if target is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
        if target is not mailbox:
            raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
