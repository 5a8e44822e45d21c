"""Access tokens shared by the identity simulator (which issues them) and the Graph simulator
(which checks them). Work-account tokens are JWTs signed with one HMAC key per stack.

Claims: ``aud`` (``https://graph.microsoft.com``), ``iss``, ``tid``, ``oid``, ``preferred_username``,
``name``, ``scp`` (space-separated scopes, e.g. ``"Calendars.ReadWrite User.Read"``), ``appid``
(client id), ``iat``, ``nbf``, ``exp``, ``uti`` (unique token id).

Personal-account tokens from the real service are opaque (compact tickets starting ``EwB``, not JWTs):
only Graph can read them. ``issue(..., opaque=True)`` mints such a token and keeps its claims in this
issuer's registry, so ``verify`` (and with it the Graph simulator) still knows whose token it is.
"""

from __future__ import annotations

import base64
import secrets
import threading
import uuid
from typing import Any

GRAPH_AUDIENCE = "https://graph.microsoft.com"
# Opaque tokens kept before expired ones are dropped; a long-running stack must not grow without bound.
OPAQUE_REGISTRY_LIMIT = 10_000


class InvalidAccessToken(Exception):
    """The token is malformed, not ours, or expired; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenIssuer:
    """Mints and verifies access tokens; ``now`` is a timestamp from the stack's SimClock."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)
        self._opaque: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()  # the identity simulator issues while Graph verifies, on other threads

    def issue(
        self,
        *,
        tenant_id: str,
        object_id: str,
        username: str,
        name: str,
        scopes: list[str],
        client_id: str,
        now: float,
        lifetime_seconds: int,
        issuer: str = "",
        opaque: bool = False,
    ) -> str:
        import jwt

        claims: dict[str, Any] = {
            "aud": GRAPH_AUDIENCE,
            "iss": issuer or f"https://sts.windows.net/{tenant_id}/",
            "tid": tenant_id,
            "oid": object_id,
            "preferred_username": username,
            "name": name,
            "scp": " ".join(scopes),
            "appid": client_id,
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now) + lifetime_seconds,
            "uti": uuid.uuid4().hex,
        }
        if opaque:
            return self._register_opaque(claims, now)
        return jwt.encode(claims, self._key, algorithm="HS256")

    def _register_opaque(self, claims: dict[str, Any], now: float) -> str:
        # Standard base64 like the real tickets (with + / =): a client must send it untouched.
        token = "EwB" + base64.b64encode(secrets.token_bytes(600)).decode()
        with self._lock:
            if len(self._opaque) >= OPAQUE_REGISTRY_LIMIT:
                for stale in [key for key, known in self._opaque.items() if known["exp"] <= now]:
                    del self._opaque[stale]
            self._opaque[token] = claims
        return token

    def verify(self, token: str, *, now: float) -> dict[str, Any]:
        """Claims of a valid token; raises InvalidAccessToken otherwise (expiry by ``now``)."""
        import jwt

        with self._lock:
            opaque = self._opaque.get(token)
        claims = dict(opaque) if opaque is not None else self._decode(jwt, token)
        if claims.get("exp", 0) <= now:
            raise InvalidAccessToken("Lifetime validation failed, the token is expired.")
        return claims

    def _decode(self, jwt: Any, token: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=GRAPH_AUDIENCE,
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError as error:
            raise InvalidAccessToken(f"token is not valid: {error}") from None
        return claims
