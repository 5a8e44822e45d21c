"""The Microsoft Graph client: one technician's mailbox, through a token the caller supplies.

Every request asks for UTC times and immutable ids (``Prefer: outlook.timezone="UTC"`` and
``Prefer: IdType="ImmutableId"``; ``$batch`` steps each carry it too), carries a timeout, and is
retried as ``sync.http`` describes. Failures are raised as the ``GraphError`` subclasses in
``sync.errors``; nothing returns None for a failure. Events are returned as Graph's raw dicts
(``sync.mapping`` converts them). Writes answer as Graph does: a create's response is in the
event's own zone whatever ``Prefer`` says (documented), a PATCH's in UTC.

Our own events carry the Syncro appointment id in one single-value extended property,
``SYNCRO_ID_PROPERTY``; its name compares case-sensitively, so it is never spelled otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import requests

from sync.errors import (
    DeltaTokenExpired,
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
from sync.http import DEFAULT_TIMEOUT, RetryPolicy, SessionClient, parse_retry_after, send_checked

GRAPH_V1 = "https://graph.microsoft.com/v1.0"
PREFER = 'outlook.timezone="UTC", IdType="ImmutableId"'
MAX_PAGES = 1000  # a nextLink chain longer than this is a loop

# The tag on events we create: the Syncro appointment id, in one fixed property. The name is
# matched case-sensitively by Exchange's filters: use this constant, never a respelling.
SYNCRO_ID_GUID = "66f5a359-4659-4830-9070-00047ec6ac6e"
SYNCRO_ID_PROPERTY = f"String {{{SYNCRO_ID_GUID}}} Name SyncroId"
EXPAND_SYNCRO_ID = f"singleValueExtendedProperties($filter=id eq '{SYNCRO_ID_PROPERTY}')"

DEFAULT_DELTA_PAGE_SIZE = 100
BATCH_LIMIT = 20  # requests in one $batch
# Requests Exchange runs at once per app and mailbox (more meet 429): chained $batch requests in
# flight at once, each running one step at a time.
MAILBOX_CONCURRENCY = 4
CONFLICT_RETRIES = 2  # resends of a request answered with a transient 412 it did not ask for
# Codes of a delta link (or round) Graph no longer knows; any 410 counts too.
DELTA_GONE_CODES = frozenset({"syncstatenotfound", "resyncrequired", "fullsyncrequired", "syncstateinvalid"})

T = TypeVar("T")


@dataclass(frozen=True)
class DeltaRound:
    """One finished ``calendarView/delta`` round.

    ``items`` are the events, occurrences and exceptions new or changed since the link (all of
    them in a first round), each id once with its last version; occurrences may be stubs (id,
    seriesMasterId, type, start, end): fill them with ``get_event`` or ``list_instances``.
    ``removed`` are ids Graph reports removed: deleted, or moved out of the window. Store
    ``delta_link`` as returned and start the next round from it.
    """

    items: list[dict[str, Any]]
    removed: list[str]
    delta_link: str


@dataclass(frozen=True)
class BatchRequest:
    """One step of a ``$batch``: ``url`` is relative to the version (``/me/events/{id}``).
    ``id`` must be unique within the ``batch`` call."""

    id: str
    method: str
    url: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResponse:
    """The answer to one ``BatchRequest`` (matched by ``id``)."""

    id: str
    status: int
    headers: dict[str, str]
    body: Any
    raised: GraphError | None = field(default=None, compare=False)  # its whole $batch failed with this

    @property
    def ok(self) -> bool:
        return self.raised is None and 200 <= self.status < 300

    @classmethod
    def of_failed_batch(cls, request_id: str, error: GraphError) -> BatchResponse:
        """The answer of a step whose ``$batch`` failed as a whole (the step may not have run)."""
        body = {"error": {"code": error.code, "message": error.message}}
        return cls(id=request_id, status=error.status or 0, headers={}, body=body, raised=error)

    def error(self) -> GraphError | None:
        """The typed error this answer stands for, or None when it succeeded."""
        if self.raised is not None:
            return self.raised
        if self.ok:
            return None
        code, message = _fields_of(self.body)
        retry_after = parse_retry_after(_header(self.headers, "Retry-After"), datetime.now(UTC))
        return _error_of(self.status, code, message or f"batch request {self.id}", retry_after)


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
        latest: dict[str, dict[str, Any] | None] = {}  # id -> item, or None when removed
        seen: set[str] = set()
        while True:
            if url in seen or len(seen) >= MAX_PAGES:
                raise GraphUnexpectedResponse(200, None, "the delta round's nextLinks loop without a deltaLink")
            seen.add(url)
            try:
                body = self._get_json(url, headers=headers)
            except GraphError as error:
                if error.status == 410 or (error.code or "").lower() in DELTA_GONE_CODES:
                    raise DeltaTokenExpired(error.status, error.code, error.message) from error
                raise
            items = body.get("value")
            if not isinstance(items, list):
                raise GraphUnexpectedResponse(200, None, "a delta page came without a value list")
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                    raise GraphUnexpectedResponse(200, None, "a delta item came without an id")
                latest.pop(item["id"], None)  # the last one seen wins, in the order last seen
                latest[item["id"]] = None if "@removed" in item else item
            if "@odata.deltaLink" in body:
                link = self._same_origin(str(body["@odata.deltaLink"]), "the deltaLink")
                return DeltaRound(
                    items=[item for item in latest.values() if item is not None],
                    removed=[item_id for item_id, item in latest.items() if item is None],
                    delta_link=link,
                )
            next_link = body.get("@odata.nextLink")
            if not next_link:
                raise GraphUnexpectedResponse(200, None, "a delta page came with neither nextLink nor deltaLink")
            url = self._same_origin(str(next_link), "a nextLink")

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
        the order asked). Each step gets the client's ``Prefer`` and, with a body, ``Content-Type``.
        A failed step is not raised: ``BatchResponse.error()`` types it.

        Unchained, the steps of a ``$batch`` run at once, and Exchange runs only 4 requests per
        mailbox at a time: the others come back 429. ``chained`` makes each ``$batch`` one
        ``dependsOn`` chain in the order given, which Graph runs one step at a time (it takes a
        batch fully parallel or fully sequential, nothing between); a failed step then fails the
        rest of its chain with 424, unrun. ``lanes`` ``$batch`` requests are in flight at once
        (threads sharing the session): chained, ``MAILBOX_CONCURRENCY`` lanes keep within the
        mailbox's limit.

        Steps answered 429 or 503 (and, chained, 424) are sent again in later batches, after the
        longest ``Retry-After`` any of them asked (or a backoff; no wait when none was
        throttled), within the retry policy's waits; what is still failing then is answered as
        Graph last answered it. A ``$batch`` that fails as a whole answers each of its steps with
        that error (``BatchResponse.raised``), so what the other lanes did is kept; only when
        every ``$batch`` failed is the first error raised (GraphError).
        """
        ids = [request.id for request in requests]
        if len(set(ids)) != len(ids):
            raise ValueError("batch request ids must be unique")
        if lanes < 1:
            raise ValueError("lanes must be at least 1")
        answers: dict[str, BatchResponse] = {}
        pending = list(requests)
        waited, stalled = 0.0, 0
        failures: list[GraphError] = []
        answered = False
        while pending:
            chunks = [pending[index : index + BATCH_LIMIT] for index in range(0, len(pending), BATCH_LIMIT)]
            again: list[BatchRequest] = []
            asked: list[float | None] = []
            for chunk, result in zip(chunks, self._send_batches(chunks, chained=chained, lanes=lanes), strict=True):
                if isinstance(result, GraphError):
                    failures.append(result)
                    answers.update({r.id: BatchResponse.of_failed_batch(r.id, result) for r in chunk})
                    continue
                answered = True
                for request, answer in zip(chunk, result, strict=True):
                    answers[request.id] = answer
                    if answer.status in (429, 503):
                        again.append(request)
                        asked.append(parse_retry_after(_header(answer.headers, "Retry-After"), self._retry.now()))
                    elif chained and answer.status == 424:
                        again.append(request)  # not run: its chain broke before it
            stalled = stalled + 1 if len(again) == len(pending) else 0
            if not again or stalled >= self._retry.max_attempts:
                break
            if asked:
                known = [seconds for seconds in asked if seconds is not None]
                retry_after = max(known) if known else None
                if retry_after is not None and retry_after > self._retry.max_wait_seconds:
                    break
                wait = self._retry.wait_for(stalled + 1, retry_after)
                if waited + wait > self._retry.max_total_wait_seconds:
                    break
                self._retry.sleep(wait)
                waited += wait
            pending = again
        if not answered and failures:
            raise failures[0]
        return [answers[request_id] for request_id in ids]

    def _send_batches(
        self, chunks: list[list[BatchRequest]], *, chained: bool, lanes: int
    ) -> list[list[BatchResponse] | GraphError]:
        """Each chunk as one ``$batch``, ``lanes`` at a time; a ``$batch`` that failed is its error."""
        bearer = self._token()  # once, here: the token callable need not be thread-safe

        def send(chunk: list[BatchRequest]) -> list[BatchResponse] | GraphError:
            try:
                return self._send_batch(chunk, chained=chained, bearer=bearer)
            except GraphError as error:
                return error

        if lanes == 1 or len(chunks) == 1:
            return [send(chunk) for chunk in chunks]
        with ThreadPoolExecutor(max_workers=min(lanes, len(chunks)), thread_name_prefix="graph-batch") as pool:
            return list(pool.map(send, chunks))

    def _send_batch(self, chunk: list[BatchRequest], *, chained: bool, bearer: str) -> list[BatchResponse]:
        steps = []
        for index, request in enumerate(chunk):
            headers = {"Prefer": PREFER, **request.headers}
            step: dict[str, Any] = {
                "id": request.id,
                "method": request.method.upper(),
                "url": self._relative(request.url),
            }
            if chained and index:
                step["dependsOn"] = [chunk[index - 1].id]
            if request.body is not None:
                headers.setdefault("Content-Type", "application/json")
                step["body"] = request.body
            step["headers"] = headers
            steps.append(step)
        response = self._request("POST", self._url("/$batch"), json={"requests": steps}, bearer=bearer)
        body = self._json_of(response)
        responses = body.get("responses")
        if not isinstance(responses, list):
            raise GraphUnexpectedResponse(200, None, "$batch answered without a responses list")
        by_id: dict[str, BatchResponse] = {}
        for answer in responses:
            if not isinstance(answer, dict) or "id" not in answer or not isinstance(answer.get("status"), int):
                raise GraphUnexpectedResponse(200, None, "a $batch response came without an id or a status")
            headers = answer.get("headers") if isinstance(answer.get("headers"), dict) else {}
            by_id[str(answer["id"])] = BatchResponse(
                id=str(answer["id"]), status=answer["status"], headers=dict(headers), body=answer.get("body")
            )
        missing = [request.id for request in chunk if request.id not in by_id]
        if missing:
            raise GraphUnexpectedResponse(200, None, f"$batch left requests unanswered: {', '.join(missing)}")
        return [by_id[request.id] for request in chunk]

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
                raise GraphUnexpectedResponse(200, None, f"{_path_of(self._url(path))} answered without a value list")
            yield from items
            url = body.get("@odata.nextLink")
            if url is not None and _origin(url) != self._origin:
                # A nextLink elsewhere would receive the tech's access token.
                raise GraphUnexpectedResponse(200, None, f"{_path_of(self._url(path))} sent a nextLink to another host")

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
            where=f"{method} {_path_of(url)}",
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


def graph_error(response: requests.Response) -> GraphError:
    """The typed error for a Graph error response (``{"error": {"code", "message"}}``)."""
    code, message = _error_fields(response)
    retry_after = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
    where = f"{response.request.method} {_path_of(response.url)}"
    return _error_of(response.status_code, code, message or where, retry_after)


def _error_of(status: int, code: str | None, message: str, retry_after: float | None) -> GraphError:
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
    return kind(status, code, message, retry_after=retry_after)


def _error_fields(response: requests.Response) -> tuple[str | None, str]:
    try:
        body = response.json()
    except ValueError:
        return None, response.reason or ""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return None, response.reason or ""
    return _fields_of(body)


def _fields_of(body: Any) -> tuple[str | None, str]:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, ""
    code = error.get("code")
    return (str(code) if code else None), str(error.get("message") or "")


def _header(headers: dict[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((str(value) for key, value in headers.items() if key.lower() == lowered), None)


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


def _path_of(url: str | None) -> str:
    return urlsplit(url or "").path
