"""The soak's model (`bench/soak_model.py`) for the kinds beyond one tech's timed appointment:
occurrences of a series are told apart by their day, and a job of two techs that one tech left
must be gone from that tech's sides only."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bench.soak_model import OUTLOOK, SYNCRO, Item, Thing, Verdict, by_key, judge, occurrences
from sync.model import Appointment

ZONE = ZoneInfo("America/Los_Angeles")


def content(summary: str = "k1.2 r0", day: int = 10) -> Appointment:
    start = datetime(2026, 12, day, 9, tzinfo=ZONE)
    return Appointment(summary=summary, start=start, end=start.replace(hour=10))


def test_occurrences_of_a_series_are_keyed_by_their_day_and_singles_by_their_title() -> None:
    days = occurrences(content(), 3, ZONE)
    items = [Item(OUTLOOK, str(n), "k1.2 r0", c) for n, c in enumerate(days)] + [
        Item(OUTLOOK, "x", "[S] k1.3 r0", content("k1.3 r0"))
    ]
    found = by_key(items, {"k1.2"}, ZONE)
    assert sorted(found) == ["k1.2@2026-12-10", "k1.2@2026-12-11", "k1.2@2026-12-12", "k1.3"]
    assert [d.start.astimezone(ZONE).hour for d in days] == [9, 9, 9]


def test_a_job_one_tech_left_must_stay_whole_for_the_other_and_be_gone_for_them() -> None:
    job = Thing("k0.1", 1, SYNCRO, content("k0.1 r0"), techs=[1, 2])
    job.leave(1)
    assert job.tech == 2
    syncro, outlook = Item(SYNCRO, "7", "k0.1 r0", job.content), Item(OUTLOOK, "e", "[S] k0.1 r0", job.content)
    right = {1: {SYNCRO: {}, OUTLOOK: {}}, 2: {SYNCRO: {"k0.1": [syncro]}, OUTLOOK: {"k0.1": [outlook]}}}
    verdict = Verdict()
    judge([job], right, verdict)
    assert verdict.problems == []
    still = {**right, 1: {SYNCRO: {}, OUTLOOK: {"k0.1": [outlook]}}}
    verdict = Verdict()
    judge([job], still, verdict)
    assert verdict.unconverged_techs == {1}
