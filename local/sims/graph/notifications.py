"""Outbound POSTs to webhooks: change and lifecycle notifications, with Graph's unreliability on
demand (delay, copies, drops, reordering, pause/release) and retries of failed deliveries.

A scheduler thread hands due deliveries to a small pool of sender threads, so a slow or dead
endpoint never blocks the event loop or the other deliveries. Notifications for one URL within
the batch window join one POST. The same thread calls ``tickers`` a few times a second, so
clock-driven behaviour (reauthorization challenges) happens without any request.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from local.sims.control import SimClock
from local.sims.graph.settings import GraphSettings
from local.sims.graph.timefmt import format_stamp

log = logging.getLogger(__name__)
TICK_SECONDS = 0.1


@dataclass
class Delivery:
    id: int
    kind: str  # "change" | "lifecycle"
    url: str
    body: dict[str, Any]
    created: str
    status: str = "pending"  # pending | sending | delivered | failed | dropped
    attempts: int = 0
    responses: list[str] = field(default_factory=list)  # "202", "500", "timeout", ...
    sent_order: int | None = None  # position in which its first attempt was handed to a sender
    note: str = ""  # why it was dropped or delayed, when the simulator did so on purpose
    due: float = 0.0  # time.monotonic() at which it may be sent
    batch_until: float = 0.0  # time.monotonic() until which later notifications may join it

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("due", "batch_until")}


class Notifier:
    def __init__(self, settings: GraphSettings, clock: SimClock, ca_bundle: str | None) -> None:
        self.settings = settings
        self.clock = clock
        self._verify: str | bool = ca_bundle or True
        self._lock = threading.Condition()
        self._deliveries: list[Delivery] = []
        self._ids = itertools.count(1)
        self._sends = itertools.count(1)
        self._paused = False
        self._stopped = False
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="graph-sim-webhook")
        self._local = threading.local()
        self._timings: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # url -> [responses, slow ones]
        # Called (outside the lock) with each change delivery that was dropped or given up.
        self.on_lost: Callable[[Delivery], None] | None = None
        # Called from the scheduler thread every TICK_SECONDS (outside the lock).
        self.tickers: list[Callable[[], None]] = []
        self._thread = threading.Thread(target=self._run, name="graph-sim-notifier", daemon=True)
        self._thread.start()

    # --- what the simulator calls -----------------------------------------------------------
    def send(self, kind: str, url: str, body: dict[str, Any]) -> None:
        """Queue notifications for one URL: they join a POST still open for that URL, or start
        one (copied, dropped or delayed as the settings say)."""
        lost = []
        with self._lock:
            if self._join_open_batch(kind, url, body["value"]):
                return
            window = self.settings.notification_batch_window_seconds
            for _ in range(max(1, self.settings.notification_copies)):
                own = {**body, "value": list(body["value"])}  # copies grow apart as items join
                delivery = Delivery(next(self._ids), kind, url, own, format_stamp(self.clock.now()))
                delivery.batch_until = time.monotonic() + window if window > 0 else 0.0
                delivery.due = time.monotonic() + window + self.settings.notification_delay_seconds
                self._apply_endpoint_penalty(delivery)
                if delivery.status != "dropped" and self._should_drop():
                    delivery.status, delivery.note = "dropped", "dropped by setting"
                if delivery.status == "dropped":
                    lost.append(delivery)
                self._deliveries.append(delivery)
            self._lock.notify_all()
        for delivery in lost:
            self._report_lost(delivery)

    def _join_open_batch(self, kind: str, url: str, items: list[dict[str, Any]]) -> bool:
        """Add ``items`` to the not yet sent POST(s) for ``url`` whose window is open (call with
        the lock held); False when there is none or it would grow past the maximum."""
        now = time.monotonic()
        open_batches = [
            d
            for d in self._deliveries
            if d.kind == kind and d.url == url and d.status == "pending" and d.attempts == 0 and d.batch_until > now
        ]
        limit = self.settings.notification_batch_max_items
        if not open_batches or any(len(d.body["value"]) + len(items) > limit for d in open_batches):
            return False
        for delivery in open_batches:
            delivery.body["value"].extend(items)
        return True

    def discard(self, kind: str, url: str, body: dict[str, Any], note: str) -> None:
        """Record a notification Graph never sends (kept for GET /_sim/notifications only)."""
        with self._lock:
            delivery = Delivery(next(self._ids), kind, url, body, format_stamp(self.clock.now()))
            delivery.status, delivery.note = "dropped", note
            self._deliveries.append(delivery)

    def _apply_endpoint_penalty(self, delivery: Delivery) -> None:
        """Graph delays, then drops, notifications to endpoints that answer slowly too often."""
        responses, slow = self._timings[delivery.url]
        if responses < self.settings.notification_slow_min_count:
            return
        ratio = slow / responses
        if ratio >= self.settings.notification_slow_drop_ratio:
            delivery.status, delivery.note = "dropped", f"slow endpoint ({ratio:.0%} slow responses)"
        elif ratio >= self.settings.notification_slow_delay_ratio:
            delivery.due += self.settings.notification_slow_delay_seconds
            delivery.note = f"delayed: slow endpoint ({ratio:.0%} slow responses)"

    def _report_lost(self, delivery: Delivery) -> None:
        if self.on_lost is not None and delivery.kind == "change":
            self.on_lost(delivery)

    def _should_drop(self) -> bool:
        if self.settings.notification_drop_next > 0:
            self.settings.notification_drop_next -= 1
            return True
        return random.random() < self.settings.notification_drop_probability

    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def release(self) -> None:
        with self._lock:
            self._paused = False
            self._lock.notify_all()

    def snapshot(self, status: str | None = None) -> dict[str, Any]:
        with self._lock:
            items = [d.describe() for d in self._deliveries if status is None or d.status == status]
            return {"paused": self._paused, "deliveries": items}

    def clear(self) -> None:
        with self._lock:
            self._deliveries.clear()
            self._timings.clear()
            self._paused = False

    def wait_until_settled(self, timeout: float = 10.0) -> bool:
        """True once nothing is pending or sending (paused deliveries count as pending)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while any(d.status in ("pending", "sending") for d in self._deliveries):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, 0.05))
            return True

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- the scheduler ---------------------------------------------------------------------
    def _run(self) -> None:
        next_tick = 0.0
        while True:
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + TICK_SECONDS
                self._tick()
            with self._lock:
                if self._stopped:
                    return
                due = self._due()
                if not due:
                    self._lock.wait(min(self._sleep_time(), max(0.0, next_tick - time.monotonic())))
                    continue
                for delivery in due:
                    delivery.status = "sending"
                    if delivery.sent_order is None:
                        delivery.sent_order = next(self._sends)
            for delivery in due:
                self._pool.submit(self._deliver, delivery)

    def _tick(self) -> None:
        for ticker in list(self.tickers):
            try:
                ticker()
            except Exception:  # a failing ticker must not stop deliveries
                log.exception("Graph simulator ticker failed")

    def _due(self) -> list[Delivery]:
        if self._paused:
            return []
        now = time.monotonic()
        due = [d for d in self._deliveries if d.status == "pending" and d.due <= now]
        return list(reversed(due)) if self.settings.notification_reorder else due

    def _sleep_time(self) -> float:
        pending = [d.due for d in self._deliveries if d.status == "pending"]
        if self._paused or not pending:
            return 0.5
        return max(0.0, min(pending) - time.monotonic()) + 0.001

    def _deliver(self, delivery: Delivery) -> None:
        started = time.monotonic()
        outcome = self._post(delivery)
        elapsed = time.monotonic() - started
        with self._lock:
            timing = self._timings[delivery.url]
            timing[0] += 1
            timing[1] += elapsed > self.settings.notification_slow_seconds or outcome == "timeout"
            delivery.attempts += 1
            delivery.responses.append(outcome)
            if outcome.isdigit() and 200 <= int(outcome) < 300:
                delivery.status = "delivered"
            elif delivery.attempts >= self.settings.notification_max_attempts:
                delivery.status = "failed"
            else:
                delivery.status = "pending"
                delivery.due = time.monotonic() + self.settings.notification_retry_interval_seconds
            self._lock.notify_all()
        if delivery.status == "failed":
            self._report_lost(delivery)

    def _post(self, delivery: Delivery) -> str:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            # Without this, REQUESTS_CA_BUNDLE from the environment would override session.verify.
            session.trust_env = False
            session.verify = self._verify
        try:
            response = session.post(
                delivery.url, json=delivery.body, timeout=self.settings.notification_timeout_seconds
            )
            return str(response.status_code)
        except requests.Timeout:
            return "timeout"
        except requests.RequestException as error:
            return f"error: {type(error).__name__}"
