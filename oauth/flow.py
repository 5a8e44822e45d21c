"""Signing a technician in with Microsoft, and linking their calendar on the way.

`start_sign_in` begins MSAL's authorization code flow (PKCE) and keeps the flow server-side,
encrypted, under its ``state`` for ten minutes. `finish_sign_in` takes that flow exactly once,
redeems the code, and decides what the sign-in means: a linked (or re-linked) technician, an
admin, or one of the refusals in `Refusal`, each of which the web layer turns into a page that
says what happened and what to do. Nothing is stored unless the sign-in succeeds.

The decisions (`refusal_for_authority_error`, `admin_consent_url`, ...) are pure functions; the
HTTP calls and storage come in through `LinkingServices`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from storage.errors import ConcurrencyConflict, NotFound
from storage.links import Link, LinkStatus
from storage.oauth_state import FlowState

if TYPE_CHECKING:
    import msal

    from oauth.crypto import TokenCipher
    from oauth.identity import SyncroMatch
    from oauth.tokens import TokenService
    from storage.links import LinkStore
    from storage.oauth_state import OAuthStateStore
    from sync.graph import Calendar, GraphClient, MicrosoftUser
    from sync.syncro import SyncroClient, SyncroUser

FLOW_LIFETIME = timedelta(minutes=10)
# Microsoft's tenant of every personal account (outlook.com, hotmail.com, live.com).
PERSONAL_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
# Codes Microsoft uses when the tenant lets no user consent to apps ("Need admin approval").
ADMIN_APPROVAL_CODES = ("AADSTS90094", "AADSTS65001", "AADSTS90093")


class Purpose(StrEnum):
    LINK = "link"  # a technician signing in to the settings page (and linking their calendar)
    ADMIN = "admin"  # someone in ADMIN_EMAILS opening the admin overview


class RefusalKind(StrEnum):
    STATE_INVALID = "state_invalid"  # expired, replayed, foreign or missing state
    CONSENT_REFUSED = "consent_refused"
    ADMIN_APPROVAL_NEEDED = "admin_approval_needed"
    AUTHORITY_ERROR = "authority_error"  # any other error= from Microsoft, or a refused code
    PERSONAL_ACCOUNT = "personal_account"
    NO_SYNCRO_USER = "no_syncro_user"
    NOT_AN_ADMIN = "not_an_admin"
    SERVICE_UNAVAILABLE = "service_unavailable"  # Graph or Syncro did not answer: try again


@dataclass(frozen=True)
class Refusal:
    """Why a sign-in did not complete; ``detail`` is Microsoft's own description where there is one."""

    kind: RefusalKind
    detail: str = ""
    email: str = ""
    admin_consent_url: str = ""

    @property
    def status(self) -> int:
        if self.kind is RefusalKind.SERVICE_UNAVAILABLE:
            return 503
        if self.kind in (RefusalKind.PERSONAL_ACCOUNT, RefusalKind.NO_SYNCRO_USER, RefusalKind.NOT_AN_ADMIN):
            return 403
        return 400


@dataclass(frozen=True)
class SignedIn:
    """A completed sign-in: who it is, and (for a technician) the link it created or renewed."""

    purpose: Purpose
    ms_email: str
    ms_account_id: str
    tenant_id: str
    syncro_user_id: int | None = None
    newly_linked: bool = False


@dataclass(frozen=True)
class AdminConsentGranted:
    """Microsoft sent an admin back from the admin-consent page: the organisation approved us."""

    tenant_id: str


@dataclass
class LinkingServices:
    """What the flow needs from the outside world, passed in so tests can use real parts."""

    redirect_uri: str
    authority: str
    client_id: str
    allow_personal_accounts: bool
    admin_emails: frozenset[str]
    states: OAuthStateStore
    links: LinkStore
    tokens: TokenService
    cipher: TokenCipher
    msal_app: Callable[[msal.SerializableTokenCache | None], msal.ConfidentialClientApplication]
    graph: Callable[[str], GraphClient]  # a client for one access token
    syncro: SyncroClient
    overrides: Callable[[], Mapping[str, int]]
    clock: Callable[[], datetime]


# --- start ---------------------------------------------------------------------------------


def start_sign_in(services: LinkingServices, *, purpose: Purpose, login_hint: str | None = None) -> str:
    """The Microsoft sign-in URL to send the browser to; the flow waits under its ``state``."""
    from oauth.msal_app import GRAPH_SCOPES

    flow = services.msal_app(None).initiate_auth_code_flow(
        GRAPH_SCOPES,
        redirect_uri=services.redirect_uri,
        login_hint=login_hint,
        prompt="select_account",  # a tech on a shared PC must be able to pick their own account
    )
    now = services.clock()
    sealed = services.cipher.encrypt(json.dumps({"purpose": purpose.value, "flow": flow}).encode())
    services.states.create_state(
        FlowState(state=flow["state"], syncro_user_id=0, flow=sealed, created_at=now, expires_at=now + FLOW_LIFETIME)
    )
    return flow["auth_uri"]


# --- finish --------------------------------------------------------------------------------


def finish_sign_in(services: LinkingServices, params: Mapping[str, str]) -> SignedIn | Refusal | AdminConsentGranted:
    """Handle Microsoft's redirect to /api/oauth/callback (its query parameters in ``params``)."""
    if params.get("admin_consent", "").lower() == "true" and not params.get("error"):
        return AdminConsentGranted(tenant_id=params.get("tenant", ""))
    flow = _take_flow(services, params.get("state", ""))
    if flow is None:
        if params.get("error"):  # Microsoft's error still says more than "expired"
            return refusal_for_authority_error(params["error"], params.get("error_description", ""), services)
        return Refusal(RefusalKind.STATE_INVALID)
    purpose, auth_flow = flow
    if params.get("error"):
        return refusal_for_authority_error(params["error"], params.get("error_description", ""), services)
    cache = _new_cache()
    try:
        result = services.msal_app(cache).acquire_token_by_auth_code_flow(auth_flow, dict(params))
    except ValueError:  # MSAL found the answer inconsistent with the flow it started
        return Refusal(RefusalKind.STATE_INVALID)
    if "error" in result:
        return refusal_for_authority_error(result["error"], result.get("error_description", ""), services)
    return _signed_in(services, purpose, result, cache)


def _take_flow(services: LinkingServices, state: str) -> tuple[Purpose, dict[str, Any]] | None:
    if not state or len(state) > 256:
        return None
    try:
        record = services.states.take_state(state)
    except NotFound:
        return None
    try:
        payload = json.loads(services.cipher.decrypt(record.flow))
        return Purpose(payload["purpose"]), payload["flow"]
    except (ValueError, KeyError, TypeError):
        return None  # a flow written under a key since dropped, or by another version: start again


def _new_cache() -> msal.SerializableTokenCache:
    import msal

    return msal.SerializableTokenCache()


def _signed_in(
    services: LinkingServices, purpose: Purpose, result: Mapping[str, Any], cache: msal.SerializableTokenCache
) -> SignedIn | Refusal:

    claims = result.get("id_token_claims") or {}
    tenant_id = str(claims.get("tid", ""))
    if tenant_id == PERSONAL_TENANT_ID and not services.allow_personal_accounts:
        return Refusal(RefusalKind.PERSONAL_ACCOUNT, email=str(claims.get("preferred_username", "")))
    account_id = f"{claims.get('oid', '')}.{tenant_id}"
    # One Graph client for the sign-in's token: /me, and the calendars of a new link.
    with services.graph(result["access_token"]) as graph:
        return _identify(services, purpose, result, cache, graph, tenant_id=tenant_id, account_id=account_id)


def _identify(
    services: LinkingServices,
    purpose: Purpose,
    result: Mapping[str, Any],
    cache: msal.SerializableTokenCache,
    graph: GraphClient,
    *,
    tenant_id: str,
    account_id: str,
) -> SignedIn | Refusal:
    """Who signed in (their email, and for a tech their Syncro user), then the link."""
    from sync.errors import ServiceError

    claims = result.get("id_token_claims") or {}
    try:
        me = graph.me()
    except ServiceError as error:
        return Refusal(RefusalKind.SERVICE_UNAVAILABLE, detail=str(error))
    try:
        email = _email(me, claims)
    except ValueError:  # NoMicrosoftEmail: neither /me nor the id_token names the account
        return Refusal(RefusalKind.AUTHORITY_ERROR, detail="Microsoft did not tell us the account's email address.")
    if purpose is Purpose.ADMIN:
        if email.lower() not in services.admin_emails:
            return Refusal(RefusalKind.NOT_AN_ADMIN, email=email)
        return SignedIn(purpose, email, account_id, tenant_id)
    from oauth.identity import MatchOutcome

    try:
        match = _syncro_user(services, email, me)
    except ServiceError as error:
        return Refusal(RefusalKind.SERVICE_UNAVAILABLE, detail=str(error))
    if match.user is None:
        # The page already says "no user has this email"; other reasons (two users, a stale override) are added.
        detail = "" if match.outcome is MatchOutcome.NO_MATCH else match.reason
        return Refusal(RefusalKind.NO_SYNCRO_USER, email=email, detail=detail)
    user = match.user
    # The cache first: a link marked active must never be without the token that backs it.
    services.tokens.save_cache(user.id, cache)
    try:
        newly = _link(services, user, graph, email=email, account_id=account_id, tenant_id=tenant_id, token=result)
    except ServiceError as error:
        return Refusal(RefusalKind.SERVICE_UNAVAILABLE, detail=str(error))
    return SignedIn(purpose, email, account_id, tenant_id, syncro_user_id=user.id, newly_linked=newly)


def _email(me: MicrosoftUser, claims: Mapping[str, Any]) -> str:
    from oauth.identity import microsoft_email

    return microsoft_email(me, dict(claims))


def _syncro_user(services: LinkingServices, email: str, me: MicrosoftUser) -> SyncroMatch:
    from oauth.identity import match_syncro_user

    overrides = dict(services.overrides())
    # An admin may have mapped the account by its sign-in name as well as by its mail.
    if me.user_principal_name and me.user_principal_name.lower() in overrides:
        overrides.setdefault(email.lower(), overrides[me.user_principal_name.lower()])
    return match_syncro_user(email, services.syncro.users(), overrides=overrides, microsoft_id=me.id)


def _link(
    services: LinkingServices,
    user: SyncroUser,
    graph: GraphClient,
    *,
    email: str,
    account_id: str,
    tenant_id: str,
    token: Mapping[str, Any],
) -> bool:
    """Create the tech's link on the default calendar, or renew it (keeping their choices).
    Returns whether it is new."""
    now = services.clock()
    username = str((token.get("id_token_claims") or {}).get("preferred_username", email))
    try:
        existing = services.links.get_link(user.id)
    except NotFound:
        existing = None
    if existing is not None:
        renewed = existing.with_changes(
            email=email,
            ms_account_id=account_id,
            ms_username=username,
            ms_tenant_id=tenant_id,
            status=LinkStatus.ACTIVE,
            status_detail="",
            remove_outlook_events=False,  # signing in again cancels an unlink still under way
        )
        try:
            services.links.update_link(renewed)
        except ConcurrencyConflict:
            services.links.update_link(services.links.get_link(user.id).with_changes(status=LinkStatus.ACTIVE))
        return False
    calendar = default_calendar(graph.calendars())
    link = Link(
        syncro_user_id=user.id,
        email=email,
        ms_account_id=account_id,
        ms_username=username,
        ms_tenant_id=tenant_id,
        calendar_id=calendar.id if calendar else "",
        calendar_name=calendar.name if calendar else "",
        two_way=False,  # as the reference: Syncro -> Outlook until the tech turns two-way on
        status=LinkStatus.ACTIVE,
        linked_at=now,
    )
    try:
        services.links.create_link(link)
    except ConcurrencyConflict:  # the same tech finished two sign-ins at once: one link is enough
        return False
    return True


# --- decisions -----------------------------------------------------------------------------


def default_calendar(calendars: list[Calendar]) -> Calendar | None:
    """The calendar a new link syncs with: the default one if the tech can edit it, else the
    first editable one."""
    editable = [c for c in calendars if c.can_edit]
    return next((c for c in editable if c.is_default), editable[0] if editable else None)


def refusal_for_authority_error(error: str, description: str, services: LinkingServices) -> Refusal:
    """What an ``error=`` from Microsoft (on the redirect or the token endpoint) means for the tech."""
    description = description.strip()[:2000]
    if any(code in description for code in ADMIN_APPROVAL_CODES):
        url = admin_consent_url(services.authority, client_id=services.client_id, redirect_uri=services.redirect_uri)
        return Refusal(RefusalKind.ADMIN_APPROVAL_NEEDED, detail=description, admin_consent_url=url)
    if error == "access_denied":
        return Refusal(RefusalKind.CONSENT_REFUSED, detail=description)
    return Refusal(RefusalKind.AUTHORITY_ERROR, detail=description or error[:200])


def admin_consent_url(authority: str, *, client_id: str, redirect_uri: str, tenant: str = "organizations") -> str:
    """The URL a Microsoft 365 admin opens once to approve the app for the whole organisation
    (``/{tenant}/v2.0/adminconsent``); ``organizations`` lets the admin's own tenant be used."""
    parts = urlsplit(authority)
    query = urlencode(
        {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "https://graph.microsoft.com/Calendars.ReadWrite https://graph.microsoft.com/User.Read",
        }
    )
    return f"{parts.scheme}://{parts.netloc}/{tenant}/v2.0/adminconsent?{query}"
