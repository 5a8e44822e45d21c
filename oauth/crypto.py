"""Encryption at rest of the technicians' MSAL token caches (they hold refresh tokens).

A stored blob is ``b"<key id>:" + <Fernet token>``. The key id travels with the ciphertext so that,
during a key rotation, the old key still decrypts what it encrypted while every new write uses the
current key; ``reencrypt_token_caches`` then moves the remaining rows to the current key and the old
key can be dropped. The procedure is in docs/security.md.

Errors::

    TokenDecryptionError        a blob cannot be decrypted: its key id is not configured, the key
                                under that id is not the one that encrypted it, or the blob was altered
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken

from storage.errors import ConcurrencyConflict, NotFound

if TYPE_CHECKING:
    from settings import Settings
    from storage.token_caches import TokenCacheStore

log = logging.getLogger(__name__)

_SEPARATOR = b":"  # never in a key id (letters, digits, - and _) nor in a Fernet token (url-safe base64)


class TokenDecryptionError(Exception):
    """Raised by `TokenCipher.decrypt` when a blob cannot be decrypted; never returns garbage instead.

    ``key_id`` is the id written beside the ciphertext (None when the blob has no id at all).
    """

    def __init__(self, message: str, *, key_id: str | None) -> None:
        super().__init__(message)
        self.key_id = key_id


class TokenCipher:
    """Encrypts with the current key; decrypts with whichever configured key the blob names."""

    def __init__(self, current_key: bytes, current_id: str, old_keys: Mapping[str, bytes] | None = None) -> None:
        """Keys are Fernet keys (32 bytes, url-safe base64); raises ValueError on a malformed key or id."""
        old_keys = dict(old_keys or {})
        for key_id in (current_id, *old_keys):
            if not key_id or _SEPARATOR.decode() in key_id:
                raise ValueError(f"key id {key_id!r} is empty or contains ':'")
        if current_id in old_keys:
            raise ValueError(f"key id {current_id!r} is both the current key and an old key")
        self.current_id = current_id
        self._current = Fernet(current_key)
        self._by_id = {current_id: self._current, **{key_id: Fernet(key) for key_id, key in old_keys.items()}}

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenCipher:
        """TOKEN_ENCRYPTION_KEY under TOKEN_ENCRYPTION_KEY_ID, plus TOKEN_ENCRYPTION_OLD_KEYS."""
        return cls(settings.token_encryption_key, settings.token_encryption_key_id, settings.token_encryption_old_keys)

    def encrypt(self, data: bytes) -> bytes:
        return self.current_id.encode() + _SEPARATOR + self._current.encrypt(data)

    def decrypt(self, blob: bytes) -> bytes:
        """The plaintext; raises TokenDecryptionError saying what is wrong and what to configure."""
        key_id, token = _split(blob)
        fernet = self._by_id.get(key_id)
        if fernet is None:
            raise TokenDecryptionError(
                f"this token cache was encrypted with key id {key_id!r}, which is not configured: add that key "
                f"to TOKEN_ENCRYPTION_OLD_KEYS as {key_id}:<key> (or make it TOKEN_ENCRYPTION_KEY with "
                f"TOKEN_ENCRYPTION_KEY_ID={key_id}); configured ids: {', '.join(sorted(self._by_id))}",
                key_id=key_id,
            )
        try:
            return fernet.decrypt(token)
        except InvalidToken:
            raise TokenDecryptionError(
                f"key id {key_id!r} did not decrypt this token cache: the key configured under that id is not "
                "the one that encrypted it, or the stored data was altered",
                key_id=key_id,
            ) from None

    def needs_reencryption(self, blob: bytes) -> bool:
        """True when the blob is not under the current key (including a blob with no key id)."""
        try:
            key_id, _ = _split(blob)
        except TokenDecryptionError:
            return True
        return key_id != self.current_id


def _split(blob: bytes) -> tuple[str, bytes]:
    key_id, separator, token = bytes(blob).partition(_SEPARATOR)
    if not separator or not key_id or not token:
        raise TokenDecryptionError("this token cache is not in the '<key id>:<ciphertext>' format", key_id=None)
    try:
        return key_id.decode("ascii"), token
    except UnicodeDecodeError:
        raise TokenDecryptionError("this token cache has a key id that is not ASCII", key_id=None) from None


def reencrypt_token_caches(store: TokenCacheStore, cipher: TokenCipher) -> int:
    """Re-encrypt under the current key every cache still under an old key; returns how many were moved.

    Each row is replaced only if unchanged since it was read (ETag): a row another instance wrote
    meanwhile (a token refresh, a new sign-in) is skipped, because that writer used its own current
    key. Rows no configured key can decrypt are skipped and logged by tech id. Run it again until
    `caches_needing_reencryption` is empty before dropping an old key. Raises StorageError if storage fails.
    """
    moved = skipped = 0
    for record in store.list_caches():
        if not cipher.needs_reencryption(record.encrypted):
            continue
        try:
            plaintext = cipher.decrypt(record.encrypted)
        except TokenDecryptionError as error:
            skipped += 1
            log.warning("token cache of tech %s not re-encrypted: %s", record.syncro_user_id, error)
            continue
        try:
            store.save_cache(replace(record, encrypted=cipher.encrypt(plaintext)))
        except (ConcurrencyConflict, NotFound):  # rewritten or unlinked meanwhile: not ours to overwrite
            skipped += 1
            continue
        moved += 1
    log.info("token caches re-encrypted under key %s: %d moved, %d skipped", cipher.current_id, moved, skipped)
    return moved


def caches_needing_reencryption(store: TokenCacheStore, cipher: TokenCipher) -> list[int]:
    """The Syncro user ids whose cache is not under the current key: empty means old keys can go."""
    return [record.syncro_user_id for record in store.list_caches() if cipher.needs_reencryption(record.encrypted)]
