"""The feed's shell without I/O: token shapes, the stand-in lookup, fingerprints, the caches and
the account zone's fallback."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ics import feed
from ics.feed import FeedCache, RenderedFeed, fingerprint, lookup_key, rendered_feed, well_formed
from ics.fragments import fragment_key
from ics.render import feed_window
from storage.mirror import MirrorEntry

NOW = datetime(2026, 3, 1, tzinfo=UTC)
WINDOW = feed_window(NOW, days_back=60, days_ahead=60)
LA = ZoneInfo("America/Los_Angeles")


def entry(appointment_id: int, etag: str = "e", summary: str = "Visit") -> MirrorEntry:
    appointment = {
        "id": appointment_id,
        "summary": summary,
        "start_at": "2026-03-10T09:00:00.000-07:00",
        "end_at": "2026-03-10T10:00:00.000-07:00",
        "updated_at": "2026-02-20T08:15:00.000-08:00",
    }
    return MirrorEntry(7, appointment_id, appointment["updated_at"], "h", appointment, NOW, etag=etag)


def test_only_43_url_safe_characters_are_a_token() -> None:
    assert well_formed(secrets.token_urlsafe(32))
    for bad in (
        "",
        "a" * 42,
        "a" * 44,
        "a" * 42 + "=",
        "a" * 42 + "/",
        "a" * 42 + "é",
        "../" + "a" * 40,
        "a" * 43 + "\n",
    ):
        assert not well_formed(bad), bad


def test_a_malformed_token_is_looked_up_as_a_random_stand_in() -> None:
    token = secrets.token_urlsafe(32)
    assert lookup_key(token) == token
    for bad in ("", "x", "a" * 5000, "\x00" * 43, "../../etc/passwd"):
        stand_in = lookup_key(bad)
        assert well_formed(stand_in) and stand_in != bad
    assert lookup_key("x") != lookup_key("x")  # never a fixed value someone could register


def test_fingerprint_moves_with_any_change_and_not_with_order_or_row_etags() -> None:
    one, two = entry(1), entry(2)
    base = fingerprint([one, two], syncro_user_id=7, zone=LA, window=WINDOW, base_url="https://x")
    assert fingerprint([two, one], syncro_user_id=7, zone=LA, window=WINDOW, base_url="https://x") == base
    # Storing an event's bytes in its row moves the row's ETag, not the feed.
    restamped = [entry(1, "other"), entry(2, "another")]
    assert fingerprint(restamped, syncro_user_id=7, zone=LA, window=WINDOW, base_url="https://x") == base
    later = feed_window(datetime(2026, 3, 2, tzinfo=UTC), days_back=60, days_ahead=60)
    changes = [
        fingerprint([one, entry(2, summary="Moved")], syncro_user_id=7, zone=LA, window=WINDOW, base_url="https://x"),
        fingerprint([one], syncro_user_id=7, zone=LA, window=WINDOW, base_url="https://x"),
        fingerprint([one, two], syncro_user_id=8, zone=LA, window=WINDOW, base_url="https://x"),
        fingerprint([one, two], syncro_user_id=7, zone=ZoneInfo("UTC"), window=WINDOW, base_url="https://x"),
        fingerprint([one, two], syncro_user_id=7, zone=LA, window=WINDOW, base_url="https://y"),
        fingerprint([one, two], syncro_user_id=7, zone=LA, window=later, base_url="https://x"),
    ]
    assert base not in changes and len(set(changes)) == len(changes)


def test_rendered_feed_is_cached_per_mirror_state() -> None:
    cache = FeedCache()
    first = rendered_feed([entry(1, "e1")], syncro_user_id=7, zone=LA, window=WINDOW, base_url="https://x", cache=cache)
    again = rendered_feed([entry(1, "e1")], syncro_user_id=7, zone=LA, window=WINDOW, base_url="https://x", cache=cache)
    assert again is first
    edited = rendered_feed(
        [entry(1, "e2", "Moved")], syncro_user_id=7, zone=LA, window=WINDOW, base_url="https://x", cache=cache
    )
    assert edited.etag != first.etag and b"SUMMARY:Moved" in edited.body
    assert first.newest_change == datetime(2026, 2, 20, 16, 15, tzinfo=UTC)


def test_events_rendered_now_are_handed_to_the_store_a_bounded_batch_per_request(monkeypatch) -> None:
    monkeypatch.setattr(feed, "FRAGMENT_WRITES_PER_REQUEST", 2)
    stored: list[int] = []
    fragments: dict[int, bytes] = {}

    def store(entry: MirrorEntry, key: str, fragment: bytes) -> None:
        stored.append(entry.appointment_id)
        fragments[entry.appointment_id] = fragment

    def request(entries: list[MirrorEntry]) -> bytes:
        return rendered_feed(
            entries, syncro_user_id=7, zone=LA, window=WINDOW, base_url="https://x", cache=cache, store_fragment=store
        ).body

    def as_rows(entries: list[MirrorEntry]) -> list[MirrorEntry]:
        # What the store wrote, as the next request reads the rows.
        return [
            replace(e, feed_fragment=fragments[e.appointment_id], feed_fragment_key=key_of(e))
            if e.appointment_id in fragments
            else e
            for e in entries
        ]

    def key_of(e: MirrorEntry) -> str:
        return fragment_key(e.appointment_digest, LA, "x")

    cache = FeedCache()
    entries = [entry(n) for n in range(1, 6)]
    body = request(entries)
    assert stored == [1, 2]
    assert all(fragment.startswith(b"BEGIN:VEVENT\r\n") and fragment in body for fragment in fragments.values())
    # Rows still wait: the feed was not cached, so the next requests store the rest, in batches.
    assert request(as_rows(entries)) == body and stored == [1, 2, 3, 4]
    assert request(as_rows(entries)) == body and stored == [1, 2, 3, 4, 5]
    # Every row holds its bytes now: the feed is cached and nothing is stored again.
    assert request(as_rows(entries)) == body and request(as_rows(entries)) == body
    assert stored == [1, 2, 3, 4, 5]


def test_the_feed_cache_is_bounded() -> None:
    cache = FeedCache(limit=2)
    for key in "abc":
        cache.put(key, RenderedFeed(b"", '"x"', None))
    assert cache.get("a") is None and cache.get("c") is not None


def test_the_account_zone_falls_back_and_does_not_ask_syncro_every_time() -> None:
    calls: list[int] = []

    def down() -> str:
        calls.append(1)
        raise ConnectionError("Syncro is down")

    feed.reset_caches()
    try:
        assert feed.account_zone(down) == ZoneInfo("UTC")
        assert feed.account_zone(down) == ZoneInfo("UTC")
        assert len(calls) == 1  # retried after ZONE_RETRY_SECONDS, not per request (tests/sync/test_account_zone.py)
    finally:
        feed.reset_caches()
