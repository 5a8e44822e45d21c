"""The identity simulator's own ``/_sim/...`` routes (beside the shared control routes).

- ``GET/PATCH /_sim/settings``            IdentitySettings as JSON; 400 on unknown fields or bad values
- ``GET  /_sim/users``                    seeded users with oids and tenant ids
- ``POST /_sim/users/{email}/revoke``     revoke the user's refresh tokens (sign-in sessions)
- ``POST /_sim/users/{email}/password``   ``{"password": "..."}``: change it; earlier refresh tokens are revoked
- ``DELETE /_sim/users/{email}/consents`` forget the user's consents (refresh then answers AADSTS65001)
- ``GET  /_sim/tenants``                  seeded tenants with their ``user_consent`` setting
- ``PATCH /_sim/tenants/{tenant}``        ``{"user_consent": false}``: members may no longer consent themselves
- ``GET/DELETE /_sim/tenants/{tenant}/consents`` the tenant's admin consents (per app); DELETE withdraws them
- ``POST/GET/DELETE /_sim/token_errors``  AADSTS errors on demand
- ``GET/DELETE /_sim/token_requests``     the log of token requests (grant type, user, status, AADSTS code)
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.sims.identity.directory import Tenant
from local.sims.identity.injection import parse_rule
from local.sims.identity.state import IdentityState


def sim_routes(state: IdentityState) -> list[Route]:
    async def settings(request: Request) -> Response:
        if request.method == "PATCH":
            try:
                changes = await request.json()
                with state.lock:
                    state.settings = state.settings.updated(changes)
            except ValueError as error:
                return _bad(str(error))
        with state.lock:
            return JSONResponse(state.settings.to_dict())

    async def users(request: Request) -> Response:
        with state.lock:
            return JSONResponse({"users": [user.public() for user in state.directory.users.values()]})

    async def revoke(request: Request) -> Response:
        with state.lock:
            user = state.directory.find(request.path_params["email"])
            if user is None:
                return _no_user()
            user.tokens_valid_from = state.now()
            return JSONResponse({"revoked": user.key, "tokens_valid_from": state.now_datetime().isoformat()})

    async def password(request: Request) -> Response:
        try:
            new_password = (await request.json())["password"]
        except (ValueError, KeyError, TypeError):
            return _bad("expected {'password': '...'}")
        if not isinstance(new_password, str) or not new_password:
            return _bad("password must be a non-empty string")
        with state.lock:
            user = state.directory.find(request.path_params["email"])
            if user is None:
                return _no_user()
            # As in AAD, a password change moves TokensValidFrom: every earlier refresh token is revoked.
            user.password = new_password
            user.tokens_valid_from = state.now()
        return Response(status_code=204)

    async def consents(request: Request) -> Response:
        with state.lock:
            user = state.directory.find(request.path_params["email"])
            if user is None:
                return _no_user()
            state.grants.forget_user(user.key)
        return Response(status_code=204)

    async def tenants(request: Request) -> Response:
        with state.lock:
            return JSONResponse({"tenants": [tenant.public() for tenant in state.directory.tenants.values()]})

    async def tenant(request: Request) -> Response:
        try:
            changes = await request.json()
        except ValueError:
            return _bad("expected a JSON object")
        if not isinstance(changes, dict) or set(changes) - {"user_consent"}:
            return _bad("only user_consent can be changed")
        if not isinstance(changes.get("user_consent", True), bool):
            return _bad("user_consent must be true or false")
        with state.lock:
            found = _tenant(state, request.path_params["tenant"])
            if found is None:
                return _no_tenant()
            found.user_consent = changes.get("user_consent", found.user_consent)
            return JSONResponse(found.public())

    async def tenant_consents(request: Request) -> Response:
        with state.lock:
            found = _tenant(state, request.path_params["tenant"])
            if found is None:
                return _no_tenant()
            if request.method == "DELETE":
                state.grants.forget_tenant(found.id)
                return Response(status_code=204)
            grants = [
                {"client_id": client_id, "scopes": sorted(scopes)}
                for (tenant_id, client_id), scopes in state.grants.tenant_consents.items()
                if tenant_id == found.id
            ]
            return JSONResponse({"consents": grants})

    async def token_errors(request: Request) -> Response:
        if request.method == "DELETE":
            with state.lock:
                state.grants.injected.clear()
            return Response(status_code=204)
        if request.method == "POST":
            try:
                rule = parse_rule(await request.json())
            except ValueError as error:
                return _bad(str(error))
            with state.lock:
                state.grants.injected.append(rule)
            return JSONResponse({"added": rule.__dict__}, status_code=201)
        with state.lock:
            return JSONResponse({"token_errors": [rule.__dict__ for rule in state.grants.injected]})

    async def token_requests(request: Request) -> Response:
        with state.lock:
            if request.method == "DELETE":
                state.grants.log.clear()
                return Response(status_code=204)
            return JSONResponse({"token_requests": list(state.grants.log)})

    return [
        Route("/_sim/settings", settings, methods=["GET", "PATCH"]),
        Route("/_sim/users", users, methods=["GET"]),
        Route("/_sim/users/{email}/revoke", revoke, methods=["POST"]),
        Route("/_sim/users/{email}/password", password, methods=["POST"]),
        Route("/_sim/users/{email}/consents", consents, methods=["DELETE"]),
        Route("/_sim/tenants", tenants, methods=["GET"]),
        Route("/_sim/tenants/{tenant}", tenant, methods=["PATCH"]),
        Route("/_sim/tenants/{tenant}/consents", tenant_consents, methods=["GET", "DELETE"]),
        Route("/_sim/token_errors", token_errors, methods=["GET", "POST", "DELETE"]),
        Route("/_sim/token_requests", token_requests, methods=["GET", "DELETE"]),
    ]


def _bad(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=400)


def _tenant(state: IdentityState, name: str) -> Tenant | None:
    """A seeded tenant by id or domain (any case)."""
    wanted = name.lower()
    return next(
        (t for t in state.directory.tenants.values() if wanted in (t.id.lower(), (t.domain or "").lower())), None
    )


def _no_tenant() -> Response:
    return JSONResponse({"error": "no such tenant"}, status_code=404)


def _no_user() -> Response:
    return JSONResponse({"error": "no such user"}, status_code=404)
