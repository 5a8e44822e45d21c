"""Each technician's MSAL token cache, encrypted in Table Storage, and access tokens for Graph.

`TokenService.access_token_for` loads a tech's cache, lets MSAL return the cached access token or
redeem the refresh token, and writes the cache back only when MSAL changed it, conditioned on the
ETag it read: two instances refreshing the same tech at once cannot overwrite each other's rotated
refresh token. When Microsoft refuses the saved sign-in, that tech's link (and only that one) is
marked ``needs_relink`` with a reason in plain words.

Errors::

    TokenError                  root: no access token for this tech now
    ├── NotLinked               the tech has no link (never linked, or unlinked)
    ├── NeedsRelink             Microsoft refused the saved sign-in; the tech must sign in again
    ├── TokenUnavailable        transient: the identity platform or storage could not answer; retry later
    └── AppCredentialsRejected  Microsoft refused the app itself (client secret expired or wrong): an
                                admin must fix MS_CLIENT_SECRET / the app registration; links unchanged
    TokenDecryptionError        (oauth.crypto) the cache's key is not configured or wrong; links unchanged

Tokens and secrets never reach a log line or an exception message: only tech ids and AADSTS codes.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msal
import msal.exceptions
import requests

from oauth.msal_app import GRAPH_SCOPES
from storage.account import utc_now
from storage.errors import ConcurrencyConflict, NotFound, StorageUnavailable
from storage.links import Link, LinkStatus
from storage.token_caches import TokenCacheRecord

if TYPE_CHECKING:
    from oauth.crypto import TokenCipher
    from storage.links import LinkStore
    from storage.token_caches import TokenCacheStore

log = logging.getLogger(__name__)

AppFactory = Callable[[msal.SerializableTokenCache], msal.ConfidentialClientApplication]

RELINK_ADVICE = "Sign in again on the settings page to resume syncing."

# OAuth errors that mean "this sign-in is dead, only the user can renew it" (RFC 6749 and OpenID Connect).
_RELINK_ERRORS = frozenset({"invalid_grant", "interaction_required", "consent_required", "login_required"})
_APP_ERRORS = frozenset({"invalid_client", "unauthorized_client"})

# What each AADSTS code that ends a sign-in means, for the tech and the admin (AADSTS codes are documented at
# learn.microsoft.com/entra/identity-platform/reference-error-codes).
_RELINK_REASONS: Mapping[int, str] = {
    70008: "The saved Microsoft sign-in has expired.",
    700082: "The saved Microsoft sign-in expired after 90 days without use.",
    50173: "Microsoft revoked the saved sign-in (the password was changed, or an admin signed the account out).",
    50133: "Microsoft revoked the saved sign-in because the password was changed.",
    65001: "Permission for this app to use the calendar was withdrawn.",
    50076: "The organisation now requires multi-factor authentication for this account.",
    50079: "The organisation now requires multi-factor authentication registration for this account.",
    53003: "A Conditional Access policy of the organisation blocked access.",
    50057: "The Microsoft account is disabled.",
    50034: "The Microsoft account no longer exists.",
    9002313: "Microsoft refused the saved sign-in as invalid.",
}


class TokenError(Exception):
    """Root: no access token for this tech now. ``syncro_user_id`` names the tech."""

    def __init__(self, message: str, *, syncro_user_id: int) -> None:
        super().__init__(message)
        self.syncro_user_id = syncro_user_id


class NotLinked(TokenError):
    """Raised when the tech has no link: never linked, or unlinked."""


class NeedsRelink(TokenError):
    """Raised when Microsoft refused the saved sign-in (or none is saved); the link now says so.

    ``reason`` is the plain-words status detail shown on the settings page; ``code`` the AADSTS code, if any.
    """

    def __init__(self, reason: str, *, syncro_user_id: int, code: int | None = None) -> None:
        super().__init__(reason, syncro_user_id=syncro_user_id)
        self.reason = reason
        self.code = code


class TokenUnavailable(TokenError):
    """Raised on a transient failure (network, 5xx, throttling, storage); nothing changed, retry later."""


class AppCredentialsRejected(TokenError):
    """Raised when Microsoft refuses the app's own credentials; an admin must fix the app registration."""


class TokenService:
    """Stores techs' token caches and acquires their access tokens. Thread-safe (no shared mutable state)."""

    def __init__(
        self,
        *,
        links: LinkStore,
        caches: TokenCacheStore,
        cipher: TokenCipher,
        app_factory: AppFactory,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._links = links
        self._caches = caches
        self._cipher = cipher
        self._app_factory = app_factory
        self._clock = clock

    # --- storing -----------------------------------------------------------------------------------

    def save_cache(self, syncro_user_id: int, cache: msal.SerializableTokenCache) -> None:
        """Encrypt and store the cache a sign-in produced, replacing the tech's previous one.

        A new sign-in wins over whatever was stored (a dead refresh token, another instance's refresh of
        the old sign-in). Raises StorageError if storage fails.
        """
        encrypted = self._cipher.encrypt(_serialized(cache))
        for _ in range(3):
            try:
                etag = self._caches.get_cache(syncro_user_id).etag
            except NotFound:
                etag = None
            try:
                self._caches.save_cache(TokenCacheRecord(syncro_user_id, encrypted, self._clock(), etag))
                return
            except (ConcurrencyConflict, NotFound):  # written or deleted since we looked: look again
                continue
        raise ConcurrencyConflict("tokencaches", str(syncro_user_id), "kept changing while saving")

    def forget(self, syncro_user_id: int) -> None:
        """Delete the tech's token cache (unlink); succeeds when there is none."""
        self._caches.delete_cache(syncro_user_id)

    # --- acquiring ---------------------------------------------------------------------------------

    def access_token_for(self, syncro_user_id: int) -> str:
        """A Graph access token for the tech's linked Microsoft account, refreshed silently when needed.

        Raises NotLinked, NeedsRelink (after marking the link), TokenUnavailable, AppCredentialsRejected,
        or TokenDecryptionError (a key is missing from the settings; the link is left alone).
        """
        link = self._link(syncro_user_id)
        if link.status is LinkStatus.NEEDS_RELINK:
            # Already refused: asking Microsoft again would only be refused again (and count against us).
            raise NeedsRelink(link.status_detail or RELINK_ADVICE, syncro_user_id=syncro_user_id)
        record = self._stored_cache(link)
        for attempt in (1, 2):
            cache = self._decrypted(record)
            result = self._acquire(link, cache)
            if result is not None and "access_token" in result:
                if not cache.has_state_changed:
                    return result["access_token"]
                try:
                    self._write_back(record, cache)
                except ConcurrencyConflict:
                    if attempt == 2:
                        # Another instance wrote a newer cache twice in a row; its refresh token is stored and
                        # valid, and the access token in hand is good: use it.
                        log.warning("token cache of tech %s kept changing; not written back", syncro_user_id)
                        return result["access_token"]
                    # Another instance refreshed at the same moment and stored its (rotated) refresh token:
                    # keep that one and take the access token from it.
                    record = self._stored_cache(link)
                    continue
                return result["access_token"]
            if not _needs_relink(result):
                raise _other_failure(result, syncro_user_id)
            latest = self._stored_cache(link)
            if latest.etag == record.etag:
                raise self._mark_needs_relink(link, result, cache_etag=record.etag)
            if attempt == 2:
                raise TokenUnavailable(
                    f"the token cache of tech {syncro_user_id} kept changing while in use; try again",
                    syncro_user_id=syncro_user_id,
                )
            # The cache was replaced while we used it (another instance's refresh or a new sign-in): the refresh
            # token we tried may simply be the superseded one. Try the stored one before judging.
            record = latest
        raise AssertionError("unreachable")  # both attempts return or raise

    # --- steps -------------------------------------------------------------------------------------

    def _link(self, syncro_user_id: int) -> Link:
        try:
            return self._links.get_link(syncro_user_id)
        except NotFound:
            raise NotLinked(
                f"tech {syncro_user_id} has not linked a Microsoft account", syncro_user_id=syncro_user_id
            ) from None
        except StorageUnavailable as error:
            raise TokenUnavailable(str(error), syncro_user_id=syncro_user_id) from error

    def _stored_cache(self, link: Link) -> TokenCacheRecord:
        try:
            return self._caches.get_cache(link.syncro_user_id)
        except NotFound:
            raise self._mark_needs_relink(link, {"error": "no_saved_sign_in"}) from None
        except StorageUnavailable as error:
            raise TokenUnavailable(str(error), syncro_user_id=link.syncro_user_id) from error

    def _decrypted(self, record: TokenCacheRecord) -> msal.SerializableTokenCache:
        cache = msal.SerializableTokenCache()
        cache.deserialize(self._cipher.decrypt(record.encrypted).decode())
        return cache

    def _acquire(self, link: Link, cache: msal.SerializableTokenCache) -> dict[str, Any] | None:
        """MSAL's answer: a token, an error result, or None when the cache holds no refresh token for the account."""
        try:
            app = self._app_factory(cache)
        except (requests.RequestException, ValueError) as error:
            # ValueError: MSAL could not read the authority's OpenID discovery document.
            raise self._unavailable(link, error) from error
        account = next((a for a in app.get_accounts() if a.get("home_account_id") == link.ms_account_id), None)
        if account is None:
            return {"error": "no_saved_sign_in"}
        try:
            return app.acquire_token_silent_with_error(GRAPH_SCOPES, account=account)
        except (requests.RequestException, msal.exceptions.MsalServiceError) as error:
            # A network failure, or a 5xx from the token endpoint (MSAL raises it rather than returning it).
            raise self._unavailable(link, error) from error

    @staticmethod
    def _unavailable(link: Link, error: Exception) -> TokenUnavailable:
        # The exception's type only: never a request body (it would hold the refresh token) in a message.
        return TokenUnavailable(
            f"the Microsoft identity platform did not answer for tech {link.syncro_user_id}: {type(error).__name__}",
            syncro_user_id=link.syncro_user_id,
        )

    def _write_back(self, record: TokenCacheRecord, cache: msal.SerializableTokenCache) -> None:
        """Raises ConcurrencyConflict when the stored cache changed since ``record`` was read."""
        encrypted = self._cipher.encrypt(_serialized(cache))
        try:
            self._caches.save_cache(TokenCacheRecord(record.syncro_user_id, encrypted, self._clock(), record.etag))
        except NotFound:  # unlinked meanwhile: nothing to keep
            pass
        except StorageUnavailable as error:
            raise TokenUnavailable(str(error), syncro_user_id=record.syncro_user_id) from error

    def _mark_needs_relink(
        self, link: Link, result: Mapping[str, Any] | None, *, cache_etag: str | None = None
    ) -> NeedsRelink:
        """Set the tech's link to needs_relink with the reason; returns the error to raise.

        ``cache_etag`` is the cache that was refused: if the link changed meanwhile and the stored cache is no
        longer that one, the tech has signed in again and the fresh link is left alone.
        """
        code = _aadsts_code(result)
        detail = f"{_reason(result, code)} {RELINK_ADVICE}"
        log.warning(
            "tech %s needs to link again: %s (AADSTS%s)",
            link.syncro_user_id,
            (result or {}).get("error"),
            code if code is not None else "-",
        )
        current = link
        for _ in range(3):
            try:
                self._links.update_link(
                    current.with_changes(status=LinkStatus.NEEDS_RELINK, status_detail=detail[:1000])
                )
                break
            except ConcurrencyConflict:
                try:
                    current = self._links.get_link(link.syncro_user_id)
                except NotFound:
                    break
                if (current.ms_account_id, current.linked_at) != (link.ms_account_id, link.linked_at):
                    break  # the tech signed in again meanwhile: the refusal was about the old sign-in
                if cache_etag is not None and self._cache_etag(link.syncro_user_id) != cache_etag:
                    break  # a new cache was stored meanwhile (a new sign-in): the next call will use it
                # Only the link's settings changed (calendar, two-way): mark the link as it is now.
            except NotFound:  # unlinked meanwhile: nothing to mark
                break
        return NeedsRelink(detail, syncro_user_id=link.syncro_user_id, code=code)

    def _cache_etag(self, syncro_user_id: int) -> str | None:
        try:
            return self._caches.get_cache(syncro_user_id).etag
        except NotFound:
            return None


def _needs_relink(result: Mapping[str, Any] | None) -> bool:
    return result is None or result.get("error") in _RELINK_ERRORS or result.get("error") == "no_saved_sign_in"


def _aadsts_code(result: Mapping[str, Any] | None) -> int | None:
    codes = (result or {}).get("error_codes") or []
    if codes and isinstance(codes[0], int):
        return codes[0]
    match = re.match(r"AADSTS(\d+)", str((result or {}).get("error_description", "")))
    return int(match.group(1)) if match else None


def _reason(result: Mapping[str, Any] | None, code: int | None) -> str:
    if result is None or result.get("error") == "no_saved_sign_in":
        return "No Microsoft sign-in is saved for this link."
    if code in _RELINK_REASONS:
        return _RELINK_REASONS[code]
    suffix = f" (AADSTS{code})" if code is not None else ""
    return f"Microsoft refused the saved sign-in: {result.get('error')}{suffix}."


def _other_failure(result: Mapping[str, Any], syncro_user_id: int) -> TokenError:
    error, code = result.get("error"), _aadsts_code(result)
    where = f"{error}" + (f" (AADSTS{code})" if code is not None else "")
    if error in _APP_ERRORS:
        return AppCredentialsRejected(
            f"Microsoft refused this app's credentials: {where}; check MS_CLIENT_ID and MS_CLIENT_SECRET",
            syncro_user_id=syncro_user_id,
        )
    return TokenUnavailable(
        f"the Microsoft identity platform could not issue a token for tech {syncro_user_id}: {where}",
        syncro_user_id=syncro_user_id,
    )


def _serialized(cache: msal.SerializableTokenCache) -> bytes:
    """The cache as compact JSON (MSAL indents it; rows are capped at 960 KiB)."""
    return json.dumps(json.loads(cache.serialize()), separators=(",", ":")).encode()
