"""The Syncro REST API client (``https://{subdomain}.syncromsp.com/api/v1``), with one API token.

Syncro wraps the same record differently by call (``{"user": {...}}``, ``{"users": [...]}``,
``{"appointments": [{"appointment": {...}}]}`` or flat items, a bare object); every reader here
accepts each shape and returns appointments as flat dicts (``sync.mapping`` converts them). Ids
are Python ints of any size (a live account's ids are above 2^32). Every request carries a
timeout and is retried as ``sync.client_http`` describes; Syncro's budget is 180 requests a minute per
IP, so the client counts what it sends (``requests_made``, ``on_request``) for the poller's
budget. Failures are raised as the ``SyncroError`` subclasses in ``sync.errors``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from sync.client_http import DEFAULT_TIMEOUT, RetryPolicy, SessionClient, parse_retry_after, send_checked
from sync.errors import (
    SYNCRO_STATUS_ERRORS,
    SyncroError,
    SyncroForbidden,
    SyncroUnauthorized,
    SyncroUnavailable,
    SyncroUnexpectedResponse,
)

MAX_PAGES = 400  # 10,000 records at 25 a page; more means the paging never ends

# Syncro's 429 carries no Retry-After and its limit is per minute: back off up to a minute in all.
SYNCRO_RETRY = RetryPolicy(max_attempts=6, backoff_seconds=2.0, max_wait_seconds=30.0, max_total_wait_seconds=75.0)


# A PUT is a whole-form save: Syncro resets an omitted boolean to false and wants start_at.
WHOLE_FORM_FIELDS = ("start_at", "all_day", "do_not_email", "email_customer")


class SendPermit(Protocol):
    def acquire(self) -> None:
        """Return when one request may be sent; raise SyncroBudgetExhausted when none may."""
        ...


@dataclass(frozen=True)
class AppointmentPage:
    """One page of ``GET /appointments``: the appointments as Syncro sent them (unwrapped, ``id``
    an int), the page number, and ``total_pages`` from ``meta`` (None when Syncro sent no meta)."""

    items: list[dict[str, Any]]
    page: int
    total_pages: int | None


@dataclass(frozen=True)
class SyncroUser:
    """A Syncro user (a technician or an admin)."""

    id: int
    email: str | None  # as Syncro holds it (case kept); None when the user has none
    full_name: str


class SyncroClient(SessionClient):
    """Syncro's REST API with one API token (sent as ``Authorization: Bearer``).

    ``ca_bundle`` is an extra CA file to trust (the simulator's locally); ``session`` replaces
    the client's own (then the caller configures TLS and closes it).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_token: str,
        ca_bundle: str | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        on_request: Callable[[str, str], None] | None = None,
        budget: SendPermit | None = None,
    ) -> None:
        """``on_request(method, path)`` is called before every HTTP request, retries included (as
        is the ``requests_made`` count), so a poller can keep within Syncro's 180 a minute.
        ``budget`` (the app's `sync.budget.SharedBudget`) is asked before every attempt: when it
        has no request left, SyncroBudgetExhausted is raised and nothing is sent."""
        if not api_token:
            raise ValueError("a Syncro API token is required")
        super().__init__(ca_bundle=ca_bundle, session=session)
        self.base_url = base_url.rstrip("/")
        self._api_token = api_token
        self._timeout = timeout
        self._retry = retry or SYNCRO_RETRY
        self._on_request = on_request
        self._budget = budget

    # -- account ------------------------------------------------------------------------------

    def account_settings(self) -> dict[str, Any]:
        """``GET /settings`` as Syncro sends it; ``["locale"]["time_zone"]`` is the account's zone
        (an IANA name), in which all-day appointments and ``date_from``/``date_to`` days are read.
        Raises SyncroUnauthorized, SyncroForbidden, SyncroError."""
        body = self._get_json("/settings")
        if not isinstance(body, dict):
            raise SyncroUnexpectedResponse(200, None, "GET /settings answered without a JSON object")
        return body

    def account_time_zone(self) -> str:
        """The account's time zone name from ``GET /settings`` (``locale.time_zone``).
        Raises SyncroUnexpectedResponse when Syncro sent none, or SyncroError."""
        locale = self.account_settings().get("locale")
        zone = locale.get("time_zone") if isinstance(locale, dict) else None
        if not isinstance(zone, str) or not zone.strip():
            raise SyncroUnexpectedResponse(200, None, "GET /settings answered without locale.time_zone")
        return zone.strip()

    # -- appointments -------------------------------------------------------------------------

    def list_appointments(
        self, *, date_from: date | None, date_to: date | None, page: int = 1, mine: bool = False
    ) -> AppointmentPage:
        """One page (25 appointments) of ``GET /appointments``.

        ``date_from``/``date_to`` are days in the account's zone and filter on the start;
        ``date_to`` is exclusive (starts before that day). ``mine`` lists only the token user's.
        Items come wrapped (``{"appointment": {...}}``, the spec) or flat; both are returned flat.
        Raises SyncroUnauthorized, SyncroForbidden, SyncroInvalidRequest (a bad date), SyncroError.
        """
        if page < 1:
            raise ValueError("page numbers start at 1")
        params: dict[str, Any] = {}
        if date_from is not None:
            params["date_from"] = date_from.isoformat()
        if date_to is not None:
            params["date_to"] = date_to.isoformat()
        if mine:
            params["mine"] = "true"
        if page > 1:
            params["page"] = page
        body = self._get_json("/appointments", params=params or None)
        entries = body if isinstance(body, list) else body.get("appointments") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            raise SyncroUnexpectedResponse(200, None, "GET /appointments answered without an appointments list")
        return AppointmentPage(
            items=[_appointment(entry) for entry in entries], page=page, total_pages=_total_pages(body)
        )

    def iter_appointments(
        self, *, date_from: date | None, date_to: date | None, mine: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Every appointment of ``list_appointments``' filter, page after page (lazily: one request
        per page). Pages end at ``meta.total_pages``; without meta, at an empty page or a page that
        brings no new id (an API ignoring ``page``). An appointment that moves between pages while
        they are read is yielded once; one moved onto a page already read is missed (the next poll
        finds it). Raises as ``list_appointments``.
        """
        seen: set[int] = set()
        page = 1
        while True:
            result = self.list_appointments(date_from=date_from, date_to=date_to, page=page, mine=mine)
            fresh = [item for item in result.items if item["id"] not in seen]
            for item in fresh:
                seen.add(item["id"])
                yield item
            if result.total_pages is not None:
                if page >= result.total_pages:
                    return
            elif not fresh:
                return
            page += 1
            if page > MAX_PAGES:
                raise SyncroUnexpectedResponse(200, None, f"GET /appointments kept paging past {MAX_PAGES} pages")

    def get_appointment(self, appointment_id: int) -> dict[str, Any]:
        """One appointment (flat, ``id`` an int). Raises SyncroNotFound when there is none, or SyncroError."""
        return _appointment(self._get_json(f"/appointments/{int(appointment_id)}"))

    def create_appointment(self, fields: dict[str, Any]) -> dict[str, Any]:
        """``POST /appointments`` with ``fields`` (``summary``, ``start_at`` and ``end_at`` needed);
        returns the created appointment as Syncro answers it. Not resent after a timeout or a
        gateway error (Syncro may have created it: look it up before trying again).
        Raises SyncroInvalidRequest (422: the message names the fields), SyncroError."""
        return _appointment(self._write_json("POST", "/appointments", fields))

    def update_appointment(self, appointment_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """``PUT /appointments/{id}``: a whole-form save, so ``fields`` must be the full set:
        ``start_at`` and every boolean (``all_day``, ``do_not_email``, ``email_customer``), which
        Syncro would otherwise reset to false (ValueError names what is missing). Returns the
        appointment as saved. Not resent after a timeout, a broken connection or a gateway error:
        Syncro's PUT has no precondition, so a resend tens of seconds later would overwrite whatever
        a dispatcher saved in between (the soak, `bench/soak.py`, lost an edit so); the next sync
        reads the appointment again instead. Raises SyncroNotFound, SyncroInvalidRequest, SyncroError."""
        missing = [name for name in WHOLE_FORM_FIELDS if name not in fields]
        if missing:
            raise ValueError(f"a Syncro PUT saves the whole form; fields missing: {', '.join(missing)}")
        path = f"/appointments/{int(appointment_id)}"
        return _appointment(self._write_json("PUT", path, fields, idempotent=False))

    def delete_appointment(self, appointment_id: int) -> None:
        """``DELETE /appointments/{id}``. Raises SyncroNotFound when it is already gone (callers that
        want "gone either way" catch it: a DELETE resent after a lost answer meets it too), or SyncroError."""
        self._request("DELETE", f"/appointments/{int(appointment_id)}").close()

    # -- users --------------------------------------------------------------------------------

    def me(self) -> int:
        """The Syncro user id this client's API token belongs to (``GET /me``).
        Raises SyncroUnauthorized (a wrong or revoked token), SyncroError."""
        body = self._get_json("/me")
        raw = body.get("user_id") if isinstance(body, dict) else None
        if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
            raise SyncroUnexpectedResponse(200, None, "GET /me answered without a user_id")
        return int(raw)

    def users(self) -> list[SyncroUser]:
        """Every user of the account, with email.

        ``GET /users`` lists ``[id, name]`` pairs only (as Syncro's spec shows), so each user is
        then read with ``GET /users/{id}``: one request per user against the 180 a minute.
        Pages are followed while ``meta`` says more exist. Raises SyncroUnauthorized,
        SyncroForbidden, SyncroError.
        """
        users = []
        for entry in self._user_entries():
            if isinstance(entry, list | tuple):
                users.append(self.user(_id_of(entry[0] if entry else None)))
            else:
                user = _user(entry)
                users.append(user if "email" in _unwrapped(entry, "user") else self.user(user.id))
        return users

    def user(self, user_id: int) -> SyncroUser:
        """One user; raises SyncroNotFound when there is none with this id, or SyncroError."""
        return _user(self._get_json(f"/users/{int(user_id)}"))

    def _user_entries(self) -> Iterator[Any]:
        """The raw entries of every page of ``GET /users``: pairs, wrapped or flat objects."""
        page = 1
        while True:
            body = self._get_json("/users", params={"page": page} if page > 1 else None)
            entries = body if isinstance(body, list) else body.get("users")
            if not isinstance(entries, list):
                raise SyncroUnexpectedResponse(200, None, "GET /users answered without a users list")
            yield from entries
            if not entries or not _more_pages(body, page):
                return
            page += 1
            if page > MAX_PAGES:
                raise SyncroUnexpectedResponse(200, None, f"GET /users kept paging past {MAX_PAGES} pages")

    # -- plumbing -----------------------------------------------------------------------------

    def _get_json(self, path: str, *, params: dict[str, Any] | None = None) -> Any:
        response = self._request("GET", path, params=params)
        try:
            return response.json()
        except ValueError as error:
            raise SyncroUnexpectedResponse(response.status_code, None, f"GET {path}: the body is not JSON") from error

    def _write_json(self, method: str, path: str, fields: dict[str, Any], *, idempotent: bool | None = None) -> Any:
        if not isinstance(fields, dict):
            raise TypeError("fields must be a dict")
        response = self._request(method, path, json=fields, idempotent=idempotent)
        try:
            return response.json()
        except ValueError as error:
            raise SyncroUnexpectedResponse(
                response.status_code, None, f"{method} {path}: the body is not JSON"
            ) from error

    def _count(self, method: str, path: str) -> None:
        if self._budget is not None:
            self._budget.acquire()  # the one place every request to Syncro passes: may raise
        self._count_request()
        if self._on_request is not None:
            self._on_request(method, path)

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._api_token}", "Accept": "application/json"}
        headers.update(kwargs.pop("headers", None) or {})
        url = f"{self.base_url}{path}"
        return send_checked(
            self._session,
            method,
            url,
            where=f"{method} {path}",
            error_of=syncro_error,
            unavailable=SyncroUnavailable,
            timeout=self._timeout,
            retry=self._retry,
            headers=headers,
            on_attempt=lambda: self._count(method, path),
            **self._verify,
            **kwargs,
        )


# Syncro answers a permission failure with 401, like a bad token, and tells them apart only by
# its sentence: "Not authorized. Please ask account admin to update your group permissions."
_PERMISSION_WORDS = ("permission",)


def syncro_error(response: requests.Response) -> SyncroError:
    """The typed error for a Syncro error response (``{"error": ...}``, ``{"message": ...}``, text)."""
    status = response.status_code
    message = _error_text(response)
    where = f"{response.request.method} {urlsplit(response.url or '').path}"
    retry_after = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
    kind = SYNCRO_STATUS_ERRORS.kind_of(status)
    if kind is SyncroUnauthorized and any(word in message.lower() for word in _PERMISSION_WORDS):
        kind = SyncroForbidden
    return kind(status, None, f"{where}: {message}" if message else where, retry_after=retry_after)


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300]
    if isinstance(body, dict):
        for key in ("error", "message", "errors"):
            value = body.get(key)
            if isinstance(value, list):
                value = "; ".join(map(str, value))
            if value:
                return str(value)
    return str(body)[:300]


def _more_pages(body: Any, page: int) -> bool:
    """Whether ``meta`` says a page after ``page`` exists. Without ``meta`` the list is one page:
    an API that ignores ``page`` would otherwise be read forever."""
    meta = body.get("meta") if isinstance(body, dict) else None
    if not isinstance(meta, dict):
        return False
    total = meta.get("total_pages")
    if isinstance(total, int) and not isinstance(total, bool):
        return page < total
    return meta.get("next_page") not in (None, "", False)


def _total_pages(body: Any) -> int | None:
    meta = body.get("meta") if isinstance(body, dict) else None
    total = meta.get("total_pages") if isinstance(meta, dict) else None
    if isinstance(total, bool) or not isinstance(total, int | str):
        return None
    try:
        return max(0, int(total))
    except ValueError:
        return None


def _appointment(entry: Any) -> dict[str, Any]:
    """An appointment, wrapped (``{"appointment": {...}}``) or flat, as a flat dict with an int ``id``."""
    record = _unwrapped(entry, "appointment")
    return {**record, "id": _id_of(record.get("id"))}


def _unwrapped(entry: Any, name: str) -> dict[str, Any]:
    if isinstance(entry, dict) and isinstance(entry.get(name), dict):
        return entry[name]
    if isinstance(entry, dict):
        return entry
    raise SyncroUnexpectedResponse(200, None, f"a {name} is not a JSON object")


def _user(body: Any) -> SyncroUser:
    record = _unwrapped(body, "user")
    email = record.get("email")
    name = record.get("full_name") or " ".join(
        str(part) for part in (record.get("firstname"), record.get("lastname")) if part
    )
    return SyncroUser(
        id=_id_of(record.get("id")),
        email=(str(email).strip() or None) if email is not None else None,
        full_name=str(name or ""),
    )


def _id_of(value: Any) -> int:
    """A Syncro id from JSON: an integer of any size, or its decimal string."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SyncroUnexpectedResponse(200, None, f"not a Syncro id: {value!r}")
    try:
        return int(value)
    except ValueError as error:
        raise SyncroUnexpectedResponse(200, None, f"not a Syncro id: {value!r}") from error
