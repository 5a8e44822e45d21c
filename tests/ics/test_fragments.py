"""The served path (`ics.fragments.assemble`: event bytes from the instance's cache or the mirror
row, else icalendar) against a straightforward icalendar render: one `Calendar` holding one
`Event` per appointment, built with ``add`` and written with one ``to_ical``. Byte-identical for
any appointments, and both parsers read them the same."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Event, vDuration

from ics import fragments
from ics.fragments import FragmentCache, assemble, fragment_key
from ics.render import (
    PRODID,
    REFRESH_INTERVAL,
    SEQUENCE_EPOCH,
    BadAppointment,
    FeedWindow,
    read_appointment,
    render_feed,
    sequence_of,
)
from storage.mirror import MirrorEntry, _from_entity, _to_entity
from tests.ics.test_render import both_parsers

BASE = "https://sync.example.com"
NAME = "Syncro: Ann"
WINDOW = FeedWindow(datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
SEEN = datetime(2026, 3, 1, tzinfo=UTC)
LA = ZoneInfo("America/Los_Angeles")


def reference_feed(appointments: list[Any], *, zone: ZoneInfo, window: FeedWindow = WINDOW) -> bytes:
    """The feed the plain way: icalendar infers every value's type, folds and escapes at once."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("name", NAME)
    calendar.add("x-wr-calname", NAME)
    calendar.add("refresh-interval", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    # Not a registered property: icalendar would write a timedelta as "0:15:00" unless told.
    calendar.add("x-published-ttl", vDuration(REFRESH_INTERVAL))
    events = []
    for raw in appointments:
        try:
            event = read_appointment(raw, zone)
        except BadAppointment:
            continue
        if event.start < window.end and (event.end > window.start or event.start >= window.start):
            events.append(event)
    for event in sorted(events, key=lambda e: (e.start, e.end, e.appointment_id)):
        vevent = Event()
        vevent.add("uid", f"syncro-appointment-{event.appointment_id}@sync.example.com")
        vevent.add("dtstamp", event.updated_at or SEQUENCE_EPOCH)
        vevent.add("dtstart", event.start_day if event.all_day else event.start)
        vevent.add("dtend", event.end_day if event.all_day else event.end)
        if event.all_day:
            vevent.add("transp", "TRANSPARENT")
        vevent.add("summary", event.summary)
        if event.description:
            vevent.add("description", event.description)
        if event.location:
            vevent.add("location", event.location)
        if event.updated_at is not None:
            vevent.add("last-modified", event.updated_at)
        vevent.add("sequence", sequence_of(event.updated_at))
        vevent.add("status", "CONFIRMED")
        calendar.add_component(vevent)
    return calendar.to_ical()


def entries_of(appointments: list[Any], tech: int = 7) -> list[MirrorEntry]:
    return [
        MirrorEntry(tech, index, str(raw.get("updated_at")) if isinstance(raw, dict) else "", "h", raw, SEEN)
        for index, raw in enumerate(appointments)
    ]


def served(entries: list[MirrorEntry], *, zone: ZoneInfo, cache: FragmentCache) -> fragments.Assembled:
    return assemble(entries, zone=zone, calendar_name=NAME, window=WINDOW, base_url=BASE, cache=cache)


def as_stored(made: fragments.Assembled) -> list[MirrorEntry]:
    """The rows after the shell stored each fresh fragment, read back as the mirror returns them."""
    stored = [
        dataclasses.replace(entry, feed_fragment=fragment, feed_fragment_key=key) for entry, key, fragment in made.fresh
    ]
    return [_from_entity(_to_entity(entry), f'W/"{n}"') for n, entry in enumerate(stored)]


# --- any appointments --------------------------------------------------------------------

_PLAIN = st.characters(blacklist_categories=("Cs", "Cc"))
_TEXT = st.one_of(
    st.text(_PLAIN, max_size=60),
    st.text(st.sampled_from(list(",;:\\\n\r\t\"'<>&é€🖥️中 aZ\x00\x0b\x1b\x7f\ud800")), max_size=200),
    st.text(_PLAIN, min_size=70, max_size=400),  # folded lines, multi-byte characters at the fold
    st.sampled_from(["a,b;c\\d", "line1\nline2\r\nline3", "<p>HTML &amp; text<br>next</p>", "  padded  ", ""]),
)
# DST changes in both directions, and zones either side of UTC (Lord Howe's changes by 30 minutes).
_ZONES = st.sampled_from(["America/Los_Angeles", "Europe/Berlin", "Australia/Lord_Howe", "UTC"]).map(ZoneInfo)
_DST_DAYS = [datetime(2026, 3, 8), datetime(2026, 11, 1), datetime(2026, 3, 29), datetime(2026, 4, 5)]


@st.composite
def appointment_lists(draw: st.DrawFn, zone: ZoneInfo) -> list[dict[str, Any]]:
    items = []
    for index in range(draw(st.integers(0, 8))):
        near = draw(st.sampled_from(_DST_DAYS))
        local_start = near + timedelta(minutes=15 * draw(st.integers(-200, 200)))
        all_day = draw(st.booleans())
        if all_day:
            local_start = local_start.replace(hour=0, minute=0)
        length = (
            timedelta(days=draw(st.integers(1, 3))) if all_day else timedelta(minutes=15 * draw(st.integers(0, 60)))
        )
        start, end = local_start.replace(tzinfo=zone), (local_start + length).replace(tzinfo=zone)
        form = draw(st.sampled_from(["offset", "utc", "naive"]))

        def written(moment: datetime, form: str = form) -> str:
            if form == "utc":
                return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            text = moment.isoformat(timespec="milliseconds")
            return text[:23] if form == "naive" else text

        items.append(
            {
                "id": 10**10 + index,
                "summary": draw(_TEXT),
                "description": draw(_TEXT),
                "location": draw(_TEXT),
                "start_at": written(start),
                "end_at": draw(st.sampled_from([written(end), None])),
                "updated_at": draw(
                    st.sampled_from(["2026-02-20T08:15:00.000-08:00", "2026-03-08T10:00:01Z", None, "garbage"])
                ),
                "all_day": all_day,
                "customer": draw(st.sampled_from([None, {"business_name": "Acme, Inc."}, {"fullname": "Bo; Li"}])),
                "ticket": draw(st.sampled_from([None, {"number": "1042", "subject": "Disk failing; again"}])),
            }
        )
    return items


@st.composite
def cases(draw: st.DrawFn) -> tuple[ZoneInfo, list[dict[str, Any]]]:
    zone = draw(_ZONES)
    return zone, draw(appointment_lists(zone))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_the_served_path_is_byte_identical_to_a_plain_icalendar_render(case: tuple[ZoneInfo, list[Any]]) -> None:
    zone, appointments = case
    expected = reference_feed(appointments, zone=zone)
    assert render_feed(appointments, zone=zone, calendar_name=NAME, window=WINDOW, base_url=BASE) == expected
    entries = entries_of(appointments)
    cache = FragmentCache()
    first = served(entries, zone=zone, cache=cache)  # every event through icalendar
    assert first.body == expected
    assert served(entries, zone=zone, cache=cache).body == expected  # every event from the cache
    rows = as_stored(first)
    from_rows = served(rows, zone=zone, cache=FragmentCache())  # a fresh instance: every event from its row
    assert from_rows.body == expected
    assert from_rows.rendered == 0 and from_rows.fresh == []


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_both_parsers_read_the_served_feed_as_the_plain_one(case: tuple[ZoneInfo, list[Any]]) -> None:
    zone, appointments = case
    made = served(entries_of(appointments), zone=zone, cache=FragmentCache())
    from_rows = served(as_stored(made), zone=zone, cache=FragmentCache()).body
    assert both_parsers(from_rows) == both_parsers(reference_feed(appointments, zone=zone))


# --- when stored bytes may and may not be used -------------------------------------------


def appointment(**fields: Any) -> dict[str, Any]:
    return {
        "id": 5560138523,
        "summary": "Server swap",
        "start_at": "2026-03-10T09:00:00.000-07:00",
        "end_at": "2026-03-10T10:30:00.000-07:00",
        "updated_at": "2026-02-20T08:15:00.000-08:00",
        "all_day": False,
        **fields,
    }


def test_a_stored_fragment_of_an_older_version_is_not_served() -> None:
    [old] = as_stored(served(entries_of([appointment()]), zone=LA, cache=FragmentCache()))
    changed = dataclasses.replace(old, appointment=appointment(summary="Moved"))  # the poller's next write
    made = served([changed], zone=LA, cache=FragmentCache())
    assert b"SUMMARY:Moved" in made.body and b"Server swap" not in made.body
    assert made.rendered == 1 and [entry for entry, _, _ in made.fresh] == [changed]


def test_a_stored_fragment_for_another_zone_or_host_is_not_served() -> None:
    all_day = appointment(all_day=True, start_at="2026-03-10T07:00:00.000Z", end_at="2026-03-11T07:00:00.000Z")
    [row] = as_stored(served(entries_of([all_day]), zone=LA, cache=FragmentCache()))
    tokyo = served([row], zone=ZoneInfo("Asia/Tokyo"), cache=FragmentCache())
    assert tokyo.rendered == 1 and b"DTSTART;VALUE=DATE:20260310" in tokyo.body
    other_host = assemble(
        [row], zone=LA, calendar_name=NAME, window=WINDOW, base_url="https://b.example", cache=FragmentCache()
    )
    assert other_host.rendered == 1 and b"@b.example" in other_host.body


def test_the_key_names_everything_the_bytes_depend_on(monkeypatch: pytest.MonkeyPatch) -> None:
    base = fragment_key("digest", LA, "a.example")
    others = {
        fragment_key("digest2", LA, "a.example"),
        fragment_key("digest", ZoneInfo("UTC"), "a.example"),
        fragment_key("digest", LA, "b.example"),
    }
    monkeypatch.setattr(fragments, "FRAGMENT_FORMAT", fragments.FRAGMENT_FORMAT + 1)
    others.add(fragment_key("digest", LA, "a.example"))
    monkeypatch.setattr(fragments.icalendar, "__version__", "0.0.0")
    others.add(fragment_key("digest", LA, "a.example"))
    assert base not in others and len(others) == 5


def test_the_digest_follows_the_appointment_through_storage_and_replace() -> None:
    entry = entries_of([appointment()])[0]
    read_back = _from_entity(_to_entity(entry), "W/1")
    assert read_back.appointment_digest == entry.appointment_digest  # the bytes read give the same digest
    assert dataclasses.replace(read_back, appointment=appointment(location="x")).appointment_digest != (
        entry.appointment_digest
    )


def test_bad_and_out_of_window_appointments_are_skipped_not_stored() -> None:
    items = [
        appointment(id=1),
        appointment(id=2, start_at="next week"),
        appointment(id=3, start_at="2020-01-01T00:00Z", end_at=None),
        "junk",
    ]
    made = served(entries_of(items), zone=LA, cache=FragmentCache())
    assert [entry.appointment["id"] for entry, _, _ in made.fresh] == [1]
    assert [appointment_id for appointment_id, _ in made.skipped] == [2, None]


# --- the instance's cache ----------------------------------------------------------------


def test_the_cache_drops_the_least_recently_used_past_its_byte_limit() -> None:
    cache = FragmentCache(limit_bytes=10)
    cache.put("a", b"aaaa")
    cache.put("b", b"bbbb")
    assert cache.get("a") == b"aaaa"  # now b is the least recently used
    cache.put("c", b"cccc")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"aaaa", None, b"cccc")
    assert cache.size == 8 and len(cache) == 2
    cache.put("a", b"a")  # replacing counts the new size only
    assert cache.size == 5
    cache.put("huge", b"x" * 11)  # larger than the whole cache: not kept, nothing dropped
    assert cache.get("huge") is None and len(cache) == 2
    cache.clear()
    assert cache.size == 0 and cache.get("a") is None


def test_a_writer_may_store_the_fragment_with_the_row_and_the_feed_uses_it() -> None:
    from ics.fragments import with_fragment

    [entry] = entries_of([appointment(summary="Written by the poller")])
    stamped = with_fragment(entry, zone=LA, base_url=BASE)
    made = served([_from_entity(_to_entity(stamped), 'W/"1"')], zone=LA, cache=FragmentCache())
    assert made.rendered == 0 and made.fresh == []
    assert made.body == reference_feed([entry.appointment], zone=LA)
    [bad] = entries_of([appointment(start_at="soon")])
    assert with_fragment(bad, zone=LA, base_url=BASE) is bad
