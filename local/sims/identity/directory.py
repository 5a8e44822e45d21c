"""Who exists: tenants, users (work/school and personal) and app registrations, and which
authority (``/common``, ``/organizations``, ``/consumers`` or a tenant) lets whom sign in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

# The tenant every personal Microsoft account belongs to.
PERSONAL_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
# Stable ids: the same seed gives the same oids on every run, so demo data and tests can refer to them.
_ID_NAMESPACE = uuid.UUID("5f1b7c2e-7d43-4c36-9a51-3a2f0c6b8e11")

AUDIENCES = {
    "AzureADMyOrg": (True, False),
    "AzureADMultipleOrgs": (True, False),
    "AzureADandPersonalMicrosoftAccount": (True, True),
    "PersonalMicrosoftAccount": (False, True),
}


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    domain: str | None = None


@dataclass
class User:
    email: str
    password: str
    name: str
    oid: str
    tenant_id: str
    personal: bool
    # Refresh tokens issued before this moment (clock timestamp) are revoked.
    tokens_valid_from: float = 0.0

    def public(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "name": self.name,
            "oid": self.oid,
            "tenant_id": self.tenant_id,
            "personal": self.personal,
        }


@dataclass(frozen=True)
class App:
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]
    client_secret: str | None = None  # None: a public client (no secret, may use ROPC)
    sign_in_audience: str = "AzureADandPersonalMicrosoftAccount"
    home_tenant_id: str | None = None

    @property
    def confidential(self) -> bool:
        return self.client_secret is not None


@dataclass(frozen=True)
class Authority:
    """The tenant segment of a request path, resolved."""

    segment: str
    tenant_id: str | None  # None for /common and /organizations
    allows_work: bool
    allows_personal: bool

    @property
    def is_common_or_consumers(self) -> bool:
        return self.segment.lower() in ("common", "consumers")


@dataclass
class Directory:
    tenants: dict[str, Tenant] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)  # keyed by lower-case email
    apps: dict[str, App] = field(default_factory=dict)

    def resolve_authority(self, segment: str) -> Authority | None:
        """The authority a path segment names, or None for a tenant AAD would not find (AADSTS90002)."""
        lowered = segment.lower()
        if lowered == "common":
            return Authority(segment, None, True, True)
        if lowered == "organizations":
            return Authority(segment, None, True, False)
        if lowered in ("consumers", PERSONAL_TENANT_ID):
            return Authority(segment, PERSONAL_TENANT_ID, False, True)
        for tenant in self.tenants.values():
            if lowered in (tenant.id.lower(), (tenant.domain or "").lower()):
                return Authority(segment, tenant.id, True, False)
        return None

    def user(self, email: str) -> User | None:
        return self.users.get(email.strip().lower())

    def tenant_name(self, tenant_id: str | None) -> str:
        tenant = self.tenants.get(tenant_id or "")
        return tenant.name if tenant else (tenant_id or "")

    # --- seeding -------------------------------------------------------------------------

    def seed(self, payload: Any) -> dict[str, Any]:
        """Add or replace tenants, users and apps (see the package docstring for the format)."""
        if not isinstance(payload, dict):
            raise ValueError("seed must be a JSON object")
        for item in _list(payload, "tenants"):
            tenant = Tenant(id=_text(item, "id"), name=str(item.get("name") or item["id"]), domain=item.get("domain"))
            self.tenants[tenant.id] = tenant
        seeded = [self._seed_user(item) for item in _list(payload, "users")]
        for item in _list(payload, "apps"):
            app = _parse_app(item)
            self.apps[app.client_id] = app
        return {"users": [user.public() for user in seeded], "tenants": [t.__dict__ for t in self.tenants.values()]}

    def _seed_user(self, item: dict[str, Any]) -> User:
        email = _text(item, "email").lower()
        personal = bool(item.get("personal", False))
        tenant_id = PERSONAL_TENANT_ID if personal else self._tenant_for(email, item.get("tenant_id"))
        user = User(
            email=email,
            password=_text(item, "password"),
            name=str(item.get("name") or email.split("@")[0]),
            oid=str(item.get("oid") or _stable_oid(email, personal)),
            tenant_id=tenant_id,
            personal=personal,
        )
        self.users[email] = user
        return user

    def _tenant_for(self, email: str, tenant_id: Any) -> str:
        if tenant_id:
            tenant_id = str(tenant_id)
            if tenant_id not in self.tenants:
                self.tenants[tenant_id] = Tenant(id=tenant_id, name=email.split("@")[-1])
            return tenant_id
        domain = email.split("@")[-1]
        matches = [t.id for t in self.tenants.values() if (t.domain or "").lower() == domain]
        if not matches and len(self.tenants) == 1:
            matches = list(self.tenants)
        if len(matches) != 1:
            raise ValueError(f"user {email}: give tenant_id (no single seeded tenant matches)")
        return matches[0]


def _stable_oid(email: str, personal: bool) -> str:
    generated = uuid.uuid5(_ID_NAMESPACE, email)
    # Personal accounts' object ids look like 00000000-0000-0000-xxxx-xxxxxxxxxxxx in real tokens.
    return f"00000000-0000-0000-{str(generated)[19:]}" if personal else str(generated)


def _parse_app(item: dict[str, Any]) -> App:
    redirect_uris = item.get("redirect_uris") or []
    if not isinstance(redirect_uris, list) or not all(isinstance(uri, str) for uri in redirect_uris):
        raise ValueError("app redirect_uris must be a list of strings")
    audience = str(item.get("sign_in_audience") or "AzureADandPersonalMicrosoftAccount")
    if audience not in AUDIENCES:
        raise ValueError(f"sign_in_audience must be one of {sorted(AUDIENCES)}")
    return App(
        client_id=_text(item, "client_id"),
        name=str(item.get("name") or item["client_id"]),
        redirect_uris=tuple(redirect_uris),
        client_secret=item.get("client_secret") or None,
        sign_in_audience=audience,
        home_tenant_id=item.get("home_tenant_id"),
    )


def _list(payload: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = payload.get(key) or []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError(f"{key} must be a list of objects")
    return items


def _text(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} is required (a non-empty string)")
    return value.strip()
