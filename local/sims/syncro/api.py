"""The ``/api/v1`` routes: the part of Syncro's REST API the product uses.

Wrappers differ by call, exactly as in the spec: a list is ``{"appointments": [{"appointment":
{...}}, ...], "meta": {...}}`` (items flat with ``list_items_wrapped`` off), POST and PUT answer
``{"appointment": {...}}``, GET by id answers the flat object. ``user_id``, ``user_ids`` and
``appointment_type_id`` are accepted but withheld from every response by default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.sims.syncro import render
from local.sims.syncro.model import User
from local.sims.syncro.requests_in import MalformedBody, page_number, params_of, token_of, truthy
from local.sims.syncro.store import ListQuery
from local.sims.syncro.times import parse_day
from local.sims.syncro.validation import Rules

if TYPE_CHECKING:
    from local.sims.syncro.sim import SyncroSim

PREFIX = "/api/v1"


class SyncroApi:
    def __init__(self, sim: SyncroSim) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        return [
            Route(f"{PREFIX}/me", self.me, methods=["GET"]),
            Route(f"{PREFIX}/users", self.users, methods=["GET"]),
            Route(f"{PREFIX}/users/{{user_id:int}}", self.user, methods=["GET"]),
            Route(f"{PREFIX}/settings", self.settings, methods=["GET"]),
            Route(f"{PREFIX}/appointment_types", self.appointment_types, methods=["GET"]),
            Route(f"{PREFIX}/appointments", self.list_appointments, methods=["GET"]),
            Route(f"{PREFIX}/appointments", self.create_appointment, methods=["POST"]),
            Route(f"{PREFIX}/appointments/{{appointment_id:int}}", self.get_appointment, methods=["GET"]),
            Route(f"{PREFIX}/appointments/{{appointment_id:int}}", self.update_appointment, methods=["PUT", "PATCH"]),
            Route(f"{PREFIX}/appointments/{{appointment_id:int}}", self.delete_appointment, methods=["DELETE"]),
        ]

    # -- helpers ----------------------------------------------------------------------------

    def _caller(self, request: Request) -> tuple[User, str] | Response:
        """The token's user, or the 401 answer."""
        token = token_of(request)
        user = self.sim.store.user_for_token(token) if token else None
        if user is None or token is None:
            return JSONResponse(self.sim.settings.unauthorized_body, status_code=401)
        return user, token

    def _not_found(self) -> Response:
        return JSONResponse(self.sim.settings.not_found_body, status_code=404)

    async def _params(self, request: Request) -> dict[str, Any] | Response:
        try:
            return await params_of(request)
        except MalformedBody:
            body = render.syncro_error(["Request body is not valid JSON"], {})
            return JSONResponse(body, status_code=self.sim.settings.malformed_json_status)

    # -- users and account ------------------------------------------------------------------

    async def me(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        user, token = caller
        return JSONResponse(self.sim.store.me_json(user, token))

    async def users(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        return JSONResponse({"users": self.sim.store.user_pairs()})

    async def user(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        record = self.sim.store.user_json(request.path_params["user_id"])
        return JSONResponse({"user": record}) if record else self._not_found()

    async def settings(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        return JSONResponse(self.sim.store.settings_json())

    async def appointment_types(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        user, _ = caller
        if self.sim.settings.appointment_types_require_admin and not user.admin:
            settings = self.sim.settings
            return JSONResponse(settings.forbidden_body, status_code=settings.forbidden_status)
        return JSONResponse({"appointment_types": self.sim.store.appointment_types_json()})

    # -- appointments -----------------------------------------------------------------------

    async def list_appointments(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        user, _ = caller
        query = request.query_params
        errors = [
            f"{label} is not a valid date"
            for name, label in (("date_from", "Date from"), ("date_to", "Date to"))
            if query.get(name) and parse_day(query[name]) is None
        ]
        if errors:
            return JSONResponse(render.syncro_error(errors, dict(query)), status_code=422)
        # "see-own never restricted": without View All, a user gets their own whatever they ask.
        only_own = truthy(query.get("mine")) or not user.view_all_appointments
        wanted = ListQuery(
            date_from=parse_day(query["date_from"]) if query.get("date_from") else None,
            date_to=parse_day(query["date_to"]) if query.get("date_to") else None,
            only_user=user.id if only_own else None,
            page=page_number(query.get("page")),
        )
        settings = self.sim.settings
        page, meta = self.sim.store.list_page(wanted, settings)
        items = [{"appointment": item} for item in page] if settings.list_items_wrapped else page
        body: dict[str, Any] = {"appointments": items}
        if settings.list_meta:
            body["meta"] = meta
        return JSONResponse(body)

    async def create_appointment(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        user, _ = caller
        params = await self._params(request)
        if isinstance(params, Response):
            return params
        settings = self.sim.settings
        rules = Rules(creating=True, require_start=True, require_end=settings.end_at_required)
        creator = user.id if settings.assign_creator_when_unassigned else None
        result = self.sim.create_appointment(params, rules=rules, creator=creator)
        if result.errors:
            return JSONResponse(render.syncro_error(result.errors, params), status_code=422)
        return JSONResponse({"appointment": result.appointment}, status_code=201)

    async def get_appointment(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        record = self.sim.store.appointment_json(request.path_params["appointment_id"])
        return JSONResponse(record) if record else self._not_found()

    async def update_appointment(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        params = await self._params(request)
        if isinstance(params, Response):
            return params
        settings = self.sim.settings
        rules = Rules(
            creating=False,
            require_start=settings.put_requires_start_at,
            require_end=False,
            reset_booleans=settings.put_resets_omitted_booleans,
        )
        result = self.sim.store.update(request.path_params["appointment_id"], params, rules=rules)
        if result is None:
            return self._not_found()
        if result.errors:
            return JSONResponse(render.syncro_error(result.errors, params), status_code=422)
        return JSONResponse({"appointment": result.appointment})

    async def delete_appointment(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        if not self.sim.store.delete(request.path_params["appointment_id"]):
            return self._not_found()
        return JSONResponse({"message": "deleted"})
