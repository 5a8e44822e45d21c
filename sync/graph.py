"""The Microsoft Graph client: one technician's mailbox, through a token the caller supplies.

Every request asks for UTC times and immutable ids (``Prefer: outlook.timezone="UTC"`` and
``Prefer: IdType="ImmutableId"``), carries a timeout, and is retried as ``sync.http`` describes.
Failures are raised as the ``GraphError`` subclasses in ``sync.errors``; nothing returns None
for a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from sync.errors import (
    GraphError,
    GraphForbidden,
    GraphInvalidRequest,
    GraphNotFound,
    GraphPreconditionFailed,
    GraphThrottled,
    GraphUnauthorized,
    GraphUnavailable,
    GraphUnexpectedResponse,
)
from sync.http import DEFAULT_TIMEOUT, TLS_ADVICE, RetryPolicy, new_session, parse_retry_after, send

GRAPH_V1 = "https://graph.microsoft.com/v1.0"
PREFER = 'outlook.timezone="UTC", IdType="ImmutableId"'
MAX_PAGES = 1000  # a nextLink chain longer than this is a loop


@dataclass(frozen=True)
class MicrosoftUser:
    """The signed-in account as ``GET /me`` shows it."""

    id: str  # the Entra object id
    user_principal_name: str  # the sign-in name; may differ from mail
    mail: str | None  # the primary SMTP address; None for accounts without a mailbox address
    display_name: str | None


@dataclass(frozen=True)
class Calendar:
    """A calendar of the signed-in mailbox."""

    id: str
    name: str
    can_edit: bool  # False for calendars shared with the tech read-only: we cannot write there
    is_default: bool


class GraphClient:
    """Microsoft Graph v1.0 for the account whose tokens ``token`` returns.

    ``token`` is called before every request (so an MSAL-backed callable can refresh);
    ``ca_bundle`` is an extra CA file to trust (the simulators' locally); ``session`` replaces the
    client's own (then the caller configures TLS and closes it).
    """

    def __init__(
        self,
        base_url: str = GRAPH_V1,
        *,
        token: Callable[[], str],
        ca_bundle: str | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._owns_session = session is None
        self._session = session if session is not None else new_session(ca_bundle)
        self._verify: dict[str, Any] = {"verify": ca_bundle} if ca_bundle and session is not None else {}
        self._origin = _origin(self.base_url)

    # -- the user and calendars ---------------------------------------------------------------

    def me(self) -> MicrosoftUser:
        """The signed-in account. Raises GraphUnauthorized, GraphForbidden, GraphError."""
        body = self._get_json("/me")
        try:
            return MicrosoftUser(
                id=str(body["id"]),
                user_principal_name=str(body["userPrincipalName"]),
                mail=body.get("mail") or None,
                display_name=body.get("displayName"),
            )
        except (KeyError, TypeError) as error:
            raise _unreadable("/me", error) from error

    def calendars(self) -> list[Calendar]:
        """Every calendar of the mailbox (all pages). Raises GraphUnauthorized, GraphForbidden, GraphError."""
        return [_calendar(item) for item in self._pages("/me/calendars")]

    def calendar(self, calendar_id: str) -> Calendar:
        """One calendar; raises GraphNotFound when the mailbox has no such calendar, or GraphError."""
        return _calendar(self._get_json(f"/me/calendars/{quote(calendar_id, safe='')}"))

    # -- plumbing -----------------------------------------------------------------------------

    def _pages(self, path: str) -> Iterator[dict[str, Any]]:
        """The items of a collection, following ``@odata.nextLink`` (which must stay on this service)."""
        url: str | None = self._url(path)
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= MAX_PAGES:
                raise GraphUnexpectedResponse(200, None, f"the nextLink chain of {path} loops")
            seen.add(url)
            body = self._get_json(url)
            items = body.get("value")
            if not isinstance(items, list):
                raise GraphUnexpectedResponse(200, None, f"{path} answered without a value list")
            yield from items
            url = body.get("@odata.nextLink")
            if url is not None and _origin(url) != self._origin:
                # A nextLink elsewhere would receive the tech's access token.
                raise GraphUnexpectedResponse(200, None, f"{path} sent a nextLink to another host")

    def _url(self, path_or_url: str) -> str:
        return path_or_url if "://" in path_or_url else f"{self.base_url}{path_or_url}"

    def _get_json(self, path_or_url: str) -> dict[str, Any]:
        response = self._request("GET", self._url(path_or_url))
        try:
            body = response.json()
        except ValueError as error:
            raise GraphUnexpectedResponse(response.status_code, None, "the body is not JSON") from error
        if not isinstance(body, dict):
            raise GraphUnexpectedResponse(response.status_code, None, "the body is not a JSON object")
        return body

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._token()}", "Prefer": PREFER, "Accept": "application/json"}
        headers.update(kwargs.pop("headers", None) or {})
        try:
            response = send(
                self._session,
                method,
                url,
                timeout=self._timeout,
                retry=self._retry,
                headers=headers,
                **self._verify,
                **kwargs,
            )
        except requests.exceptions.SSLError as error:
            raise GraphUnavailable(
                None, None, f"{method} {_path_of(url)}: the TLS handshake failed", advice=TLS_ADVICE
            ) from error
        except requests.Timeout as error:
            raise GraphUnavailable(None, None, f"{method} {_path_of(url)} timed out") from error
        except requests.RequestException as error:
            raise GraphUnavailable(None, None, f"{method} {_path_of(url)} failed: {type(error).__name__}") from error
        if response.status_code >= 400:
            error = graph_error(response)
            # The traceback keeps this frame: drop the response so a kept error holds no socket.
            response.close()
            del response
            raise error
        return response

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def graph_error(response: requests.Response) -> GraphError:
    """The typed error for a Graph error response (``{"error": {"code", "message"}}``)."""
    code, message = _error_fields(response)
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
    kind: type[GraphError]
    if status == 401:
        kind = GraphUnauthorized
    elif status == 403:
        kind = GraphForbidden
    elif status in (404, 410):
        kind = GraphNotFound
    elif status == 412:
        kind = GraphPreconditionFailed
    elif status in (400, 422):
        kind = GraphInvalidRequest
    elif status == 429:
        kind = GraphThrottled
    elif status >= 500:
        kind = GraphThrottled if status == 503 and retry_after is not None else GraphUnavailable
    else:
        kind = GraphUnexpectedResponse
    return kind(status, code, message or f"{response.request.method} {_path_of(response.url)}", retry_after=retry_after)


def _error_fields(response: requests.Response) -> tuple[str | None, str]:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None, response.reason or ""
    if not isinstance(error, dict):
        return None, response.reason or ""
    code = error.get("code")
    return (str(code) if code else None), str(error.get("message") or "")


def _calendar(item: Any) -> Calendar:
    try:
        return Calendar(
            id=str(item["id"]),
            name=str(item["name"]),
            can_edit=bool(item.get("canEdit", False)),
            is_default=bool(item.get("isDefaultCalendar", False)),
        )
    except (KeyError, TypeError) as error:
        raise _unreadable("a calendar", error) from error


def _unreadable(what: str, error: Exception) -> GraphUnexpectedResponse:
    return GraphUnexpectedResponse(200, None, f"{what} came without a field we need ({error!r})")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _path_of(url: str | None) -> str:
    return urlsplit(url or "").path
