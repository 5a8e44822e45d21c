"""Server-side state of sign-ins and grants: the authorize flow between pages, authorization codes,
refresh tokens, remembered consent, injected token errors and the log of token requests.

Everything here is plain data; the owner (IdentitySim) holds one lock around every use.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from local.sims.identity.scopes import RequestedScopes

DAY = 86400


@dataclass
class SignInFlow:
    """One authorize request, kept server-side while the person is on the sign-in and consent pages."""

    id: str
    authority: str
    client_id: str
    redirect_uri: str
    scopes: RequestedScopes
    state: str | None
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str
    response_mode: str
    prompt: str | None
    login_hint: str
    created_at: float
    user_email: str | None = None  # the user's key (lower-case UPN), set once the password was right
    admin_consent: bool = False  # started at /adminconsent: ends in a tenant-wide grant, not a code


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    user_email: str
    scopes: RequestedScopes
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str
    issued_at: float
    tenant_id: str  # the tenant the code was issued for; another tenant's authority refuses it (AADSTS700005)
    redeemed: bool = False


@dataclass
class RefreshGrant:
    client_id: str
    user_email: str
    graph_scopes: tuple[str, ...]
    issued_at: float


@dataclass
class InjectedError:
    """Answer the next ``times`` token requests of ``email`` (or ``*``) with AADSTS ``code``."""

    email: str
    code: int
    times: int = 1  # 0 = until cleared
    grant_type: str | None = None  # None = any grant
    error: str | None = None  # overrides the error field of the catalogue entry
    suberror: str | None = None

    def matches(self, email: str, grant_type: str) -> bool:
        return self.email in ("*", email) and self.grant_type in (None, grant_type)


@dataclass
class Grants:
    flows: dict[str, SignInFlow] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshGrant] = field(default_factory=dict)
    consents: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (user key, client_id) -> Graph scopes
    # Admin consent: (tenant_id, client_id) -> Graph scopes granted for every user of the tenant.
    tenant_consents: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    injected: list[InjectedError] = field(default_factory=list)
    log: deque[dict[str, Any]] = field(default_factory=deque)

    def prune(self, *, now: float, flow_lifetime: int, code_lifetime: int, refresh_idle: int) -> None:
        """Forget what can no longer be used, so a long-running stack does not grow without bound.

        Redeemed and expired codes are kept a day longer so a late replay still gets AADSTS54005/70008.
        """
        for flow_id in [key for key, flow in self.flows.items() if now - flow.created_at > flow_lifetime]:
            del self.flows[flow_id]
        for code in [key for key, item in self.codes.items() if now - item.issued_at > code_lifetime + DAY]:
            del self.codes[code]
        for token in [key for key, grant in self.refresh_tokens.items() if now - grant.issued_at > refresh_idle + DAY]:
            del self.refresh_tokens[token]

    def start_flow(self, **values: Any) -> SignInFlow:
        flow = SignInFlow(id=secrets.token_urlsafe(24), **values)
        self.flows[flow.id] = flow
        return flow

    def live_flow(self, flow_id: str, *, now: float, lifetime: int) -> SignInFlow | None:
        flow = self.flows.get(flow_id)
        if flow is None or now - flow.created_at > lifetime:
            self.flows.pop(flow_id, None)
            return None
        return flow

    def issue_code(self, flow: SignInFlow, *, now: float, tenant_id: str) -> str:
        assert flow.user_email is not None
        self.flows.pop(flow.id, None)
        # Real codes are long opaque strings starting "0.A"; clients must not parse them.
        code = "0.A" + secrets.token_urlsafe(96)
        self.codes[code] = AuthCode(
            client_id=flow.client_id,
            redirect_uri=flow.redirect_uri,
            user_email=flow.user_email,
            scopes=flow.scopes,
            nonce=flow.nonce,
            code_challenge=flow.code_challenge,
            code_challenge_method=flow.code_challenge_method,
            issued_at=now,
            tenant_id=tenant_id,
        )
        return code

    def issue_refresh_token(self, *, client_id: str, email: str, graph_scopes: tuple[str, ...], now: float) -> str:
        token = "1.A" + secrets.token_urlsafe(160)
        self.refresh_tokens[token] = RefreshGrant(client_id, email, graph_scopes, now)
        return token

    def consented(self, email: str, client_id: str, tenant_id: str | None = None) -> set[str]:
        """Scopes the user may use: their own consent plus any admin consent for their tenant."""
        own = self.consents.get((email, client_id), set())
        return own | self.tenant_consents.get((tenant_id or "", client_id), set())

    def add_tenant_consent(self, tenant_id: str, client_id: str, scopes: tuple[str, ...]) -> None:
        self.tenant_consents.setdefault((tenant_id, client_id), set()).update(scopes)

    def forget_tenant(self, tenant_id: str) -> None:
        """Drop every admin consent of the tenant (as removing the app's grants in Entra ID does)."""
        for key in [key for key in self.tenant_consents if key[0] == tenant_id]:
            del self.tenant_consents[key]

    def add_consent(self, email: str, client_id: str, scopes: tuple[str, ...]) -> None:
        self.consents.setdefault((email, client_id), set()).update(scopes)

    def forget_user(self, email: str) -> None:
        """Drop the user's consents (as removing the app's permissions in My Apps does)."""
        for key in [key for key in self.consents if key[0] == email]:
            del self.consents[key]

    def take_injected(self, email: str, grant_type: str) -> InjectedError | None:
        for rule in self.injected:
            if rule.matches(email, grant_type):
                if rule.times > 0:
                    rule.times -= 1
                    if rule.times == 0:
                        self.injected.remove(rule)
                return rule
        return None

    def record(self, entry: dict[str, Any], *, limit: int) -> None:
        self.log.append(entry)
        while len(self.log) > max(limit, 0):
            self.log.popleft()
