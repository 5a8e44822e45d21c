"""Issuing and revoking a technician's feed URLs: the one place for the settings page's "New URL",
the unlink choice, the admin overview and the admin endpoint.

Tokens are 256 random bits, stored only as a SHA-256 (`storage.feed_tokens`); a new URL
revokes every older one, so the old address 404s from the next request on.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from storage.errors import ConcurrencyConflict

if TYPE_CHECKING:
    from storage.account import StorageAccount


def issue_feed_url(account: StorageAccount, syncro_user_id: int) -> str:
    """Revoke the tech's feed URLs and return a new one (256 random bits; only its hash is kept).
    Raises StorageError (and SettingsError: the URL is the app's public one)."""
    from settings import get_settings

    base_url = get_settings().public_base_url
    revoke_feed_urls(account, syncro_user_id)
    token = secrets.token_urlsafe(32)
    account.feed_tokens.create_token(token, syncro_user_id=syncro_user_id, created_at=account.clock())
    return f"{base_url}/api/ics/{token}.ics"


def revoke_feed_urls(account: StorageAccount, syncro_user_id: int) -> int:
    """Revoke every active feed URL of the tech; how many were active. Raises StorageError."""
    now = account.clock()
    revoked = 0
    for record in account.feed_tokens.list_for_tech(syncro_user_id):
        if record.active:
            try:
                account.feed_tokens.revoke(record, at=now)
                revoked += 1
            except ConcurrencyConflict:
                continue  # revoked (or replaced) by a parallel request: gone either way
    return revoked


def webcal_url(feed_url: str) -> str:
    """The ``webcal://`` form of a feed URL: it opens the calendar app's subscribe dialog."""
    scheme, sep, rest = feed_url.partition("://")
    return f"webcal://{rest}" if sep and scheme in ("http", "https") else feed_url
