"""Each event's bytes, rendered once per appointment version and reused (docs/ics.md "Cost").

icalendar spends about 0.35 ms on one ``VEVENT`` (its per-character line folding, mostly), so
2,000 events cost most of a second: too slow for every request of a fresh instance. So each
event is rendered by icalendar once (`ics.render.event_fragment`), and its bytes are kept under
a key naming everything they depend on (`fragment_key`):

- beside the mirror row (`MirrorStore.attach_fragment`), so a fresh instance, or another one,
  only joins bytes. A fragment whose key no longer matches is ignored and replaced;
- in the instance, in a `FragmentCache` (least recently used out, bounded by bytes), for events
  whose row does not hold their bytes yet.

`assemble` is the served path; it gives the same bytes as `ics.render.render_feed` (tested).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import icalendar

from ics.render import BadAppointment, FeedWindow, event_fragment, event_span, join_feed, read_appointment, uid_host

if TYPE_CHECKING:
    from storage.mirror import MirrorEntry

# Bump when `ics.render.event_fragment` writes different bytes for the same appointment: every
# stored fragment then stops matching and is rendered again. icalendar's version is in the key too.
FRAGMENT_FORMAT = 1
CACHE_BYTES = 64 * 1024 * 1024  # ~120,000 events of ~550 bytes per instance


def fragment_key(appointment_digest: str, zone: ZoneInfo, host: str, ticket_base: str = "") -> str:
    """What an event's bytes depend on: the whole appointment (its digest), the account's zone
    (all-day days, times without an offset), the UIDs' host, the ticket links' base (SYNCRO_WEB_URL)
    and the renderer's version."""
    text = f"{FRAGMENT_FORMAT}|{icalendar.__version__}|{zone.key}|{host}|{ticket_base}|{appointment_digest}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class FragmentCache:
    """Event bytes by `fragment_key`, least recently used dropped past ``limit_bytes``. Thread-safe."""

    def __init__(self, limit_bytes: int = CACHE_BYTES) -> None:
        self._lock = threading.Lock()
        self._limit = limit_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self.size = 0  # bytes held

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: str, fragment: bytes) -> None:
        if len(fragment) > self._limit:
            return
        with self._lock:
            previous = self._items.pop(key, None)
            self.size -= len(previous) if previous is not None else 0
            self._items[key] = fragment
            self.size += len(fragment)
            while self.size > self._limit:
                _, dropped = self._items.popitem(last=False)
                self.size -= len(dropped)

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.size = 0


@dataclass
class Assembled:
    body: bytes
    # Entries whose row does not hold their current fragment: the shell may store it there.
    fresh: list[tuple[MirrorEntry, str, bytes]] = field(default_factory=list)
    skipped: list[tuple[object, str]] = field(default_factory=list)
    rendered: int = 0  # events icalendar rendered for this body
    reused: int = 0  # events whose bytes came from the instance's cache or the row


def assemble(
    entries: Iterable[MirrorEntry],
    *,
    zone: ZoneInfo,
    calendar_name: str,
    window: FeedWindow,
    base_url: str,
    cache: FragmentCache,
    ticket_base: str = "",
) -> Assembled:
    """The feed of ``entries``: each event from its row, else ``cache``, else icalendar.
    Same bytes as `ics.render.render_feed` of the entries' appointments. Never raises for bad items."""
    host = uid_host(base_url)
    placed = []
    result = Assembled(b"")
    for entry in entries:
        raw = entry.appointment
        try:
            span = event_span(raw, zone)
        except BadAppointment as problem:
            result.skipped.append((raw.get("id") if isinstance(raw, dict) else None, str(problem)))
            continue
        if not span.overlaps(window):
            continue
        key = fragment_key(entry.appointment_digest, zone, host, ticket_base)
        if entry.feed_fragment_key == key and entry.feed_fragment:
            fragment = entry.feed_fragment  # the row's: no need to keep it in the instance too
            result.reused += 1
        else:
            fragment = cache.get(key)
            if fragment is None:
                fragment = event_fragment(read_appointment(raw, zone, ticket_base=ticket_base), host)
                cache.put(key, fragment)
                result.rendered += 1
            else:
                result.reused += 1
            result.fresh.append((entry, key, fragment))
        placed.append((span.order, fragment))
    placed.sort(key=lambda item: item[0])
    result.body = join_feed(calendar_name, (fragment for _, fragment in placed))
    return result


def with_fragment(entry: MirrorEntry, *, zone: ZoneInfo, base_url: str, ticket_base: str = "") -> MirrorEntry:
    """``entry`` holding its event's bytes, for a writer of the mirror that wants the feed to find
    them in the row (the poller could call this before `MirrorStore.put_entry`, moving even
    the first render of a changed appointment off the feed's requests). An appointment the feed
    leaves out is returned as it is."""
    try:
        event = read_appointment(entry.appointment, zone, ticket_base=ticket_base)
    except BadAppointment:
        return entry
    host = uid_host(base_url)
    key = fragment_key(entry.appointment_digest, zone, host, ticket_base)
    return replace(entry, feed_fragment=event_fragment(event, host), feed_fragment_key=key)
