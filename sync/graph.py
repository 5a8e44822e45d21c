"""The Microsoft Graph client: one technician's mailbox, through a token the caller supplies.

Every request asks for UTC times and immutable ids (``Prefer: outlook.timezone="UTC"`` and
``Prefer: IdType="ImmutableId"``; ``$batch`` steps each carry it too), carries a timeout, and is
retried as ``sync.client_http`` describes. Failures are raised as the ``GraphError`` subclasses in
``sync.errors``; nothing returns None for a failure. Events are returned as Graph's raw dicts
(``sync.mapping`` converts them). Writes answer as Graph does: a create's response is in the
event's own zone whatever ``Prefer`` says (documented), a PATCH's in UTC.

Our own events carry the Syncro appointment id in one single-value extended property,
``SYNCRO_ID_PROPERTY``; its name compares case-sensitively, so it is never spelled otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import requests

from sync.client_http import DEFAULT_TIMEOUT, RetryPolicy, SessionClient, send_checked
from sync.errors import (
    GraphError,
    GraphNotFound,
    GraphPreconditionFailed,
    GraphUnavailable,
    GraphUnexpectedResponse,
)

# The $batch parts live in sync.graph_batch; the names callers import from here stay here.
from sync.graph_batch import BATCH_LIMIT as BATCH_LIMIT
from sync.graph_batch import MAILBOX_CONCURRENCY as MAILBOX_CONCURRENCY
from sync.graph_batch import PREFER, BatchRequest, BatchResponse, batch_answers, batch_steps, in_lanes, send_batched
from sync.graph_delta import MAX_PAGES, read_delta_round
from sync.graph_delta import DeltaRound as DeltaRound
from sync.graph_errors import graph_error, path_of

GRAPH_V1 = "https://graph.microsoft.com/v1.0"

# The tag on events we create: the Syncro appointment id, in one fixed property. The name is
# matched case-sensitively by Exchange's filters: use this constant, never a respelling.
SYNCRO_ID_GUID = "66f5a359-4659-4830-9070-00047ec6ac6e"
SYNCRO_ID_PROPERTY = f"String {{{SYNCRO_ID_GUID}}} Name SyncroId"
EXPAND_SYNCRO_ID = f"singleValueExtendedProperties($filter=id eq '{SYNCRO_ID_PROPERTY}')"

DEFAULT_DELTA_PAGE_SIZE = 100
CONFLICT_RETRIES = 2  # resends of a request answered with a transient 412 it did not ask for

T = TypeVar("T")


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


class GraphClient(SessionClient):
    """Microsoft Graph v1.0 for the account whose tokens ``token`` returns.

    ``token`` is called before every request (so an MSAL-backed callable can refresh);
    ``ca_bundle`` is an extra CA file to trust (the simulators' locally); ``session`` replaces the
    client's own (then the caller configures TLS and closes it). ``requests_made`` counts every
    request sent, retries included (Graph allows 10,000 per 10 minutes per mailbox).
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
        super().__init__(ca_bundle=ca_bundle, session=session)
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
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

    # -- events -------------------------------------------------------------------------------

    def calendar_view_delta(
        self,
        calendar_id: str,
        *,
        start: datetime,
        end: datetime,
        delta_link: str | None = None,
        page_size: int = DEFAULT_DELTA_PAGE_SIZE,
    ) -> DeltaRound:
        """One whole ``calendarView/delta`` round of a calendar over ``[start, end)`` (aware
        datetimes), from ``delta_link`` when given (its window is baked in; ``start``/``end`` are
        then unused), else a first round listing everything.

        Follows every nextLink (empty pages included); a replayed or duplicated item counts once,
        its last version winning, and an id both changed and removed ends as what came last.
        Raises DeltaTokenExpired when Graph no longer knows the link (410): start a first round
        again; GraphUnexpectedResponse on a nextLink loop; GraphError otherwise.
        """
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if delta_link is None:
            query = urlencode({"startDateTime": _instant(start), "endDateTime": _instant(end)})
            url = f"{self._calendar_path(calendar_id)}/calendarView/delta?{query}"
        else:
            url = self._same_origin(delta_link, "the delta link")
        headers = {"Prefer": f"{PREFER}, odata.maxpagesize={page_size}"}

        def get_page(page_url: str) -> dict[str, Any]:
            return self._get_json(page_url, headers=headers)

        return read_delta_round(url, get_page=get_page, same_origin=self._same_origin)

    def get_event(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        """One event, occurrence or exception of the calendar, with our Syncro id property when it
        has one (``syncro_id_of`` reads it). A transient 412 is retried. Raises GraphNotFound, GraphError."""
        url = f"{self._event_path(calendar_id, event_id)}?{urlencode({'$expand': EXPAND_SYNCRO_ID})}"
        return self._resending_conflicts(lambda: self._get_json(url))

    def list_instances(self, calendar_id: str, series_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The occurrences and exceptions of a series master within ``[start, end)``, in full (all
        pages): what delta's occurrence stubs stand for. Raises GraphNotFound (no such series),
        GraphInvalidRequest (not a series master), GraphError."""
        query = urlencode({"startDateTime": _instant(start), "endDateTime": _instant(end)})
        path = f"{self._event_path(calendar_id, series_id)}/instances?{query}"
        return self._resending_conflicts(lambda: list(self._pages(path)))

    def get_events(self, calendar_id: str, event_ids: list[str]) -> dict[str, dict[str, Any] | None]:
        """``get_event`` for each id, as chained ``$batch`` requests when there are several:
        id -> the event, or None when Graph answers 404. A step that failed otherwise is read
        again on its own (``get_event``, with its retries). Raises GraphError as ``get_event``."""
        ids = list(dict.fromkeys(event_ids))
        query = urlencode({"$expand": EXPAND_SYNCRO_ID})
        urls = {event_id: f"{self._event_path(calendar_id, event_id)}?{query}" for event_id in ids}
        found: dict[str, dict[str, Any] | None] = {}
        for event_id, answer in self._batched_gets(urls).items():
            if answer is not None and answer.ok and isinstance(answer.body, dict):
                found[event_id] = answer.body
                continue
            if answer is not None and isinstance(answer.error(), GraphNotFound):
                found[event_id] = None
                continue
            try:
                found[event_id] = self.get_event(calendar_id, event_id)
            except GraphNotFound:
                found[event_id] = None
        return found

    def list_instances_of(
        self, calendar_id: str, series_ids: list[str], start: datetime, end: datetime
    ) -> dict[str, list[dict[str, Any]] | None]:
        """``list_instances`` for each series, as chained ``$batch`` requests when there are
        several (a step's further pages are then followed one by one): series id -> its
        occurrences and exceptions, or None when Graph answers 404 (the series is gone). A step
        that failed otherwise is listed again on its own. Raises GraphError as ``list_instances``."""
        ids = list(dict.fromkeys(series_ids))
        query = urlencode({"startDateTime": _instant(start), "endDateTime": _instant(end)})
        urls = {series: f"{self._event_path(calendar_id, series)}/instances?{query}" for series in ids}
        found: dict[str, list[dict[str, Any]] | None] = {}
        for series, answer in self._batched_gets(urls).items():
            body = answer.body if answer is not None and answer.ok else None
            if isinstance(body, dict) and isinstance(body.get("value"), list):
                next_link = body.get("@odata.nextLink")
                rest = list(self._pages(self._same_origin(str(next_link), "a nextLink"))) if next_link else []
                found[series] = [*body["value"], *rest]
                continue
            if answer is not None and isinstance(answer.error(), GraphNotFound):
                found[series] = None
                continue
            try:
                found[series] = self.list_instances(calendar_id, series, start, end)
            except GraphNotFound:
                found[series] = None
        return found

    def _batched_gets(self, urls: dict[str, str]) -> dict[str, BatchResponse | None]:
        """GETs of ``urls`` (key -> relative URL) through chained ``$batch`` requests when there
        are two or more (None for each when there is just one: the caller reads it directly,
        which costs the same one request)."""
        if len(urls) < 2:
            return dict.fromkeys(urls)
        keys = list(urls)
        steps = [BatchRequest(str(index), "GET", urls[key]) for index, key in enumerate(keys)]
        answers = self.batch(steps, chained=True, lanes=MAILBOX_CONCURRENCY)
        return dict(zip(keys, answers, strict=True))

    def create_event(
        self, calendar_id: str, body: dict[str, Any], *, transaction_id: str, syncro_id: str | int
    ) -> dict[str, Any]:
        """Create an event tagged with ``syncro_id`` (``SYNCRO_ID_PROPERTY``) and carrying
        ``transaction_id``: Graph answers a repeated create with the same transaction id with the
        event it already made, so the request is safely resent after a timeout. Use one
        transaction id per intended event (stable across retries of the same job). Returns the
        created event (times in the event's own zone, as Graph answers creates).
        Raises GraphInvalidRequest, GraphNotFound (no such calendar), GraphForbidden, GraphError."""
        if not transaction_id:
            raise ValueError("a transaction id is required")
        payload = {**body, "transactionId": transaction_id}
        others = [
            prop
            for prop in body.get("singleValueExtendedProperties") or []
            if not (isinstance(prop, dict) and prop.get("id") == SYNCRO_ID_PROPERTY)
        ]
        payload["singleValueExtendedProperties"] = [*others, {"id": SYNCRO_ID_PROPERTY, "value": str(syncro_id)}]
        url = self._url(f"{self._calendar_path(calendar_id)}/events")
        return self._json_of(self._request("POST", url, json=payload, idempotent=True))

    def update_event(
        self, calendar_id: str, event_id: str, body: dict[str, Any], *, if_match: str | None
    ) -> dict[str, Any]:
        """PATCH the fields in ``body``. With ``if_match`` (the ``@odata.etag`` read), only if the
        event has not changed since. Without it, a transient 412 is retried a couple of times.
        Returns the event as saved (times in UTC). Raises GraphPreconditionFailed (re-read and
        decide again), GraphNotFound, GraphInvalidRequest, GraphError."""
        url = self._url(self._event_path(calendar_id, event_id))
        headers = {"If-Match": if_match} if if_match else {}

        def patch() -> dict[str, Any]:
            return self._json_of(self._request("PATCH", url, json=body, headers=headers))

        return patch() if if_match else self._resending_conflicts(patch)

    def delete_event(self, calendar_id: str, event_id: str, *, if_match: str | None = None) -> None:
        """DELETE the event (only if unchanged since ``if_match`` when given; a transient 412 is
        retried without it). Raises GraphNotFound when it is already gone (callers decide what
        that means: a DELETE resent after a lost answer meets it too), GraphPreconditionFailed,
        GraphError. An organizer's delete of a meeting notifies its attendees."""
        url = self._url(self._event_path(calendar_id, event_id))
        headers = {"If-Match": if_match} if if_match else {}

        def delete() -> None:
            self._request("DELETE", url, headers=headers).close()

        if if_match:
            delete()
        else:
            self._resending_conflicts(delete)

    def find_by_syncro_id(self, calendar_id: str, syncro_id: str | int) -> list[dict[str, Any]]:
        """The calendar's events (singles and series masters) tagged with ``syncro_id``, with the
        property expanded; usually none or one, more after a duplicate create. Raises GraphError."""
        value = str(syncro_id).replace("'", "''")
        prop = SYNCRO_ID_PROPERTY
        query = urlencode(
            {
                "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{prop}' and ep/value eq '{value}')",
                "$expand": EXPAND_SYNCRO_ID,
            }
        )
        path = f"{self._calendar_path(calendar_id)}/events?{query}"
        return [item for item in self._pages(path) if syncro_id_of(item) in (None, str(syncro_id))]

    def batch(self, requests: list[BatchRequest], *, chained: bool = False, lanes: int = 1) -> list[BatchResponse]:
        """Send ``requests`` through ``$batch``, 20 at a time, and answer each (matched by id, in
        the order asked); a failed step is not raised: ``BatchResponse.error()`` types it.
        ``chained`` makes each ``$batch`` one ``dependsOn`` chain (Graph then runs it one step at
        a time); ``lanes`` ``$batch`` requests are in flight at once. What is sent again, and when
        this raises (GraphError), is `sync.graph_batch`'s docstring.
        """
        if len({request.id for request in requests}) != len(requests):
            raise ValueError("batch request ids must be unique")
        if lanes < 1:
            raise ValueError("lanes must be at least 1")

        def send_round(chunks: list[list[BatchRequest]]) -> list[list[BatchResponse] | GraphError]:
            return self._send_batches(chunks, chained=chained, lanes=lanes)

        return send_batched(requests, send_round=send_round, retry=self._retry, chained=chained)

    def _send_batches(
        self, chunks: list[list[BatchRequest]], *, chained: bool, lanes: int
    ) -> list[list[BatchResponse] | GraphError]:
        """Each chunk as one ``$batch``, ``lanes`` at a time; a ``$batch`` that failed is its error."""
        bearer = self._token()  # once, here: the token callable need not be thread-safe

        def send(chunk: list[BatchRequest]) -> list[BatchResponse] | GraphError:
            steps = batch_steps(chunk, chained=chained, relative=self._relative)
            try:
                response = self._request("POST", self._url("/$batch"), json={"requests": steps}, bearer=bearer)
                return batch_answers(self._json_of(response), chunk)
            except GraphError as error:
                return error

        return in_lanes(send, chunks, lanes)

    # -- plumbing -----------------------------------------------------------------------------

    def _calendar_path(self, calendar_id: str) -> str:
        return f"/me/calendars/{quote(calendar_id, safe='')}"

    def _event_path(self, calendar_id: str, event_id: str) -> str:
        return f"{self._calendar_path(calendar_id)}/events/{quote(event_id, safe='')}"

    def _relative(self, url: str) -> str:
        """A batch step's url, relative to the version."""
        if "://" in url:
            if not url.startswith(self.base_url + "/"):
                raise ValueError(f"a batch request must address this service: {url}")
            url = url[len(self.base_url) :]
        return url if url.startswith("/") else f"/{url}"

    def _same_origin(self, url: str, what: str) -> str:
        # A link elsewhere would receive the tech's access token.
        if _origin(url) != self._origin:
            raise GraphUnexpectedResponse(200, None, f"{what} points to another host")
        return url

    def _resending_conflicts(self, call: Callable[[], T]) -> T:
        """``call``, sent again up to CONFLICT_RETRIES times after a 412 ErrorIrresolvableConflict
        that no If-Match asked for (Exchange answers those transiently, reported)."""
        for attempt in range(1, CONFLICT_RETRIES + 2):
            try:
                return call()
            except GraphPreconditionFailed as error:
                if attempt > CONFLICT_RETRIES or (error.code or "").lower() != "errorirresolvableconflict":
                    raise
                self._retry.sleep(self._retry.wait_for(attempt, None))
        raise AssertionError("unreachable: the last attempt returns or raises")

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
                raise GraphUnexpectedResponse(200, None, f"{path_of(self._url(path))} answered without a value list")
            yield from items
            url = body.get("@odata.nextLink")
            if url is not None and _origin(url) != self._origin:
                # A nextLink elsewhere would receive the tech's access token.
                raise GraphUnexpectedResponse(200, None, f"{path_of(self._url(path))} sent a nextLink to another host")

    def _url(self, path_or_url: str) -> str:
        return path_or_url if "://" in path_or_url else f"{self.base_url}{path_or_url}"

    def _get_json(self, path_or_url: str, *, headers: dict[str, str] | None = None) -> dict[str, Any]:
        return self._json_of(self._request("GET", self._url(path_or_url), headers=headers))

    @staticmethod
    def _json_of(response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError as error:
            raise GraphUnexpectedResponse(response.status_code, None, "the body is not JSON") from error
        if not isinstance(body, dict):
            raise GraphUnexpectedResponse(response.status_code, None, "the body is not a JSON object")
        return body

    def _request(self, method: str, url: str, *, bearer: str | None = None, **kwargs: Any) -> requests.Response:
        token = bearer if bearer is not None else self._token()
        headers = {"Authorization": f"Bearer {token}", "Prefer": PREFER, "Accept": "application/json"}
        headers.update(kwargs.pop("headers", None) or {})
        return send_checked(
            self._session,
            method,
            url,
            where=f"{method} {path_of(url)}",
            error_of=graph_error,
            unavailable=GraphUnavailable,
            timeout=self._timeout,
            retry=self._retry,
            headers=headers,
            on_attempt=self._count_request,
            **self._verify,
            **kwargs,
        )


def syncro_id_of(event: dict[str, Any]) -> str | None:
    """The Syncro id an event is tagged with (``SYNCRO_ID_PROPERTY``, when read with it expanded,
    as ``get_event`` and ``find_by_syncro_id`` do), or None."""
    for prop in event.get("singleValueExtendedProperties") or []:
        if isinstance(prop, dict) and prop.get("id") == SYNCRO_ID_PROPERTY and prop.get("value") is not None:
            return str(prop["value"])
    return None


def _instant(moment: datetime) -> str:
    """An aware datetime as the UTC instant Graph's startDateTime/endDateTime take."""
    if moment.tzinfo is None:
        raise ValueError("start and end must carry a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
