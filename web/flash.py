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

from web.http import redirect
from web.page_parts import Notice
from web.routes import ADMIN_PATH
from web.session import cookie_values

if TYPE_CHECKING:
    from collections.abc import Mapping

    from http_answer import Answer
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


def redirect_with_note(target: str, note: Notice, *, feed_url: str = "") -> Answer:
    """Post/redirect/get with words (or a feed URL) a query flag cannot carry (the note cookie above)."""
    from services import token_cipher
    from web.page_guards import secure_cookie

    path = ADMIN_COOKIE_PATH if target.startswith(ADMIN_PATH) else COOKIE_PATH
    cookie = note_cookie(token_cipher(), note, feed_url=feed_url, secure=secure_cookie(), path=path)
    return redirect(target, headers={"Set-Cookie": cookie})


# The fixed lines a redirect's query flag asks for (``?saved=1``): only our own words are shown.
FLASHES = {
    "token": Notice(
        "done", "Your Syncro API token is saved: your Syncro appointments arrive in Outlook within a minute."
    ),
    "linked": Notice("done", "Your calendar is linked."),
    "saved": Notice("done", "Saved."),
    "feed": Notice("done", "Your new calendar feed URL is at the top of this page. The old one no longer works."),
    "removed": Notice("done", "Removed: the link is released, the feed URL is off and they are signed out everywhere."),
    "skipped": Notice(
        "warning",
        "You skipped the Syncro API token: your Syncro appointments can't reach Outlook until you add it below.",
    ),
}


def flash_from(query: Mapping[str, str]) -> Notice | None:
    """The one line a redirect asked for (``?saved=1``); only our own words are shown."""
    return next((text for key, text in FLASHES.items() if query.get(key)), None)
