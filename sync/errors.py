"""Errors of the service clients, translated once at the client boundary.

ServiceError                    root: a call to Microsoft Graph or Syncro did not succeed
├── GraphError                  any failure talking to Microsoft Graph
│   └── DeltaTokenExpired       a delta link or round Graph no longer knows (410 SyncStateNotFound): start a full round
└── SyncroError                 any failure talking to Syncro

and, across both services, one class per condition a caller acts on (each concrete error is
both, e.g. ``GraphNotFound(GraphError, NotFound)``, so ``except NotFound`` catches either):

├── Unauthorized                401: the credential was refused (expired/revoked token, wrong API token)
├── Forbidden                   the credential is valid but lacks a permission (Syncro says so with a 401)
├── NotFound                    404: the addressed item does not exist (or is not visible to us)
├── PreconditionFailed          412: the item changed since it was read (If-Match)
├── InvalidRequest              400/422: the service refused what we sent
├── Throttled                   429 (or 503) that retries could not wait out; ``retry_after`` says how long
├── Unavailable                 5xx, a timeout or a broken connection that retries could not get past
└── UnexpectedResponse          any other status, or a body we could not read

Every error carries ``status`` (None when no response came), the service's ``code`` (None when
the service sends none, as Syncro), the service's own ``message``, and ``advice``: what to do.
``str(error)`` is one sentence naming the service, what happened and what to do; it never holds a
token.

Which class an HTTP status becomes is one table per service at the end of this module
(``GRAPH_STATUS_ERRORS``, ``SYNCRO_STATUS_ERRORS``), read by ``StatusErrors.kind_of``; the
what-to-do text is each class's ``default_advice``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar


class ServiceError(Exception):
    """Root of every client error. Raised only by the clients in this package."""

    service = "the service"
    default_advice = ""

    def __init__(
        self,
        status: int | None,
        code: str | None,
        message: str,
        *,
        advice: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.advice = self.default_advice if advice is None else advice
        self.retry_after = retry_after
        super().__init__(self._sentence())

    def _sentence(self) -> str:
        answer = " ".join(str(part) for part in (self.status, self.code) if part)
        what = f"{self.service} answered {answer}" if answer else f"{self.service} could not be reached"
        text = f"{what}: {self.message}" if self.message else what
        return f"{text.rstrip('.')}. {self.advice}".strip()


class Unauthorized(ServiceError):
    """Raised on 401: the access token or API token was refused."""

    default_advice = "Check the credential: it may have expired, been revoked or been mistyped."


class Forbidden(ServiceError):
    """Raised when the credential is accepted but lacks a permission."""

    default_advice = "Grant the missing permission, then try again."


class NotFound(ServiceError):
    """Raised on 404 by ``get``-style calls: the item does not exist or is not visible to this account."""

    default_advice = "The item may have been deleted; read the list again."


class PreconditionFailed(ServiceError):
    """Raised on 412: the item changed since it was read. Re-read it and decide again."""

    default_advice = "Read the item again and decide again."


class InvalidRequest(ServiceError):
    """Raised on 400 or 422: the service refused the request as sent."""

    default_advice = "This is a bug in the request we sent or in the data; the message says which field."


class Throttled(ServiceError):
    """Raised when 429 (or 503) persisted past the retry budget; ``retry_after`` is the service's wait, if given."""

    default_advice = "Try again later (after retry_after seconds when the service said so)."


class Unavailable(ServiceError):
    """Raised on 5xx, timeouts and connection failures that retries could not get past."""

    default_advice = "The service is down or unreachable; try again later."


class UnexpectedResponse(ServiceError):
    """Raised on any other status, or a body that is not what the API documents."""

    default_advice = "This is a bug or an API change: report it with the status and message."


# -- per service -----------------------------------------------------------------------------


class GraphError(ServiceError):
    """Root of Microsoft Graph failures."""

    service = "Microsoft Graph"


class GraphUnauthorized(GraphError, Unauthorized):
    default_advice = (
        "Get a fresh access token; if Microsoft refuses that too, the technician must link their calendar again."
    )


class GraphForbidden(GraphError, Forbidden):
    default_advice = (
        "The account has not granted Calendars.ReadWrite and User.Read, or may not use this mailbox or "
        "calendar: link again and accept the permissions (an admin may have to consent for the tenant)."
    )


class GraphNotFound(GraphError, NotFound):
    pass


class GraphPreconditionFailed(GraphError, PreconditionFailed):
    pass


class GraphInvalidRequest(GraphError, InvalidRequest):
    pass


class GraphThrottled(GraphError, Throttled):
    pass


class GraphUnavailable(GraphError, Unavailable):
    pass


class GraphUnexpectedResponse(GraphError, UnexpectedResponse):
    pass


class DeltaTokenExpired(GraphError):
    """Raised by a delta round when Graph no longer knows its delta link or next page: 410 Gone
    (``SyncStateNotFound``, ``syncStateNotFound``, ``fullSyncRequired``) or a 4xx ``resyncRequired``.
    The caller drops the stored link and starts a full round over its window."""

    default_advice = "Drop the stored delta link and start a full round (no delta link) over the window."


class SyncroError(ServiceError):
    """Root of Syncro failures."""

    service = "Syncro"


class SyncroUnauthorized(SyncroError, Unauthorized):
    default_advice = (
        "Syncro refused the API token: check SYNCRO_API_TOKEN and SYNCRO_BASE_URL "
        "(Syncro: Admin > API Tokens; the token must not be revoked)."
    )


class SyncroForbidden(SyncroError, Forbidden):
    default_advice = (
        "The API token lacks a permission: a Syncro admin must give the token (Admin > API Tokens > "
        "Edit, Custom Permissions) the permissions this app needs: Users - List/Search and View Details, "
        "Appointments - List/Search, View Details, Create, Edit and Delete."
    )


class SyncroNotFound(SyncroError, NotFound):
    pass


class SyncroPreconditionFailed(SyncroError, PreconditionFailed):
    pass


class SyncroInvalidRequest(SyncroError, InvalidRequest):
    pass


class SyncroThrottled(SyncroError, Throttled):
    default_advice = (
        "Syncro allows 180 requests a minute per IP address; try again in a minute, "
        "and check that no other integration shares this address's budget."
    )


class SyncroUnavailable(SyncroError, Unavailable):
    pass


class SyncroUnexpectedResponse(SyncroError, UnexpectedResponse):
    pass


class SyncroBudgetExhausted(SyncroThrottled):
    """Raised before a request is sent when the app's shared Syncro budget (`sync.budget`) has no
    request left for this caller within its wait; ``retry_after`` says when one frees up. It is a
    SyncroThrottled, so every caller defers exactly as for Syncro's own 429: nothing was sent."""

    default_advice = (
        "The app keeps to SYNCRO_REQUESTS_PER_MINUTE across all its instances; this work waits for "
        "the next free request (raise the setting only if Syncro's 180 a minute leave room)."
    )

    def _sentence(self) -> str:
        return f"Nothing was sent to Syncro: {self.message.rstrip('.')}. {self.advice}".strip()


# -- status -> error class: one table per service, one reader ---------------------------------

E = TypeVar("E", bound=ServiceError)


@dataclass(frozen=True)
class StatusErrors(Generic[E]):
    """A service's table from an HTTP error status to the class its client raises: ``by_status``
    for the statuses the service gives a meaning, ``server`` for any other 5xx, ``other`` for the
    rest. What to do is the class's ``default_advice``."""

    by_status: Mapping[int, type[E]]
    server: type[E]
    other: type[E]

    def kind_of(self, status: int) -> type[E]:
        """The error class for ``status`` (an error status: 400 or above)."""
        if status in self.by_status:
            return self.by_status[status]
        return self.server if status >= 500 else self.other


# Graph: 410 is a resource (or delta state) that is gone, so NotFound; the delta reader turns it
# into DeltaTokenExpired. The client makes a 503 that carries Retry-After a GraphThrottled.
GRAPH_STATUS_ERRORS: StatusErrors[GraphError] = StatusErrors(
    {
        400: GraphInvalidRequest,
        401: GraphUnauthorized,
        403: GraphForbidden,
        404: GraphNotFound,
        410: GraphNotFound,
        412: GraphPreconditionFailed,
        422: GraphInvalidRequest,
        429: GraphThrottled,
    },
    server=GraphUnavailable,
    other=GraphUnexpectedResponse,
)

# Syncro: no call of ours sends a precondition, so 412 (like 410) is unexpected. The client makes
# a 401 whose sentence names a permission a SyncroForbidden (Syncro's way of saying 403).
SYNCRO_STATUS_ERRORS: StatusErrors[SyncroError] = StatusErrors(
    {
        400: SyncroInvalidRequest,
        401: SyncroUnauthorized,
        403: SyncroForbidden,
        404: SyncroNotFound,
        422: SyncroInvalidRequest,
        429: SyncroThrottled,
    },
    server=SyncroUnavailable,
    other=SyncroUnexpectedResponse,
)
