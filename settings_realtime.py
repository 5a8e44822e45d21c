"""The settings of real time and the timers: Graph subscriptions and the sync-request coalescing
(realtime/, sync/subscriptions.py), and the timers' NCRONTAB schedules (realtime/timers.py,
blueprints/background.py). `settings.load_settings` checks them too; `settings` re-exports them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from settings_values import SettingsError, integer


@dataclass(frozen=True)
class RealtimeSettings:
    """Settings of the webhooks and Graph subscriptions (docs/configuration.md, docs/realtime.md)."""

    # Graph's maximum for Outlook events is 10,080 minutes (older documentation said 4,230).
    subscription_lifetime_minutes: int
    # Upkeep renews a subscription once less than this is left (the upkeep timer runs hourly).
    subscription_renew_margin_minutes: int
    # Sync requests for one tech within this many seconds, while the job they queued has not started,
    # make one queue message.
    sync_coalesce_seconds: int


def load_realtime_settings(env: Mapping[str, str] | None = None) -> RealtimeSettings:
    """Read and validate the real-time settings; raises SettingsError on the first bad one."""
    env = os.environ if env is None else env
    lifetime = integer(env, "SUBSCRIPTION_LIFETIME_MINUTES", 10080, low=45, high=10080)
    margin = integer(env, "SUBSCRIPTION_RENEW_MARGIN_MINUTES", 1440, low=5, high=10080)
    if margin >= lifetime:
        raise SettingsError(
            "SUBSCRIPTION_RENEW_MARGIN_MINUTES",
            f"is {margin}, not less than SUBSCRIPTION_LIFETIME_MINUTES ({lifetime})",
            "1440 (renew one day before expiry)",
        )
    return RealtimeSettings(
        subscription_lifetime_minutes=lifetime,
        subscription_renew_margin_minutes=margin,
        sync_coalesce_seconds=integer(env, "SYNC_COALESCE_SECONDS", 30, low=1, high=3600),
    )


# --- timer schedules (realtime/timers.py, blueprints/background.py) ----------------------------
# Read when function_app.py is indexed (the trigger decorators need them then); Azure restarts the
# app when an app setting changes, so a new schedule takes effect at once.

_NCRONTAB_FIELDS = (  # (name, low, high, names accepted in place of numbers)
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")),
    ("day-of-week", 0, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)


@dataclass(frozen=True)
class TimerSchedules:
    """Six-field NCRONTAB schedules (``second minute hour day month day-of-week``, UTC)."""

    syncro_poll: str = "0 * * * * *"  # every minute
    reconcile: str = "30 */15 * * * *"  # every 15 minutes, half a minute after that minute's poll
    subscription_upkeep: str = "0 7 * * * *"  # hourly
    cleanup: str = "0 40 3 * * *"  # daily, 03:40 UTC


def _ncrontab_value(text: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        value = int(text)
        return value if low <= value <= high else None
    upper = text.upper()
    return names.index(upper) + low if upper in names else None


def _ncrontab_field_ok(text: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    for item in text.split(","):
        span, slash, step = item.partition("/")
        if slash and not (step.isdigit() and 0 < int(step) <= high):
            return False
        if span == "*":
            continue
        first, dash, last = span.partition("-")
        start = _ncrontab_value(first, low, high, names)
        end = _ncrontab_value(last, low, high, names) if dash else start
        if start is None or end is None or start > end:
            return False
    return True


def check_ncrontab(name: str, raw: str) -> str:
    """``raw`` if it is a six-field NCRONTAB expression; SettingsError naming ``name`` otherwise."""
    fields = raw.split()
    example = '"0 */5 * * * *" (second minute hour day month day-of-week: every five minutes)'
    if len(fields) != 6:
        raise SettingsError(name, f"has {len(fields)} fields ({raw!r}), not six", example)
    for text, (field_name, low, high, names) in zip(fields, _NCRONTAB_FIELDS, strict=True):
        if not _ncrontab_field_ok(text, low, high, names):
            problem = f"has a {field_name} field {text!r} that is not *, {low}..{high}, a-b, a,b or */n"
            raise SettingsError(name, problem, example)
    return " ".join(fields)


def load_timer_schedules(env: Mapping[str, str] | None = None) -> TimerSchedules:
    """The timers' schedules from SYNCRO_POLL_SCHEDULE, RECONCILE_SCHEDULE,
    SUBSCRIPTION_UPKEEP_SCHEDULE and CLEANUP_SCHEDULE; raises SettingsError on a bad one."""
    env = os.environ if env is None else env
    defaults = TimerSchedules()

    def read(name: str, default: str) -> str:
        raw = env.get(name, "").strip()
        return check_ncrontab(name, raw) if raw else default

    return TimerSchedules(
        syncro_poll=read("SYNCRO_POLL_SCHEDULE", defaults.syncro_poll),
        reconcile=read("RECONCILE_SCHEDULE", defaults.reconcile),
        subscription_upkeep=read("SUBSCRIPTION_UPKEEP_SCHEDULE", defaults.subscription_upkeep),
        cleanup=read("CLEANUP_SCHEDULE", defaults.cleanup),
    )
