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
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
    from sync.graph import Calendar, GraphClient
    from sync.syncro import SyncroClient, SyncroUser

from settings import PERSONAL_ACCOUNTS_TENANT_ID as PERSONAL_TENANT_ID

FLOW_LIFETIME = timedelta(minutes=10)
# Codes Microsoft uses when the tenant lets no user consent to apps ("Need admin approval").
ADMIN_APPROVAL_CODES = ("AADSTS90094", "AADSTS65001", "AADSTS90093")


class Purpose(StrEnum):
    LINK = "link"  # a technician signing in to the settings page (and linking their calendar)
    ADMIN = "admin"  # someone with the SyncAdmin app role (or an admin group) opening the admin overview


class RefusalKind(StrEnum):
    STATE_INVALID = "state_invalid"  # expired, replayed, foreign or missing state
    CONSENT_REFUSED = "consent_refused"
    ADMIN_APPROVAL_NEEDED = "admin_approval_needed"
    AUTHORITY_ERROR = "authority_error"  # any other error= from Microsoft, or a refused code
    PERSONAL_ACCOUNT = "personal_account"
    FOREIGN_TENANT = "foreign_tenant"  # an account of a tenant the MSP does not allow
    LINK_HELD = "link_held"  # the Syncro user's link belongs to another Microsoft account
    NO_SYNCRO_USER = "no_syncro_user"
    NOT_AN_ADMIN = "not_an_admin"
    SERVICE_UNAVAILABLE = "service_unavailable"  # Graph or Syncro did not answer: try again


@dataclass(frozen=True)
class Refusal:
    """Why a sign-in did not complete. ``detail`` is our own words or Microsoft's error code, never
    Microsoft's description (it arrives in the query string, where anyone can write it)."""

    kind: RefusalKind
    detail: str = ""
    email: str = ""
    admin_consent_url: str = ""

    @property
    def status(self) -> int:
        if self.kind is RefusalKind.SERVICE_UNAVAILABLE:
            return 503
        if self.kind in (
            RefusalKind.PERSONAL_ACCOUNT,
            RefusalKind.FOREIGN_TENANT,
            RefusalKind.NO_SYNCRO_USER,
            RefusalKind.NOT_AN_ADMIN,
        ):
            return 403
        if self.kind is RefusalKind.LINK_HELD:
            return 409
        return 400


@dataclass(frozen=True)
class SignedIn:
    """A completed sign-in: who it is (``ms_account_id``, the account's ``oid.tid``; ``ms_email`` is
    for display only), whether the ID token makes them an admin, and (for a technician) the link it
    created or renewed."""

    purpose: Purpose
    ms_email: str
    ms_account_id: str
    tenant_id: str
    syncro_user_id: int | None = None
    newly_linked: bool = False
    is_admin: bool = False


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
    allowed_tenants: frozenset[str]  # lower-case tenant ids whose accounts may sign in
    admin_groups: frozenset[str]  # group object ids whose members are admins (besides the app role)
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


@dataclass(frozen=True)
class SignInStarted:
    url: str  # Microsoft's sign-in page, to send the browser to
    state: str = field(repr=False)  # the flow's key: the browser that started it is bound to it (web.session)


def start_sign_in(services: LinkingServices, *, purpose: Purpose, login_hint: str | None = None) -> SignInStarted:
    """The Microsoft sign-in to send the browser to; the flow waits under its ``state``."""
    import warnings

    from oauth.msal_app import GRAPH_SCOPES

    # The code comes back in the query string, not as a form_post, on purpose: Microsoft's POST
    # would be cross-site, so the SameSite=Lax cookie binding the sign-in to this browser (login
    # CSRF, web.session) would not come with it. RFC 9700 4.3.1's concern (the code in logs and
    # Referer) is met otherwise: the code is single-use with PKCE, redeemed at once, our pages
    # send no Referer, and request telemetry records no URL (docs/security.md).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended", category=UserWarning)
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
    return SignInStarted(flow["auth_uri"], flow["state"])


# --- finish --------------------------------------------------------------------------------


def finish_sign_in(services: LinkingServices, params: Mapping[str, str]) -> SignedIn | Refusal | AdminConsentGranted:
    """Handle Microsoft's redirect to /api/oauth/callback (its query parameters in ``params``)."""
    if is_admin_consent(params):
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


def is_admin_consent(params: Mapping[str, str]) -> bool:
    """Microsoft sending an admin back from the admin-consent page: no flow of ours, nobody signs in."""
    return params.get("admin_consent", "").lower() == "true" and not params.get("error")


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
    from oauth.identity import account_of, is_admin

    claims = result.get("id_token_claims") or {}
    tenant_id = str(claims.get("tid", "")).lower()
    if tenant_id == PERSONAL_TENANT_ID:
        return Refusal(RefusalKind.PERSONAL_ACCOUNT, email=str(claims.get("preferred_username", ""))[:256])
    # Checked on every callback, whatever the authority: only the MSP's tenants are people we know.
    if tenant_id not in services.allowed_tenants:
        return Refusal(RefusalKind.FOREIGN_TENANT, email=str(claims.get("preferred_username", ""))[:256])
    account_id = account_of(claims)
    if account_id is None:
        return Refusal(RefusalKind.AUTHORITY_ERROR, detail="Microsoft did not say which account signed in.")
    admin = is_admin(claims, admin_groups=services.admin_groups)
    # One Graph client for the sign-in's token: /me, and the calendars of a new link.
    with services.graph(result["access_token"]) as graph:
        return _identify(
            services, purpose, result, cache, graph, tenant_id=tenant_id, account_id=account_id, admin=admin
        )


def _identify(
    services: LinkingServices,
    purpose: Purpose,
    result: Mapping[str, Any],
    cache: msal.SerializableTokenCache,
    graph: GraphClient,
    *,
    tenant_id: str,
    account_id: str,
    admin: bool,
) -> SignedIn | Refusal:
    """Who signed in (the addresses their tenant vouches for, and for a tech their Syncro user), then the link."""
    from oauth.identity import MatchOutcome, microsoft_addresses
    from sync.errors import ServiceError

    claims = result.get("id_token_claims") or {}
    try:
        me = graph.me()
    except ServiceError as error:
        return Refusal(RefusalKind.SERVICE_UNAVAILABLE, detail=str(error))
    addresses = microsoft_addresses(claims, me)
    if not addresses:
        return Refusal(RefusalKind.AUTHORITY_ERROR, detail="Microsoft did not tell us the account's sign-in name.")
    email = addresses[0]
    if purpose is Purpose.ADMIN:
        if not admin:
            return Refusal(RefusalKind.NOT_AN_ADMIN, email=email)
        # An admin who is also a Syncro user (a dispatcher) sees their own settings page too;
        # signing in as admin links nothing.
        try:
            own = _syncro_user(services, addresses, account_id).user
        except ServiceError:
            own = None
        own_id = own.id if own is not None else None
        return SignedIn(purpose, email, account_id, tenant_id, syncro_user_id=own_id, is_admin=True)
    try:
        match = _syncro_user(services, addresses, account_id)
    except ServiceError as error:
        return Refusal(RefusalKind.SERVICE_UNAVAILABLE, detail=str(error))
    if match.user is None:
        # The page already says "no user has this email"; other reasons (two users, a stale override) are added.
        detail = "" if match.outcome is MatchOutcome.NO_MATCH else match.reason
        return Refusal(RefusalKind.NO_SYNCRO_USER, email=email, detail=detail)
    user = match.user
    # Shown and stored: the address Syncro knows the tech by, when one matched (else the sign-in name).
    email = next((a for a in addresses if user.email and a.lower() == user.email.strip().lower()), email)
    existing = _existing_link(services, user.id)
    if existing is not None and existing.ms_account_id and existing.ms_account_id.lower() != account_id:
        # Never moved silently: whoever holds it keeps it until an admin releases it.
        return Refusal(RefusalKind.LINK_HELD, email=existing.ms_username or existing.email)
    # The cache first: a link marked active must never be without the token that backs it.
    services.tokens.save_cache(user.id, cache)
    try:
        newly = _link(
            services,
            user,
            graph,
            existing,
            email=email,
            username=addresses[0],
            account_id=account_id,
            tenant_id=tenant_id,
        )
    except ServiceError as error:
        return Refusal(RefusalKind.SERVICE_UNAVAILABLE, detail=str(error))
    return SignedIn(purpose, email, account_id, tenant_id, syncro_user_id=user.id, newly_linked=newly, is_admin=admin)


def _syncro_user(services: LinkingServices, addresses: list[str], account_id: str) -> SyncroMatch:
    from oauth.identity import match_syncro_user

    return match_syncro_user(
        addresses, services.syncro.users(), overrides=services.overrides(), microsoft_id=account_id.split(".")[0]
    )


def _existing_link(services: LinkingServices, syncro_user_id: int) -> Link | None:
    try:
        return services.links.get_link(syncro_user_id)
    except NotFound:
        return None


def _link(
    services: LinkingServices,
    user: SyncroUser,
    graph: GraphClient,
    existing: Link | None,
    *,
    email: str,
    username: str,
    account_id: str,
    tenant_id: str,
) -> bool:
    """Create the tech's link on the default calendar, or renew it (keeping their choices).
    Returns whether it is new."""
    now = services.clock()
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
    """What an ``error=`` from Microsoft (on the redirect or the token endpoint) means for the tech.

    The redirect's query string is anyone's to write, so only codes are kept: Microsoft's
    ``AADSTS`` number and the OAuth error name, each in a shape we check; the page says the rest
    in our own words."""
    aadsts = _AADSTS.search(description or "")
    code = aadsts.group(0) if aadsts else ""
    if code in ADMIN_APPROVAL_CODES:
        url = admin_consent_url(services.authority, client_id=services.client_id, redirect_uri=services.redirect_uri)
        return Refusal(RefusalKind.ADMIN_APPROVAL_NEEDED, detail=code, admin_consent_url=url)
    if error == "access_denied":
        return Refusal(RefusalKind.CONSENT_REFUSED, detail=code)
    name = error if _ERROR_NAME.fullmatch(error or "") else "unknown_error"
    return Refusal(RefusalKind.AUTHORITY_ERROR, detail=" ".join(part for part in (name, code) if part))


_AADSTS = re.compile(r"AADSTS\d{4,8}")
_ERROR_NAME = re.compile(r"[a-z_]{1,40}")


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
