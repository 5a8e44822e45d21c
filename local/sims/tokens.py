"""Access tokens shared by the identity simulator (which issues them) and the Graph simulator
(which checks them). They are JWTs signed with one HMAC key per stack.

Claims: ``aud`` (``https://graph.microsoft.com``), ``iss``, ``tid``, ``oid``, ``preferred_username``,
``name``, ``scp`` (space-separated scopes, e.g. ``"Calendars.ReadWrite User.Read"``), ``appid``
(client id), ``iat``, ``nbf``, ``exp``, ``uti`` (unique token id).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

GRAPH_AUDIENCE = "https://graph.microsoft.com"


class InvalidAccessToken(Exception):
    """The token is malformed, not ours, or expired; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenIssuer:
    """Mints and verifies access tokens; ``now`` is a timestamp from the stack's SimClock."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

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
        return jwt.encode(claims, self._key, algorithm="HS256")

    def verify(self, token: str, *, now: float) -> dict[str, Any]:
        """Claims of a valid token; raises InvalidAccessToken otherwise (expiry by ``now``)."""
        import jwt

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
        if claims.get("exp", 0) <= now:
            raise InvalidAccessToken("Lifetime validation failed, the token is expired.")
        return claims
