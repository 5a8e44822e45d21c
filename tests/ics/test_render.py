"""The feed's text, pure: every field, all-day and DST cases, escaping and folding, bad items,
SEQUENCE. Each feed is read back by two independent parsers, `icalendar` and Mozilla's
`ical.js` (the parser inside Thunderbird, run with node), and both must agree with Syncro's data."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from ics.render import FeedWindow, feed_window, render_feed, sequence_of
from sync.mapping import appointment_from_syncro

LA = ZoneInfo("America/Los_Angeles")
NOW = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
WINDOW = feed_window(NOW, days_back=60, days_ahead=60)
BASE = "https://sync.example.com"
ROOT = Path(__file__).resolve().parents[2]
DUMP = Path(__file__).with_name("icaljs_dump.mjs")


def appointment(appointment_id: int = 5560138523, **fields: Any) -> dict[str, Any]:
    """An appointment as Syncro returns it (account offset, milliseconds)."""
    return {
        "id": appointment_id,
        "summary": "Server swap",
        "description": "Bring the new disks",
        "location": "12 Main St",
        "start_at": "2026-03-10T09:00:00.000-07:00",
        "end_at": "2026-03-10T10:30:00.000-07:00",
        "updated_at": "2026-02-20T08:15:00.000-08:00",
        "all_day": False,
        **fields,
    }


def render(items: list[Any], *, zone: ZoneInfo = LA, window: FeedWindow = WINDOW, **kwargs: Any) -> bytes:
    return render_feed(items, zone=zone, calendar_name="Syncro: Ann", window=window, base_url=BASE, **kwargs)


def events_by_icalendar(feed: bytes) -> list[dict[str, Any]]:
    calendar = Calendar.from_ical(feed)
    found = []
    for event in calendar.walk("VEVENT"):
        start, end = event.decoded("dtstart"), event.decoded("dtend")
        all_day = not isinstance(start, datetime)
        found.append(
            {
                "uid": str(event["uid"]),
                "summary": str(event["summary"]),
                "description": str(event.get("description")) if "description" in event else None,
                "location": str(event.get("location")) if "location" in event else None,
                "all_day": all_day,
                "start": start.isoformat() if all_day else _utc(start),
                "end": end.isoformat() if all_day else _utc(end),
                "sequence": int(event["sequence"]),
                "status": str(event["status"]),
            }
        )
    return found


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def icaljs(feed: bytes) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "ical.js").is_dir():
        pytest.fail("node and the ical.js package (npm install) are needed for this test")
    done = subprocess.run([node, str(DUMP)], input=feed, capture_output=True, cwd=ROOT, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def both_parsers(feed: bytes) -> list[dict[str, Any]]:
    """The events as both parsers read them; fails unless they read the same thing."""
    ours = events_by_icalendar(feed)
    theirs = icaljs(feed)["events"]
    assert ours == theirs
    return ours


# --- the calendar ------------------------------------------------------------------------


def test_calendar_properties() -> None:
    calendar = Calendar.from_ical(render([appointment()]))
    assert str(calendar["prodid"]).startswith("-//")
    assert str(calendar["version"]) == "2.0"
    assert str(calendar["calscale"]) == "GREGORIAN"
    assert str(calendar["method"]) == "PUBLISH"
    assert str(calendar["name"]) == "Syncro: Ann" == str(calendar["x-wr-calname"])


def test_refresh_hint_is_a_duration() -> None:
    text = render([]).decode()
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT15M\r\n" in text
    assert "X-PUBLISHED-TTL:PT15M\r\n" in text


def test_an_empty_mirror_is_a_valid_empty_calendar() -> None:
    feed = render([])
    assert both_parsers(feed) == []
    assert icaljs(feed)["name"] == "Syncro: Ann"


# --- one event ---------------------------------------------------------------------------


def test_event_fields_follow_syncro() -> None:
    feed = render([appointment()])
    [event] = Calendar.from_ical(feed).walk("VEVENT")
    assert str(event["uid"]) == "syncro-appointment-5560138523@sync.example.com"
    assert event.decoded("dtstart") == datetime(2026, 3, 10, 16, 0, tzinfo=UTC)
    assert event.decoded("dtend") == datetime(2026, 3, 10, 17, 30, tzinfo=UTC)
    assert event.decoded("dtstamp") == datetime(2026, 2, 20, 16, 15, tzinfo=UTC)
    assert event.decoded("last-modified") == datetime(2026, 2, 20, 16, 15, tzinfo=UTC)
    assert str(event["summary"]) == "Server swap"
    assert str(event["description"]) == "Bring the new disks"
    assert str(event["location"]) == "12 Main St"
    assert str(event["status"]) == "CONFIRMED"
    assert int(event["sequence"]) == sequence_of(datetime(2026, 2, 20, 16, 15, tzinfo=UTC))
    # UTC on the wire: no VTIMEZONE for a client to get wrong.
    assert "DTSTART:20260310T160000Z\r\n" in feed.decode()
    assert "VTIMEZONE" not in feed.decode()


def test_utc_times_with_z_read_the_same_as_offset_times() -> None:
    offset = render([appointment()])
    zulu = render(
        [
            appointment(
                start_at="2026-03-10T16:00:00.000Z",
                end_at="2026-03-10T17:30:00.000Z",
                updated_at="2026-02-20T16:15:00.000Z",
            )
        ]
    )
    assert offset == zulu


def test_a_time_without_offset_is_in_the_account_zone() -> None:
    [event] = both_parsers(render([appointment(start_at="2026-03-10T09:00:00", end_at="2026-03-10T10:00:00")]))
    assert (event["start"], event["end"]) == ("2026-03-10T16:00:00.000Z", "2026-03-10T17:00:00.000Z")


def test_customer_and_ticket_join_the_description() -> None:
    item = appointment(
        description="Swap disks & test",
        customer={"business_name": "Acme, Inc.", "address": "1 Harbor Way", "city": "Seattle"},
        ticket={"number": "1042", "subject": "Disk failing"},
        location=None,
    )
    [event] = both_parsers(render([item]))
    # As in Outlook: the customer and ticket first, then the notes; the customer's address stands
    # in for the empty location.
    assert event["description"] == (
        "Customer: Acme, Inc.\nTicket #1042 Disk failing\nLocation: 1 Harbor Way, Seattle (customer's address)"
        "\nSwap disks & test"
    )
    assert event["location"] == "1 Harbor Way, Seattle"


def test_missing_optional_fields_are_left_out() -> None:
    item = appointment(summary=None, description=None, location=None, end_at=None, updated_at=None)
    text = render([item]).decode()
    assert "DESCRIPTION" not in text and "LOCATION" not in text and "LAST-MODIFIED" not in text
    [event] = both_parsers(text.encode())
    assert event["summary"] == "Appointment"
    assert event["start"] == event["end"] == "2026-03-10T16:00:00.000Z"
    assert event["sequence"] == 0


# --- time zones and all-day --------------------------------------------------------------


def test_appointment_across_the_spring_dst_change_in_los_angeles() -> None:
    # 2026-03-08 02:00 PST -> 03:00 PDT: 23:00 to 04:00 local is four real hours, not five.
    item = appointment(start_at="2026-03-07T23:00:00.000-08:00", end_at="2026-03-08T04:00:00.000-07:00")
    [event] = both_parsers(render([item]))
    assert (event["start"], event["end"]) == ("2026-03-08T07:00:00.000Z", "2026-03-08T11:00:00.000Z")


def test_appointment_across_the_autumn_dst_change_in_los_angeles() -> None:
    # 2026-11-01 02:00 PDT -> 01:00 PST: 00:30 to 03:30 local is four real hours.
    window = feed_window(datetime(2026, 10, 15, tzinfo=UTC), days_back=60, days_ahead=60)
    item = appointment(start_at="2026-11-01T00:30:00.000-07:00", end_at="2026-11-01T03:30:00.000-08:00")
    [event] = both_parsers(render([item], window=window))
    assert (event["start"], event["end"]) == ("2026-11-01T07:30:00.000Z", "2026-11-01T11:30:00.000Z")


def test_all_day_is_a_date_in_the_account_zone() -> None:
    # Midnight in Los Angeles is 07:00 UTC after the DST change; Syncro may write either form.
    for start, end in [
        ("2026-03-10T00:00:00.000-07:00", "2026-03-11T00:00:00.000-07:00"),
        ("2026-03-10T07:00:00.000Z", "2026-03-11T07:00:00.000Z"),
    ]:
        feed = render([appointment(all_day=True, start_at=start, end_at=end)])
        assert "DTSTART;VALUE=DATE:20260310\r\n" in feed.decode()
        [event] = both_parsers(feed)
        assert (event["all_day"], event["start"], event["end"]) == (True, "2026-03-10", "2026-03-11")


def test_all_day_in_a_zone_east_of_utc_keeps_its_day() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    item = appointment(all_day=True, start_at="2026-03-09T23:00:00.000Z", end_at="2026-03-10T23:00:00.000Z")
    [event] = both_parsers(render([item], zone=berlin))
    assert (event["start"], event["end"]) == ("2026-03-10", "2026-03-11")


def test_multi_day_all_day_stays_one_event() -> None:
    item = appointment(all_day=True, start_at="2026-03-07T00:00:00.000-08:00", end_at="2026-03-10T00:00:00.000-07:00")
    events = both_parsers(render([item]))
    assert [(e["start"], e["end"], e["all_day"]) for e in events] == [("2026-03-07", "2026-03-10", True)]


def test_all_day_ending_late_on_its_last_day_includes_that_day() -> None:
    item = appointment(all_day=True, start_at="2026-03-10T00:00:00.000-07:00", end_at="2026-03-12T23:59:00.000-07:00")
    [event] = both_parsers(render([item]))
    assert (event["start"], event["end"]) == ("2026-03-10", "2026-03-13")


def test_all_day_without_a_real_end_is_one_day() -> None:
    for end in (None, "2026-03-10T00:00:00.000-07:00"):
        [event] = both_parsers(
            render([appointment(all_day=True, start_at="2026-03-10T00:00:00.000-07:00", end_at=end)])
        )
        assert (event["start"], event["end"]) == ("2026-03-10", "2026-03-11")


def test_all_day_null_means_timed() -> None:
    [event] = both_parsers(render([appointment(all_day=None)]))
    assert event["all_day"] is False


# --- text --------------------------------------------------------------------------------

NASTY = 'Call back; ask "Bo", then: reboot\\restart\nsecond line\r\nthird, done;'


def test_commas_semicolons_backslashes_and_newlines_are_escaped_and_read_back() -> None:
    feed = render([appointment(summary=NASTY, description=NASTY, location="Suite 4; 12 Main St, Town")])
    text = feed.decode()
    # The title is one line, as Outlook's subject is (one reader for both: sync.mapping).
    assert 'SUMMARY:Call back\\; ask "Bo"\\, then: reboot\\\\restart second line' in text.replace("\r\n ", "")
    [event] = both_parsers(feed)
    assert event["summary"] == appointment_from_syncro(appointment(summary=NASTY), zone=LA).summary
    assert event["location"] == "Suite 4; 12 Main St, Town"


def test_long_lines_are_folded_at_75_octets_and_unfold_intact() -> None:
    summary = "Überprüfung der Server 🖥️ " * 12
    feed = render([appointment(summary=summary, description="x" * 500)])
    for line in feed.split(b"\r\n"):
        assert len(line) <= 75
        line.decode("utf-8")  # folding never splits a UTF-8 sequence
    [event] = both_parsers(feed)
    assert event["summary"] == shown_title(appointment(summary=summary))  # clipped as Outlook's subject is
    assert event["description"] == "x" * 500


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80), st.text(max_size=80))
def test_any_characters_at_all_give_a_valid_feed(summary: str, location: str) -> None:
    """Controls and lone surrogates (JSON can carry "\\ud800") are dropped or replaced, never a 500."""
    feed = render([appointment(summary=summary, location=location, description=summary + location)])
    feed.decode("utf-8")
    assert not any(byte < 0x20 and byte not in b"\t\r\n" for byte in feed)
    [event] = both_parsers(feed)
    assert event["summary"] == shown_title(appointment(summary=summary))


# --- bad items ---------------------------------------------------------------------------


def test_bad_items_are_skipped_and_the_rest_render() -> None:
    good = appointment(1)
    bad = [
        appointment(2, start_at=None),
        appointment(3, start_at=""),
        appointment(4, start_at="next tuesday"),
        appointment(5, end_at="2026-03-10T08:00:00.000-07:00"),  # ends before it starts
        appointment(6, start_at="9999-12-31T23:59:59.000-12:00"),
        {"summary": "no id", "start_at": "2026-03-10T09:00:00Z"},
        appointment(True),  # type: ignore[arg-type]
        "not an object",
        None,
        appointment(7, start_at=12345),
        appointment(8, all_day=True, end_at="9999-12-31T23:00:00.000Z"),  # a typed year: its days overflow
        appointment(9, all_day=True, start_at="0001-01-01T03:00:00Z", end_at=None),
    ]
    skipped: list[tuple[Any, str]] = []
    events = both_parsers(render([bad[0], good, *bad[1:]], skipped=skipped))
    assert [e["uid"] for e in events] == ["syncro-appointment-1@sync.example.com"]
    assert len(skipped) == len(bad)  # the year-9999 one overflows once moved to UTC
    assert all(reason for _, reason in skipped)


def test_a_broken_updated_at_costs_only_the_sequence() -> None:
    [event] = both_parsers(render([appointment(updated_at="yesterday")]))
    assert event["sequence"] == 0


# --- versions and the window -------------------------------------------------------------


def test_sequence_rises_on_every_change_and_uid_stays() -> None:
    times = ["2026-02-20T08:15:00.000-08:00", "2026-02-20T08:15:01.000-08:00", "2026-03-02T10:00:00.000Z"]
    seen = [both_parsers(render([appointment(updated_at=t, summary=f"v{i}")]))[0] for i, t in enumerate(times)]
    sequences = [event["sequence"] for event in seen]
    assert sequences == sorted(sequences) and len(set(sequences)) == 3
    assert len({event["uid"] for event in seen}) == 1
    assert all(0 < s < 2**31 for s in sequences)  # fits clients that keep SEQUENCE in 32 bits


def test_only_appointments_overlapping_the_window_are_shown() -> None:
    window = FeedWindow(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC))
    items = [
        appointment(1, start_at="2026-02-28T22:00:00Z", end_at="2026-03-01T01:00:00Z"),  # overlaps the start
        appointment(2, start_at="2026-02-27T22:00:00Z", end_at="2026-02-28T23:00:00Z"),  # before
        appointment(3, start_at="2026-03-30T23:00:00Z", end_at="2026-03-31T02:00:00Z"),  # overlaps the end
        appointment(4, start_at="2026-03-31T00:00:00Z", end_at="2026-03-31T01:00:00Z"),  # after
    ]
    uids = [e["uid"] for e in both_parsers(render(items, window=window))]
    assert uids == ["syncro-appointment-1@sync.example.com", "syncro-appointment-3@sync.example.com"]


def test_window_is_whole_days_so_the_feed_is_stable_within_a_day() -> None:
    morning = feed_window(datetime(2026, 3, 1, 0, 5, tzinfo=UTC), days_back=60, days_ahead=60)
    evening = feed_window(datetime(2026, 3, 1, 23, 55, tzinfo=UTC), days_back=60, days_ahead=60)
    assert morning == evening
    assert morning.start == datetime(2025, 12, 31, tzinfo=UTC)  # 60 days before 1 March
    assert morning.end - morning.start == timedelta(days=121)


def test_same_mirror_gives_same_bytes_in_any_order() -> None:
    items = [appointment(i, start_at=f"2026-03-{10 + i % 5:02d}T09:00:00Z", end_at=None) for i in range(1, 20)]
    assert render(items) == render(list(reversed(items)))


# --- any Syncro data: both parsers agree with it -----------------------------------------

_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"), max_size=120
) | st.sampled_from([NASTY, "a,b;c\\d", "line1\nline2", "  padded  "])


@st.composite
def syncro_appointments(draw: st.DrawFn) -> list[dict[str, Any]]:
    items = []
    for index in range(draw(st.integers(1, 6))):
        all_day = draw(st.booleans())
        local_start = datetime(2026, 1, 5) + timedelta(minutes=15 * draw(st.integers(0, 10_000)))
        if all_day:
            local_start = local_start.replace(hour=0, minute=0)
            length = timedelta(days=draw(st.integers(1, 4)))
        else:
            length = timedelta(minutes=15 * draw(st.integers(0, 40)))
        start = local_start.replace(tzinfo=LA)
        end = (local_start + length).replace(tzinfo=LA)
        as_utc = draw(st.booleans())

        def written(moment: datetime, *, as_utc: bool = as_utc) -> str:
            if as_utc:
                return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            return moment.isoformat(timespec="milliseconds")

        items.append(
            appointment(
                10**10 + index,
                summary=draw(_TEXT),
                description=draw(_TEXT),
                start_at=written(start),
                end_at=written(end),
                all_day=all_day,
            )
        )
    return items


def shown_title(item: dict[str, Any]) -> str:
    """The title Outlook's subject shows for ``item`` (one line, clipped, controls dropped; lone
    surrogates, which JSON can carry, replaced): the feed shows the same, read by the same function."""
    title = appointment_from_syncro(item, zone=LA).summary
    title = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in title).strip()
    return title or "Appointment"


def expected_from_syncro(item: dict[str, Any]) -> tuple[Any, ...]:
    """What any correct feed must say about ``item``, computed without the renderer."""
    start = datetime.fromisoformat(item["start_at"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(item["end_at"].replace("Z", "+00:00"))
    summary = shown_title(item)
    if item["all_day"]:
        first, after = start.astimezone(LA).date(), end.astimezone(LA).date()
        return (True, first.isoformat(), max(after, first + timedelta(days=1)).isoformat(), summary)
    return (False, _utc(start), _utc(end), summary)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(syncro_appointments())
def test_any_syncro_data_reads_back_the_same_in_both_parsers(items: list[dict[str, Any]]) -> None:
    window = FeedWindow(datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))
    events = both_parsers(render(items, window=window))
    by_uid = {e["uid"]: (e["all_day"], e["start"], e["end"], e["summary"]) for e in events}
    assert by_uid == {f"syncro-appointment-{i['id']}@sync.example.com": expected_from_syncro(i) for i in items}


def test_dates_in_expected_values_are_real_days() -> None:
    assert date.fromisoformat(expected_from_syncro(appointment(all_day=True))[1]) == date(2026, 3, 10)
