"""``GET/HEAD /api/ics/{token}.ics``: the imperative shell around `ics.render` and `ics.feed_http`.

One request: check the token's shape, look its hash up, read the tech's mirror partition,
render (from the caches when nothing changed), answer 200 or 304, then store in the mirror rows
the event bytes this instance had to render (`ics.fragments`), so no instance renders them again.
No Syncro call per request: the account's zone is read once per process and hour (docs/ics.md
"Time zone").

Timing: every request, well-formed or not, hashes a token and does exactly one token lookup
before it can 404, so a malformed, unknown or revoked token all cost the same one lookup, and
no secret is compared in Python (the table finds the hash or doesn't).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from http_answer import Answer, error_answer
from ics.feed_http import entity_tag, feed_response, last_modified
from ics.fragments import FragmentCache, assemble
from ics.render import FeedWindow, feed_window, parse_time
from sync.account_zone import ACCOUNT_ZONES

if TYPE_CHECKING:
    from storage.account import StorageAccount
    from storage.mirror import MirrorEntry, MirrorStore

log = logging.getLogger(__name__)

# secrets.token_urlsafe(32): 256 random bits in 43 url-safe base64 characters.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
CALENDAR_NAME = "Syncro appointments"
FEED_CACHE_LIMIT = 256  # whole feeds kept per instance (one per subscribed tech is plenty)
# Rows given their event bytes per request at most: the first request after a deployment (or a
# FRAGMENT_FORMAT bump) stays bounded; later requests store the rest (docs/ics.md "Cost").
FRAGMENT_WRITES_PER_REQUEST = 200

NOT_FOUND_MESSAGE = (
    "No calendar feed has this address. It may have been replaced by a new URL or revoked; "
    "get the current one from your calendar settings page."
)


def well_formed(token: str) -> bool:
    return TOKEN_SHAPE.fullmatch(token) is not None


def lookup_key(token: str) -> str:
    """The token to look up: itself when well formed, else a random stand-in of the same shape,
    so a malformed token pays the same hash and lookup as a real one (and finds nothing)."""
    return token if well_formed(token) else secrets.token_urlsafe(32)


# --- the account's zone: one Syncro call per process and hour, never per request -------------

FEED_ZONE_KEY = "feed"  # the feed's entry in the process's account-zone cache


def account_zone(zone_name: Callable[[], str]) -> ZoneInfo:
    """The Syncro account's zone, asking ``zone_name`` (Syncro) at most once an hour
    (`sync.account_zone`); UTC until it could be read once: the feed still answers, all-day days
    maybe a day off until Syncro does."""
    global _warned
    try:
        return ACCOUNT_ZONES.get(FEED_ZONE_KEY, zone_name)
    except Exception as error:  # Syncro down, or an odd zone name
        if error is not _warned:  # once a failed read, not on every request until the retry
            _warned = error
            log.warning("ICS feed: the Syncro account's time zone could not be read (%s)", type(error).__name__)
        return ZoneInfo("UTC")


_warned: BaseException | None = None  # the failed zone read last logged


# --- the render caches -------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedFeed:
    body: bytes
    etag: str
    newest_change: datetime | None


class FeedCache:
    """Rendered feeds by fingerprint, and each event's bytes by `ics.fragments.fragment_key`. Thread-safe."""

    def __init__(self, limit: int = FEED_CACHE_LIMIT, fragments: FragmentCache | None = None) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self._feeds: OrderedDict[str, RenderedFeed] = OrderedDict()
        self.fragments = fragments if fragments is not None else FragmentCache()

    def get(self, key: str) -> RenderedFeed | None:
        with self._lock:
            found = self._feeds.get(key)
            if found is not None:
                self._feeds.move_to_end(key)
            return found

    def put(self, key: str, feed: RenderedFeed) -> None:
        with self._lock:
            self._feeds[key] = feed
            self._feeds.move_to_end(key)
            while len(self._feeds) > self._limit:
                self._feeds.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._feeds.clear()
        self.fragments.clear()


_cache = FeedCache()


def fingerprint(
    entries: Iterable[MirrorEntry],
    *,
    syncro_user_id: int,
    zone: ZoneInfo,
    window: FeedWindow,
    base_url: str,
    ticket_base: str = "",
) -> str:
    """What the feed depends on, cheaply: every entry's id and appointment digest (the whole
    appointment as stored), the zone, the window and the host. Equal fingerprints render equal
    bytes. (Not the row's ETag: storing an event's bytes in the row moves that, not the feed.)"""
    digest = hashlib.sha256(
        f"{syncro_user_id}|{zone.key}|{window.start}|{window.end}|{base_url}|{ticket_base}".encode()
    )
    for entry in sorted(entries, key=lambda e: e.appointment_id):
        digest.update(f"|{entry.appointment_id}:{entry.appointment_digest}".encode())
    return digest.hexdigest()


StoreFragment = Callable[["MirrorEntry", str, bytes], object]


def rendered_feed(
    entries: list[MirrorEntry],
    *,
    syncro_user_id: int,
    zone: ZoneInfo,
    window: FeedWindow,
    base_url: str,
    cache: FeedCache = _cache,
    store_fragment: StoreFragment | None = None,
    ticket_base: str = "",
) -> RenderedFeed:
    """The feed for ``entries``, rendered at most once per distinct mirror state, each event at
    most once per version (`ics.fragments`). ``store_fragment`` is given each event this call
    found without its bytes in its row, up to FRAGMENT_WRITES_PER_REQUEST; past that the feed
    is not cached, so the following requests store the rest."""
    key = fingerprint(
        entries, syncro_user_id=syncro_user_id, zone=zone, window=window, base_url=base_url, ticket_base=ticket_base
    )
    found = cache.get(key)
    if found is not None:
        return found
    made = assemble(
        entries,
        zone=zone,
        calendar_name=CALENDAR_NAME,
        window=window,
        base_url=base_url,
        cache=cache.fragments,
        ticket_base=ticket_base,
    )
    for appointment_id, reason in made.skipped:
        log.warning("ICS feed: appointment %s left out: %s", appointment_id, reason)
    feed = RenderedFeed(made.body, entity_tag(made.body), _newest_change(entries, zone))
    if store_fragment is None:
        cache.put(key, feed)
        return feed
    for entry, fragment_key, fragment in made.fresh[:FRAGMENT_WRITES_PER_REQUEST]:
        store_fragment(entry, fragment_key, fragment)
    if len(made.fresh) <= FRAGMENT_WRITES_PER_REQUEST:
        # Not cached while rows still wait for their bytes: the next request assembles again
        # (from this instance's fragment cache, no icalendar) and stores the next batch.
        cache.put(key, feed)
    return feed


def _newest_change(entries: Iterable[MirrorEntry], zone: ZoneInfo) -> datetime | None:
    newest: datetime | None = None
    for entry in entries:
        try:
            changed = parse_time(entry.updated_at, zone)
        except ValueError:
            continue
        newest = changed if newest is None or changed > newest else newest
    return newest


# --- the request -------------------------------------------------------------------------


class _FragmentWriter:
    """Stores event bytes in mirror rows, best effort: any failure stops it for this request and
    never fails the request (the feed is rendered; a later request stores the bytes instead)."""

    def __init__(self, mirror: MirrorStore) -> None:
        self._mirror = mirror
        self._failed = False

    def __call__(self, entry: MirrorEntry, key: str, fragment: bytes) -> None:
        if self._failed:
            return
        try:
            self._mirror.attach_fragment(entry, key, fragment)
        except Exception as error:  # a cache write: whatever storage says, the feed is served
            self._failed = True
            log.warning("ICS feed: event bytes not stored in the mirror (%s)", type(error).__name__)


def _not_found() -> Answer:
    return error_answer(404, "not_found", NOT_FOUND_MESSAGE)


def _unavailable(code: str, message: str) -> Answer:
    return error_answer(503, code, message, headers={"Retry-After": "30"})


def serve_feed(
    token: str,
    *,
    method: str,
    headers: Mapping[str, str],
    storage_account: Callable[[], StorageAccount],
    zone_name: Callable[[], str],
    now: datetime | None = None,
) -> Answer:
    """Answer one feed request. ``token`` is the path segment before ``.ics``; ``headers`` are
    the request's (lower-case names); ``storage_account`` and ``zone_name`` (the Syncro account's
    time zone) are asked only when needed, so settings trouble raised there is answered here.
    Never raises for anything a client sends: an unusable token is a 404; storage or settings
    trouble is a 503 with Retry-After."""
    from settings import SettingsError, get_settings
    from storage.errors import NotFound, StorageUnavailable

    try:
        settings = get_settings()
        account = storage_account()
        try:
            record = account.feed_tokens.get_by_token(lookup_key(token))
        except NotFound:
            return _not_found()
        if not record.active or not well_formed(token):
            return _not_found()
        entries = list(account.mirror.list_entries(record.syncro_user_id))
    except SettingsError:
        return _unavailable("misconfigured", "The feed isn't available: the app is not fully set up.")
    except StorageUnavailable:
        return _unavailable("storage_unavailable", "The feed is briefly unavailable; try again shortly.")
    now = now or datetime.now(UTC)
    window = feed_window(now, days_back=settings.window_past_days, days_ahead=settings.window_future_days)
    feed = rendered_feed(
        entries,
        syncro_user_id=record.syncro_user_id,
        zone=account_zone(zone_name),
        window=window,
        base_url=settings.public_base_url,
        store_fragment=_FragmentWriter(account.mirror),
        ticket_base=settings.sync.syncro_web_url,
    )
    return feed_response(
        feed.body,
        etag=feed.etag,
        modified=last_modified(feed.newest_change, now),
        method=method,
        if_none_match=headers.get("if-none-match"),
        if_modified_since=headers.get("if-modified-since"),
        now=now,
    )


def reset_caches() -> None:
    """Forget the zone and every rendered feed (tests that change settings call this)."""
    ACCOUNT_ZONES.clear()
    _cache.clear()
