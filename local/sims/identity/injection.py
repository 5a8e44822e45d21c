"""Token errors on demand (``POST /_sim/token_errors``): the AADSTS answers a real tenant gives when
a grant expires, is revoked, loses consent or needs MFA, without waiting for any of that to happen.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from local.sims.identity import errors
from local.sims.identity.directory import App
from local.sims.identity.errors import AadError
from local.sims.identity.grants import InjectedError

GRANT_TYPES = ("authorization_code", "refresh_token", "password")


def _catalogue(app: App, now: datetime, idle_seconds: int) -> dict[int, Callable[[], AadError]]:
    return {
        700082: lambda: errors.refresh_token_idle(now - timedelta(seconds=idle_seconds), idle_seconds),
        70008: errors.grant_expired,
        50173: lambda: errors.grant_revoked(now - timedelta(days=1), now),
        65001: lambda: errors.consent_required(app.client_id, app.name),
        50076: errors.mfa_required,
        70000: errors.scopes_unauthorized,
        50126: errors.bad_credentials,
        50057: errors.user_disabled,
        7000215: lambda: errors.secret_invalid(app.client_id),
        90033: lambda: errors.server_error(503),
    }


SUPPORTED_CODES = tuple(sorted(_catalogue(App("x", "x", ()), datetime.now(), 1)))


def injected_error(rule: InjectedError, *, app: App, now: datetime, idle_seconds: int) -> AadError:
    error = _catalogue(app, now, idle_seconds)[rule.code]()
    if rule.error:
        error.error = rule.error
    if rule.suberror:
        error.suberror = rule.suberror
    return error


def parse_rule(spec: Any) -> InjectedError:
    """A rule from ``{"email" | "*", "code", "times", "grant_type"?, "error"?, "suberror"?}``; ValueError if bad."""
    if not isinstance(spec, dict):
        raise ValueError("expected a JSON object")
    email = str(spec.get("email") or "").strip().lower()
    if not email:
        raise ValueError("email is required ('*' for every user)")
    code = spec.get("code")
    if code not in SUPPORTED_CODES:
        raise ValueError(f"code must be one of {list(SUPPORTED_CODES)}")
    times = spec.get("times", 1)
    if isinstance(times, bool) or not isinstance(times, int) or times < 0:
        raise ValueError("times must be a non-negative integer (0 = until cleared)")
    grant_type = spec.get("grant_type")
    if grant_type is not None and grant_type not in GRANT_TYPES:
        raise ValueError(f"grant_type must be one of {list(GRANT_TYPES)}")
    return InjectedError(
        email=email,
        code=code,
        times=times,
        grant_type=grant_type,
        error=_optional_text(spec, "error"),
        suberror=_optional_text(spec, "suberror"),
    )


def _optional_text(spec: dict[str, Any], key: str) -> str | None:
    value = spec.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value or None
