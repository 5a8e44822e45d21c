"""What stands before every handler: the bearer token, its scopes, and the per-mailbox throttles
(4 concurrent requests and 10,000 per 10 minutes per app and mailbox)."""

from __future__ import annotations

import random
import threading
from collections import OrderedDict, defaultdict, deque
from typing import Any

from local.sims.control import SimClock
from local.sims.graph.errors import GraphError
from local.sims.graph.settings import GraphSettings
from local.sims.tokens import InvalidAccessToken, TokenIssuer

READ_SCOPES = {
    "Calendars.ReadBasic",
    "Calendars.Read",
    "Calendars.ReadWrite",
    "Calendars.Read.Shared",
    "Calendars.ReadWrite.Shared",
}
WRITE_SCOPES = {"Calendars.ReadWrite", "Calendars.ReadWrite.Shared"}
USER_SCOPES = {"User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All", "Directory.Read.All"}
WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'client_id="00000003-0000-0000-c000-000000000000"'
)


class VerifiedTokens:
    """Claims of tokens whose signature already checked out; expiry is still checked on every use.
    Signature checks were over half of the simulator's time per request."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._claims: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, issuer: TokenIssuer, token: str, now: float) -> dict[str, Any]:
        with self._lock:
            claims = self._claims.get(token)
            if claims is not None:
                self._claims.move_to_end(token)
        if claims is None:
            claims = issuer.verify(token, now=now)
            with self._lock:
                self._claims[token] = claims
                while len(self._claims) > self._size:
                    self._claims.popitem(last=False)
        if claims.get("exp", 0) <= now:
            raise InvalidAccessToken("Lifetime validation failed, the token is expired.")
        return claims


_VERIFIED = VerifiedTokens()


def authenticate(issuer: TokenIssuer, clock: SimClock, authorization: str | None) -> dict[str, Any]:
    """The token's claims; 401 InvalidAuthenticationToken otherwise."""
    headers = {"WWW-Authenticate": WWW_AUTHENTICATE}
    if not authorization or not authorization.strip():
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.", headers)
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise GraphError(
            401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.", headers
        )
    try:
        return _VERIFIED.verify(issuer, token.strip(), clock.timestamp())
    except InvalidAccessToken as error:
        message = error.reason
        if "expired" not in message:
            message = (
                "IDX14100: JWT is not well formed, there are no dots (.)."
                if "." not in token
                else ("Access token validation failure. Invalid audience or signature.")
            )
        raise GraphError(401, "InvalidAuthenticationToken", message, headers) from None


def require_scope(claims: dict[str, Any], access: str) -> None:
    """403 ErrorAccessDenied when the token lacks the scope ``access`` needs."""
    scopes = set(str(claims.get("scp", "")).split())
    needed = {
        "read": READ_SCOPES,
        "write": WRITE_SCOPES,
        "subscriptions": READ_SCOPES,
        "user": USER_SCOPES | READ_SCOPES,
    }.get(access)
    if needed is not None and not scopes & needed:
        raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")


class MailboxThrottle:
    """In-flight and per-window request counts per mailbox; over a limit -> 429 with Retry-After."""

    def __init__(self, clock: SimClock, settings: GraphSettings) -> None:
        self.clock = clock
        self.settings = settings
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = defaultdict(int)
        self._recent: dict[str, deque[float]] = defaultdict(deque)

    def acquire(self, mailbox_oid: str) -> None:
        now = self.clock.timestamp()
        with self._lock:
            if self._in_flight[mailbox_oid] >= self.settings.mailbox_concurrency_limit:
                raise self._throttled("Application is over its MailboxConcurrency limit.")
            recent = self._recent[mailbox_oid]
            while recent and recent[0] <= now - self.settings.mailbox_window_seconds:
                recent.popleft()
            if len(recent) >= self.settings.mailbox_requests_per_window:
                raise self._throttled("Application is over its MailboxRequests limit.")
            recent.append(now)
            self._in_flight[mailbox_oid] += 1

    def release(self, mailbox_oid: str) -> None:
        with self._lock:
            self._in_flight[mailbox_oid] = max(0, self._in_flight[mailbox_oid] - 1)

    def reset(self) -> None:
        with self._lock:
            self._in_flight.clear()
            self._recent.clear()

    def _throttled(self, message: str) -> GraphError:
        return GraphError(429, "ApplicationThrottled", message, retry_after_headers(self.settings))


def retry_after_headers(settings: GraphSettings) -> dict[str, str]:
    """Retry-After as the style says; "mixed" varies it per 429, as seen in the field."""
    style = settings.retry_after_style
    if style == "mixed":
        absent = random.random() < settings.retry_after_absent_probability
        style = "absent" if absent else random.choice(("integer", "fractional"))
    if style == "absent":
        return {}
    if style == "fractional":
        return {"Retry-After": f"{settings.retry_after_seconds:.3f}"}
    return {"Retry-After": str(max(1, round(settings.retry_after_seconds)))}
