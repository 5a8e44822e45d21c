"""The ICS feed and the Outlook copy read a Syncro appointment through one function
(`sync.mapping.shown_from_syncro`), so they agree on start, end, all-day, title and location for every
shape Syncro sends: an end, no end with a duration, neither, and each form of ``all_day``."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from ics.render import FeedWindow, read_appointment, render_feed
from sync.mapping import SyncroContext, appointment_from_syncro, graph_fields
from sync.model import Side

LA = ZoneInfo("America/Los_Angeles")
WEB = "https://acme.syncromsp.com"
WINDOW = FeedWindow(datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")), datetime(2027, 1, 1, tzinfo=ZoneInfo("UTC")))
CUSTOMER = {"business_name": "Fabrikam Ltd", "address": "400 Harbor Way", "city": "Seattle", "state": "WA"}


def record(**fields: Any) -> dict[str, Any]:
    return {
        "id": 5_560_138_523,
        "summary": "Server swap",
        "description": "Bring the spare disks",
        "start_at": "2026-03-10T09:00:00.000-07:00",
        "end_at": "2026-03-10T11:00:00.000-07:00",
        "all_day": None,
        "location": "",
        "customer_id": 28_417_993,
        "customer": CUSTOMER,
        "ticket_id": 104_552_301,
        "ticket": {"id": 104_552_301, "number": "20410", "subject": "Replace failing file server"},
        "updated_at": "2026-03-01T00:00:00.000-08:00",
        **fields,
    }


SHAPES = {
    "an end": record(),
    "no end, a duration": record(end_at=None, duration=1.5),
    "no end, no duration": record(end_at=None),
    "a location of its own": record(location="Back office"),
    **{
        f"all_day {value!r}": record(all_day=value, end_at="2026-03-11T00:00:00.000-07:00")
        for value in (True, "true", "1", 1, "t", "yes")
    },
    **{f"timed, all_day {value!r}": record(all_day=value) for value in (None, False, "false", "0", 0, "f", "")},
}


def outlook(raw: dict[str, Any]) -> tuple[Any, ...]:
    """What the Outlook copy shows: Graph's own fields, read back as times and days."""
    item = appointment_from_syncro(raw, zone=LA)
    fields = graph_fields(item, zone=LA, origin=Side.SYNCRO, extras=SyncroContext.from_syncro(raw, syncro_web_url=WEB))
    title = fields["subject"].removeprefix("[S] ")
    if fields["isAllDay"]:
        start = date.fromisoformat(fields["start"]["dateTime"][:10])
        end = date.fromisoformat(fields["end"]["dateTime"][:10])
        return True, start, end, title, fields["location"]["displayName"]
    moments = [datetime.fromisoformat(fields[key]["dateTime"] + "+00:00") for key in ("start", "end")]
    return False, *moments, title, fields["location"]["displayName"]


def feed(raw: dict[str, Any]) -> tuple[Any, ...]:
    """What the feed shows, as a calendar app parses it."""
    body = render_feed(
        [raw], zone=LA, calendar_name="t", window=WINDOW, base_url="https://sync.example", ticket_base=WEB
    )
    (event,) = Calendar.from_ical(body).walk("VEVENT")
    start, end = event.decoded("dtstart"), event.decoded("dtend")
    all_day = not isinstance(start, datetime)
    return all_day, start, end, str(event.get("summary")), str(event.get("location", ""))


@pytest.mark.parametrize("shape", SHAPES)
def test_the_feed_and_outlook_agree(shape: str) -> None:
    raw = SHAPES[shape]
    assert feed(raw) == outlook(raw)


def test_the_shapes_mean_what_syncro_means() -> None:
    assert outlook(SHAPES["no end, a duration"])[2] - outlook(SHAPES["no end, a duration"])[1] == timedelta(minutes=90)
    assert outlook(SHAPES["no end, no duration"])[1] == outlook(SHAPES["no end, no duration"])[2]
    assert outlook(SHAPES["all_day 't'"])[0] and not outlook(SHAPES["timed, all_day 'f'"])[0]
    # The customer's address stands in for an empty location, in both; a location of its own wins.
    assert outlook(SHAPES["an end"])[4] == "400 Harbor Way, Seattle, WA"
    assert feed(SHAPES["a location of its own"])[4] == "Back office"


def test_the_feed_carries_the_customer_ticket_and_link_as_outlook_does() -> None:
    event = read_appointment(SHAPES["an end"], LA, ticket_base=WEB)
    assert event.description.split("\n") == [
        "Customer: Fabrikam Ltd",
        "Ticket #20410 Replace failing file server",
        f"Link: {WEB}/tickets/104552301",
        "Location: 400 Harbor Way, Seattle, WA (customer's address)",
        "Bring the spare disks",
    ]
