"""Graph change-notification subscriptions: one per linked technician, on their chosen calendar.

- `ensure_for_link`: the tech's subscription exists, is on the link's calendar and our current
  ``PUBLIC_BASE_URL``, is still known to Graph (a GET; Graph drops subscriptions silently after a
  password reset, reported) and is renewed once less than the renew margin is left. What does not
  fit is deleted, what is missing is created. Called when a link is made or its calendar changes,
  by the lifecycle job and by `upkeep`.
- `remove_for_link`: delete the tech's subscriptions (on unlink), while their token still works.
- `reauthorize` / `replace_removed`: what the lifecycle notifications ask for.
- `upkeep`: the hourly timer's pass over every link and every subscription row.

Every subscription's ``clientState`` is 64 random characters, sent once to Graph; only its hash is
stored (`storage.subscriptions`). Work on one tech's subscriptions holds the lease
``subscription/<tech>``, so two instances never create two subscriptions for one tech. The
outcome of each attempt is kept as the tech's `SubscriptionStatus` for the status pages.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from storage.errors import ConcurrencyConflict, NotFound
from storage.links import LinkStatus
from storage.subscriptions import (
    SubscriptionRecord,
    SubscriptionState,
    SubscriptionStatus,
    hash_client_state,
)
from sync.errors import GraphInvalidRequest, GraphNotFound, GraphUnexpectedResponse, ServiceError
from sync.graph import GraphClient
from sync.times import parse_time

if TYPE_CHECKING:
    from storage.account import StorageAccount
    from storage.links import Link

log = logging.getLogger(__name__)

CHANGE_TYPES = "created,updated,deleted"
NOTIFICATIONS_PATH = "/api/graph/notifications"
LIFECYCLE_PATH = "/api/graph/lifecycle"
# Graph measures the lifetime on its own clock: ask a minute less, so a clock a little ahead of
# Graph's never asks for more than the maximum.
CLOCK_SKEW = timedelta(minutes=1)
# What older documentation gave Outlook resources; a tenant that refuses our lifetime gets this.
OLDER_MAXIMUM = timedelta(minutes=4230)
LEASE_DURATION = timedelta(minutes=2)
# A create waits for Graph's validation requests to our two URLs (up to 10 s each).
CREATE_TIMEOUT: tuple[float, float] = (5.0, 40.0)


class Outcome(StrEnum):
    KEPT = "kept"
    RENEWED = "renewed"
    CREATED = "created"
    REMOVED = "removed"
    BUSY = "busy"  # another instance holds the tech's subscription lease
    NEEDS_RELINK = "needs_relink"
    UNSUPPORTED = "unsupported"
    FAILED = "failed"


@dataclass(frozen=True)
class GraphSubscription:
    """A subscription as Graph answers it."""

    id: str
    resource: str
    expires_at: datetime


class SubscriptionsClient(GraphClient):
    """`GraphClient` plus ``/subscriptions``. Errors as `GraphClient`'s (``sync.errors``)."""

    def create_subscription(
        self, *, resource: str, notification_url: str, lifecycle_url: str, client_state: str, expires_at: datetime
    ) -> GraphSubscription:
        """Raises GraphInvalidRequest (among others: the validation handshake failed, the lifetime
        is too long, the mailbox cannot be subscribed to), GraphForbidden, GraphError."""
        body = {
            "changeType": CHANGE_TYPES,
            "notificationUrl": notification_url,
            "lifecycleNotificationUrl": lifecycle_url,
            "resource": resource,
            "expirationDateTime": _instant(expires_at),
            "clientState": client_state,
            "latestSupportedTlsVersion": "v1_2",
        }
        return _subscription(self._json_of(self._request("POST", self._url("/subscriptions"), json=body)))

    def get_subscription(self, subscription_id: str) -> GraphSubscription:
        """Raises GraphNotFound when Graph no longer has it, GraphError."""
        return _subscription(self._get_json(self._subscription_path(subscription_id)))

    def renew_subscription(self, subscription_id: str, expires_at: datetime) -> GraphSubscription:
        """PATCH the expiry (which also reauthorizes). Raises GraphNotFound (gone: create a new
        one), GraphInvalidRequest (e.g. the lifetime is too long), GraphError."""
        url = self._url(self._subscription_path(subscription_id))
        body = {"expirationDateTime": _instant(expires_at)}
        return _subscription(self._json_of(self._request("PATCH", url, json=body)))

    def delete_subscription(self, subscription_id: str) -> None:
        """Succeeds when Graph no longer has it. Raises GraphError."""
        try:
            self._request("DELETE", self._url(self._subscription_path(subscription_id))).close()
        except GraphNotFound:
            pass

    @staticmethod
    def _subscription_path(subscription_id: str) -> str:
        return f"/subscriptions/{quote(subscription_id, safe='')}"


@dataclass(frozen=True)
class SubscriptionDeps:
    account: StorageAccount
    graph_for: Callable[[int], SubscriptionsClient]  # a client acting as the tech (closed by the caller)
    public_base_url: str
    lifetime: timedelta
    renew_margin: timedelta
    holder: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")

    @property
    def notification_url(self) -> str:
        return f"{self.public_base_url}{NOTIFICATIONS_PATH}"

    @property
    def lifecycle_url(self) -> str:
        return f"{self.public_base_url}{LIFECYCLE_PATH}"

    def now(self) -> datetime:
        return self.account.clock()


def resource_for(calendar_id: str) -> str:
    """The subscribed resource: the chosen calendar's events (``/me/events`` covers only the default one)."""
    return f"/me/calendars/{calendar_id}/events"


# -- the entry points ----------------------------------------------------------------------------


def ensure_for_link(link: Link, *, deps: SubscriptionDeps) -> Outcome:
    """Make the tech's subscription right (see the module docstring); an unlinked-in-effect link
    (not active, or no calendar) has its subscriptions removed. Never raises for Graph or token
    trouble: the outcome and the tech's status say what happened. Raises StorageUnavailable."""
    tech = link.syncro_user_id
    with _tech_lease(deps, tech) as held:
        if not held:
            return Outcome.BUSY
        if link.status is not LinkStatus.ACTIVE or not link.calendar_id:
            return _remove_all(deps, tech)
        return _guarded(deps, tech, lambda graph: _ensure(deps, graph, link))


def remove_for_link(syncro_user_id: int, *, deps: SubscriptionDeps) -> Outcome:
    """Delete the tech's subscriptions at Graph (while their token still works) and our rows.
    A Graph or token failure still forgets our rows: Graph lets an orphan expire, and its
    notifications are answered as an unknown subscription's. Raises StorageUnavailable."""
    with _tech_lease(deps, syncro_user_id) as held:
        if not held:
            return Outcome.BUSY
        return _remove_all(deps, syncro_user_id)


def reauthorize(subscription_id: str, syncro_user_id: int, *, deps: SubscriptionDeps) -> Outcome:
    """Answer ``reauthorizationRequired`` for the tech's subscription: renew it (a renewal
    reauthorizes it with the tech's fresh token); one Graph no longer has is replaced, and one we
    no longer hold means `ensure_for_link`. Raises StorageUnavailable."""
    link = _active_link(deps, syncro_user_id)
    if link is None:
        return remove_for_link(syncro_user_id, deps=deps)
    try:
        record = deps.account.subscriptions.get_subscription(subscription_id)
    except NotFound:
        return ensure_for_link(link, deps=deps)  # replaced meanwhile: make sure the new one is right
    with _tech_lease(deps, syncro_user_id) as held:
        if not held:
            return Outcome.BUSY
        return _guarded(deps, syncro_user_id, lambda graph: _renew_or_replace(deps, graph, link, record))


def replace_removed(subscription_id: str, syncro_user_id: int, *, deps: SubscriptionDeps) -> Outcome:
    """Answer ``subscriptionRemoved``: forget that subscription and give the tech a new one (also
    when a first attempt already forgot it). Raises StorageUnavailable."""
    deps.account.subscriptions.delete_subscription(subscription_id)
    link = _active_link(deps, syncro_user_id)
    if link is None:
        return remove_for_link(syncro_user_id, deps=deps)
    return ensure_for_link(link, deps=deps)


@dataclass
class UpkeepReport:
    outcomes: dict[str, int] = field(default_factory=dict)  # Outcome value -> techs
    orphans_removed: int = 0  # subscription rows of techs no longer linked

    def count(self, outcome: Outcome) -> None:
        self.outcomes[outcome.value] = self.outcomes.get(outcome.value, 0) + 1


def upkeep(*, deps: SubscriptionDeps) -> UpkeepReport:
    """The hourly pass: `ensure_for_link` for every active link (renewing what expires within the
    margin, recreating what Graph lost), and `remove_for_link` for rows of techs no longer linked.
    Raises StorageUnavailable."""
    report = UpkeepReport()
    links = {link.syncro_user_id: link for link in deps.account.links.list_links()}
    for link in links.values():
        report.count(ensure_for_link(link, deps=deps))
    orphans = {record.syncro_user_id for record in deps.account.subscriptions.list_subscriptions()} - set(links)
    for tech in sorted(orphans):
        if remove_for_link(tech, deps=deps) is Outcome.REMOVED:
            report.orphans_removed += 1
    log.info("subscription upkeep: %s, %d orphans removed", report.outcomes, report.orphans_removed)
    return report


# -- the work ------------------------------------------------------------------------------------


def _ensure(deps: SubscriptionDeps, graph: SubscriptionsClient, link: Link) -> Outcome:
    store, now = deps.account.subscriptions, deps.now()
    resource = resource_for(link.calendar_id)
    keep: SubscriptionRecord | None = None
    for record in sorted(store.list_for_tech(link.syncro_user_id), key=lambda r: r.expires_at, reverse=True):
        fits = record.resource == resource and record.notification_url == deps.notification_url
        if keep is None and fits and record.expires_at > now:
            keep = record
        else:
            _drop(deps, graph, record)  # another calendar, an old base URL, expired, or a spare
    if keep is not None:
        try:
            graph.get_subscription(keep.subscription_id)
        except GraphNotFound:
            log.info("Graph no longer has subscription %s of tech %s", keep.subscription_id, link.syncro_user_id)
            store.delete_subscription(keep.subscription_id)
            keep = None
    if keep is None:
        return _create(deps, graph, link)
    if keep.expires_at - now > deps.renew_margin:
        _set_status(deps, link.syncro_user_id, SubscriptionState.ACTIVE, "", keep)
        return Outcome.KEPT
    return _renew_or_replace(deps, graph, link, keep)


def _renew_or_replace(
    deps: SubscriptionDeps, graph: SubscriptionsClient, link: Link, record: SubscriptionRecord
) -> Outcome:
    try:
        answer = _with_lifetime(deps, lambda expires: graph.renew_subscription(record.subscription_id, expires))
    except GraphNotFound:
        # Renewing an expired or removed subscription fails: create a new one.
        deps.account.subscriptions.delete_subscription(record.subscription_id)
        return _create(deps, graph, link)
    renewed = deps.account.subscriptions.upsert_subscription(
        SubscriptionRecord(
            subscription_id=record.subscription_id,
            syncro_user_id=record.syncro_user_id,
            resource=record.resource,
            expires_at=answer.expires_at,
            client_state_hash=record.client_state_hash,
            created_at=record.created_at,
            notification_url=record.notification_url,
        )
    )
    _set_status(deps, link.syncro_user_id, SubscriptionState.ACTIVE, "", renewed)
    return Outcome.RENEWED


def _create(deps: SubscriptionDeps, graph: SubscriptionsClient, link: Link) -> Outcome:
    client_state = secrets.token_urlsafe(48)  # 64 characters; Graph allows 128
    resource = resource_for(link.calendar_id)
    answer = _with_lifetime(
        deps,
        lambda expires: graph.create_subscription(
            resource=resource,
            notification_url=deps.notification_url,
            lifecycle_url=deps.lifecycle_url,
            client_state=client_state,
            expires_at=expires,
        ),
    )
    record = deps.account.subscriptions.upsert_subscription(
        SubscriptionRecord(
            subscription_id=answer.id,
            syncro_user_id=link.syncro_user_id,
            resource=resource,
            expires_at=answer.expires_at,
            client_state_hash=hash_client_state(client_state),
            created_at=deps.now(),
            notification_url=deps.notification_url,
        )
    )
    log.info("created subscription %s for tech %s", answer.id, link.syncro_user_id)
    _set_status(deps, link.syncro_user_id, SubscriptionState.ACTIVE, "", record)
    return Outcome.CREATED


def _with_lifetime(deps: SubscriptionDeps, call: Callable[[datetime], GraphSubscription]) -> GraphSubscription:
    """``call`` with our lifetime; once more with the older documented maximum when Graph refuses
    the expiry (a tenant still on 4,230 minutes)."""
    try:
        return call(deps.now() + deps.lifetime - CLOCK_SKEW)
    except GraphInvalidRequest as error:
        if "expiration" not in error.message.lower() or deps.lifetime <= OLDER_MAXIMUM:
            raise
        log.warning("Graph refused a %s lifetime (%s); asking for 4,230 minutes", deps.lifetime, error.message)
        return call(deps.now() + OLDER_MAXIMUM - CLOCK_SKEW)


def _remove_all(deps: SubscriptionDeps, tech: int) -> Outcome:
    store = deps.account.subscriptions
    records = list(store.list_for_tech(tech))
    if records:
        graph = _graph_or_none(deps, tech)
        try:
            for record in records:
                _drop(deps, graph, record)
        finally:
            if graph is not None:
                graph.close()
    _set_status(deps, tech, SubscriptionState.NONE, "", None)
    return Outcome.REMOVED


def _drop(deps: SubscriptionDeps, graph: SubscriptionsClient | None, record: SubscriptionRecord) -> None:
    """Delete at Graph when we can (best effort), then our row."""
    from oauth.tokens import TokenError

    if graph is not None:
        try:
            graph.delete_subscription(record.subscription_id)
        except (ServiceError, TokenError) as error:
            log.warning("could not delete subscription %s at Graph: %s", record.subscription_id, error)
    deps.account.subscriptions.delete_subscription(record.subscription_id)


def _guarded(deps: SubscriptionDeps, tech: int, work: Callable[[SubscriptionsClient], Outcome]) -> Outcome:
    """Run ``work`` with a Graph client acting as the tech; token and Graph failures become the
    tech's status (the upkeep timer tries again within the hour)."""
    from oauth.tokens import NeedsRelink, TokenError

    graph = deps.graph_for(tech)
    try:
        return work(graph)
    except NeedsRelink as error:
        _set_status(deps, tech, SubscriptionState.NEEDS_RELINK, error.reason, None)
        return Outcome.NEEDS_RELINK
    except (TokenError, ServiceError) as error:
        if isinstance(error, GraphInvalidRequest) and _unsupported(error):
            detail = "This mailbox cannot send change notifications; changes arrive with each reconciliation."
            _set_status(deps, tech, SubscriptionState.UNSUPPORTED, detail, None)
            return Outcome.UNSUPPORTED
        log.warning("subscription work for tech %s failed: %s", tech, error)
        _set_status(deps, tech, SubscriptionState.FAILED, str(error), None)
        return Outcome.FAILED
    finally:
        graph.close()


def _graph_or_none(deps: SubscriptionDeps, tech: int) -> SubscriptionsClient | None:
    try:
        return deps.graph_for(tech)
    except Exception as error:  # no client, no deletes at Graph: the rows still go
        log.warning("no Graph client for tech %s: %s", tech, error)
        return None


def _unsupported(error: GraphInvalidRequest) -> bool:
    text = error.message.lower()
    return "not yet supported for this mailbox" in text or "mailbox info is stale" in text


def _active_link(deps: SubscriptionDeps, tech: int) -> Link | None:
    try:
        link = deps.account.links.get_link(tech)
    except NotFound:
        return None
    return link if link.status is LinkStatus.ACTIVE and link.calendar_id else None


def _set_status(
    deps: SubscriptionDeps, tech: int, state: SubscriptionState, detail: str, record: SubscriptionRecord | None
) -> None:
    deps.account.subscriptions.set_status(
        SubscriptionStatus(
            syncro_user_id=tech,
            state=state,
            detail=detail,
            updated_at=deps.now(),
            subscription_id=record.subscription_id if record else "",
            expires_at=record.expires_at if record else None,
        )
    )


@contextmanager
def _tech_lease(deps: SubscriptionDeps, tech: int) -> Iterator[bool]:
    leases = deps.account.leases
    try:
        lease = leases.acquire(f"subscription/{tech}", holder=deps.holder, duration=LEASE_DURATION)
    except ConcurrencyConflict:  # LeaseHeld included: the other holder does this tech's work
        yield False
        return
    try:
        yield True
    finally:
        leases.release(lease)


# -- parsing -------------------------------------------------------------------------------------


def _subscription(body: dict[str, Any]) -> GraphSubscription:
    try:
        return GraphSubscription(
            id=str(body["id"]),
            resource=str(body.get("resource") or ""),
            expires_at=_parse_instant(str(body["expirationDateTime"])),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise GraphUnexpectedResponse(200, None, f"a subscription came without a field we need ({error!r})") from None


def _parse_instant(text: str) -> datetime:
    """Graph's ``2024-01-01T10:00:00.1234567Z`` (7 fractional digits) or any ISO 8601 instant."""
    moment = parse_time(text, naive=UTC)
    if moment is None:
        raise ValueError(f"{text[:40]!r} is not an ISO 8601 time")
    return moment


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")  # Graph writes 7 digits
