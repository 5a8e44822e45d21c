"""Syncro's Notification Center: POSTs ``{"text": ..., "attributes": {...}}`` when an appointment
is created. The payload is unsigned, as Syncro's is.

Deliveries run on a small thread pool, never on the event loop, and every attempt is recorded
so tests can read what was sent (``GET /_sim/notifications``).
"""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from local.sims.control import SimClock
from local.sims.syncro.settings import SyncroSettings

EVENT_CREATED = "Appointment - Was created"
EVENT_CREATED_FOR_ME = "Appointment (for me) - Was created"
# The sentence a notification's text opens with, per event (the wording is a guess).
SENTENCES = {
    EVENT_CREATED: "Appointment was created",
    EVENT_CREATED_FOR_ME: "An appointment for you was created",
}


@dataclass
class Delivery:
    """One notification to one URL, and what became of it."""

    id: int
    event: str
    url: str
    payload: dict[str, Any]
    queued_at: str
    state: str = "pending"  # pending | delivered | failed | dropped
    attempts: int = 0
    status: int | None = None
    error: str | None = None
    for_user_id: int | None = None
    responses: list[int | str] = field(default_factory=list)


class NotificationCenter:
    def __init__(self, *, clock: SimClock, ca_bundle: str | None = None) -> None:
        self._clock = clock
        self._verify: str | bool = ca_bundle or True
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._ids = itertools.count(1)
        self._drop_next = 0
        self._pending: set[Future[None]] = set()
        self._released = threading.Event()  # cleared while delivery is paused
        self._released.set()
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="syncro-notify")

    def appointment_created(
        self, appointment: dict[str, Any], *, assignees: tuple[int, ...], settings: SyncroSettings
    ) -> None:
        """Queue the Notification Center POSTs one creation triggers."""
        targets = [(EVENT_CREATED, url, None) for url in settings.notification_urls]
        for user_id in assignees:
            targets += [
                (EVENT_CREATED_FOR_ME, url, user_id) for url in settings.user_notification_urls.get(str(user_id), [])
            ]
        for event, url, user_id in targets:
            self._queue(event, url, user_id, appointment, settings)

    def _queue(
        self, event: str, url: str, user_id: int | None, appointment: dict[str, Any], settings: SyncroSettings
    ) -> None:
        text = _event_line(settings.notification_text, event, appointment)
        with self._lock:
            delivery = Delivery(
                id=next(self._ids),
                event=event,
                url=url,
                payload={"text": text, "attributes": appointment},
                queued_at=self._clock.now().isoformat(),
                for_user_id=user_id,
            )
            self._deliveries.append(delivery)
            if self._drop_next > 0:
                self._drop_next -= 1
                delivery.state = "dropped"
                return
            future = self._executor.submit(self._deliver, delivery, settings)
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _deliver(self, delivery: Delivery, settings: SyncroSettings) -> None:
        self._released.wait()
        if settings.notification_delay_seconds:
            time.sleep(settings.notification_delay_seconds)
        for attempt in range(settings.notification_retries + 1):
            if attempt:
                time.sleep(settings.notification_retry_delay_seconds)
            outcome = self._post(delivery, settings.notification_timeout_seconds)
            with self._lock:
                delivery.attempts += 1
                delivery.responses.append(outcome)
                if isinstance(outcome, int):
                    delivery.status = outcome
                else:
                    delivery.error = outcome
                if isinstance(outcome, int) and 200 <= outcome < 300:
                    delivery.state = "delivered"
                    return
        with self._lock:
            delivery.state = "failed"

    def _post(self, delivery: Delivery, timeout: float) -> int | str:
        """The response status, or the error's text when no response came."""
        try:
            response = requests.post(delivery.url, json=delivery.payload, timeout=timeout, verify=self._verify)
        except requests.RequestException as error:
            return f"{type(error).__name__}: {error}"
        return response.status_code

    def drop_next(self, count: int) -> None:
        """The next ``count`` notifications are recorded as dropped and never sent."""
        with self._lock:
            self._drop_next = count

    def pause(self) -> None:
        """Hold every delivery (queued ones stay ``pending``) until `release`."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(delivery) for delivery in self._deliveries]

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no delivery is in flight; False if some still are after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    return True
            time.sleep(0.01)
        return False

    def clear(self) -> None:
        self._released.set()
        with self._lock:
            self._deliveries.clear()
            self._drop_next = 0

    def close(self) -> None:
        self._released.set()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _event_line(template: str, event: str, appointment: dict[str, Any]) -> str:
    # Nulls print as nothing, as Syncro's templates print a missing value.
    values = {key: "" if value is None else value for key, value in appointment.items()}
    try:
        return template.format_map(_Lenient(values, event=event, sentence=SENTENCES.get(event, event)))
    except (ValueError, AttributeError, IndexError, KeyError, TypeError):
        # A template the settings PATCH let through but that does not format: keep the event.
        return f"{SENTENCES.get(event, event)}\n{appointment.get('summary')}"


class _Lenient(dict):
    """Leaves unknown ``{names}`` in a text template as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
