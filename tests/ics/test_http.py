"""The feed's HTTP decisions, pure: validators, 304 rules, headers, HEAD, and junk headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ics.feed_http import (
    CONTENT_TYPE,
    entity_tag,
    feed_response,
    http_date,
    last_modified,
    none_match_hits,
    unmodified_since,
)

BODY = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
ETAG = entity_tag(BODY)
MODIFIED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def respond(method: str = "GET", **conditions: str):
    return feed_response(BODY, etag=ETAG, modified=MODIFIED, method=method, **conditions)


def test_a_plain_get_gets_the_feed_with_every_header() -> None:
    answer = respond()
    assert answer.status == 200 and answer.body == BODY
    assert answer.headers["Content-Type"] == CONTENT_TYPE == "text/calendar; charset=utf-8"
    assert answer.headers["ETag"] == ETAG and not ETAG.startswith("W/")
    assert answer.headers["Last-Modified"] == "Sun, 01 Mar 2026 12:00:00 GMT"
    assert answer.headers["Cache-Control"].startswith("private")
    assert answer.headers["Content-Disposition"] == 'inline; filename="syncro-appointments.ics"'
    assert answer.headers["Content-Length"] == str(len(BODY))


def test_head_has_the_headers_and_no_body() -> None:
    answer = respond("HEAD")
    assert answer.status == 200 and answer.body == b""
    assert answer.headers["Content-Length"] == str(len(BODY))
    assert answer.headers["ETag"] == ETAG


def test_the_etag_is_of_the_content() -> None:
    assert entity_tag(BODY) == entity_tag(bytes(BODY))
    assert entity_tag(BODY) != entity_tag(BODY + b"\r\n")


def test_if_none_match_forms() -> None:
    opaque = ETAG.strip('"')
    for header in (ETAG, f"W/{ETAG}", f'"other", {ETAG}', f'"a",W/{ETAG} , "b"', "*", f" junk, {ETAG}"):
        assert respond(if_none_match=header).status == 304, header
    for header in ('"other"', opaque, "", ",,,", 'W/"', f'"{opaque}', "W/", '"a" "b"', "\x00\xff"):
        assert respond(if_none_match=header).status == 200, header


def test_304_carries_the_validators_and_no_body() -> None:
    answer = respond(if_none_match=ETAG)
    assert answer.body == b""
    assert answer.headers["ETag"] == ETAG and "Last-Modified" in answer.headers
    assert "Content-Type" not in answer.headers


def test_if_modified_since() -> None:
    assert respond(if_modified_since=http_date(MODIFIED)).status == 304
    assert respond(if_modified_since=http_date(MODIFIED + timedelta(days=1))).status == 304
    assert respond(if_modified_since=http_date(MODIFIED - timedelta(seconds=1))).status == 200
    for junk in ("yesterday", "", "Sun, 99 Foo 2026 99:99:99 GMT", "Sun, 01 Mar 2026 12:00:00 -0000", "0" * 500):
        assert respond(if_modified_since=junk).status in (200, 304)
    assert respond(if_modified_since="yesterday").status == 200


def test_an_if_modified_since_after_now_is_ignored() -> None:
    now = MODIFIED + timedelta(minutes=5)
    ahead = http_date(now + timedelta(seconds=1))
    assert (
        feed_response(BODY, etag=ETAG, modified=MODIFIED, method="GET", if_modified_since=ahead, now=now).status == 200
    )
    at_now = http_date(now)
    assert (
        feed_response(BODY, etag=ETAG, modified=MODIFIED, method="GET", if_modified_since=at_now, now=now).status == 304
    )


def test_if_none_match_wins_over_if_modified_since() -> None:
    assert respond(if_none_match='"other"', if_modified_since=http_date(MODIFIED)).status == 200
    assert respond(if_none_match=ETAG, if_modified_since="junk").status == 304


def test_last_modified_is_the_newest_change_floored_to_the_current_minute() -> None:
    now = datetime(2026, 3, 1, 12, 30, 45, 500, tzinfo=UTC)
    assert last_modified(None, now) == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert last_modified(datetime(2026, 1, 1, tzinfo=UTC), now) == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    # A change within this minute shows as itself; a clock ahead of ours is clamped to now.
    assert last_modified(datetime(2026, 3, 1, 12, 30, 40, tzinfo=UTC), now) == datetime(
        2026, 3, 1, 12, 30, 40, tzinfo=UTC
    )
    assert last_modified(datetime(2027, 1, 1, tzinfo=UTC), now) == now.replace(microsecond=0)


def test_a_deleted_event_is_not_hidden_from_a_date_only_client_for_long() -> None:
    # The client saw the feed at 12:00:30; an event is deleted at 12:00:50 (no updated_at left).
    seen = last_modified(datetime(2026, 3, 1, 11, 0, tzinfo=UTC), datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC))
    later = last_modified(datetime(2026, 3, 1, 10, 0, tzinfo=UTC), datetime(2026, 3, 1, 12, 1, 5, tzinfo=UTC))
    assert later > seen  # so If-Modified-Since: <seen> gets the new feed


@given(st.text(max_size=300), st.text(max_size=120))
def test_any_conditional_header_gives_200_or_304(if_none_match: str, if_modified_since: str) -> None:
    assert none_match_hits(if_none_match, ETAG) in (True, False)
    assert unmodified_since(if_modified_since, MODIFIED) in (True, False)
    assert respond(if_none_match=if_none_match).status in (200, 304)
    assert respond(if_modified_since=if_modified_since).status in (200, 304)


def test_an_oversized_if_none_match_is_ignored() -> None:
    assert respond(if_none_match=(ETAG + ",") * 2000).status == 200
