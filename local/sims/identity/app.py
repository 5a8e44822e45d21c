"""IdentitySim: the routes assembled into one Starlette app behind the shared ControlMiddleware."""

from __future__ import annotations

import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from local.sims.control import ControlMiddleware, FaultRule, SimControl, control_routes
from local.sims.identity import errors
from local.sims.identity.authorize import authorize_routes
from local.sims.identity.discovery import discovery_routes
from local.sims.identity.http_input import correlation_id
from local.sims.identity.settings import IdentitySettings
from local.sims.identity.sim_routes import sim_routes
from local.sims.identity.state import IdentityState
from local.sims.identity.token_endpoint import token_routes
from local.sims.tokens import TokenIssuer

log = logging.getLogger(__name__)


class IdentitySim:
    """The Microsoft identity platform (v2 endpoints) for the local stack and tests."""

    def __init__(self, *, control: SimControl, issuer: TokenIssuer, settings: IdentitySettings | None = None) -> None:
        self.control = control
        self.issuer = issuer
        self.state = IdentityState(control=control, issuer=issuer, settings=settings or IdentitySettings())
        routes = [
            *control_routes(control, reset=self.reset, seed=self.seed),
            *sim_routes(self.state),
            *discovery_routes(self.state),
            *authorize_routes(self.state),
            *token_routes(self.state),
        ]
        starlette = Starlette(routes=routes, exception_handlers={Exception: self._unexpected})
        self.app = ControlMiddleware(starlette, control, fault_body=self._fault_body)

    # --- Python-level control (tests in the same process) ---------------------------------

    def seed(self, payload: Any) -> dict[str, Any]:
        """Add tenants, users and apps; returns the users with their oids and tenant ids."""
        with self.state.lock:
            return self.state.directory.seed(payload)

    def reset(self) -> None:
        """Forget every tenant, user, app, grant and injected error; settings go back to the initial ones."""
        self.state.reset()

    @property
    def settings(self) -> IdentitySettings:
        with self.state.lock:
            return self.state.settings

    def update_settings(self, **changes: Any) -> IdentitySettings:
        with self.state.lock:
            self.state.settings = self.state.settings.updated(changes)
            return self.state.settings

    def users(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [user.public() for user in self.state.directory.users.values()]

    def token_requests(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.grants.log)

    # --- error answers ------------------------------------------------------------------

    def _fault_body(self, rule: FaultRule) -> Any:
        error = errors.server_error(rule.status) if rule.status >= 429 else errors.malformed_grant()
        return error.body(now=self.state.now_datetime(), correlation_id=None)

    async def _unexpected(self, request: Request, exc: Exception) -> Response:
        # Belt and braces: a bug still answers in AAD's shape rather than a bare traceback.
        log.exception("identity simulator error on %s %s", request.method, request.url.path)
        error = errors.AadError(90033, "A transient error has occurred. Please try again.", "server_error", status=500)
        return error.response(now=self.state.now_datetime(), correlation_id=correlation_id(request))
