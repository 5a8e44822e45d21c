"""``POST /{tenant}/oauth2/v2.0/token``: authorization_code (with PKCE), refresh_token and password.

Checks run in the order AAD's answers suggest: tenant, grant_type, client, client secret, then the
grant itself. Every failure is an AadError answered in AAD's JSON shape; every request is logged
for ``GET /_sim/token_requests``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.sims.identity import errors
from local.sims.identity.directory import PERSONAL_TENANT_ID, App, Authority, User
from local.sims.identity.errors import NO_STORE, AadError
from local.sims.identity.grants import AuthCode, RefreshGrant
from local.sims.identity.http_input import base_url, correlation_id, read_form
from local.sims.identity.injection import injected_error
from local.sims.identity.scopes import RequestedScopes, ScopeError, parse_scopes
from local.sims.identity.state import IdentityState


@dataclass
class TokenRequest:
    form: dict[str, str]
    authority: Authority
    app: App
    base_url: str
    now: float
    user: User | None = None  # known once the grant names one; used by the log


def token_routes(state: IdentityState) -> list[Route]:
    async def token(request: Request) -> Response:
        if request.method != "POST":
            return _answer(state, request, errors.post_only())
        try:
            form = await read_form(request)
        except AadError as error:
            return _answer(state, request, error)
        with state.lock:
            return _token(state, request, form)

    return [Route("/{tenant}/oauth2/v2.0/token", token, methods=["GET", "POST"])]


def _token(state: IdentityState, request: Request, form: dict[str, str]) -> Response:
    context: TokenRequest | None = None
    try:
        context = _context(state, request, form)
        handler = GRANTS[form["grant_type"]]
        body = handler(state, context)
    except AadError as error:
        _log(state, form, context, error.status, error.code)
        return _answer(state, request, error)
    _log(state, form, context, 200, None)
    return JSONResponse(body, headers=NO_STORE)


def _context(state: IdentityState, request: Request, form: dict[str, str]) -> TokenRequest:
    segment = request.path_params["tenant"]
    authority = state.directory.resolve_authority(segment)
    if authority is None:
        raise errors.tenant_not_found(segment)
    grant_type = form.get("grant_type", "")
    if not grant_type:
        raise errors.missing_parameter("grant_type")
    client_id, secret = _client_credentials(form, request.headers.get("authorization"))
    if not client_id:
        raise errors.missing_parameter("client_id")
    app = state.directory.apps.get(client_id)
    if app is None:
        raise errors.unknown_client(client_id, state.directory.tenant_name(authority.tenant_id))
    if grant_type not in GRANTS:
        raise errors.unsupported_grant_type(grant_type)
    _authenticate(app, secret)
    return TokenRequest(form=form, authority=authority, app=app, base_url=base_url(request), now=state.now())


def _client_credentials(form: dict[str, str], authorization: str | None) -> tuple[str, str | None]:
    """client_secret_post or client_secret_basic (RFC 6749 2.3.1: form-encoded id and secret)."""
    client_id, secret = form.get("client_id", ""), form.get("client_secret")
    if authorization and authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            basic_id, _, basic_secret = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return client_id, secret
        client_id = client_id or unquote_plus(basic_id)
        secret = secret if secret is not None else unquote_plus(basic_secret)
    return client_id, secret


def _authenticate(app: App, secret: str | None) -> None:
    if not app.confidential:
        if secret:
            raise errors.public_client_sent_secret()
        return
    if not secret:
        raise errors.secret_missing()
    if not hmac.compare_digest(secret.encode(), (app.client_secret or "").encode()):
        raise errors.secret_invalid(app.client_id)


# --- grants --------------------------------------------------------------------------------------


def _authorization_code(state: IdentityState, request: TokenRequest) -> dict[str, Any]:
    form = request.form
    raw_code = _required(form, "code")
    redirect_uri = _required(form, "redirect_uri")
    code = state.grants.codes.get(raw_code)
    if code is None:
        raise errors.malformed_grant()
    if code.client_id != request.app.client_id:
        raise errors.grant_for_other_client()
    if not _authority_accepts(request.authority, code.tenant_id):
        raise errors.code_for_other_tenant()
    if code.redeemed:
        raise errors.code_redeemed()
    if request.now - code.issued_at > state.settings.code_lifetime_seconds:
        raise errors.grant_expired()
    try:
        if redirect_uri != code.redirect_uri:
            raise errors.redirect_uri_mismatch(redirect_uri, code.redirect_uri)
        _check_pkce(code, form.get("code_verifier"))
    except AadError:
        code.redeemed = code.redeemed or state.settings.failed_redemption_burns_code
        raise
    user = _user(state, request, code.user_email)
    _injected(state, request, user, "authorization_code")
    code.redeemed = True
    return _issue(state, request, user, code.scopes, nonce=code.nonce)


def _authority_accepts(authority: Authority, tenant_id: str) -> bool:
    """A code may be redeemed at /common or at the tenant it was issued for, never at another tenant."""
    if authority.tenant_id is not None:
        return authority.tenant_id == tenant_id
    return authority.allows_personal if tenant_id == PERSONAL_TENANT_ID else authority.allows_work


def _check_pkce(code: AuthCode, verifier: str | None) -> None:
    if code.code_challenge is None:
        return  # confidential web apps may skip PKCE
    if not verifier:
        raise errors.code_verifier_mismatch()
    if code.code_challenge_method == "S256":
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    else:
        digest = verifier
    if not hmac.compare_digest(digest, code.code_challenge):
        raise errors.code_verifier_mismatch()


def _refresh_token(state: IdentityState, request: TokenRequest) -> dict[str, Any]:
    raw = _required(request.form, "refresh_token")
    grant = state.grants.refresh_tokens.get(raw)
    if grant is None:
        raise errors.malformed_grant()
    if grant.client_id != request.app.client_id:
        raise errors.grant_for_other_client()
    user = _user(state, request, grant.user_email)
    _injected(state, request, user, "refresh_token")
    _check_refresh_alive(state, request, grant, user)
    requested = _scopes(state, request, request.form.get("scope") or " ".join(grant.graph_scopes))
    consented = state.grants.consented(user.key, request.app.client_id, user.tenant_id)
    if not set(requested.graph or grant.graph_scopes) <= consented:
        raise errors.consent_required(request.app.client_id, request.app.name)
    if not state.settings.old_refresh_tokens_stay_valid:
        del state.grants.refresh_tokens[raw]
    # A refreshed response always carries a new refresh token (the grant was offline already).
    scopes = RequestedScopes(
        graph=requested.graph or grant.graph_scopes, oidc=tuple(dict.fromkeys([*requested.oidc, "offline_access"]))
    )
    return _issue(state, request, user, scopes, nonce=None)


def _check_refresh_alive(state: IdentityState, request: TokenRequest, grant: RefreshGrant, user: User) -> None:
    if grant.issued_at < user.tokens_valid_from:
        if state.settings.revocation_error_code == 70008:
            raise errors.grant_expired()
        raise errors.grant_revoked(state.as_datetime(grant.issued_at), state.as_datetime(user.tokens_valid_from))
    idle = state.settings.refresh_token_idle_seconds
    if request.now - grant.issued_at > idle:
        raise errors.refresh_token_idle(state.as_datetime(grant.issued_at), idle)


def _password(state: IdentityState, request: TokenRequest) -> dict[str, Any]:
    if request.authority.is_common_or_consumers:
        raise errors.grant_not_on_common()
    username = _required(request.form, "username")
    password = _required(request.form, "password")
    requested = _scopes(state, request, _required(request.form, "scope"))
    user = state.directory.user(username)
    tenant = request.authority.tenant_id
    if user is None or user.personal or (tenant is not None and user.tenant_id != tenant):
        raise errors.user_not_in_directory(tenant or request.authority.segment)
    if not hmac.compare_digest(password.encode(), user.password.encode()):
        raise errors.bad_credentials()
    request.user = user
    _injected(state, request, user, "password")
    consented = state.grants.consented(user.key, request.app.client_id, user.tenant_id)
    if not set(requested.graph) <= consented:
        # ROPC shows no consent page: where the tenant lets no user consent, only an admin's grant helps.
        may_consent = user.admin or state.directory.user_consent_allowed(user.tenant_id)
        if state.settings.password_grant_needs_consent or not may_consent:
            raise errors.consent_required(request.app.client_id, request.app.name)
        state.grants.add_consent(user.key, request.app.client_id, requested.graph)
    return _issue(state, request, user, requested, nonce=None)


GRANTS: dict[str, Callable[[IdentityState, TokenRequest], dict[str, Any]]] = {
    "authorization_code": _authorization_code,
    "refresh_token": _refresh_token,
    "password": _password,
}


# --- helpers -------------------------------------------------------------------------------------


def _issue(
    state: IdentityState, request: TokenRequest, user: User, scopes: RequestedScopes, *, nonce: str | None
) -> dict[str, Any]:
    # A request with only OpenID scopes still gets a Graph token, as AAD gives one for User.Read.
    graph = scopes.graph or ("User.Read",)
    refresh = None
    if scopes.offline_access:
        refresh = state.grants.issue_refresh_token(
            client_id=request.app.client_id, email=user.key, graph_scopes=graph, now=request.now
        )
    return state.minter.token_response(
        user=user,
        app=request.app,
        scopes=scopes,
        graph_scopes=graph,
        now=request.now,
        settings=state.settings,
        base_url=request.base_url,
        nonce=nonce,
        client_info=request.form.get("client_info") == "1",
        refresh_token=refresh,
    )


def _user(state: IdentityState, request: TokenRequest, email: str) -> User:
    user = state.directory.user(email)
    if user is None:  # removed since the grant was issued
        raise errors.malformed_grant()
    request.user = user
    return user


def _injected(state: IdentityState, request: TokenRequest, user: User, grant_type: str) -> None:
    rule = state.grants.take_injected(user.key, grant_type)
    if rule is not None:
        raise injected_error(
            rule, app=request.app, now=state.now_datetime(), idle_seconds=state.settings.refresh_token_idle_seconds
        )


def _scopes(state: IdentityState, request: TokenRequest, raw: str) -> RequestedScopes:
    try:
        return parse_scopes(raw)
    except ScopeError as error:
        if error.resource:
            raise errors.unknown_resource(
                error.resource, state.directory.tenant_name(request.authority.tenant_id)
            ) from None
        raise errors.invalid_scope(error.scope) from None


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise errors.missing_parameter(name)
    return value


def _answer(state: IdentityState, request: Request, error: AadError) -> Response:
    return error.response(now=state.now_datetime(), correlation_id=correlation_id(request))


def _log(
    state: IdentityState, form: dict[str, str], context: TokenRequest | None, status: int, code: int | None
) -> None:
    state.grants.record(
        {
            "at": state.now_datetime().isoformat(),
            "grant_type": form.get("grant_type", ""),
            "client_id": context.app.client_id if context else form.get("client_id", ""),
            "email": context.user.key if context and context.user else None,
            "status": status,
            "error_code": code,
        },
        limit=state.settings.token_log_limit,
    )
