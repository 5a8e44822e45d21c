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


@dataclass
class Tenant:
    id: str
    name: str
    domain: str | None = None
    # Whether members may consent to apps themselves. Real tenants choose this (Enterprise applications >
    # Consent and permissions); False sends non-admins to the "Need admin approval" page (AADSTS90094).
    user_consent: bool = True

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "domain": self.domain, "user_consent": self.user_consent}


@dataclass
class User:
    """``upn`` is the sign-in name (case as seeded, matched case-insensitively); ``mail`` the mailbox
    address, which may differ from the UPN or be None, as in Entra ID."""

    upn: str
    mail: str | None
    password: str
    name: str
    oid: str
    tenant_id: str
    personal: bool
    admin: bool = False  # a tenant admin: may consent for the whole tenant
    # App roles assigned to the user, by client id (Enterprise applications > Users and groups); the
    # id_token's ``roles`` claim lists those the app declares.
    app_roles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    groups: tuple[str, ...] = ()  # object ids of the groups the user is in (the ``groups`` claim)
    # Refresh tokens issued before this moment (clock timestamp) are revoked.
    tokens_valid_from: float = 0.0

    @property
    def key(self) -> str:
        """The directory key: the UPN in lower case (sign-in names are case-insensitive)."""
        return self.upn.lower()

    def public(self) -> dict[str, Any]:
        return {
            # "email" predates upn/mail: the mailbox address, else the sign-in name.
            "email": self.mail or self.upn,
            "upn": self.upn,
            "mail": self.mail,
            "name": self.name,
            "oid": self.oid,
            "tenant_id": self.tenant_id,
            "personal": self.personal,
            "admin": self.admin,
            "app_roles": {client_id: list(roles) for client_id, roles in self.app_roles.items()},
            "groups": list(self.groups),
        }


@dataclass(frozen=True)
class App:
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]
    client_secret: str | None = None  # None: a public client (no secret, may use ROPC)
    sign_in_audience: str = "AzureADandPersonalMicrosoftAccount"
    home_tenant_id: str | None = None
    app_roles: tuple[str, ...] = ()  # the roles the registration declares (its manifest's appRoles values)
    group_claims: bool = False  # token configuration emits ``groups`` (security group ids) in id_tokens

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
    users: dict[str, User] = field(default_factory=dict)  # keyed by lower-case UPN
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

    def user(self, upn: str) -> User | None:
        """The user whose sign-in name is ``upn`` (any case); a mail address that differs does not sign in."""
        return self.users.get(upn.strip().lower())

    def find(self, name: str) -> User | None:
        """For control routes: a user by UPN or, failing that, by mail address."""
        wanted = name.strip().lower()
        return self.users.get(wanted) or next(
            (u for u in self.users.values() if (u.mail or "").lower() == wanted), None
        )

    def user_consent_allowed(self, tenant_id: str) -> bool:
        tenant = self.tenants.get(tenant_id)
        return tenant.user_consent if tenant else True

    def tenant_name(self, tenant_id: str | None) -> str:
        tenant = self.tenants.get(tenant_id or "")
        return tenant.name if tenant else (tenant_id or "")

    # --- seeding -------------------------------------------------------------------------

    def seed(self, payload: Any) -> dict[str, Any]:
        """Add or replace tenants, users and apps (see the package docstring for the format)."""
        if not isinstance(payload, dict):
            raise ValueError("seed must be a JSON object")
        for item in _list(payload, "tenants"):
            tenant = Tenant(
                id=_text(item, "id"),
                name=str(item.get("name") or item["id"]),
                domain=item.get("domain"),
                user_consent=_flag(item, "user_consent", True),
            )
            self.tenants[tenant.id] = tenant
        seeded = [self._seed_user(item) for item in _list(payload, "users")]
        for item in _list(payload, "apps"):
            app = _parse_app(item)
            self.apps[app.client_id] = app
        return {"users": [user.public() for user in seeded], "tenants": [t.public() for t in self.tenants.values()]}

    def _seed_user(self, item: dict[str, Any]) -> User:
        upn, mail = _upn_and_mail(item)
        personal = _flag(item, "personal", False)
        tenant_id = PERSONAL_TENANT_ID if personal else self._tenant_for(upn.lower(), item.get("tenant_id"))
        user = User(
            upn=upn,
            mail=mail,
            password=_text(item, "password"),
            name=str(item.get("name") or upn.split("@")[0]),
            # Oids derive from the lower-case sign-in name, so seeds from before upn/mail keep their oids.
            oid=str(item.get("oid") or _stable_oid(upn.lower(), personal)),
            tenant_id=tenant_id,
            personal=personal,
            admin=_flag(item, "admin", False),
            app_roles=_app_roles(item),
            groups=tuple(_strings(item, "groups")),
        )
        existing = self.users.get(user.key)
        if existing is not None and existing.tenant_id != user.tenant_id:
            # As in Entra ID: a UPN's domain is verified in one tenant only, so no other tenant's
            # admin can give their user it (``mail`` they can set to anything).
            raise ValueError(f"user {upn}: that sign-in name belongs to another tenant")
        self.users[user.key] = user
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


def _upn_and_mail(item: dict[str, Any]) -> tuple[str, str | None]:
    """``upn`` and ``mail`` as seeded; a user seeded with only ``email`` gets it as both."""
    email = item.get("email")
    upn = item.get("upn") or email
    if not isinstance(upn, str) or "@" not in upn.strip():
        raise ValueError("user needs upn (or email): a sign-in name like name@domain")
    mail = item.get("mail", email or upn)  # an explicit null means no mailbox address
    if mail is not None and (not isinstance(mail, str) or "@" not in mail):
        raise ValueError("mail must be an address or null")
    return upn.strip(), mail.strip() if mail else None


def _flag(item: dict[str, Any], key: str, default: bool) -> bool:
    value = item.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false")
    return value


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
        app_roles=tuple(_strings(item, "app_roles")),
        group_claims=_flag(item, "group_claims", False),
    )


def _strings(item: dict[str, Any], key: str) -> list[str]:
    values = item.get(key) or []
    if not isinstance(values, list) or not all(isinstance(value, str) and value for value in values):
        raise ValueError(f"{key} must be a list of non-empty strings")
    return values


def _app_roles(item: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    roles = item.get("app_roles") or {}
    if not isinstance(roles, dict):
        raise ValueError("app_roles must be an object: client id -> list of role values")
    return {str(client_id): tuple(_strings(roles, client_id)) for client_id in roles}


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
