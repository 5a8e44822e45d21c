"""Sending one request with bounded, jittered retries: the helper every service client shares.

What is retried:
- 429 and 503, for every method: the service says it did not do the work. ``Retry-After``
  (whole or fractional seconds, or an HTTP date) is honoured; without it the wait backs off
  exponentially from ``RetryPolicy.backoff_seconds``.
- 502 and 504, timeouts and broken connections (not TLS failures), for idempotent methods only (GET, HEAD,
  OPTIONS, PUT, DELETE, or a request the caller marks idempotent, such as a Graph create with
  a ``transactionId``): the work may have been done, so only a repeatable request is sent again.

The waits are bounded: at most ``max_attempts`` sends, no single wait above
``max_wait_seconds``, and no more than ``max_total_wait_seconds`` in all. When the service
asks for a longer wait than is left, no wait happens: the last response goes back to the
client, which raises its Throttled error carrying ``retry_after`` so the caller can reschedule
(a queued sync job, for instance) instead of holding a worker.

``send`` never raises an error of its own: it returns the last response, or re-raises the
last ``requests`` exception. ``send_checked`` is what the clients call: ``send`` with either
outcome translated into the client's ``sync.errors`` classes at its boundary.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Self

import requests

from sync.errors import ServiceError

# Default timeouts of every client call: (connect, read) seconds.
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)

TLS_ADVICE = (
    "The server's certificate is not trusted: check CA_BUNDLE (the simulators' CA when running locally) "
    "and the base URL."
)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
THROTTLE_STATUSES = frozenset({429, 503})  # retried for any method
GATEWAY_STATUSES = frozenset({502, 504})  # retried for idempotent requests only


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait as a ``Retry-After`` header says, or None when it is absent or unreadable.

    Accepts whole or fractional seconds (Graph sends ``0.5`` at times) and an HTTP date
    (RFC 9110), which is measured from ``now`` (aware) and gives 0 when it has passed.
    Negative, infinite and non-numeric values are unreadable.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until_date(text, now)
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        return None
    return seconds


def _seconds_until_date(text: str, now: datetime) -> float | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:  # "-0000" or an obsolete form: HTTP dates are GMT
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one call tries. ``sleep``, ``now`` and ``random`` are seams for tests and benchmarks."""

    max_attempts: int = 4  # sends in all, the first one included
    backoff_seconds: float = 0.5  # first wait when the service gives no Retry-After; doubles each time
    max_wait_seconds: float = 30.0  # longest single wait
    max_total_wait_seconds: float = 60.0  # most time spent waiting within one call
    jitter: float = 0.2  # each wait is lengthened by up to this share, so clients do not retry in step
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.backoff_seconds, self.max_wait_seconds, self.max_total_wait_seconds, self.jitter) < 0:
            raise ValueError("waits and jitter must not be negative")

    def wait_for(self, retry_number: int, retry_after: float | None) -> float:
        """The wait before retry ``retry_number`` (1 for the first retry): what the service asked,
        else the exponential backoff, lengthened by the jitter (never shortened)."""
        if retry_after is not None:
            base = retry_after
        else:
            base = min(self.max_wait_seconds, self.backoff_seconds * 2 ** (retry_number - 1))
        return base * (1 + self.jitter * self.random())


NO_RETRIES = RetryPolicy(max_attempts=1)


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float | tuple[float, float],
    retry: RetryPolicy,
    idempotent: bool | None = None,
    on_attempt: Callable[[], None] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """Send a request with ``retry``'s bounded retries; returns the last response (any status).

    ``idempotent`` (default: by method) allows resending after a timeout, a broken connection,
    502 or 504. ``on_attempt`` is called before every send, retries included (the clients count
    requests against a service's budget with it). Re-raises the last ``requests.RequestException``
    when no response came.
    """
    method = method.upper()
    repeatable = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
    waited = 0.0
    for attempt in range(1, retry.max_attempts + 1):
        last = attempt == retry.max_attempts
        if on_attempt is not None:
            on_attempt()
        try:
            response = session.request(method, url, timeout=timeout, **kwargs)
        except requests.exceptions.SSLError:
            raise  # an untrusted certificate stays untrusted: sending again cannot help
        except (requests.ConnectionError, requests.Timeout):
            wait = None if last or not repeatable else retry.wait_for(attempt, None)
            if wait is None or waited + wait > retry.max_total_wait_seconds:
                raise
        else:
            if not _retryable(response.status_code, repeatable) or last:
                return response
            asked = parse_retry_after(response.headers.get("Retry-After"), retry.now())
            if asked is not None and asked > retry.max_wait_seconds:
                return response
            wait = retry.wait_for(attempt, asked)
            if waited + wait > retry.max_total_wait_seconds:
                return response
            response.close()  # hand the connection back before waiting
        retry.sleep(wait)
        waited += wait
    raise AssertionError("unreachable: the last attempt returns or raises")


def send_checked(
    session: requests.Session,
    method: str,
    url: str,
    *,
    where: str,
    error_of: Callable[[requests.Response], ServiceError],
    unavailable: type[ServiceError],
    **kwargs: Any,
) -> requests.Response:
    """``send`` (``kwargs`` go to it), raising instead of answering a failure: returns a response
    below 400, raises ``error_of(response)`` for any other, and ``unavailable`` (naming ``where``,
    e.g. ``"GET /me"``) when no response came: a TLS failure (with ``TLS_ADVICE``), a timeout or a
    broken connection."""
    try:
        response = send(session, method, url, **kwargs)
    except requests.exceptions.SSLError as error:
        raise unavailable(None, None, f"{where}: the TLS handshake failed", advice=TLS_ADVICE) from error
    except requests.Timeout as error:
        raise unavailable(None, None, f"{where} timed out") from error
    except requests.RequestException as error:
        raise unavailable(None, None, f"{where} failed: {type(error).__name__}") from error
    if response.status_code >= 400:
        failure = error_of(response)
        # The traceback keeps this frame: drop the response so a kept error holds no socket.
        response.close()
        del response
        raise failure
    return response


def _retryable(status: int, repeatable: bool) -> bool:
    return status in THROTTLE_STATUSES or (repeatable and status in GATEWAY_STATUSES)


def new_session(ca_bundle: str | None) -> requests.Session:
    """A session that trusts ``ca_bundle`` (or the system's CAs) and ignores the environment:
    ``REQUESTS_CA_BUNDLE`` would otherwise override ``verify`` (docs/configuration.md)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_bundle if ca_bundle else True
    return session


class SessionClient:
    """What every service client shares: its own session (or the caller's, which the caller then
    configures and closes), the ``verify`` to send through a caller's session, a thread-safe count
    of the requests sent (``requests_made``), and closing as a context manager."""

    def __init__(self, *, ca_bundle: str | None, session: requests.Session | None) -> None:
        self._owns_session = session is None
        self._session = session if session is not None else new_session(ca_bundle)
        self._verify: dict[str, Any] = {"verify": ca_bundle} if ca_bundle and session is not None else {}
        self._count_lock = threading.Lock()
        self._requests_made = 0

    @property
    def requests_made(self) -> int:
        """HTTP requests this client has sent, retries included."""
        return self._requests_made

    def _count_request(self) -> None:
        with self._count_lock:
            self._requests_made += 1

    def close(self) -> None:
        """Close the client's own session (a caller's session is left open)."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
