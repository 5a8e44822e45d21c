"""The faults the soak injects (`bench/soak.py`), each through a simulator's own controls.

Faults strike the product's requests only: its Graph requests go to ``/v1.0/me/...`` and
``$batch``, while the soak's users edit through ``/v1.0/users/{id}/...`` (and Syncro's dispatcher
screens, ``/_sim/appointments``), which no rule here matches.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

GRAPH_TARGETS = {
    "graph delta": ("GET", r"^/v1\.0/me/calendars/[^/]+/calendarView/delta"),
    "graph create": ("POST", r"^/v1\.0/me/calendars/[^/]+/events$"),
    "graph update": ("PATCH", r"^/v1\.0/me/calendars/[^/]+/events/"),
    "graph delete": ("DELETE", r"^/v1\.0/me/calendars/[^/]+/events/"),
    "graph read": ("GET", r"^/v1\.0/me/calendars/[^/]+/events"),
    "graph batch": ("POST", r"^/v1\.0/\$batch$"),
}
SYNCRO_TARGETS = {
    "syncro list": ("GET", r"^/api/v1/appointments$"),
    "syncro read": ("GET", r"^/api/v1/appointments/\d+$"),
    "syncro create": ("POST", r"^/api/v1/appointments$"),
    "syncro update": ("PUT", r"^/api/v1/appointments/\d+$"),
    "syncro delete": ("DELETE", r"^/api/v1/appointments/\d+$"),
}
WRITES = ("graph create", "graph update", "graph delete", "syncro create", "syncro update", "syncro delete")
# Past the product's read timeout (sync.client_http.DEFAULT_TIMEOUT, 30 s): the client gives up first.
HELD_SECONDS = 32.0
# While the soak runs, Graph delivers each notification twice, newest first, a little late, and
# drops some (at least once, in no order, not always: what Graph promises).
NOISY_NOTIFICATIONS = {
    "notification_copies": 2,
    "notification_reorder": True,
    "notification_delay_seconds": 0.3,
    "notification_drop_probability": 0.15,
}
QUIET_NOTIFICATIONS = {
    "notification_copies": 1,
    "notification_reorder": False,
    "notification_delay_seconds": 0.0,
    "notification_drop_probability": 0.0,
    "notification_drop_next": 0,
}


@dataclass
class Faults:
    """Injects one fault at a time; ``sim(name, method, path, json=...)`` calls a simulator's
    control route. Grant and token revocations are handed to ``revoke_grant`` and
    ``revoke_syncro_token`` (the soak also puts them right, and checks the status said so)."""

    sim: Callable[..., Any]
    rng: random.Random
    mailboxes: Callable[[], list[str]]  # the techs' mailbox oids
    revoke_grant: Callable[[], bool]  # False when no tech can take it now
    revoke_syncro_token: Callable[[], bool]
    storage: dict[str, Any] = field(default_factory=dict)  # "table"/"queue" -> bench.soak_storage.StorageProxy
    owners: Callable[[], bool] | None = None  # flips whether Syncro shows appointment owners
    counts: Counter[str] = field(default_factory=Counter)
    _first_round: list[str] = field(default_factory=list)

    def kinds(self) -> dict[str, Callable[[], bool]]:
        return {
            "graph 429 storm": self.graph_storm,
            "syncro 429 storm": self.syncro_storm,
            "5xx": self.server_error,
            "timeout before": lambda: self.timeout("before"),
            "timeout after": lambda: self.timeout("after"),
            "notifications dropped": self.drop_notifications,
            "delta token expired": self.expire_delta,
            "subscription removed": self.remove_subscription,
            "graph missed notifications": self.missed,
            "graph 412 conflict": self.transient_conflict,
            "graph changeKey moved": self.server_touch,
            "reauthorization required": self.reauthorization,
            "identity 503 on refresh": self.identity_unavailable,
            "grant revoked": self.revoke_grant,
            "syncro token revoked": self.revoke_syncro_token,
            **(
                {
                    "storage unavailable": self.storage_down,
                    "storage 5xx": self.storage_error,
                    "storage timeout before": lambda: self.storage_hold("before"),
                    "storage timeout after": lambda: self.storage_hold("after"),
                }
                if self.storage
                else {}
            ),
            **({"syncro owners shown/hidden": self.owners} if self.owners else {}),
        }

    def strike(self) -> str:
        """One fault: every kind once, in random order, then at random (weighted towards the
        cheap, frequent kinds); its kind, or "" when the one picked could not strike now."""
        kinds = self.kinds()
        if not self._first_round:
            self._first_round = [n for n in self.rng.sample(list(kinds), len(kinds)) if n not in self.counts]
            self._first_round.append("")  # the end of the first round
        if self._first_round[0]:
            name = self._first_round.pop(0)
        else:
            weights = {
                "grant revoked": 0.4,
                "syncro token revoked": 0.4,
                "timeout before": 0.6,
                "timeout after": 0.6,
                "storage timeout before": 0.4,
                "storage timeout after": 0.4,
                "syncro owners shown/hidden": 0.5,
            }
            names = list(kinds)
            name = self.rng.choices(names, weights=[weights.get(n, 1.0) for n in names])[0]
        if kinds[name]():
            self.counts[name] += 1
            return name
        return ""

    def begin(self) -> None:
        self.sim("graph", "PATCH", "/_sim/settings", json=NOISY_NOTIFICATIONS)
        self.counts["notifications duplicated, reordered, late"] += 1

    def end(self) -> None:
        self.sim("graph", "DELETE", "/_sim/faults")
        self.sim("syncro", "DELETE", "/_sim/faults")
        self.sim("graph", "PATCH", "/_sim/settings", json=QUIET_NOTIFICATIONS)
        self.sim("syncro", "POST", "/_sim/notifications/drop", json={"count": 0})
        self.sim(
            "graph", "PATCH", "/_sim/settings", json={"transient_conflict_next": 0, "server_touch_after_next_writes": 0}
        )
        self.sim("identity", "DELETE", "/_sim/token_errors")
        for proxy in self.storage.values():
            proxy.clear()

    def _rule(self, name: str, target: tuple[str, str], **rule: Any) -> None:
        method, path = target
        self.sim(name, "POST", "/_sim/faults", json={"method": method, "path": path, **rule})

    def graph_storm(self) -> bool:
        retry_after = self.rng.choice(["1", "0.5", "2"])
        rule = {"status": 429, "times": self.rng.randint(5, 25)}
        if self.rng.random() < 0.7:
            rule["headers"] = {"Retry-After": retry_after}
        rule["body"] = {
            "error": {"code": "ApplicationThrottled", "message": "Application is over its MailboxConcurrency limit."}
        }
        self._rule("graph", ("*", r"^/v1\.0/(me/|\$batch)"), **rule)
        return True

    def syncro_storm(self) -> bool:
        self._rule("syncro", ("*", r"^/api/v1/"), status=429, body="Retry later", times=self.rng.randint(5, 15))
        return True

    def server_error(self) -> bool:
        targets = {**GRAPH_TARGETS, **SYNCRO_TARGETS}
        name = self.rng.choice(sorted(targets))
        status = self.rng.choice([500, 502, 503, 504])
        self._rule(name.split()[0], targets[name], status=status, times=self.rng.randint(1, 3))
        return True

    def timeout(self, when: str) -> bool:
        name = self.rng.choice(WRITES)
        targets = {**GRAPH_TARGETS, **SYNCRO_TARGETS}
        self._rule(name.split()[0], targets[name], timeout=when, delay_seconds=HELD_SECONDS, times=1)
        return True

    def drop_notifications(self) -> bool:
        if self.rng.random() < 0.5:
            self.sim("graph", "PATCH", "/_sim/settings", json={"notification_drop_next": self.rng.randint(1, 5)})
        else:
            self.sim("syncro", "POST", "/_sim/notifications/drop", json={"count": self.rng.randint(1, 3)})
        return True

    def expire_delta(self) -> bool:
        self.sim("graph", "POST", f"/_sim/mailboxes/{self.rng.choice(self.mailboxes())}/delta/invalidate")
        return True

    def _some_subscription(self) -> str | None:
        """The id of one of the Graph simulator's subscriptions, at random; None when it has none."""
        subscriptions = self.sim("graph", "GET", "/_sim/subscriptions").json()["subscriptions"]
        return self.rng.choice(subscriptions)["id"] if subscriptions else None

    def remove_subscription(self) -> bool:
        sid = self._some_subscription()
        if sid is None:
            return False
        if self.rng.random() < 0.5:  # gone without a word
            self.sim("graph", "DELETE", f"/_sim/subscriptions/{sid}")
        else:  # gone with a lifecycle notification
            self.sim("graph", "POST", f"/_sim/subscriptions/{sid}/lifecycle", json={"event": "subscriptionRemoved"})
        return True

    def transient_conflict(self) -> bool:
        """Exchange's 412 ErrorIrresolvableConflict on the next requests for one event."""
        self.sim("graph", "PATCH", "/_sim/settings", json={"transient_conflict_next": self.rng.randint(1, 3)})
        return True

    def server_touch(self) -> bool:
        """Exchange moves changeKey and etag again right after the product's next writes."""
        self.sim("graph", "PATCH", "/_sim/settings", json={"server_touch_after_next_writes": self.rng.randint(1, 2)})
        return True

    def reauthorization(self) -> bool:
        sid = self._some_subscription()
        if sid is None:
            return False
        self.sim("graph", "POST", f"/_sim/subscriptions/{sid}/lifecycle", json={"event": "reauthorizationRequired"})
        return True

    def identity_unavailable(self) -> bool:
        """The identity platform answers 503 to the product's next refreshes (a passing outage, not a
        refused grant: the link must stay active)."""
        rule = {"email": "*", "code": 90033, "times": self.rng.randint(1, 3), "grant_type": "refresh_token"}
        self.sim("identity", "POST", "/_sim/token_errors", json=rule)
        return True

    def missed(self) -> bool:
        """Graph's ``missed`` lifecycle notification: some change notifications were not delivered."""
        sid = self._some_subscription()
        if sid is None:
            return False
        self.sim("graph", "POST", f"/_sim/subscriptions/{sid}/lifecycle", json={"event": "missed"})
        return True

    def _proxies(self) -> list[Any]:
        """Table, Queue or both (a storage account fails as a whole as often as one service)."""
        names = sorted(self.storage)
        return [self.storage[n] for n in self.rng.choice([*([[n] for n in names]), names])]

    def storage_down(self) -> bool:
        """Azurite unreachable for a few seconds: open connections cut, new ones closed at once."""
        seconds = self.rng.uniform(2, 8)
        for proxy in self._proxies():
            proxy.down(seconds)
        return True

    def storage_error(self) -> bool:
        status = self.rng.choice([500, 503])
        for proxy in self._proxies():
            proxy.fail(self.rng.randint(1, 4), status)
        return True

    def storage_hold(self, when: str) -> bool:
        """One storage request held past the product's read timeout, before or after Azurite acted."""
        self.storage[self.rng.choice(sorted(self.storage))].hold(when)
        return True
