"""sync/mapping.py and sync/html_text.py: examples for every mapping rule, and Hypothesis
properties (round trips are stable, text survives HTML, tags never stack)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sync.html_text import html_to_text, text_to_html
from sync.mapping import (
    CONTEXT_SEPARATOR,
    SUMMARY_LIMIT,
    SyncroContext,
    UnmappableItem,
    appointment_from_graph,
    appointment_from_syncro,
    graph_fields,
    normalise,
    strip_tags,
    syncro_fields,
    tag_intact,
)
from sync.model import Appointment, Side
from sync.zones import WINDOWS_ZONES, graph_zone_name, resolve_graph_zone

LA = ZoneInfo("America/Los_Angeles")
BERLIN = ZoneInfo("Europe/Berlin")
WEB = "https://acme.syncromsp.com"

# Exchange's document around a body written as HTML (as the Graph simulator and Exchange store it).
HEAD = '<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n</head>\r\n'


def exchange_wrap(fragment: str) -> str:
    return f"{HEAD}<body>\r\n{fragment}\r\n</body>\r\n</html>\r\n" if fragment else ""


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def syncro_raw(**fields: Any) -> dict[str, Any]:
    base = {
        "id": 5560138523,
        "summary": "Fix printer",
        "description": "Bring toner",
        "start_at": "2026-03-10T09:00:00.000-07:00",
        "end_at": "2026-03-10T10:00:00.000-07:00",
        "all_day": None,
        "location": "1 Main St",
        "do_not_email": "1",
    }
    return {**base, **fields}


def graph_raw(**fields: Any) -> dict[str, Any]:
    base = {
        "id": "AAMk-1",
        "subject": "[S] Fix printer",
        "body": {"contentType": "html", "content": exchange_wrap(text_to_html("Bring toner"))},
        "start": {"dateTime": "2026-03-10T16:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-10T17:00:00.0000000", "timeZone": "UTC"},
        "isAllDay": False,
        "location": {"displayName": "1 Main St"},
    }
    return {**base, **fields}


def echo(fields: dict[str, Any]) -> dict[str, Any]:
    """What Graph returns for an event written with ``fields``: the body wrapped, 7-digit times."""
    event = {**fields, "id": "AAMk-echo"}
    event["body"] = {"contentType": "html", "content": exchange_wrap(fields["body"]["content"])}
    for key in ("start", "end"):
        event[key] = {**fields[key], "dateTime": fields[key]["dateTime"] + ".0000000"}
    return event


PRINTER = Appointment(
    summary="Fix printer",
    start=utc(2026, 3, 10, 16),
    end=utc(2026, 3, 10, 17),
    description="Bring toner",
    location="1 Main St",
)
CONTEXT = SyncroContext(
    customer_name="Acme Corp",
    ticket_number="1234",
    ticket_subject="Printer broken",
    customer_address="1 Main St, Springfield, OR 97000",
    ticket_url=f"{WEB}/tickets/55",
)


# -- tags ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "title",
    ["[S] Visit", "[s] Visit", "[S]Visit", "[S]  Visit", "[S] [S] Visit", " [ o ] [S]\tVisit", "[O][O][O] Visit"],
)
def test_leading_tags_are_stripped_in_any_number_case_and_spacing(title: str) -> None:
    assert strip_tags(title) == "Visit"


def test_a_tag_that_is_not_leading_is_content() -> None:
    assert strip_tags("Visit [S]") == "Visit [S]"
    assert strip_tags("[Sx] Visit") == "[Sx] Visit"


def test_syncro_born_items_get_exactly_one_s_tag_in_outlook_and_none_in_syncro() -> None:
    stacked = dataclasses.replace(PRINTER, summary="[S] [s]  Fix printer")
    assert graph_fields(stacked, zone=LA, origin=Side.SYNCRO, extras=None)["subject"] == "[S] Fix printer"
    fields = syncro_fields(stacked, zone=LA, origin=Side.SYNCRO, tech_syncro_user_id=None)
    assert fields["summary"] == "Fix printer"


def test_outlook_born_items_get_exactly_one_o_tag_in_syncro_and_none_in_outlook() -> None:
    stacked = dataclasses.replace(PRINTER, summary="[O][O] Fix printer")
    assert syncro_fields(stacked, zone=LA, origin=Side.OUTLOOK, tech_syncro_user_id=7)["summary"] == "[O] Fix printer"
    assert graph_fields(stacked, zone=LA, origin=Side.OUTLOOK, extras=None)["subject"] == "Fix printer"


def test_tags_are_stripped_before_comparing_both_sides() -> None:
    from_syncro = appointment_from_syncro(syncro_raw(summary="[O] Fix printer"), zone=LA)
    from_graph = appointment_from_graph(graph_raw(subject="[S] Fix printer"), zone=LA)
    assert from_syncro.summary == from_graph.summary == "Fix printer"


def test_a_tag_the_tech_deleted_is_not_an_edit_and_the_next_write_restores_it() -> None:
    untagged = appointment_from_graph(graph_raw(subject="Fix printer"), zone=LA)
    tagged = appointment_from_graph(graph_raw(subject="[S] Fix printer"), zone=LA)
    assert untagged.content_hash() == tagged.content_hash()
    assert not tag_intact("Fix printer", Side.SYNCRO)
    assert graph_fields(untagged, zone=LA, origin=Side.SYNCRO, extras=None)["subject"] == "[S] Fix printer"


def test_tag_intact_wants_exactly_one_canonical_tag() -> None:
    assert tag_intact("[S] Visit", Side.SYNCRO)
    assert tag_intact("[O] Visit", Side.OUTLOOK)
    for title in ("Visit", "[S] [S] Visit", "[s] Visit", "[S]Visit", "[S]  Visit", "[O] Visit"):
        assert not tag_intact(title, Side.SYNCRO), title


def test_an_empty_title_goes_to_syncro_as_no_title_since_syncro_refuses_a_blank_summary() -> None:
    blank = dataclasses.replace(PRINTER, summary="[S] ")
    assert syncro_fields(blank, zone=LA, origin=Side.SYNCRO, tech_syncro_user_id=None)["summary"] == "(No title)"
    assert syncro_fields(blank, zone=LA, origin=Side.OUTLOOK, tech_syncro_user_id=7)["summary"] == "[O] "


# -- Syncro --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-03-10T16:00:00.000Z", "2026-03-10T17:00:00.000Z"),
        ("2026-03-10T09:00:00.000-07:00", "2026-03-10T10:00:00.000-07:00"),
        ("2026-03-10T17:00:00.000+01:00", "2026-03-10T18:00:00+0100"),
        ("2026-03-10T09:00:00", "2026-03-10 10:00"),  # no offset: the account's zone, as Syncro reads it
        ("2026-03-10T16:00:00.123456789Z", "2026-03-10T17:00:00.999Z"),  # sub-second noise dropped
    ],
)
def test_syncro_times_in_any_offset_read_as_the_same_instant(start: str, end: str) -> None:
    appointment = appointment_from_syncro(syncro_raw(start_at=start, end_at=end), zone=LA)
    assert (appointment.start, appointment.end) == (utc(2026, 3, 10, 16), utc(2026, 3, 10, 17))


def test_syncro_wrappers_of_the_api_all_read() -> None:
    flat = appointment_from_syncro(syncro_raw(), zone=LA)
    assert appointment_from_syncro({"appointment": syncro_raw()}, zone=LA) == flat
    assert flat == PRINTER


def test_syncro_fields_are_the_post_body_in_the_account_offset() -> None:
    fields = syncro_fields(
        PRINTER, zone=LA, origin=Side.OUTLOOK, tech_syncro_user_id=1300001, appointment_type_id=3, customer_id=9
    )
    assert fields == {
        "summary": "[O] Fix printer",
        "description": "Bring toner",
        "location": "1 Main St",
        "start_at": "2026-03-10T09:00:00-07:00",
        "end_at": "2026-03-10T10:00:00-07:00",
        "all_day": False,
        "do_not_email": True,
        "user_id": 1300001,
        "user_ids": [1300001],
        "appointment_type_id": 3,
        "customer_id": 9,
    }


def test_syncro_fields_without_a_tech_leave_the_assignment_alone() -> None:
    fields = syncro_fields(PRINTER, zone=LA, origin=Side.SYNCRO, tech_syncro_user_id=None)
    assert "user_id" not in fields and "user_ids" not in fields
    assert fields["do_not_email"] is True and fields["all_day"] is False


@pytest.mark.parametrize(
    "end_at",
    ["2026-03-11T00:00:00.000-07:00", "2026-03-10T23:59:00.000-07:00", "2026-03-10T23:59:59-07:00", None],
)
def test_syncro_all_day_single_day(end_at: str | None) -> None:
    raw = syncro_raw(all_day=True, start_at="2026-03-10T00:00:00.000-07:00", end_at=end_at, duration=0)
    appointment = appointment_from_syncro(raw, zone=LA)
    assert appointment.all_day
    assert (appointment.start, appointment.end) == (utc(2026, 3, 10, 7), utc(2026, 3, 11, 7))
    fields = syncro_fields(appointment, zone=LA, origin=Side.SYNCRO, tech_syncro_user_id=None)
    assert (fields["start_at"], fields["end_at"]) == ("2026-03-10T00:00:00-07:00", "2026-03-11T00:00:00-07:00")
    assert fields["all_day"] is True


def test_syncro_all_day_flags_as_syncro_sends_them() -> None:
    for flag, expected in ((None, False), ("1", True), ("0", False), (True, True), ("true", True)):
        assert appointment_from_syncro(syncro_raw(all_day=flag), zone=LA).all_day is expected


def test_multi_day_all_day_across_dst_stays_one_appointment_in_los_angeles() -> None:
    # US DST starts Sunday 2026-03-08: Saturday to Monday, three days, one appointment.
    raw = syncro_raw(all_day=True, start_at="2026-03-07T00:00:00.000-08:00", end_at="2026-03-09T23:59:00.000-07:00")
    appointment = appointment_from_syncro(raw, zone=LA)
    assert (appointment.start, appointment.end) == (utc(2026, 3, 7, 8), utc(2026, 3, 10, 7))
    fields = syncro_fields(appointment, zone=LA, origin=Side.SYNCRO, tech_syncro_user_id=None)
    assert (fields["start_at"], fields["end_at"]) == ("2026-03-07T00:00:00-08:00", "2026-03-10T00:00:00-07:00")
    event = graph_fields(appointment, zone=LA, origin=Side.SYNCRO, extras=None)
    assert event["isAllDay"] is True
    assert event["start"] == {"dateTime": "2026-03-07T00:00:00", "timeZone": "Pacific Standard Time"}
    assert event["end"] == {"dateTime": "2026-03-10T00:00:00", "timeZone": "Pacific Standard Time"}
    # Graph reads all-day events as floating dates, whatever zone it labels them with.
    for zone_name in ("Pacific Standard Time", "UTC", "Tokyo Standard Time"):
        read = echo({**event, "start": {**event["start"], "timeZone": zone_name}})
        read["end"] = {"dateTime": "2026-03-10T00:00:00.0000000", "timeZone": zone_name}
        assert appointment_from_graph(read, zone=LA) == appointment


def test_all_day_in_autumn_dst_and_a_zone_without_a_windows_name_of_its_own() -> None:
    # US DST ends Sunday 2026-11-01; America/Vancouver keeps Los Angeles' offsets all year.
    vancouver = ZoneInfo("America/Vancouver")
    appointment = Appointment(summary="Off", start=utc(2026, 10, 31, 7), end=utc(2026, 11, 2, 8), all_day=True)
    event = graph_fields(appointment, zone=vancouver, origin=Side.OUTLOOK, extras=None)
    assert event["start"] == {"dateTime": "2026-10-31T00:00:00", "timeZone": "Pacific Standard Time"}
    assert event["end"] == {"dateTime": "2026-11-02T00:00:00", "timeZone": "Pacific Standard Time"}
    assert appointment_from_graph(echo(event), zone=vancouver) == appointment


def test_an_all_day_appointment_lasts_at_least_a_day() -> None:
    zero = Appointment(summary="Off", start=utc(2026, 3, 10, 7), end=utc(2026, 3, 10, 7), all_day=True)
    assert normalise(zero, zone=LA).end == utc(2026, 3, 11, 7)


def test_syncro_description_rewrite_is_reduced_to_the_notes() -> None:
    rewritten = (
        "Notes:\n Bring toner\nand paper\n\n Contact: \nWalkin Customer \n\n Details: \n"
        "Ticket #1234: Printer broken\n Status: New\n https://acme.syncromsp.com/tickets/55\n\n"
        "Customer Information: \n Walkin Customer\n  Phone: 123 - walkin@somedomain.com"
    )
    appointment = appointment_from_syncro(syncro_raw(description=rewritten), zone=LA)
    assert appointment.description == "Bring toner\nand paper"
    only_details = "Notes:\n \n\n Details: \nTicket #1234: Printer broken"
    assert appointment_from_syncro(syncro_raw(description=only_details), zone=LA).description == ""


# -- Graph ---------------------------------------------------------------------------------------


def test_graph_fields_are_the_post_body_in_utc() -> None:
    assert graph_fields(PRINTER, zone=LA, origin=Side.SYNCRO, extras=None) == {
        "subject": "[S] Fix printer",
        "body": {"contentType": "html", "content": '<div style="white-space:pre-wrap">Bring toner</div>'},
        "isAllDay": False,
        "location": {"displayName": "1 Main St"},
        "start": {"dateTime": "2026-03-10T16:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-10T17:00:00", "timeZone": "UTC"},
    }


@pytest.mark.parametrize(
    ("start", "end", "zone_name"),
    [
        ("2026-03-10T16:00:00.0000000", "2026-03-10T17:00:00.0000000", "UTC"),
        ("2026-03-10T16:00:00.0000000", "2026-03-10T17:00:00.0000000", "tzone://Microsoft/Utc"),
        ("2026-03-10T09:00:00.0000000", "2026-03-10T10:00:00.0000000", "Pacific Standard Time"),
        ("2026-03-10T09:00:00", "2026-03-10T10:00:00", "America/Los_Angeles"),
        ("2026-03-10T17:00:00.0000000", "2026-03-10T18:00:00.0000000", "W. Europe Standard Time"),
        ("2026-03-10T17:00:00.0000000", "2026-03-10T18:00:00.0000000", "Europe/Berlin"),
        ("2026-03-10T21:30:00.0000000", "2026-03-10T22:30:00.0000000", "India Standard Time"),
        ("2026-03-10T16:00:00.0000001", "2026-03-10T17:00:00.9999999", "utc"),
    ],
)
def test_graph_times_read_in_any_zone_with_seven_digit_seconds(start: str, end: str, zone_name: str) -> None:
    raw = graph_raw(start={"dateTime": start, "timeZone": zone_name}, end={"dateTime": end, "timeZone": zone_name})
    appointment = appointment_from_graph(raw, zone=LA)
    assert (appointment.start, appointment.end) == (utc(2026, 3, 10, 16), utc(2026, 3, 10, 17))


def test_every_windows_zone_in_the_table_resolves() -> None:
    for name in WINDOWS_ZONES:
        assert resolve_graph_zone(name) is not None
    assert graph_zone_name(LA) == "Pacific Standard Time"
    assert graph_zone_name(BERLIN) == "W. Europe Standard Time"
    assert graph_zone_name(ZoneInfo("Asia/Calcutta")) == "India Standard Time"
    assert graph_zone_name(ZoneInfo("America/Toronto")) == "Eastern Standard Time"
    assert graph_zone_name(ZoneInfo("Australia/Melbourne")) == "AUS Eastern Standard Time"


@pytest.mark.parametrize("zone_name", ["Customized Time Zone", "tzone://Microsoft/Custom", "", None, "Mars/Olympus"])
def test_an_unknown_graph_zone_is_unmappable_rather_than_guessed(zone_name: str | None) -> None:
    raw = graph_raw(start={"dateTime": "2026-03-10T09:00:00.0000000", "timeZone": zone_name})
    with pytest.raises(UnmappableItem, match="zone"):
        appointment_from_graph(raw, zone=LA)


def test_graph_body_as_text_is_taken_as_is() -> None:
    raw = graph_raw(body={"contentType": "text", "content": "a <b>\r\nc"})
    assert appointment_from_graph(raw, zone=LA).description == "a <b>\nc"


def test_graph_body_wrapped_by_exchange_reads_as_the_text_written() -> None:
    fields = graph_fields(
        dataclasses.replace(PRINTER, description="Line 1\n\n  indented & <tagged>\nhttps://example.com/a?b=1&c=2"),
        zone=LA,
        origin=Side.SYNCRO,
        extras=None,
    )
    assert "<br>" in fields["body"]["content"]
    assert '<a href="https://example.com/a?b=1&amp;c=2">' in fields["body"]["content"]
    assert appointment_from_graph(echo(fields), zone=LA).description == (
        "Line 1\n\n  indented & <tagged>\nhttps://example.com/a?b=1&c=2"
    )


# -- HTML -> text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        (exchange_wrap("<p>Hello</p>"), "Hello"),
        (f"{HEAD}<body><style>p {{ color: red }}</style>Hi<!-- a comment --></body></html>", "Hi"),
        ("a<br>b<br/>c</br>d", "a\nb\nc\nd"),
        ("<p>one</p><p>two</p><div>three</div><div><div>four</div></div>", "one\ntwo\nthree\nfour"),
        ("<p class=MsoNormal>Hello\r\n   world</p><p>&nbsp;</p><p>after</p>", "Hello world\n\nafter"),
        ('Call <a href="https://x.example/t/1">the ticket</a> now', "Call the ticket (https://x.example/t/1) now"),
        ('<a href="https://x.example/t/1">https://x.example/t/1</a>', "https://x.example/t/1"),
        ('<a href="https://x.example/t/1"></a>', "https://x.example/t/1"),
        ('<a href="mailto:a@b.example">a@b.example</a>', "a@b.example"),
        ("&amp; &lt;x&gt; &quot;q&quot; &#39;s &eacute; &#x1F600;", '& <x> "q" \'s é 😀'),
        ("<pre>  keep\n   this</pre>", "  keep\n   this"),
        ("<ul><li>one</li><li>two</li></ul>", "one\ntwo"),
        ("", ""),
    ],
)
def test_html_to_text(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


def test_text_to_html_escapes_and_keeps_links() -> None:
    markup = text_to_html('5 < 6 & "x"\nsee https://acme.syncromsp.com/tickets/55.')
    assert '5 &lt; 6 &amp; "x"<br>see ' in markup
    assert '<a href="https://acme.syncromsp.com/tickets/55">https://acme.syncromsp.com/tickets/55</a>.' in markup
    assert text_to_html("") == ""


# -- Syncro context ------------------------------------------------------------------------------


def syncro_with_ticket() -> dict[str, Any]:
    return syncro_raw(
        ticket_id=55,
        ticket={"id": 55, "number": 1234, "subject": "Printer broken", "status": "New"},
        customer={
            "id": 9,
            "business_then_name": "Acme Corp",
            "fullname": "Wile Coyote",
            "address": "1 Main St",
            "address_2": None,
            "city": "Springfield",
            "state": "OR",
            "zip": "97000",
        },
    )


def test_syncro_context_from_a_syncro_appointment() -> None:
    assert SyncroContext.from_syncro({"appointment": syncro_with_ticket()}, syncro_web_url=WEB + "/") == CONTEXT
    assert SyncroContext.from_syncro(syncro_raw(ticket=None, customer=None), syncro_web_url=WEB) is None


def test_syncro_born_event_shows_the_context_header_and_reads_back_without_it() -> None:
    fields = graph_fields(PRINTER, zone=LA, origin=Side.SYNCRO, extras=CONTEXT)
    text = html_to_text(fields["body"]["content"])
    assert text == (
        "Customer: Acme Corp\nTicket #1234 Printer broken\nLink: https://acme.syncromsp.com/tickets/55\n"
        f"{CONTEXT_SEPARATOR}\nBring toner"
    )
    assert f'<a href="{WEB}/tickets/55">' in fields["body"]["content"]
    assert fields["location"] == {"displayName": "1 Main St"}  # the appointment's own location wins
    read = appointment_from_graph(echo(fields), zone=LA)
    assert read == PRINTER
    assert syncro_fields(read, zone=LA, origin=Side.SYNCRO, tech_syncro_user_id=None)["description"] == "Bring toner"


def test_customer_address_fills_an_empty_location_and_does_not_sync_back() -> None:
    nowhere = dataclasses.replace(PRINTER, location="", description="")
    fields = graph_fields(nowhere, zone=LA, origin=Side.SYNCRO, extras=CONTEXT)
    assert fields["location"] == {"displayName": "1 Main St, Springfield, OR 97000"}
    assert appointment_from_graph(echo(fields), zone=LA) == nowhere
    # A location the tech typed over it in Outlook is theirs, and syncs.
    moved = echo({**fields, "location": {"displayName": "Branch office"}})
    assert appointment_from_graph(moved, zone=LA).location == "Branch office"


def test_the_context_header_never_stacks() -> None:
    once = graph_fields(PRINTER, zone=LA, origin=Side.SYNCRO, extras=CONTEXT)
    # Even when an appointment arrives still holding a header (e.g. pasted into Syncro), one is written.
    body = html_to_text(once["body"]["content"])
    twice = graph_fields(dataclasses.replace(PRINTER, description=body), zone=LA, origin=Side.SYNCRO, extras=CONTEXT)
    assert twice == once
    doubled = graph_raw(body={"contentType": "text", "content": f"{body}\n{body}"})
    assert appointment_from_graph(doubled, zone=LA).description == "Bring toner\nBring toner"


def test_notes_typed_above_the_header_are_kept() -> None:
    body = f"Call first\nCustomer: Acme Corp\n{CONTEXT_SEPARATOR}\nBring toner"
    raw = graph_raw(body={"contentType": "text", "content": body})
    assert appointment_from_graph(raw, zone=LA).description == "Call first\nBring toner"


def test_outlook_born_items_and_items_without_context_get_no_header() -> None:
    for origin, extras in ((Side.OUTLOOK, CONTEXT), (Side.SYNCRO, None), (Side.SYNCRO, SyncroContext())):
        fields = graph_fields(PRINTER, zone=LA, origin=origin, extras=extras)
        assert html_to_text(fields["body"]["content"]) == "Bring toner"


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ([], "must be an object"),
        ({"appointments": []}, "no start_at"),
        ({"appointment": {"summary": "x"}}, "no start_at"),
        (syncro_raw(start_at=None), "start_at is missing"),
        (syncro_raw(start_at=5), "start_at is not a text"),
        (syncro_raw(start_at="tomorrow"), "not an ISO 8601 time"),
        (syncro_raw(start_at="2026-02-30T10:00:00Z"), "not a valid time"),
        (syncro_raw(end_at="2026-03-10T08:00:00-07:00"), "before the start"),
        (syncro_raw(end_at=None, duration="two"), "duration is not a number of hours"),
        (syncro_raw(start_at="0001-01-01T00:00:00Z"), "outside the years"),
        (syncro_raw(summary={"a": 1}), "summary is a dict"),
        (syncro_raw(all_day="maybe"), "all_day"),
    ],
)
def test_unmappable_syncro_appointments_say_why(raw: Any, reason: str) -> None:
    with pytest.raises(UnmappableItem, match=reason) as caught:
        appointment_from_syncro(raw, zone=LA)
    assert isinstance(caught.value, ValueError) and caught.value.reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("event", "must be an object"),
        ({"id": "x", "@removed": {"reason": "deleted"}}, "removed"),
        ({"id": "x", "type": "occurrence", "start": {}, "end": {}}, "stub"),
        (graph_raw(start=None), "no start"),
        (graph_raw(start={"dateTime": None, "timeZone": "UTC"}), "start.dateTime is missing"),
        (graph_raw(end={"dateTime": "2026-03-10T15:00:00.0000000", "timeZone": "UTC"}), "before the start"),
        (graph_raw(body="text"), "body is a str"),
        (graph_raw(body={"contentType": "rtf", "content": "x"}), "contentType"),
        (graph_raw(isAllDay="sometimes"), "isAllDay"),
    ],
)
def test_unmappable_graph_events_say_why(raw: Any, reason: str) -> None:
    with pytest.raises(UnmappableItem, match=reason):
        appointment_from_graph(raw, zone=LA)


def test_nulls_for_text_read_as_empty() -> None:
    appointment = appointment_from_syncro(syncro_raw(summary=None, description=None, location=None), zone=LA)
    assert (appointment.summary, appointment.description, appointment.location) == ("", "", "")
    event = appointment_from_graph(graph_raw(subject=None, body=None, location=None), zone=LA)
    assert (event.summary, event.description, event.location) == ("", "", "")


def test_a_ten_thousand_character_summary_is_clipped_to_fit_both_services_with_its_tag() -> None:
    appointment = appointment_from_syncro(syncro_raw(summary="x" * 10_000), zone=LA)
    assert len(appointment.summary) == SUMMARY_LIMIT == 251
    assert len(graph_fields(appointment, zone=LA, origin=Side.SYNCRO, extras=None)["subject"]) == 255
    assert len(syncro_fields(appointment, zone=LA, origin=Side.OUTLOOK, tech_syncro_user_id=1)["summary"]) == 255
    emoji = appointment_from_syncro(syncro_raw(summary="😀" * 200), zone=LA).summary
    assert len(emoji.encode("utf-16-le")) // 2 <= SUMMARY_LIMIT  # Graph counts UTF-16 units


def test_control_characters_are_removed_and_lines_kept() -> None:
    raw = syncro_raw(summary="Fix\x00 the\nprinter\t", description="a\x00b\x1bc\r\nd\re\tf\x7f\x85", location="x\ny")
    appointment = appointment_from_syncro(raw, zone=LA)
    assert appointment.summary == "Fix the printer"
    assert appointment.description == "abc\nd\ne\tf"
    assert appointment.location == "x y"


def test_normalise_refuses_an_end_before_the_start() -> None:
    with pytest.raises(UnmappableItem, match="before the start"):
        syncro_fields(
            dataclasses.replace(PRINTER, end=utc(2026, 3, 10, 15)),
            zone=LA,
            origin=Side.SYNCRO,
            tech_syncro_user_id=None,
        )


# -- properties ----------------------------------------------------------------------------------

ZONES = st.sampled_from(
    [
        LA,
        BERLIN,
        ZoneInfo("UTC"),
        ZoneInfo("Asia/Kolkata"),
        ZoneInfo("Australia/Lord_Howe"),  # a 30-minute DST shift
        ZoneInfo("Pacific/Chatham"),
        ZoneInfo("America/Sao_Paulo"),  # DST used to skip midnight itself
        ZoneInfo("America/Vancouver"),
    ]
)
TAG_JUNK = st.lists(st.sampled_from(["[S] ", "[s]", "[O]  ", " [ o ]", "[S]\t"]), max_size=3).map("".join)
TEXT = st.text(max_size=300)
SUMMARIES = st.builds(lambda junk, text: junk + text, TAG_JUNK, st.text(max_size=300))
MOMENTS = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
CONTEXTS = st.none() | st.builds(SyncroContext, TEXT, TEXT, TEXT, TEXT, TEXT)


@st.composite
def appointments(draw: st.DrawFn) -> Appointment:
    start = draw(MOMENTS)
    return Appointment(
        summary=draw(SUMMARIES),
        start=start,
        end=start + draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40))),
        all_day=draw(st.booleans()),
        description=draw(st.text(max_size=500)),
        location=draw(TEXT),
    )


def _offset_text(moment: datetime, style: int, zone: ZoneInfo) -> str:
    if style == 0:
        return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if style == 1:
        return moment.astimezone(zone).isoformat(timespec="milliseconds")
    return moment.astimezone(zone).replace(tzinfo=None).isoformat()  # no offset: the account's zone


@st.composite
def syncro_records(draw: st.DrawFn, zone: ZoneInfo) -> dict[str, Any]:
    start = draw(MOMENTS)
    end = start + draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40)))
    return {
        "id": draw(st.integers(1, 2**40)),
        "summary": draw(SUMMARIES | st.none()),
        "description": draw(st.text(max_size=500) | st.none()),
        "location": draw(TEXT | st.none()),
        "start_at": _offset_text(start, draw(st.integers(0, 2)), zone),
        "end_at": _offset_text(end, draw(st.integers(0, 2)), zone),
        "all_day": draw(st.sampled_from([None, True, False, "1", "0"])),
    }


def mappable(appointment: Appointment, zone: ZoneInfo) -> Appointment:
    try:
        return normalise(appointment, zone=zone)
    except UnmappableItem:
        assume(False)
        raise


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), zone=ZONES, origin=st.sampled_from(Side))
def test_syncro_fields_to_appointment_to_syncro_fields_is_stable(
    data: st.DataObject, zone: ZoneInfo, origin: Side
) -> None:
    raw = data.draw(syncro_records(zone))
    try:
        first = appointment_from_syncro(raw, zone=zone)
    except UnmappableItem:
        assume(False)
    fields = syncro_fields(first, zone=zone, origin=origin, tech_syncro_user_id=7)
    # What Syncro answers to that write: the fields as sent, in milliseconds and the account's offset.
    answered = {
        **fields,
        "start_at": datetime.fromisoformat(fields["start_at"]).isoformat(timespec="milliseconds"),
        "end_at": datetime.fromisoformat(fields["end_at"]).isoformat(timespec="milliseconds"),
        "do_not_email": "1",
    }
    again = appointment_from_syncro({"appointment": answered}, zone=zone)
    assert again == first or (origin is Side.SYNCRO and first.summary == "" and again.summary == "(No title)")
    assert syncro_fields(again, zone=zone, origin=origin, tech_syncro_user_id=7) == fields


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    appointment=appointments(),
    zone=ZONES,
    origin=st.sampled_from(Side),
    extras=CONTEXTS,
    read_zone=st.sampled_from(["UTC", "Pacific Standard Time", "Europe/Berlin", "India Standard Time"]),
)
def test_appointment_to_graph_fields_to_appointment_is_the_same_appointment(
    appointment: Appointment, zone: ZoneInfo, origin: Side, extras: SyncroContext | None, read_zone: str
) -> None:
    expected = mappable(appointment, zone)
    fields = graph_fields(appointment, zone=zone, origin=origin, extras=extras)
    event = echo(fields)
    if not expected.all_day:
        # Graph may present a timed event in any zone it is asked for.
        tz = resolve_graph_zone(read_zone)
        for key, moment in (("start", expected.start), ("end", expected.end)):
            local = moment.astimezone(tz).replace(tzinfo=None).isoformat(timespec="microseconds") + "0"
            event[key] = {"dateTime": local, "timeZone": read_zone}
    assert appointment_from_graph(event, zone=zone) == expected
    assert len(fields["subject"].encode("utf-16-le")) // 2 <= 255


@settings(max_examples=300)
@given(appointment=appointments(), zone=ZONES)
def test_normalise_is_idempotent(appointment: Appointment, zone: ZoneInfo) -> None:
    once = mappable(appointment, zone)
    assert normalise(once, zone=zone) == once


@settings(max_examples=500)
@given(text=st.text())
def test_text_to_html_to_text_is_the_identity(text: str) -> None:
    markup = text_to_html(text)
    assert html_to_text(markup) == text
    assert html_to_text(exchange_wrap(markup)) == text


@settings(max_examples=300)
@given(junk=TAG_JUNK, summary=st.text(max_size=300), origin=st.sampled_from(Side), zone=ZONES)
def test_tags_never_stack(junk: str, summary: str, origin: Side, zone: ZoneInfo) -> None:
    appointment = dataclasses.replace(PRINTER, summary=junk + summary)
    subject = graph_fields(appointment, zone=zone, origin=origin, extras=None)["subject"]
    title = syncro_fields(appointment, zone=zone, origin=origin, tech_syncro_user_id=1)["summary"]
    shown = subject if origin is Side.SYNCRO else title
    assert tag_intact(shown, origin)
    assert strip_tags(shown) == strip_tags(subject) == strip_tags(title) or title == "(No title)"
    # Writing what was read back changes nothing: the tag is never added twice.
    read = appointment_from_graph(graph_raw(subject=subject), zone=zone)
    assert graph_fields(read, zone=zone, origin=origin, extras=None)["subject"] == subject


def test_what_a_syncro_appointment_holds_beyond_content_is_kept_for_a_recreate() -> None:
    from sync.mapping import syncro_kept

    record = {
        "appointment": {
            "id": 5_560_138_523,
            "start_at": "2026-12-02T09:00:00-08:00",
            "customer_id": None,
            "customer": {"id": 28_417_993},
            "ticket_id": 104_552_301,
            "user_ids": [1_342_117, 1_342_118],
        }
    }
    kept = syncro_kept(record)
    assert kept == {"customer_id": 28_417_993, "ticket_id": 104_552_301, "user_ids": [1_342_117, 1_342_118]}
    assert syncro_kept({"start_at": "x", "ticket_id": True, "user_ids": ["a"]}) == {}
    zone = ZoneInfo("America/Los_Angeles")
    content = Appointment("Visit", datetime(2026, 12, 2, 17, tzinfo=UTC), datetime(2026, 12, 2, 18, tzinfo=UTC))
    fields = syncro_fields(content, zone=zone, origin=Side.SYNCRO, tech_syncro_user_id=1_342_117, kept=kept)
    assert (fields["customer_id"], fields["ticket_id"]) == (28_417_993, 104_552_301)
    assert fields["user_ids"] == [1_342_117, 1_342_118]


def test_the_customer_and_ticket_header_we_write_reads_back_as_written() -> None:
    from sync.mapping import SyncroContext, context_lines, shown_context

    zone = ZoneInfo("America/Los_Angeles")
    content = Appointment("Visit", datetime(2026, 12, 2, 17, tzinfo=UTC), datetime(2026, 12, 2, 18, tzinfo=UTC))
    context = SyncroContext("Fabrikam Ltd", "20410", "Replace <server>", "400 Harbor Way", "https://x.test/tickets/1")
    written = graph_fields(content, zone=zone, origin=Side.SYNCRO, extras=context)
    assert shown_context(written) == context_lines(content, context, zone=zone) != []
    other = SyncroContext("Fabrikam Ltd", "20411", "Firewall", "400 Harbor Way", "https://x.test/tickets/2")
    assert shown_context(written) != context_lines(content, other, zone=zone)
    plain = graph_fields(content, zone=zone, origin=Side.SYNCRO, extras=None)
    assert shown_context(plain) == [] == context_lines(content, None, zone=zone)


def test_a_syncro_appointment_without_an_end_lasts_its_duration_or_is_a_moment() -> None:
    # Syncro requires only a summary and a start; Outlook and the ICS feed read it alike.
    timed = appointment_from_syncro(syncro_raw(end_at=None, duration=1.5), zone=LA)
    assert timed.end - timed.start == timedelta(minutes=90)
    moment = appointment_from_syncro(syncro_raw(end_at=None), zone=LA)
    assert moment.end == moment.start
