"""OpenID discovery, signing keys, MSAL's user-realm lookup and logout."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from local.sims.identity import errors
from local.sims.identity.directory import PERSONAL_TENANT_ID, Authority
from local.sims.identity.http_input import base_url, correlation_id
from local.sims.identity.pages import error_page
from local.sims.identity.state import IdentityState


def discovery_routes(state: IdentityState) -> list[Route]:
    def tenant_not_found(request: Request) -> Response:
        return errors.tenant_not_found(request.path_params["tenant"]).response(
            now=state.now_datetime(), correlation_id=correlation_id(request)
        )

    def resolve(request: Request) -> Authority | None:
        with state.lock:
            return state.directory.resolve_authority(request.path_params["tenant"])

    async def openid_configuration(request: Request) -> Response:
        authority = resolve(request)
        if authority is None:
            return tenant_not_found(request)
        return JSONResponse(openid_document(base_url(request), authority))

    async def keys(request: Request) -> Response:
        authority = resolve(request)
        if authority is None:
            return tenant_not_found(request)
        return JSONResponse(state.minter.jwks(issuer=_issuer(base_url(request), authority)))

    async def user_realm(request: Request) -> Response:
        with state.lock:
            user = state.directory.user(request.path_params["username"])
        return JSONResponse(realm_document(user.personal if user else None, request.path_params["username"]))

    async def logout(request: Request) -> Response:
        target = request.query_params.get("post_logout_redirect_uri")
        if target:
            return RedirectResponse(target, status_code=302)
        return error_page("You signed out of your account.", status=200)

    return [
        Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
        Route("/{tenant}/discovery/v2.0/keys", keys, methods=["GET"]),
        Route("/common/userrealm/{username:path}", user_realm, methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/logout", logout, methods=["GET"]),
    ]


def _issuer(base: str, authority: Authority) -> str:
    # /common and /organizations publish a template issuer; the id_token carries the user's tenant.
    return f"{base}/{authority.tenant_id or '{tenantid}'}/v2.0"


def openid_document(base: str, authority: Authority) -> dict[str, Any]:
    """The v2.0 discovery document, shaped like login.microsoftonline.com's."""
    segment = authority.tenant_id if authority.tenant_id not in (None, PERSONAL_TENANT_ID) else authority.segment
    prefix = f"{base}/{segment}"
    return {
        "token_endpoint": f"{prefix}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{prefix}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": _issuer(base, authority),
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{prefix}/oauth2/v2.0/authorize",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{prefix}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "preferred_username",
            "name",
            "tid",
            "ver",
            "at_hash",
            "c_hash",
            "email",
        ],
        "tenant_region_scope": None if authority.tenant_id is None else "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    }


def realm_document(personal: bool | None, username: str) -> dict[str, Any]:
    """What ``/common/userrealm/{username}`` says: Managed (work), MSA (personal) or Unknown."""
    document: dict[str, Any] = {"ver": "1.0", "cloud_instance_name": "microsoftonline.com"}
    if personal is None:
        document["account_type"] = "Unknown"
    elif personal:
        document.update(account_type="MSA", domain_name="live.com")
    else:
        document.update(
            account_type="Managed",
            domain_name=username.split("@")[-1],
            cloud_audience_urn="urn:federation:MicrosoftOnline",
        )
    return document
