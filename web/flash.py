"""What a POST has to say to the page it redirects to (post/redirect/get), when a query flag such
as ``?saved=1`` cannot carry it: the summary of "Sync now", a new feed URL.

It travels in a short-lived cookie, encrypted with the app's token key (a feed URL is a
credential: it must not sit readable in a browser's cookie jar or a proxy's log), HttpOnly,
SameSite=Lax, on ``/api/settings`` (or ``/api/admin`` for the admin overview's). Reloading the page within its lifetime shows it again and
mints nothing: only a POST does that.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from web.session import cookie_values
from web.views import Notice

if TYPE_CHECKING:
    from oauth.crypto import TokenCipher

COOKIE_NAME = "calendar_note"
COOKIE_PATH = "/api/settings"  # the admin overview's notes use ADMIN_COOKIE_PATH
ADMIN_COOKIE_PATH = "/api/admin"
FEED_URL_SECONDS = 300  # long enough to copy the URL, reload, come back from the calendar app
NOTE_SECONDS = 30


def note_cookie(cipher: TokenCipher, note: Notice, *, feed_url: str = "", secure: bool, path: str = COOKIE_PATH) -> str:
    payload = json.dumps({"kind": note.kind, "text": note.text, "feed_url": feed_url}).encode()
    value = cipher.encrypt(payload).decode("ascii")
    seconds = FEED_URL_SECONDS if feed_url else NOTE_SECONDS
    cookie = f"{COOKIE_NAME}={value}; Max-Age={seconds}; Path={path}; HttpOnly; SameSite=Lax"
    return cookie + "; Secure" if secure else cookie


def read_note(cipher: TokenCipher, cookie_header: str | None) -> tuple[Notice | None, str]:
    """The notice and feed URL in the request's cookie; (None, "") when absent or not ours."""
    for value in cookie_values(cookie_header, COOKIE_NAME):
        try:
            payload = json.loads(cipher.decrypt(value.encode("ascii")))
            note = Notice(str(payload["kind"]), str(payload["text"]))
            return note, str(payload.get("feed_url") or "")
        except Exception:  # altered, another key, another version: nothing to show
            continue
    return None, ""
