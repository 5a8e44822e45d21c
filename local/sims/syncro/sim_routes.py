"""The Syncro simulator's own ``/_sim/...`` routes, beside the shared ones of ``control.py``.

- ``GET/PATCH /_sim/settings``              read or change SyncroSettings (400 on unknown fields)
- ``GET  /_sim/appointments``               every stored appointment, flat and whole: the API's fields
                                            plus user_id, user_ids and appointment_type_id
- ``DELETE /_sim/appointments``             delete every appointment (users, tokens, customers,
                                            tickets and settings stay): a clean calendar between tests
- ``GET  /_sim/appointments/{id}``          one whole stored appointment (404 when missing)
- ``POST /_sim/appointments``               create as a dispatcher in Syncro's UI (fires notifications)
- ``PUT/DELETE /_sim/appointments/{id}``    change or delete as a dispatcher (partial PUT); writes
                                            answer ``{"appointment": <whole record>}``
- ``GET/DELETE /_sim/notifications``        Notification Center deliveries, or forget them
- ``POST /_sim/notifications/pause``        hold deliveries (they stay pending) until ``/release``
- ``POST /_sim/notifications/drop``         ``{"count": n}``: record the next n as dropped, send nothing
- ``DELETE /_sim/tokens/{token}``           revoke an API token (its user deleted it): it answers
                                            401 from then on; 404 when there is no such token
- ``GET  /_sim/rate_limit``                 requests counted per client in the current window, and
                                             ``busiest_minute``: the most API requests (all clients)
                                             that arrived within any 60 s, and when that minute began
Dispatcher actions bypass tokens and the rate limit: they are what people do in Syncro's UI.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.sims.syncro import render
from local.sims.syncro.validation import Rules

if TYPE_CHECKING:
    from local.sims.syncro.sim import SyncroSim


class SimRoutes:
    def __init__(self, sim: SyncroSim) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        return [
            Route("/_sim/settings", self.settings, methods=["GET", "PATCH"]),
            Route("/_sim/appointments", self.appointments, methods=["GET", "POST", "DELETE"]),
            Route("/_sim/appointments/{appointment_id:int}", self.appointment, methods=["GET", "PUT", "DELETE"]),
            Route("/_sim/notifications", self.notifications, methods=["GET", "DELETE"]),
            Route("/_sim/notifications/drop", self.drop_notifications, methods=["POST"]),
            Route("/_sim/notifications/pause", self.pause_notifications, methods=["POST"]),
            Route("/_sim/notifications/release", self.release_notifications, methods=["POST"]),
            Route("/_sim/rate_limit", self.rate_limit, methods=["GET"]),
            Route("/_sim/tokens/{token}", self.revoke_token, methods=["DELETE"]),
        ]

    async def revoke_token(self, request: Request) -> Response:
        if not self.sim.store.revoke_token(request.path_params["token"]):
            return JSONResponse({"error": "no such token"}, status_code=404)
        return Response(status_code=204)

    async def settings(self, request: Request) -> Response:
        if request.method == "PATCH":
            body = await _json(request)
            try:
                self.sim.update_settings(body)
            except ValueError as error:
                return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse(self.sim.settings.to_dict())

    async def appointments(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"appointments": self.sim.store.all_appointments_json()})
        if request.method == "DELETE":
            ids = [record["id"] for record in self.sim.store.all_appointments_json(full=False)]
            return JSONResponse({"deleted": sum(self.sim.delete_appointment(int(i)) for i in ids)})
        params = await _json(request)
        if not isinstance(params, dict):
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        rules = Rules(creating=True, require_start=True, require_end=self.sim.settings.end_at_required)
        result = self.sim.create_appointment(params, rules=rules, creator=None)
        if result.errors or result.appointment_id is None:
            return JSONResponse(render.syncro_error(result.errors or [], params), status_code=422)
        return JSONResponse({"appointment": self._whole(result.appointment_id)}, status_code=201)

    async def appointment(self, request: Request) -> Response:
        appointment_id = request.path_params["appointment_id"]
        if request.method == "GET":
            record = self.sim.store.appointment_json(appointment_id, full=True)
            return JSONResponse(record) if record else JSONResponse({"error": "Not found"}, status_code=404)
        if request.method == "DELETE":
            if not self.sim.delete_appointment(appointment_id):
                return JSONResponse({"error": "Not found"}, status_code=404)
            return JSONResponse({"message": "deleted"})
        params = await _json(request)
        if not isinstance(params, dict):
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        result = self.sim.update_appointment(appointment_id, params)
        if result is None:
            return JSONResponse({"error": "Not found"}, status_code=404)
        if result.errors or result.appointment_id is None:
            return JSONResponse(render.syncro_error(result.errors or [], params), status_code=422)
        return JSONResponse({"appointment": self._whole(result.appointment_id)})

    def _whole(self, appointment_id: int) -> dict[str, Any] | None:
        return self.sim.store.appointment_json(appointment_id, full=True)

    async def notifications(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.sim.notifications.clear()
            return Response(status_code=204)
        return JSONResponse({"notifications": self.sim.notifications.deliveries()})

    async def drop_notifications(self, request: Request) -> Response:
        body = await _json(request)
        count = body.get("count") if isinstance(body, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            return JSONResponse({"error": "expected {'count': n}"}, status_code=400)
        self.sim.notifications.drop_next(count)
        return JSONResponse({"drop_next": count})

    async def pause_notifications(self, request: Request) -> Response:
        self.sim.notifications.pause()
        return JSONResponse({"paused": True})

    async def release_notifications(self, request: Request) -> Response:
        self.sim.notifications.release()
        return JSONResponse({"paused": False})

    async def rate_limit(self, request: Request) -> Response:
        settings = self.sim.settings
        seen, busiest, began = self.sim.rate_limiter.busiest()
        return JSONResponse(
            {
                "limit": settings.rate_limit_per_minute,
                "window": settings.rate_limit_window,
                "clients": self.sim.rate_limiter.usage(),
                "requests_seen": seen,
                "busiest_minute": {"requests": busiest, "from": began},
            }
        )


async def _json(request: Request) -> Any:
    """The body as JSON, or None when it is not JSON (answered as 400 by the caller)."""
    try:
        return json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
