"""Which day windows a poll lists (pure), and the round's progress between runs.

A round is the near window (`NEAR_DAYS`, every run) plus one far slice of the rest of the sync
window (`SLICE_DAYS` days, a cursor remembering where): `plan_windows`. Its listings (`Unit`s:
account-wide, or one tech's own when Syncro withholds the owner fields) and how far they got are
the ``syncropoll/round`` cursor's `RoundState`, so a run that stops (its budget) is continued by
the next. A whole pass takes `runs_per_pass` rounds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sync.ownership import OwnershipMode

Window = tuple[date, date]  # days in the account's zone; date_to exclusive, as Syncro's filter


# Every run lists the near window, today to two days ahead: an edit to what a tech does in the next
# 48 hours reaches Outlook within a run or two. The rest of the sync window comes a slice a run, so
# a whole pass takes 12 runs (118 far days / 10) and any other edit arrives within 15 minutes. A
# run's cost is the near pages plus a twelfth of the rest: it grows with the account, but a
# 5,000-appointment account stays within the poller's 60 a minute (docs/poller.md, bench/poll_cost.py).
# (It was yesterday to 14 days ahead every run: 200 pages a run for 5,000 appointments in those
# days, more than three times the budget, so a round took four minutes and every edit waited.)
NEAR_DAYS = (0, 2)
SLICE_DAYS = 10


def far_segments(
    today: date, *, past_days: int, future_days: int, near: tuple[int, int]
) -> tuple[Window | None, list[Window]]:
    start, end = today - timedelta(days=past_days), today + timedelta(days=future_days + 1)
    near_from, near_to = max(start, today - timedelta(days=near[0])), min(end, today + timedelta(days=near[1] + 1))
    if near_from >= near_to:
        return None, [(start, end)] if start < end else []
    segments = [(start, near_from), (near_to, end)]
    return (near_from, near_to), [(low, high) for low, high in segments if low < high]


def _check(past_days: int, future_days: int, near: tuple[int, int], slice_days: int) -> None:
    if min(past_days, future_days, *near) < 0 or slice_days < 1:
        raise ValueError("window days must not be negative and slices hold at least one day")


def plan_windows(
    now: date,
    cursor: int | None,
    *,
    past_days: int = 60,
    future_days: int = 60,
    near: tuple[int, int] = NEAR_DAYS,
    slice_days: int = SLICE_DAYS,
) -> tuple[list[Window], int]:
    """The windows of one round and the cursor of the next.

    ``now`` is today in the account's zone (a datetime is read as its date). The sync window is
    ``past_days`` back to ``future_days`` ahead, both days included; the near window ``near[0]``
    days back to ``near[1]`` ahead comes every round, and the rest (the far days, counted from the
    oldest) comes ``slice_days`` at a time from position ``cursor`` (None or out of range: 0). A
    slice crossing the near window comes as two windows. The cursor counts far days, so it keeps
    its meaning as days pass.
    """
    _check(past_days, future_days, near, slice_days)
    today = now.date() if isinstance(now, datetime) else now
    near_window, far = far_segments(today, past_days=past_days, future_days=future_days, near=near)
    windows = [near_window] if near_window else []
    total = sum((high - low).days for low, high in far)
    if total == 0:
        return windows, 0
    position = cursor if cursor is not None and 0 <= cursor < total else 0
    take = min(slice_days, total - position)  # the last slice may be short: a pass never wraps mid-slice
    skip = position
    for low, high in far:
        length = (high - low).days
        if skip >= length:
            skip -= length
            continue
        count = min(take, length - skip)
        windows.append((low + timedelta(days=skip), low + timedelta(days=skip + count)))
        take -= count
        skip = 0
        if take == 0:
            break
    following = position + min(slice_days, total - position)
    return windows, following if following < total else 0


def runs_per_pass(
    *, past_days: int = 60, future_days: int = 60, near: tuple[int, int] = NEAR_DAYS, slice_days: int = SLICE_DAYS
) -> int:
    """Rounds that cover the whole sync window, starting from cursor 0."""
    _check(past_days, future_days, near, slice_days)
    _, far = far_segments(date(2000, 1, 1), past_days=past_days, future_days=future_days, near=near)
    return max(1, math.ceil(sum((high - low).days for low, high in far) / slice_days))


@dataclass(frozen=True)
class Unit:
    """One window listing: account-wide (``tech`` None) or one tech's own (``mine=true``)."""

    tech: int | None
    window: Window


@dataclass
class RoundState:
    far_cursor: int  # where the next round's far slice starts
    units: list[Unit] = field(default_factory=list)
    unit: int = 0  # the next unit to list
    page: int = 1  # its next page
    seen: list[int] | None = field(default_factory=list)  # ids listed from it so far (None: too many)
    near_pages: int = 0  # pages the round's near listing took so far
    pass_runs: int = 1  # runs the pass this round belongs to has taken, this one included

    @property
    def complete(self) -> bool:
        return self.unit >= len(self.units)

    def to_json(self) -> str:
        units = [[unit.tech, unit.window[0].isoformat(), unit.window[1].isoformat()] for unit in self.units]
        data = {
            "far": self.far_cursor,
            "units": units,
            "unit": self.unit,
            "page": self.page,
            "seen": self.seen,
            "near_pages": self.near_pages,
            "pass_runs": self.pass_runs,
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> RoundState:
        """An unreadable row starts afresh rather than stopping every poll."""
        try:
            data = json.loads(text)
            units = [
                Unit(None if tech is None else int(tech), (date.fromisoformat(low), date.fromisoformat(high)))
                for tech, low, high in data["units"]
            ]
            seen = data.get("seen")
            return cls(
                far_cursor=int(data["far"]),
                units=units,
                unit=int(data["unit"]),
                page=max(1, int(data["page"])),
                seen=None if seen is None else [int(value) for value in seen],
                near_pages=int(data.get("near_pages", 0)),
                pass_runs=max(1, int(data.get("pass_runs", 1))),
            )
        except (KeyError, TypeError, ValueError):
            return cls(far_cursor=0)


def split_window(window: Window) -> tuple[Window, Window] | None:
    """A window of two days or more cut into two halves at a day; None for a single day."""
    start, end = window
    days = (end - start).days
    if days < 2:
        return None
    middle = start + timedelta(days=days // 2)
    return (start, middle), (middle, end)


def round_units(
    windows: Iterable[Window], mode: OwnershipMode, techs: Collection[int], tokened: Collection[int]
) -> list[Unit]:
    if not techs:
        return []  # nobody to keep a mirror for: spend nothing
    if mode is not OwnershipMode.TOKENS:
        return [Unit(None, window) for window in windows]
    return [Unit(tech, window) for window in windows for tech in sorted(techs) if tech in tokened]
