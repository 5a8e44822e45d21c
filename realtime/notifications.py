"""``POST /api/graph/notifications``: Graph's change notifications, acknowledged in milliseconds.

In order:

1. ``?validationToken=`` (Graph checking the URL while a subscription is created): 200,
   ``text/plain``, the decoded token and nothing else.
2. The request itself: a body over the size limit is 413, a Content-Type other than JSON 415,
   a body that is not JSON or not Graph's ``{"value": [...]}`` shape 400, more than
   ``MAX_SUBSCRIPTIONS_PER_POST`` different subscriptions 413. Graph never sends any of these, so
   whoever did gets told plainly.
3. Each notification: its ``subscriptionId`` must be one of ours (`RecordCache`: an in-memory
   copy, so made-up ids cost no read each) and its ``clientState`` must match the stored hash
   (constant-time). An id the copy lacks is not waited for: the request is answered and
   `realtime.late_subscriptions` re-checks it once the table is read again, the same way, acting
   only on what passes. Those that fail are dropped, logged, and the request is
   still answered 202 with no body: Graph retries a non-2xx answer for up to four hours, so a
   refusal would only bring the same payload back every ten minutes, and an empty 202 tells a
   forger nothing. An orphan subscription (one we deleted while Graph still had it) expires on
   its own; a wrong clientState is never acted upon.
4. One sync request per tech the valid notifications name, then 202. Concurrent requests share
   their storage calls (`realtime.group_commit`): a burst naming many techs costs one queue
   message, which the queue job fans out into a coalesced job per tech. A copy of a change already
   answered in this process (same subscription, changeType, event id and etag) asks for nothing
   (`SeenChanges`). Nothing is synced here: the queue job does that.

The endpoint is a coroutine: checks run on the event loop, storage calls in worker threads, so a
hundred POSTs at once never wait for a thread to parse JSON.

Storage unreachable: 503 with ``Retry-After``, so Graph delivers again later.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from http_answer import TEXT_TYPE, Answer, error_answer, text_answer
from realtime.group_commit import GroupCommit
from realtime.late_subscriptions import LateIds
from storage.errors import StorageUnavailable
from sync.job_reasons import JobReason

if TYPE_CHECKING:
    from storage.account import StorageAccount
    from storage.subscriptions import SubscriptionRecord, SubscriptionStore

log = logging.getLogger(__name__)

MAX_VALIDATION_TOKEN = 4096  # Graph's are about 100 characters
MAX_ID_LENGTH = 1024
# Graph puts notifications for several subscriptions in one POST when many are queued, and
# documents no upper bound (learn.microsoft.com/graph/change-notifications-delivery-webhooks,
# "Receive notifications"). It only ever names subscriptions created with this URL: ours, one per
# linked tech (two for a moment while one is replaced). A thousand is far above any MSP's
# technicians, and Outlook itself allows 1,000 active subscriptions per mailbox for all apps.
MAX_SUBSCRIPTIONS_PER_POST = 1000
JOB_REASON = JobReason.GRAPH_NOTIFICATION


# -- answers -------------------------------------------------------------------------------------


ACCEPTED = Answer(202)
STORAGE_DOWN = error_answer(
    503, "storage_unavailable", "Storage did not answer; deliver again later.", headers={"Retry-After": "60"}
)


class BadRequest(Exception):
    """A request we refuse whole; ``answer`` says how."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


# -- the request, checked ------------------------------------------------------------------------


def validation_answer(params: Mapping[str, str]) -> Answer | None:
    """The handshake answer when the request is Graph validating the URL, else None."""
    if "validationToken" not in params:
        return None
    token = params["validationToken"]
    if not token or len(token) > MAX_VALIDATION_TOKEN:
        return error_answer(
            400, "bad_validation_token", f"validationToken must be 1 to {MAX_VALIDATION_TOKEN} characters."
        )
    return text_answer(200, token, TEXT_TYPE, headers={"X-Content-Type-Options": "nosniff"})


def read_json(headers: Mapping[str, str], body: bytes, *, max_bytes: int) -> Any:
    """The JSON body; raises BadRequest (413, 415, 400)."""
    if len(body) > max_bytes:
        raise BadRequest(error_answer(413, "payload_too_large", f"The body is larger than {max_bytes} bytes."))
    content_type = _header(headers, "content-type").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise BadRequest(
            error_answer(415, "unsupported_media_type", "Notifications are JSON: send Content-Type: application/json.")
        )
    from web.json_body import UnreadableJson, parse_json_body

    try:
        return parse_json_body(body)
    except UnreadableJson as error:
        raise BadRequest(error_answer(400, "malformed_json", str(error))) from None


def items_of(data: Any) -> list[dict[str, Any]]:
    """Graph's ``{"value": [{...}, ...]}``, each item with a ``subscriptionId``; raises BadRequest."""
    items = data.get("value") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise BadRequest(error_answer(400, "bad_payload", 'Expected {"value": [...]} with at least one notification.'))
    for item in items:
        subscription_id = item.get("subscriptionId") if isinstance(item, dict) else None
        client_state = item.get("clientState") if isinstance(item, dict) else None
        if not isinstance(subscription_id, str) or not 0 < len(subscription_id) <= MAX_ID_LENGTH:
            raise BadRequest(error_answer(400, "bad_payload", "Every notification needs a subscriptionId."))
        if client_state is not None and not isinstance(client_state, str):
            raise BadRequest(error_answer(400, "bad_payload", "clientState must be a string."))
    if len({item["subscriptionId"] for item in items}) > MAX_SUBSCRIPTIONS_PER_POST:
        raise BadRequest(
            error_answer(
                413,
                "too_many_subscriptions",
                f"One request may name at most {MAX_SUBSCRIPTIONS_PER_POST} different subscriptions.",
            )
        )
    return items


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = name.lower()
    return next((str(value) for key, value in headers.items() if key.lower() == lowered), "")


# -- which notifications are ours ----------------------------------------------------------------


Lookup = Callable[[str], "SubscriptionRecord | None"]


@dataclass(frozen=True)
class Sorted:
    """Notifications sorted by who may act on them."""

    accepted: list[tuple[SubscriptionRecord, dict[str, Any]]]
    unknown: list[str]  # subscription ids that are not ours
    forged: list[str]  # subscription ids whose clientState did not match


def sort_items(items: list[dict[str, Any]], lookup: Lookup) -> Sorted:
    """Pure but for ``lookup`` (a subscription id -> our record, or None)."""
    accepted: list[tuple[SubscriptionRecord, dict[str, Any]]] = []
    unknown: list[str] = []
    forged: list[str] = []
    for item in items:
        record = lookup(item["subscriptionId"])
        if record is None:
            unknown.append(item["subscriptionId"])
        elif not record.client_state_matches(item.get("clientState")):
            forged.append(item["subscriptionId"])
        else:
            accepted.append((record, item))
    return Sorted(accepted, unknown, forged)


class RecordCache:
    """Our subscription rows by id, as of at most ``seconds`` ago (`SubscriptionStore.lookup_many`:
    an in-memory copy of the whole partition, refreshed by one shared query), so a burst of
    notifications for any number of techs costs at most one read. Ids the copy lacks cost one more
    query for all of them together (a subscription's row is written just after Graph creates it,
    perhaps by another instance, and its first notification may come first), and none when the
    copy is younger than ``unknown_refresh`` seconds: made-up ids are answered from memory. A row
    deleted by another process is still honoured for at most ``seconds``, which can only cost one
    superfluous sync; this process's own writes show at once."""

    def __init__(self, seconds: float = 30.0, *, unknown_refresh: float = 1.0) -> None:
        self._seconds = seconds
        self._unknown_refresh = unknown_refresh
        self._stores: weakref.WeakSet[SubscriptionStore] = weakref.WeakSet()

    def lookup(self, account: StorageAccount, subscription_id: str) -> SubscriptionRecord | None:
        return self.lookup_many(account, [subscription_id])[subscription_id]

    def lookup_many(
        self, account: StorageAccount, ids: Iterable[str], *, unknown_refresh: float | None = None
    ) -> dict[str, SubscriptionRecord | None]:
        """Raises StorageUnavailable. ``unknown_refresh`` defaults to the cache's; ``math.inf``
        never reads for ids the copy lacks (the webhook's request path: `LateIds` does)."""
        store = account.subscriptions
        self._stores.add(store)
        refresh = self._unknown_refresh if unknown_refresh is None else unknown_refresh
        return store.lookup_many(ids, max_age=self._seconds, unknown_refresh=refresh)

    async def lookup_all(
        self, account: StorageAccount, ids: Iterable[str], *, unknown_refresh: float | None = None
    ) -> dict[str, SubscriptionRecord | None]:
        """`lookup_many`, from the event loop: answered from the in-memory copy when it can be
        (made-up ids included), in a worker thread when storage must be read."""
        store = account.subscriptions
        self._stores.add(store)
        ids = list(ids)
        refresh = self._unknown_refresh if unknown_refresh is None else unknown_refresh
        found = store.peek_many(ids, max_age=self._seconds, unknown_refresh=refresh)
        if found is None:
            found = await asyncio.to_thread(self.lookup_many, account, ids, unknown_refresh=refresh)
        return found

    def clear(self) -> None:
        for store in list(self._stores):
            store.forget_cached()


records = RecordCache()


class SeenChanges:
    """Changes already answered, by (subscription, changeType, event id, etag): a copy of one
    (Graph delivers at least once, and redelivers after a slow answer) changes nothing, because the
    sync asked for when the first copy came reads after that change. Notifications without an id
    and an etag are never taken for copies. Per process, for ``seconds``."""

    def __init__(self, seconds: float = 600.0, size: int = 50_000) -> None:
        self._seconds = seconds
        self._size = size
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, ...], float] = {}

    @staticmethod
    def _key(item: dict[str, Any]) -> tuple[str, ...] | None:
        data = item.get("resourceData")
        if not isinstance(data, dict):
            return None
        event_id, etag = data.get("id"), data.get("@odata.etag")
        if not (isinstance(event_id, str) and event_id and isinstance(etag, str) and etag):
            return None
        return (item["subscriptionId"], str(item.get("changeType")), event_id, etag)

    def seen(self, item: dict[str, Any]) -> bool:
        key = self._key(item)
        with self._lock:
            when = self._keys.get(key) if key is not None else None
        return when is not None and time.monotonic() - when < self._seconds

    def remember(self, items: Iterable[dict[str, Any]]) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._keys) >= self._size:
                self._keys.clear()
            for item in items:
                key = self._key(item)
                if key is not None:
                    self._keys[key] = now

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


changes = SeenChanges()


# -- the endpoint --------------------------------------------------------------------------------


async def receive_notifications(
    params: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    account: StorageAccount | None = None,
    max_bytes: int | None = None,
) -> Answer:
    """Answer one POST to the notification URL (see the module docstring). Never raises."""
    handshake = validation_answer(params)
    if handshake is not None:
        return handshake
    try:
        account, items = read_post(headers, body, account=account, max_bytes=max_bytes)
        # Ids the in-memory copy lacks are not waited for: `late` re-checks them after the answer.
        ids = {item["subscriptionId"] for item in items}
        known = await records.lookup_all(account, ids, unknown_refresh=math.inf)
        result = sort_items(items, known.get)
        log_rejected("change", Sorted([], [], result.forged))
        if result.unknown:
            late.add(account, [item for item in items if known.get(item["subscriptionId"]) is None])
        fresh = await _ask_syncs(account, result.accepted)
    except Exception as error:
        return failure_answer(error, "change")
    _log_accepted(result.accepted, fresh)
    return ACCEPTED


async def _ask_syncs(
    account: StorageAccount, accepted: list[tuple[SubscriptionRecord, dict[str, Any]]]
) -> list[tuple[SubscriptionRecord, dict[str, Any]]]:
    """Ask for the syncs of the techs that checked notifications name, copies left out; returns
    the notifications that asked (not copies). Raises StorageUnavailable."""
    fresh = [(record, item) for record, item in accepted if not changes.seen(item)]
    techs = sorted({record.syncro_user_id for record, _ in fresh})
    if techs:
        await syncs.ask(account, techs)
    changes.remember(item for _, item in fresh)  # only once their syncs were asked for
    return fresh


async def _recheck_late(account: StorageAccount, items: list[dict[str, Any]]) -> None:
    """Notifications answered 202 while their subscription was not in the in-memory copy: read
    the table again (`RecordCache`: at most once per ``unknown_refresh``), check them exactly as
    the request path does, and ask for the syncs of those that pass. Raises StorageUnavailable."""
    known = await records.lookup_all(account, {item["subscriptionId"] for item in items})
    result = sort_items(items, known.get)
    log_rejected("change", result)
    fresh = await _ask_syncs(account, result.accepted)
    _log_accepted(result.accepted, fresh)


late = LateIds(_recheck_late)


def _log_accepted(accepted: list[tuple[SubscriptionRecord, dict[str, Any]]], fresh: list[Any]) -> None:
    """One structured line (`ops.logs`) per tech the request named: how many notifications, how
    many were copies of changes already answered, and whether a sync was asked for."""
    from ops.logs import log_event

    named = Counter(record.syncro_user_id for record, _ in accepted)
    new = Counter(record.syncro_user_id for record, _ in fresh)
    subscriptions = {record.syncro_user_id: record.subscription_id for record, _ in accepted}
    for tech, count in sorted(named.items()):
        log_event(
            log,
            "webhook.graph",
            tech=tech,
            job_id=None,
            correlation_id=subscriptions[tech],
            notifications=count,
            copies=count - new[tech],
            sync_asked=new[tech] > 0,
        )


syncs = GroupCommit(JOB_REASON)


def read_post(
    headers: Mapping[str, str], body: bytes, *, account: StorageAccount | None, max_bytes: int | None
) -> tuple[StorageAccount, list[dict[str, Any]]]:
    """The storage account to act on and the notifications in a POST's body (both webhooks).
    Raises BadRequest (413, 415, 400), and SettingsError when the app's settings are unreadable."""
    account, max_bytes = service_defaults(account, max_bytes)
    return account, items_of(read_json(headers, body, max_bytes=max_bytes))


def failure_answer(error: Exception, kind: str) -> Answer:
    """What a webhook answers when handling its POST raised ``error``: a refusal's own answer, or
    503 (storage down, settings missing, a bug) so that Graph delivers again and nothing is lost."""
    if isinstance(error, BadRequest):
        return error.answer
    if isinstance(error, StorageUnavailable):
        log.warning("storage unavailable: %s notifications answered 503 for Graph to deliver again", kind)
        return STORAGE_DOWN
    log.error("%s notifications could not be handled", kind, exc_info=error)
    return error_answer(503, "unavailable", "The notification could not be handled now; deliver again later.")


def service_defaults(account: StorageAccount | None, max_bytes: int | None) -> tuple[StorageAccount, int]:
    if account is None or max_bytes is None:
        import services
        from settings import get_settings

        account = account or services.storage_account()
        max_bytes = max_bytes or get_settings().max_request_body_bytes
    return account, max_bytes


def log_rejected(kind: str, result: Sorted) -> None:
    """A structured warning per kind of notification ignored, naming up to ten subscriptions (their
    ids are not secrets; the clientState presented is never logged)."""
    from ops.logs import log_event

    for outcome, ids in (("unknown_subscription", result.unknown), ("wrong_client_state", result.forged)):
        if ids:
            log_event(
                log,
                "webhook.graph",
                tech=None,
                job_id=None,
                correlation_id=None,
                level=logging.WARNING,
                kind=kind,
                outcome=outcome,
                notifications=len(ids),
                subscriptions=", ".join(sorted(set(ids))[:10]),
            )


def constant_time_equal(presented: str, expected: str) -> bool:
    """Secrets compared without leaking where they differ (for the Syncro webhook's path secret)."""
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))
