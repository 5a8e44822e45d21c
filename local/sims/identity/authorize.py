"""The interactive part: ``/authorize`` shows the sign-in page, ``/login`` checks the password,
``/consent`` records the person's answer, and the browser is sent back to the app with a code.

Where the tenant lets no user consent, a non-admin gets the "Need admin approval" page instead of the
consent page; ``/approval`` takes the answer (sign in as an admin, or back to the app with AADSTS90094).
``/v2.0/adminconsent`` runs the same pages for a tenant admin and ends in a tenant-wide grant, sent
back as ``admin_consent=True&tenant=...&state=...&scope=...``.

Requests that name an unknown app or an unregistered redirect URI end on an error page and are
never redirected, as AAD does; every later problem goes back to the app as ``error=...``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from local.sims.identity import errors
from local.sims.identity.directory import AUDIENCES, App, Authority, User
from local.sims.identity.errors import AadError
from local.sims.identity.grants import SignInFlow
from local.sims.identity.http_input import read_form
from local.sims.identity.pages import admin_approval_page, consent_page, error_page, form_post_page, sign_in_page
from local.sims.identity.scopes import RequestedScopes, ScopeError, parse_scopes
from local.sims.identity.state import IdentityState

PERSONAL_REFUSED = "You can't sign in here with a personal account. Use your work or school account instead."
WORK_REFUSED = "You can't sign in here with a work or school account. Use your personal Microsoft account instead."
UNKNOWN_USER = "This username may be incorrect. Make sure you typed it correctly. Otherwise, contact your admin."
WRONG_PASSWORD = "Your account or password is incorrect. If you don't remember your password, reset it now."
FLOW_EXPIRED = AadError(50089, "Flow token expired - Authentication Failed. Have the user try signing-in again.")
NEEDS_ADMIN = (
    "needs permission to access resources in your organization that only an admin can grant. Please ask an "
    "admin to grant permission to this app before you can use it."
)
GRAPH_RESOURCE = "https://graph.microsoft.com/"
RESPONSE_MODES = ("query", "fragment", "form_post")


class _BackToApp(Exception):
    """An error AAD reports to the app at its (already validated) redirect URI."""

    def __init__(self, error: AadError) -> None:
        self.error = error


def authorize_routes(state: IdentityState) -> list[Route]:
    async def authorize(request: Request) -> Response:
        return _authorize(state, request)

    async def login(request: Request) -> Response:
        form = await _form_or_empty(request)
        return _login(state, request, form)

    async def consent(request: Request) -> Response:
        form = await _form_or_empty(request)
        return _consent(state, request, form)

    async def approval(request: Request) -> Response:
        form = await _form_or_empty(request)
        return _approval(state, request, form)

    async def admin_consent(request: Request) -> Response:
        return _admin_consent(state, request)

    return [
        Route("/{tenant}/oauth2/v2.0/authorize", authorize, methods=["GET"]),
        Route("/{tenant}/v2.0/adminconsent", admin_consent, methods=["GET"]),
        Route("/{tenant}/login", login, methods=["POST"]),
        Route("/{tenant}/consent", consent, methods=["POST"]),
        Route("/{tenant}/approval", approval, methods=["POST"]),
    ]


async def _form_or_empty(request: Request) -> dict[str, str]:
    try:
        return await read_form(request)
    except AadError:
        return {}


# --- /authorize ----------------------------------------------------------------------------------


def _checked_client(state: IdentityState, segment: str, query: Any) -> tuple[Authority, App, str] | Response:
    """Authority, app and redirect URI of a request, or the dead-end page AAD shows when one is wrong."""
    authority = state.directory.resolve_authority(segment)
    if authority is None:
        return _dead_end(errors.tenant_not_found(segment))
    client_id = query.get("client_id", "")
    if not client_id:
        return _dead_end(errors.missing_parameter("client_id"))
    app = state.directory.apps.get(client_id)
    if app is None:
        return _dead_end(errors.unknown_client(client_id, state.directory.tenant_name(authority.tenant_id)))
    redirect_uri = query.get("redirect_uri") or (app.redirect_uris[0] if app.redirect_uris else "")
    if redirect_uri not in app.redirect_uris:
        return _dead_end(_redirect_mismatch(redirect_uri, app))
    refusal = _app_refuses_authority(app, authority)
    if refusal:
        return _dead_end(refusal)
    return authority, app, redirect_uri


def _authorize(state: IdentityState, request: Request) -> Response:
    segment = request.path_params["tenant"]
    query = request.query_params
    with state.lock:
        checked = _checked_client(state, segment, query)
        if isinstance(checked, Response):
            return checked
        authority, app, redirect_uri = checked
        mode = query.get("response_mode") or "query"
        mode = mode if mode in RESPONSE_MODES else "query"
        try:
            flow = _start_flow(state, authority, app, redirect_uri, mode, query)
        except _BackToApp as back:
            return _to_app(redirect_uri, mode, _error_fields(state, back.error, query.get("state")))
        return sign_in_page(tenant=segment, flow_id=flow.id, app_name=app.name, email=flow.login_hint)


def _start_flow(
    state: IdentityState, authority: Authority, app: App, redirect_uri: str, mode: str, query: Any
) -> SignInFlow:
    response_type = query.get("response_type", "")
    if not response_type:
        raise _BackToApp(errors.missing_parameter("response_type"))
    if response_type != "code":
        raise _BackToApp(
            AadError(
                700054,
                f"response_type '{response_type}' is not enabled for the application.",
                "unsupported_response_type",
            )
        )
    scopes = _authorize_scopes(state, authority, query.get("scope", ""))
    method = query.get("code_challenge_method") or "plain"
    if query.get("code_challenge") and method not in ("S256", "plain"):
        raise _BackToApp(AadError(50149, "Invalid Code_Challenge_method parameter.", "invalid_request"))
    if query.get("prompt") == "none":
        # The simulator keeps no browser session, so a silent request never finds a signed-in user.
        raise _BackToApp(
            AadError(50058, "A silent sign-in request was sent but no user is signed in.", "login_required")
        )
    _prune(state)
    return state.grants.start_flow(
        authority=authority.segment,
        client_id=app.client_id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=query.get("state"),
        nonce=query.get("nonce"),
        code_challenge=query.get("code_challenge") or None,
        code_challenge_method=method,
        response_mode=mode,
        prompt=query.get("prompt"),
        login_hint=query.get("login_hint", ""),
        created_at=state.now(),
    )


def _prune(state: IdentityState) -> None:
    settings = state.settings
    state.grants.prune(
        now=state.now(),
        flow_lifetime=settings.sign_in_flow_lifetime_seconds,
        code_lifetime=settings.code_lifetime_seconds,
        refresh_idle=settings.refresh_token_idle_seconds,
    )


def _authorize_scopes(state: IdentityState, authority: Authority, raw: str) -> RequestedScopes:
    if not raw.strip():
        raise _BackToApp(errors.missing_parameter("scope"))
    try:
        return parse_scopes(raw)
    except ScopeError as error:
        if error.resource:
            raise _BackToApp(
                errors.unknown_resource(error.resource, state.directory.tenant_name(authority.tenant_id))
            ) from None
        raise _BackToApp(errors.invalid_scope(error.scope)) from None


def _redirect_mismatch(redirect_uri: str, app: App) -> AadError:
    return AadError(
        50011,
        f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured "
        f"for the application '{app.client_id}'. Make sure the redirect URI sent in the request matches one added "
        "to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more "
        "about how to fix this.",
        "invalid_request",
    )


def _app_refuses_authority(app: App, authority: Authority) -> AadError | None:
    work, personal = AUDIENCES[app.sign_in_audience]
    single_tenant = app.sign_in_audience == "AzureADMyOrg" and app.home_tenant_id
    if single_tenant and authority.tenant_id != app.home_tenant_id:
        return AadError(
            50194,
            f"Application '{app.client_id}'({app.name}) is not configured as a multi-tenant application. Usage of "
            "the /common endpoint is not supported for such applications created after '10/15/2018'. Use a "
            "tenant-specific endpoint or configure the application to be multi-tenant.",
            "invalid_request",
        )
    if not ((work and authority.allows_work) or (personal and authority.allows_personal)):
        return AadError(
            90130,
            f"Application '{app.client_id}' ({app.name}) is not supported over the /common or "
            "/consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
            "invalid_request",
        )
    return None


# --- /login --------------------------------------------------------------------------------------


def _login(state: IdentityState, request: Request, form: dict[str, str]) -> Response:
    segment = request.path_params["tenant"]
    with state.lock:
        flow = _posted_flow(state, request, form)
        if flow is None:
            return _dead_end(FLOW_EXPIRED)
        app = state.directory.apps[flow.client_id]
        email = form.get("email", "").strip()
        user = state.directory.user(email)
        problem = _sign_in_problem(state, flow, app, user, form.get("password", ""))
        if problem or user is None:
            return sign_in_page(
                tenant=segment, flow_id=flow.id, app_name=app.name, email=email, error=problem or UNKNOWN_USER
            )
        flow.user_email = user.key
        return _after_sign_in(state, flow, app, user)


def _posted_flow(state: IdentityState, request: Request, form: dict[str, str]) -> SignInFlow | None:
    """The live sign-in flow a posted page names, when it was started at the tenant in the path."""
    flow = state.grants.live_flow(
        form.get("flow", ""), now=state.now(), lifetime=state.settings.sign_in_flow_lifetime_seconds
    )
    if flow is None or flow.authority != request.path_params["tenant"]:
        return None
    return flow


def _signed_in_flow(state: IdentityState, request: Request, form: dict[str, str]) -> tuple[SignInFlow, User] | None:
    """The posted flow and the person who signed in to it, for the pages after the sign-in page."""
    flow = _posted_flow(state, request, form)
    if flow is None or flow.user_email is None:
        return None
    user = state.directory.user(flow.user_email)
    return None if user is None else (flow, user)


def _after_sign_in(state: IdentityState, flow: SignInFlow, app: App, user: User) -> Response:
    """The consent page, the "Need admin approval" page, or straight back to the app with a code."""
    if flow.admin_consent:
        if not user.admin:
            return _approval_page(flow, app, user)
        return consent_page(
            tenant=flow.authority,
            flow_id=flow.id,
            app_name=app.name,
            email=user.upn,
            scopes=flow.scopes.all(),
            for_organization=True,
        )
    consented = state.grants.consented(user.key, app.client_id, user.tenant_id)
    skip = state.settings.remember_consent and flow.prompt != "consent" and set(flow.scopes.graph) <= consented
    if skip:
        return _finish(state, flow)
    if not _may_consent(state, user):
        return _approval_page(flow, app, user)
    return consent_page(
        tenant=flow.authority,
        flow_id=flow.id,
        app_name=app.name,
        email=user.upn,
        scopes=flow.scopes.all(),
        offer_organization=user.admin and not user.personal,
    )


def _may_consent(state: IdentityState, user: User) -> bool:
    # Personal accounts always consent for themselves; in a tenant, admins always may.
    return user.personal or user.admin or state.directory.user_consent_allowed(user.tenant_id)


def _approval_page(flow: SignInFlow, app: App, user: User) -> Response:
    return admin_approval_page(
        tenant=flow.authority, flow_id=flow.id, app_name=app.name, email=user.upn, message=NEEDS_ADMIN
    )


def _sign_in_problem(state: IdentityState, flow: SignInFlow, app: App, user: User | None, password: str) -> str | None:
    """The message the sign-in page shows, or None when the person may go on."""
    if user is None:
        return UNKNOWN_USER
    authority = state.directory.resolve_authority(flow.authority)
    assert authority is not None
    app_work, app_personal = AUDIENCES[app.sign_in_audience]
    # Home realm discovery happens before the password is checked: the account kind decides first.
    if user.personal and not (authority.allows_personal and app_personal):
        return PERSONAL_REFUSED
    if not user.personal and not (authority.allows_work and app_work):
        return WORK_REFUSED
    home = app.home_tenant_id if app.sign_in_audience == "AzureADMyOrg" else None
    required_tenant = authority.tenant_id or home
    if not user.personal and required_tenant and user.tenant_id != required_tenant:
        return _not_in_tenant(state, user, app, required_tenant)
    if password != user.password:
        return WRONG_PASSWORD
    return None


def _not_in_tenant(state: IdentityState, user: User, app: App, tenant_id: str) -> str:
    return (
        f"AADSTS50020: User account '{user.upn}' from identity provider 'https://sts.windows.net/{user.tenant_id}/' "
        f"does not exist in tenant '{state.directory.tenant_name(tenant_id)}' and cannot access the application "
        f"'{app.client_id}'({app.name}) in that tenant. The account needs to be added as an external user in the "
        "tenant first. Sign out and sign in again with a different Azure Active Directory user account."
    )


# --- /consent ------------------------------------------------------------------------------------


def _consent(state: IdentityState, request: Request, form: dict[str, str]) -> Response:
    with state.lock:
        signed_in = _signed_in_flow(state, request, form)
        if signed_in is None:
            return _dead_end(FLOW_EXPIRED)
        flow, user = signed_in
        if flow.admin_consent:
            return _admin_decision(state, flow, user, accepted=form.get("decision") == "accept")
        decision = form.get("decision")
        if decision not in ("accept", "accept_org"):
            state.grants.flows.pop(flow.id, None)
            declined = AadError(65004, "User declined to consent to access the app.", "access_denied")
            fields = _error_fields(state, declined, flow.state)
            fields = {"error": "access_denied", "error_subcode": "cancel", **fields}
            return _to_app(flow.redirect_uri, flow.response_mode, fields)
        if not _may_consent(state, user):  # a hand-made post skipping the "Need admin approval" page
            return _approval_page(flow, state.directory.apps[flow.client_id], user)
        if decision == "accept_org" and user.admin and not user.personal:
            state.grants.add_tenant_consent(user.tenant_id, flow.client_id, flow.scopes.graph)
        else:
            state.grants.add_consent(user.key, flow.client_id, flow.scopes.graph)
        return _finish(state, flow)


def _admin_decision(state: IdentityState, flow: SignInFlow, user: User, *, accepted: bool) -> Response:
    state.grants.flows.pop(flow.id, None)
    if not user.admin:
        return _to_app(flow.redirect_uri, "query", _admin_error_fields(state, errors.not_an_admin(), flow, user))
    if not accepted:
        declined = errors.admin_consent_declined()
        return _to_app(flow.redirect_uri, "query", _admin_error_fields(state, declined, flow, user))
    state.grants.add_tenant_consent(user.tenant_id, flow.client_id, flow.scopes.graph)
    fields = {"admin_consent": "True", "tenant": user.tenant_id}
    if flow.state is not None:
        fields["state"] = flow.state
    fields["scope"] = " ".join([*(GRAPH_RESOURCE + scope for scope in flow.scopes.graph), *flow.scopes.oidc])
    return _to_app(flow.redirect_uri, "query", fields)


def _admin_error_fields(state: IdentityState, error: AadError, flow: SignInFlow, user: User) -> dict[str, str]:
    # Microsoft's documented failure keeps admin_consent=True and names the tenant beside the error.
    fields = _error_fields(state, error, None)
    fields.update({"admin_consent": "True", "tenant": user.tenant_id})
    if flow.state is not None:
        fields["state"] = flow.state
    return fields


# --- /approval: the "Need admin approval" page's answer --------------------------------------------------


def _approval(state: IdentityState, request: Request, form: dict[str, str]) -> Response:
    with state.lock:
        signed_in = _signed_in_flow(state, request, form)
        if signed_in is None:
            return _dead_end(FLOW_EXPIRED)
        flow, user = signed_in
        app = state.directory.apps.get(flow.client_id)
        if app is None:
            return _dead_end(FLOW_EXPIRED)
        if form.get("decision") == "admin":
            # Start again on the sign-in page, for someone who can consent.
            flow.user_email = None
            return sign_in_page(tenant=flow.authority, flow_id=flow.id, app_name=app.name, email="")
        if flow.admin_consent:
            return _admin_decision(state, flow, user, accepted=False)
        state.grants.flows.pop(flow.id, None)
        fields = _error_fields(state, errors.admin_approval_required(), flow.state)
        return _to_app(flow.redirect_uri, flow.response_mode, fields)


# --- /v2.0/adminconsent --------------------------------------------------------------------------


def _admin_consent(state: IdentityState, request: Request) -> Response:
    segment = request.path_params["tenant"]
    query = request.query_params
    with state.lock:
        checked = _checked_client(state, segment, query)
        if isinstance(checked, Response):
            return checked
        authority, app, redirect_uri = checked
        try:
            scopes = _authorize_scopes(state, authority, query.get("scope", ""))
        except _BackToApp as back:
            return _to_app(redirect_uri, "query", _error_fields(state, back.error, query.get("state")))
        _prune(state)
        flow = state.grants.start_flow(
            authority=authority.segment,
            client_id=app.client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            state=query.get("state"),
            nonce=None,
            code_challenge=None,
            code_challenge_method="plain",
            response_mode="query",
            prompt=None,
            login_hint=query.get("login_hint", ""),
            created_at=state.now(),
            admin_consent=True,
        )
        return sign_in_page(tenant=segment, flow_id=flow.id, app_name=app.name, email=flow.login_hint)


# --- back to the app -----------------------------------------------------------------------------


def _finish(state: IdentityState, flow: SignInFlow) -> Response:
    user = state.directory.user(flow.user_email or "")
    if user is None:
        return _dead_end(FLOW_EXPIRED)
    code = state.grants.issue_code(flow, now=state.now(), tenant_id=user.tenant_id)
    fields = {"code": code}
    if flow.state is not None:
        fields["state"] = flow.state
    fields["session_state"] = flow.id[:36]
    return _to_app(flow.redirect_uri, flow.response_mode, fields)


def _error_fields(state: IdentityState, error: AadError, app_state: str | None) -> dict[str, str]:
    body = error.body(now=state.now_datetime(), correlation_id=None)
    fields = {"error": body["error"], "error_description": body["error_description"]}
    if app_state is not None:
        fields["state"] = app_state
    return fields


def _to_app(redirect_uri: str, mode: str, fields: dict[str, str]) -> Response:
    if mode == "form_post":
        return form_post_page(redirect_uri, fields)
    separator = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(fields)}", status_code=302)


def _dead_end(error: AadError) -> Response:
    return error_page(f"AADSTS{error.code}: {error.message}")
