"""``/subscriptions``: creation with the validation handshake, renewal, expiry on the shared clock,
and turning store changes into change notifications.

Reauthorization (documented in change-notifications-lifecycle-events): near the expiry of the
subscription or of the delegated token it was created with, a subscription with a lifecycle URL
gets ``reauthorizationRequired`` on its own (checked on every change and a few times a second on
the shared clock); its change notifications then pause until the app calls ``/reauthorize`` or
renews. Changes while paused are lost (documented) or, by setting, held and sent afterwards.
"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests

from local.sims.control import SimClock
from local.sims.graph.context import Ctx
from local.sims.graph.errors import GraphError, GraphResponse
from local.sims.graph.model import Mailbox
from local.sims.graph.notifications import Delivery, Notifier
from local.sims.graph.router import GraphRouter
from local.sims.graph.settings import GraphSettings
from local.sims.graph.store import EventChange, GraphStore
from local.sims.graph.timefmt import format_subscription_expiry, parse_instant

CHANGE_TYPES = {"created", "updated", "deleted"}
LIFECYCLE_EVENTS = {"reauthorizationRequired", "subscriptionRemoved", "missed"}
VALIDATION_FAILED = (
    "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."
)
_RESOURCE = re.compile(
    r"^/?(?:me|users/(?P<user>[^/]+))(?:/calendar|/calendars/(?P<calendar>[^/]+))?/events(?P<item>/[^/]+)?/?$",
    re.IGNORECASE,
)


@dataclass
class Subscription:
    id: str
    resource: str
    change_types: list[str]
    notification_url: str
    lifecycle_url: str | None
    expiration: datetime
    client_state: str | None
    mailbox_oid: str
    tenant_id: str
    application_id: str
    creator_id: str
    calendar_id: str | None  # None: every calendar of the mailbox
    token_expiry: datetime | None = None  # of the token it was created or last reauthorized with
    challenged_since: datetime | None = None  # first unanswered reauthorizationRequired
    last_challenge: datetime | None = None
    held: list[EventChange] = field(default_factory=list)  # changes while paused ("held" setting)

    def render(self, base: str, *, hide_client_state: bool = False) -> dict[str, Any]:
        return {
            "@odata.context": f"{base}/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": ",".join(self.change_types),
            "clientState": None if hide_client_state else self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": format_subscription_expiry(self.expiration),
            "creatorId": self.creator_id,
            "includeResourceData": None,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }


def _invalid(message: str, code: str = "InvalidRequest") -> GraphError:
    return GraphError(400, code, message)


class SubscriptionRoutes:
    def __init__(
        self, store: GraphStore, settings: GraphSettings, clock: SimClock, notifier: Notifier, ca_bundle: str | None
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.notifier = notifier
        self._verify: str | bool = ca_bundle or True
        self._lock = threading.Lock()
        self.subscriptions: dict[str, Subscription] = {}
        store.listeners.append(self.on_change)
        notifier.on_lost = self.on_lost
        notifier.tickers.append(self.check_reauthorization)

    def register(self, router: GraphRouter) -> None:
        router.add("POST", "/subscriptions", self.create, "subscriptions")
        router.add("GET", "/subscriptions", self.list_subscriptions, "subscriptions")
        router.add("GET", "/subscriptions/{sid}", self.get, "subscriptions")
        router.add("PATCH", "/subscriptions/{sid}", self.renew, "subscriptions")
        router.add("DELETE", "/subscriptions/{sid}", self.delete, "subscriptions")
        router.add("POST", "/subscriptions/{sid}/reauthorize", self.reauthorize, "subscriptions")

    def reset(self) -> None:
        with self._lock:
            self.subscriptions.clear()

    # --- handlers --------------------------------------------------------------------------
    async def create(self, ctx: Ctx) -> GraphResponse:
        body = ctx.json()
        if not isinstance(body, dict):
            raise _invalid("The subscription payload must be a JSON object.")
        subscription = self._parse_new(ctx, body)
        await self._validate_endpoint(subscription.notification_url)
        if subscription.lifecycle_url:
            await self._validate_endpoint(subscription.lifecycle_url)
        with self._lock:
            self._expire()
            count = sum(1 for s in self.subscriptions.values() if s.mailbox_oid == subscription.mailbox_oid)
            if count >= self.settings.subscriptions_per_mailbox:
                raise GraphError(
                    403,
                    "ExtensionError",
                    "Operation: Create; Exception: [Status Code: Forbidden; "
                    "Reason: The maximum number of subscriptions for this mailbox has been reached.]",
                )
            self.subscriptions[subscription.id] = subscription
        return GraphResponse(201, subscription.render(ctx.base))

    def list_subscriptions(self, ctx: Ctx) -> GraphResponse:
        with self._lock:
            self._expire()
            mine = [s for s in self.subscriptions.values() if self._owned(ctx, s)]
            hide = self.settings.list_subscriptions_hides_client_state
            rendered = [s.render(ctx.base, hide_client_state=hide) for s in mine]
        for item in rendered:
            item.pop("@odata.context")
        return GraphResponse(200, {"@odata.context": f"{ctx.base}/$metadata#subscriptions", "value": rendered})

    def get(self, ctx: Ctx) -> GraphResponse:
        return GraphResponse(200, self._find(ctx).render(ctx.base))

    def renew(self, ctx: Ctx) -> GraphResponse:
        body = ctx.json()
        if not isinstance(body, dict):
            raise _invalid("The subscription payload must be a JSON object.")
        unsupported = sorted(set(body) - {"expirationDateTime", "@odata.type"})
        if unsupported:
            raise _invalid(f"Only expirationDateTime can be updated; '{unsupported[0]}' can't.")
        subscription = self._find(ctx)
        if "expirationDateTime" not in body:
            raise _invalid("expirationDateTime is required.")
        expiration = self._expiration(body["expirationDateTime"])
        with self._lock:
            subscription.expiration = expiration
        # Renewing also reauthorizes (documented).
        self._reauthorized(subscription, ctx)
        return GraphResponse(200, subscription.render(ctx.base))

    def delete(self, ctx: Ctx) -> GraphResponse:
        subscription = self._find(ctx)
        with self._lock:
            self.subscriptions.pop(subscription.id, None)
        return GraphResponse(204)

    def reauthorize(self, ctx: Ctx) -> GraphResponse:
        self._reauthorized(self._find(ctx), ctx)
        return GraphResponse(204)

    def _reauthorized(self, subscription: Subscription, ctx: Ctx) -> None:
        """The challenge is answered: the caller's token now backs the subscription, delivery
        resumes, and changes held while paused go out."""
        with self._lock:
            subscription.token_expiry = _token_expiry(ctx.claims)
            subscription.challenged_since = None
            held, subscription.held = subscription.held, []
        for change in held:
            self._send_changes(change, [subscription])

    # --- creation rules --------------------------------------------------------------------
    def _parse_new(self, ctx: Ctx, body: dict[str, Any]) -> Subscription:
        change_types = [c.strip() for c in str(body.get("changeType") or "").split(",") if c.strip()]
        if not change_types or any(c not in CHANGE_TYPES for c in change_types):
            raise _invalid("changeType must be a comma-separated list of created, updated, deleted.")
        notification_url = body.get("notificationUrl")
        if not isinstance(notification_url, str) or not notification_url:
            raise _invalid("notificationUrl is a required property for subscription creation.")
        self._check_url(notification_url)
        lifecycle_url = body.get("lifecycleNotificationUrl")
        if lifecycle_url is not None:
            if not isinstance(lifecycle_url, str):
                raise _invalid("lifecycleNotificationUrl must be a string.")
            self._check_url(lifecycle_url)
            if urlsplit(lifecycle_url).netloc.lower() != urlsplit(notification_url).netloc.lower():
                raise _invalid(
                    "The lifecycleNotificationUrl must have the same host as the notificationUrl.", "ValidationError"
                )
        client_state = body.get("clientState")
        if client_state is not None and (not isinstance(client_state, str) or len(client_state) > 128):
            raise _invalid("clientState must be a string of at most 128 characters.")
        if "expirationDateTime" not in body:
            raise _invalid("expirationDateTime is a required property for subscription creation.")
        expiration = self._expiration(body["expirationDateTime"])
        mailbox, calendar_id = self._resource(ctx, body.get("resource"))
        return Subscription(
            id=str(uuid.uuid4()),
            resource=str(body["resource"]),
            change_types=change_types,
            notification_url=notification_url,
            lifecycle_url=lifecycle_url,
            expiration=expiration,
            client_state=client_state,
            mailbox_oid=mailbox.oid,
            tenant_id=mailbox.tenant_id,
            application_id=str(ctx.claims.get("appid", "")),
            creator_id=str(ctx.claims.get("oid", "")),
            calendar_id=calendar_id,
            token_expiry=_token_expiry(ctx.claims),
        )

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme == "https" and parts.hostname:
            return
        if parts.scheme == "http" and loopback and self.settings.allow_http_loopback_notification_urls:
            return
        raise _invalid(
            "Subscription validation request failed. Notification endpoint must be https.", "ValidationError"
        )

    def _expiration(self, value: Any) -> datetime:
        expiration = parse_instant(value, "expirationDateTime")
        now = self.clock.now()
        maximum = self.settings.subscription_max_lifetime_minutes
        if expiration > now + timedelta(minutes=maximum):
            raise _invalid(f"Subscription expiration can only be {maximum} minutes in the future.")
        if expiration <= now:
            raise _invalid("Subscription expiration can't be in the past.")
        # Graph raises a too-short lifetime to its minimum rather than refusing it.
        return max(expiration, now + timedelta(minutes=self.settings.subscription_min_lifetime_minutes))

    def _resource(self, ctx: Ctx, resource: Any) -> tuple[Mailbox, str | None]:
        match = _RESOURCE.match(resource) if isinstance(resource, str) else None
        if match is None or match["item"]:
            raise _invalid(f"Resource '{resource}' is not supported for change notifications.", "ExtensionError")
        mailbox = ctx.me
        if match["user"] and self.store.find_mailbox(match["user"]) is not mailbox:
            raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        if not mailbox.can_subscribe:
            raise GraphError(
                400,
                "ExtensionError",
                "Operation: Create; Exception: [Status Code: BadRequest; "
                "Reason: REST API is not yet supported for this mailbox.]",
            )
        with self.store.lock:
            if match["calendar"]:
                return mailbox, self.store.calendar(mailbox, match["calendar"]).id
            if "/calendar/" not in resource.lower() and self.settings.me_events_covers_all_calendars:
                return mailbox, None
            return mailbox, mailbox.default_calendar.id

    async def _validate_endpoint(self, url: str) -> None:
        token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
        ok = await asyncio.to_thread(self._handshake, url, token)
        if not ok:
            raise GraphError(400, "ValidationError", VALIDATION_FAILED)

    def _handshake(self, url: str, token: str) -> bool:
        try:
            response = requests.post(
                url,
                params={"validationToken": token},
                data=b"",
                headers={"Content-Type": "text/plain"},
                timeout=self.settings.validation_timeout_seconds,
                verify=self._verify,
            )
        except requests.RequestException:
            return False
        content_type = response.headers.get("Content-Type", "")
        if self.settings.validation_require_text_plain and not content_type.lower().startswith("text/plain"):
            return False
        return response.status_code == 200 and response.text == token

    # --- lookups and expiry ----------------------------------------------------------------
    def _owned(self, ctx: Ctx, subscription: Subscription) -> bool:
        return subscription.creator_id == str(ctx.claims.get("oid", "")) and subscription.application_id == str(
            ctx.claims.get("appid", "")
        )

    def _find(self, ctx: Ctx) -> Subscription:
        with self._lock:
            self._expire()
            subscription = self.subscriptions.get(ctx.params["sid"])
        if subscription is None or not self._owned(ctx, subscription):
            raise GraphError(404, "ResourceNotFound", "The object was not found.")
        return subscription

    def _expire(self) -> None:
        """Subscriptions past their expiry are deleted, as Graph does (call with the lock held)."""
        now = self.clock.now()
        for subscription_id in [i for i, s in self.subscriptions.items() if s.expiration <= now]:
            del self.subscriptions[subscription_id]

    # --- notifications ---------------------------------------------------------------------
    def on_change(self, change: EventChange) -> None:
        """Notify every live subscription the change matches, per notification URL; paused ones
        (unanswered reauthorization) lose or hold it."""
        self.check_reauthorization()  # a clock moved since the last tick challenges first
        with self._lock:
            self._expire()
            now = self.clock.now()
            matching = [s for s in self.subscriptions.values() if _matches(s, change)]
            paused = [s for s in matching if self._paused(s, now)]
            hold = self.settings.reauthorization_paused_changes == "held"
            for subscription in paused if hold else []:
                subscription.held.append(change)
        self._send_changes(change, [s for s in matching if s not in paused])
        if paused and not hold:
            self._discard_paused(change, paused)

    def _send_changes(self, change: EventChange, subscriptions: list[Subscription]) -> None:
        """One send per URL with the change, then the extra `updated` ones (which join the same
        POST while its batch window is open)."""
        extra = self.settings.extra_updated_notifications if change.change_type in ("created", "updated") else 0
        for round_ in range(1 + extra):
            change_type = change.change_type if round_ == 0 else "updated"
            by_url: dict[str, list[dict[str, Any]]] = {}
            for subscription in subscriptions:
                if change_type in subscription.change_types:
                    item = _notification(subscription, change, change_type)
                    by_url.setdefault(subscription.notification_url, []).append(item)
            for url, items in by_url.items():
                self.notifier.send("change", url, {"value": items})

    def _discard_paused(self, change: EventChange, paused: list[Subscription]) -> None:
        for subscription in paused:
            body = {"value": [_notification(subscription, change, change.change_type)]}
            self.notifier.discard("change", subscription.notification_url, body, "lost: reauthorization required")

    # --- reauthorization -------------------------------------------------------------------
    def check_reauthorization(self) -> None:
        """Send reauthorizationRequired to every subscription that is due one."""
        with self._lock:
            self._expire()
            due = self._challenges_due(self.clock.now())
        for subscription in due:
            self._send_lifecycle(subscription, "reauthorizationRequired")

    def _challenges_due(self, now: datetime) -> list[Subscription]:
        """Subscriptions near their own or their token's expiry, not challenged in the last
        `repeat` minutes; marks them challenged (call with the lock held)."""
        if not self.settings.reauthorization_challenges:
            return []
        lead = timedelta(minutes=self.settings.reauthorization_lead_minutes)
        repeat = self.settings.reauthorization_repeat_minutes
        due = []
        for subscription in self.subscriptions.values():
            deadline = min(subscription.expiration, subscription.token_expiry or subscription.expiration)
            if not subscription.lifecycle_url or now < deadline - lead:
                continue
            last = subscription.last_challenge
            if last is not None and (repeat <= 0 or now < last + timedelta(minutes=repeat)):
                continue
            subscription.last_challenge = now
            subscription.challenged_since = subscription.challenged_since or now
            due.append(subscription)
        return due

    def _paused(self, subscription: Subscription, now: datetime) -> bool:
        if subscription.challenged_since is None:
            return False
        pause_at = subscription.challenged_since + timedelta(minutes=self.settings.reauthorization_pause_after_minutes)
        if subscription.token_expiry is not None:
            pause_at = min(pause_at, subscription.token_expiry)
        return now >= pause_at

    def all_subscriptions(self) -> list[Subscription]:
        with self._lock:
            self._expire()
            return list(self.subscriptions.values())

    def describe(self, base: str) -> list[dict[str, Any]]:
        """Every live subscription as Graph renders it, plus its reauthorization state."""
        with self._lock:
            self._expire()
            now = self.clock.now()
            return [
                {
                    **s.render(base),
                    "reauthorization": {
                        "tokenExpiry": s.token_expiry and format_subscription_expiry(s.token_expiry),
                        "challengedSince": s.challenged_since and format_subscription_expiry(s.challenged_since),
                        "paused": self._paused(s, now),
                        "held": len(s.held),
                    },
                }
                for s in self.subscriptions.values()
            ]

    def on_lost(self, delivery: Delivery) -> None:
        """A change notification Graph could not deliver: say so with `missed` (if the setting asks)."""
        if not self.settings.lifecycle_missed_after_failures:
            return
        for subscription_id in {item["subscriptionId"] for item in delivery.body.get("value", [])}:
            try:
                self.lifecycle(subscription_id, "missed")
            except (KeyError, ValueError):
                continue  # gone meanwhile, or no lifecycle URL: nothing to tell

    def remove_silently(self, subscription_id: str) -> bool:
        """Drop a subscription with no lifecycle notification, as after a password reset (reported)."""
        with self._lock:
            return self.subscriptions.pop(subscription_id, None) is not None

    def lifecycle(self, subscription_id: str, event: str) -> dict[str, Any]:
        """Send a lifecycle notification now (subscriptionRemoved also deletes the subscription;
        reauthorizationRequired challenges it, so its delivery pauses as an automatic one does)."""
        if event not in LIFECYCLE_EVENTS:
            raise ValueError(f"event must be one of {sorted(LIFECYCLE_EVENTS)}")
        with self._lock:
            self._expire()
            subscription = self.subscriptions.get(subscription_id)
            if subscription is None:
                raise KeyError(subscription_id)
            if not subscription.lifecycle_url:
                raise ValueError("the subscription has no lifecycleNotificationUrl")
            if event == "subscriptionRemoved":
                del self.subscriptions[subscription_id]
            if event == "reauthorizationRequired":
                now = self.clock.now()
                subscription.last_challenge = now
                subscription.challenged_since = subscription.challenged_since or now
        return self._send_lifecycle(subscription, event)

    def _send_lifecycle(self, subscription: Subscription, event: str) -> dict[str, Any]:
        assert subscription.lifecycle_url is not None
        item: dict[str, Any] = {
            "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": format_subscription_expiry(subscription.expiration),
            "tenantId": subscription.tenant_id,
            "clientState": subscription.client_state,
            "lifecycleEvent": event,
        }
        if self.settings.lifecycle_include_organization_id:
            item.update({"organizationId": subscription.tenant_id, "resource": ""})
        self.notifier.send("lifecycle", subscription.lifecycle_url, {"value": [item]})
        return item


def _matches(subscription: Subscription, change: EventChange) -> bool:
    return (
        subscription.mailbox_oid == change.mailbox_oid
        and change.change_type in subscription.change_types
        and subscription.calendar_id in (None, change.calendar_id)
    )


def _token_expiry(claims: dict[str, Any]) -> datetime | None:
    exp = claims.get("exp")
    return datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else None


def _notification(subscription: Subscription, change: EventChange, change_type: str) -> dict[str, Any]:
    resource = f"Users/{change.mailbox_oid}/Events/{change.event_id}"
    return {
        "subscriptionId": subscription.id,
        "subscriptionExpirationDateTime": format_subscription_expiry(subscription.expiration),
        "clientState": subscription.client_state,
        "changeType": change_type,
        "resource": resource,
        "tenantId": change.tenant_id,
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": resource,
            "@odata.etag": change.etag,
            "id": change.event_id,
        },
    }
