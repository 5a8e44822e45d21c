"""Timer triggers on six-field NCRONTAB schedules (``{second} {minute} {hour} {day} {month} {day-of-week}``),
in UTC as the real host runs them by default. One run at a time per function; a run that
overruns skips the occurrences it missed instead of piling up."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from azure.functions.timer import TimerRequest

from local.host.context import arguments, call_sync
from local.host.functions import TimerFunction
from local.host.logs import invocation

log = logging.getLogger("host.timer")


def check_schedule(schedule: str) -> None:
    """Raise ValueError unless ``schedule`` is a valid six-field NCRONTAB expression."""
    from croniter import croniter

    if len(schedule.split()) != 6:
        raise ValueError(f"schedule {schedule!r} must have six fields: second minute hour day month day-of-week")
    if not croniter.is_valid(schedule, second_at_beginning=True):
        raise ValueError(f"schedule {schedule!r} is not a valid NCRONTAB expression")


def next_occurrence(schedule: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that ``schedule`` fires (UTC)."""
    from croniter import croniter

    return croniter(schedule, after, second_at_beginning=True).get_next(datetime)


class TimerRunner:
    """Runs one timer function on its own thread until stopped."""

    def __init__(self, function: TimerFunction, *, clock: Callable[[], datetime] | None = None) -> None:
        check_schedule(function.schedule)
        self.function = function
        self._clock = clock or (lambda: datetime.now(UTC))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"timer-{function.name}", daemon=True)
        self._last: datetime | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        if self.function.run_on_startup:
            self._fire(past_due=False)
        while not self._stop.is_set():
            due = next_occurrence(self.function.schedule, self._clock())
            if self._stop.wait(max((due - self._clock()).total_seconds(), 0)):
                return
            self._fire(past_due=(self._clock() - due).total_seconds() > 1)

    def _fire(self, *, past_due: bool) -> None:
        now = self._clock()
        status = {
            "Last": (self._last or now).isoformat(),
            "Next": next_occurrence(self.function.schedule, now).isoformat(),
            "LastUpdated": now.isoformat(),
        }
        request = TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})
        self._last = now
        with invocation(self.function.name) as invocation_id:
            kwargs = arguments(self.function.call, self.function.binding, request, invocation_id, self.function.name)
            try:
                call_sync(self.function.call, kwargs)
                log.info("timer ran", extra={"past_due": past_due})
            except Exception:
                log.exception("timer function raised")
