"""Token responses: the Graph access token (from the stack's TokenIssuer), an RS256 id_token whose
key is published at ``jwks_uri``, ``client_info`` and the refresh token.

MSAL does not check the id_token signature, but the product may; a real key keeps that honest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

from local.sims.identity.directory import App, User
from local.sims.identity.scopes import RequestedScopes
from local.sims.identity.settings import IdentitySettings
from local.sims.tokens import TokenIssuer


class Minter:
    """Signs id_tokens with its own RSA key and asks the shared TokenIssuer for access tokens."""

    def __init__(self, issuer: TokenIssuer) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self._issuer = issuer
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = base64.urlsafe_b64encode(hashlib.sha1(_public_der(self._key)).digest()).decode().rstrip("=")

    def jwks(self, *, issuer: str) -> dict[str, Any]:
        from jwt.algorithms import RSAAlgorithm

        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"use": "sig", "kid": self.kid, "x5t": self.kid, "issuer": issuer})
        return {"keys": [jwk]}

    def token_response(
        self,
        *,
        user: User,
        app: App,
        scopes: RequestedScopes,
        graph_scopes: tuple[str, ...],
        now: float,
        settings: IdentitySettings,
        base_url: str,
        nonce: str | None,
        client_info: bool,
        refresh_token: str | None,
    ) -> dict[str, Any]:
        lifetime = settings.access_token_lifetime_seconds
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join([*graph_scopes, *(s for s in scopes.oidc if s != "offline_access")]),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self._issuer.issue(
                tenant_id=user.tenant_id,
                object_id=user.oid,
                username=user.upn,
                name=user.name,
                scopes=list(graph_scopes),
                client_id=app.client_id,
                now=now,
                lifetime_seconds=lifetime,
                opaque=user.personal and settings.personal_access_tokens_opaque,
            ),
        }
        if refresh_token:
            body["refresh_token"] = refresh_token
        if scopes.openid:
            body["id_token"] = self.id_token(
                user=user, app=app, scopes=scopes, now=now, settings=settings, base_url=base_url, nonce=nonce
            )
        if client_info:
            body["client_info"] = _b64(json.dumps({"uid": user.oid, "utid": user.tenant_id}).encode())
        return body

    def id_token(
        self,
        *,
        user: User,
        app: App,
        scopes: RequestedScopes,
        now: float,
        settings: IdentitySettings,
        base_url: str,
        nonce: str | None,
    ) -> str:
        import jwt

        claims: dict[str, Any] = {
            "aud": app.client_id,
            "iss": f"{base_url}/{user.tenant_id}/v2.0",
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now) + settings.id_token_lifetime_seconds,
            "name": user.name,
            "oid": user.oid,
            "preferred_username": user.upn,
            # sub is pairwise: the same user has a different sub in every app.
            "sub": _b64(hashlib.sha256(f"{user.oid}:{app.client_id}".encode()).digest())[:43],
            "tid": user.tenant_id,
            "uti": uuid.uuid4().hex[:22],
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        # Entra ID puts the user's assigned app roles (those the app declares) and, when the app's
        # token configuration asks for them, their security groups in the id_token.
        roles = [role for role in user.app_roles.get(app.client_id, ()) if role in app.app_roles]
        if roles:
            claims["roles"] = roles
        if app.group_claims and user.groups:
            claims["groups"] = list(user.groups)
        # Only with the email scope, and only when the user has a mail address (Entra ID leaves it out otherwise).
        if "email" in scopes.oidc and user.mail:
            claims["email"] = user.mail
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _public_der(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
