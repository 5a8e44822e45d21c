"""The identity simulator's run-time settings (``GET/PATCH /_sim/settings``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from local.sims.control import patched_settings

# Codes a revoked grant can answer with: 50173 (sessions revoked / password changed) or 70008 (grant expired).
REVOCATION_CODES = (50173, 70008)


@dataclass
class IdentitySettings:
    """Lifetimes are measured on the stack's SimClock, so tests move the clock instead of sleeping."""

    access_token_lifetime_seconds: int = 3600
    id_token_lifetime_seconds: int = 3600
    # Real AAD: a refresh token dies after 90 days without use; each use hands out a fresh one.
    refresh_token_idle_seconds: int = 90 * 24 * 3600
    code_lifetime_seconds: int = 600
    # How long the sign-in and consent pages of one authorize request stay usable.
    sign_in_flow_lifetime_seconds: int = 900
    revocation_error_code: int = 50173
    # Real AAD keeps a refresh token valid after it has been redeemed for a new one.
    old_refresh_tokens_stay_valid: bool = True
    # Unconfirmed: whether a code whose redemption failed (wrong PKCE verifier, wrong redirect_uri) can be
    # redeemed again. False: it can, until used successfully or expired.
    failed_redemption_burns_code: bool = False
    # Skip the consent page when the user already consented to every requested scope (as AAD does).
    remember_consent: bool = True
    # ROPC cannot show a consent page; real tenants grant admin consent up front. True makes ROPC
    # answer AADSTS65001 until the user has consented interactively.
    password_grant_needs_consent: bool = False
    # Personal-account (consumer tenant) access tokens are opaque, as Microsoft's are: not JWTs, so a client
    # cannot read claims from them. The Graph simulator still accepts them. False mints JWTs as for work accounts.
    personal_access_tokens_opaque: bool = True
    # Entries kept in the token request log (GET /_sim/token_requests).
    token_log_limit: int = 1000

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, changes: Any) -> IdentitySettings:
        """A copy with ``changes`` applied; ValueError on unknown fields or bad values."""
        return patched_settings(self, changes, choices={"revocation_error_code": REVOCATION_CODES})
