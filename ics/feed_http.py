"""HTTP decisions for the feed, as pure functions: validators, conditional requests, headers.
The answer is the app's one `http_answer.Answer`.

RFC 9110: ``If-None-Match`` wins over ``If-Modified-Since`` when both come; ``If-None-Match``
uses the weak comparison (``W/"x"`` matches ``"x"``), and ``*`` matches any current feed.
A header we cannot read is ignored, as the RFC says, so junk gets a 200, never an error.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from http_answer import Answer

CONTENT_TYPE = "text/calendar; charset=utf-8"
# Short: the feed is fresh within a poll interval, and revalidating costs a 304.
CACHE_CONTROL = "private, max-age=60"
FILENAME = "syncro-appointments.ics"
# Past this a conditional header is not a client's cache talking; it is ignored, not parsed.
MAX_CONDITIONAL_HEADER = 8192
# Last-Modified never lags the clock by more than this (see `last_modified`).
LAST_MODIFIED_GRANULARITY_SECONDS = 60


def entity_tag(body: bytes) -> str:
    """A strong ETag of the exact bytes (quoted, as sent)."""
    return '"' + hashlib.sha256(body).hexdigest()[:40] + '"'


def last_modified(newest_change: datetime | None, now: datetime) -> datetime:
    """Last-Modified: the newest ``updated_at`` in the feed, but never older than the current
    minute. A deleted appointment (or one leaving the window) leaves no ``updated_at`` behind,
    so without the floor a client that revalidates only by date would get 304 for a feed that
    lost an event; with it, such a client sees the loss within a minute. Never in the future."""
    now = now.astimezone(UTC)
    floor = datetime.fromtimestamp(
        int(now.timestamp()) // LAST_MODIFIED_GRANULARITY_SECONDS * LAST_MODIFIED_GRANULARITY_SECONDS, UTC
    )
    newest = min(newest_change.astimezone(UTC), now) if newest_change is not None else floor
    return max(newest, floor).replace(microsecond=0)


def _opaque_tags(header: str) -> list[str] | None:
    """The opaque tags in an ``If-None-Match`` list, weak prefixes dropped; ``None`` for ``*``.
    Elements that are not entity-tags are skipped."""
    if header.strip() == "*":
        return None
    tags: list[str] = []
    position, size = 0, len(header)
    while position < size:
        while position < size and header[position] in " \t,":
            position += 1
        if header.startswith("W/", position):
            position += 2
        if position < size and header[position] == '"':
            close = header.find('"', position + 1)
            if close < 0:
                break
            tags.append(header[position : close + 1])
            position = close + 1
        else:  # junk: skip to the next comma
            comma = header.find(",", position)
            position = size if comma < 0 else comma + 1
    return tags


def none_match_hits(if_none_match: str, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison) or is ``*``."""
    if len(if_none_match) > MAX_CONDITIONAL_HEADER:
        return False
    tags = _opaque_tags(if_none_match)
    return tags is None or etag.removeprefix("W/") in tags


def unmodified_since(if_modified_since: str, modified: datetime, now: datetime | None = None) -> bool:
    """Whether the feed is unchanged since the ``If-Modified-Since`` date; an unreadable date is
    False, and so is a date after ``now`` (RFC 7232 calls it invalid: a client whose clock runs
    ahead would otherwise be told "not modified" until its date, deletions included)."""
    if len(if_modified_since) > 100:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    if since is None:
        return False
    if since.tzinfo is None:  # "-0000" dates parse naive; HTTP dates are GMT
        since = since.replace(tzinfo=UTC)
    if now is not None and since > now:
        return False
    return modified <= since


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def feed_response(
    body: bytes,
    *,
    etag: str,
    modified: datetime,
    method: str,
    if_none_match: str | None = None,
    if_modified_since: str | None = None,
    filename: str = FILENAME,
    now: datetime | None = None,
) -> Answer:
    """200 with the feed, or 304 when the client's copy is current. HEAD gets the 200's headers
    (Content-Length included) and no body. ``now``: an ``If-Modified-Since`` after it is ignored."""
    validators = {"ETag": etag, "Last-Modified": http_date(modified), "Cache-Control": CACHE_CONTROL}
    if if_none_match is not None:
        current = none_match_hits(if_none_match, etag)
    else:
        current = if_modified_since is not None and unmodified_since(if_modified_since, modified, now)
    if current:
        return Answer(304, headers=validators)
    headers = {
        **validators,
        "Content-Type": CONTENT_TYPE,
        "Content-Disposition": f'inline; filename="{filename}"',
        "Content-Length": str(len(body)),
        "X-Content-Type-Options": "nosniff",
    }
    return Answer(200, b"" if method.upper() == "HEAD" else body, headers)
