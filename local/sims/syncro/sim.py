"""``SyncroSim``: the Syncro REST API simulator, wired from its parts.

Request path: ControlMiddleware (counters, injected faults) -> RateLimitMiddleware (180/min per
client IP, ``/_sim/`` exempt) -> Starlette routes (``/api/v1/...`` and ``/_sim/...``).
"""

from __future__ import annotations

import math
import threading
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from local.sims.control import ControlMiddleware, FaultRule, SimControl, control_routes
from local.sims.syncro import render
from local.sims.syncro.api import SyncroApi
from local.sims.syncro.notifications import NotificationCenter
from local.sims.syncro.rate_limit import RateLimiter
from local.sims.syncro.settings import SyncroSettings
from local.sims.syncro.sim_routes import SimRoutes
from local.sims.syncro.store import SyncroStore, WriteResult
from local.sims.syncro.validation import Rules

# Syncro's UI edits whichever fields the dispatcher touched.
DISPATCHER_UPDATE = Rules(creating=False, require_start=False, require_end=False)


class SyncroSim:
    """A fake Syncro account served over HTTP; see the package docstring for what it covers."""

    def __init__(
        self, *, control: SimControl, settings: SyncroSettings | None = None, ca_bundle: str | None = None
    ) -> None:
        self.control = control
        self.settings = settings or SyncroSettings()
        self._settings_lock = threading.Lock()
        self.store = SyncroStore(control.clock, lambda: self.settings)
        self.rate_limiter = RateLimiter(control.clock)
        self.notifications = NotificationCenter(clock=control.clock, ca_bundle=ca_bundle)
        routes = [
            *SyncroApi(self).routes(),
            *SimRoutes(self).routes(),
            *control_routes(control, reset=self.reset, seed=self.seed),
        ]
        starlette = Starlette(
            routes=routes,
            exception_handlers={HTTPException: self._http_error, Exception: self._unexpected_error},
        )
        self.app = ControlMiddleware(RateLimitMiddleware(starlette, self), control, self._fault_body)

    # -- control ----------------------------------------------------------------------------

    def seed(self, payload: Any) -> dict[str, Any]:
        """Add the seed's records (format in ``store.SyncroStore.seed``); raises ValueError."""
        return self.store.seed(payload)

    def reset(self) -> None:
        """Forget all data, rate-limit counts and notifications; settings are kept."""
        self.store.clear()
        self.rate_limiter.reset()
        self.notifications.clear()

    def update_settings(self, changes: Any) -> SyncroSettings:
        """Apply a settings patch; raises ValueError on an unknown field or a bad value."""
        with self._settings_lock:
            self.settings = self.settings.patched(changes)
            return self.settings

    def close(self) -> None:
        self.notifications.close()

    # -- dispatcher actions (also used by the API's POST) ---------------------------------------

    def create_appointment(self, params: dict[str, Any], *, rules: Rules, creator: int | None) -> WriteResult:
        """Create and fire the Notification Center POSTs; 422 messages come back in ``errors``."""
        result = self.store.create(params, rules=rules, creator=creator)
        if result.appointment is not None:
            self.notifications.appointment_created(
                result.appointment, assignees=result.assignees, settings=self.settings
            )
        return result

    def update_appointment(
        self, appointment_id: int, params: dict[str, Any], *, rules: Rules = DISPATCHER_UPDATE
    ) -> WriteResult | None:
        """Change an appointment (a dispatcher's partial edit by default); None when it is missing."""
        return self.store.update(appointment_id, params, rules=rules)

    def delete_appointment(self, appointment_id: int) -> bool:
        """Delete as a dispatcher would; False when it was already gone."""
        return self.store.delete(appointment_id)

    # -- error answers ------------------------------------------------------------------------

    async def _http_error(self, request: Request, error: Exception) -> Response:
        # Rails answers an unknown route (or an unrouted method) with 404.
        return JSONResponse(self.settings.not_found_body, status_code=404)

    async def _unexpected_error(self, request: Request, error: Exception) -> Response:
        return JSONResponse({"success": False, "error": f"simulator bug: {type(error).__name__}"}, status_code=500)

    def _fault_body(self, rule: FaultRule) -> Any:
        """An injected fault answers in Syncro's shape for its status."""
        settings = self.settings
        if rule.status == 401:
            return settings.unauthorized_body
        if rule.status == 404:
            return settings.not_found_body
        if rule.status == 422:
            return render.syncro_error(["Injected validation failure"], {})
        if rule.status == 429:
            return "Retry later\n"
        return {"error": f"injected {rule.status}"}


class RateLimitMiddleware:
    """Answers 429 once a client IP has used its requests for the minute (``/_sim/`` is free)."""

    def __init__(self, app: Any, sim: SyncroSim) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim/"):
            await self.app(scope, receive, send)
            return
        settings = self.sim.settings
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.sim.rate_limiter.check(
            client, limit=settings.rate_limit_per_minute, window=settings.rate_limit_window
        )
        if wait is None:
            await self.app(scope, receive, send)
            return
        headers = {"Retry-After": str(max(1, math.ceil(wait)))} if settings.retry_after_header else {}
        response = PlainTextResponse("Retry later\n", status_code=429, headers=headers)
        await response(scope, receive, send)
