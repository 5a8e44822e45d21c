"""TokenCipher: key ids beside the ciphertext, loud failures, and key rotation on Azurite."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

from oauth.crypto import TokenCipher, TokenDecryptionError, caches_needing_reencryption, reencrypt_token_caches
from settings import StorageSettings, load_settings
from storage import StorageAccount
from storage.errors import ConcurrencyConflict
from storage.token_caches import TokenCacheRecord, TokenCacheStore
from tests.conftest import app_settings_env

KEY_1 = Fernet.generate_key()
KEY_2 = Fernet.generate_key()
SECRET = b'{"RefreshToken": {"x": {"secret": "0.AAAA-refresh-token-value"}}}'


def test_a_blob_names_its_key_and_holds_no_plaintext() -> None:
    cipher = TokenCipher(KEY_1, "k1", {})
    blob = cipher.encrypt(SECRET)
    assert blob.startswith(b"k1:")
    assert b"refresh-token-value" not in blob
    assert cipher.decrypt(blob) == SECRET
    assert cipher.encrypt(SECRET) != blob  # a fresh IV every time


def test_from_settings_uses_the_current_key_and_its_id() -> None:
    env = app_settings_env(
        "UseDevelopmentStorage=true",
        TOKEN_ENCRYPTION_KEY=KEY_2.decode(),
        TOKEN_ENCRYPTION_KEY_ID="2",
        TOKEN_ENCRYPTION_OLD_KEYS=f"1:{KEY_1.decode()}",
    )
    cipher = TokenCipher.from_settings(load_settings(env))
    assert cipher.encrypt(SECRET).startswith(b"2:")
    assert cipher.decrypt(TokenCipher(KEY_1, "1").encrypt(SECRET)) == SECRET


def test_a_wrong_key_under_the_same_id_fails_loudly() -> None:
    blob = TokenCipher(KEY_1, "1").encrypt(SECRET)
    with pytest.raises(TokenDecryptionError, match="key id '1' did not decrypt") as raised:
        TokenCipher(KEY_2, "1").decrypt(blob)
    assert raised.value.key_id == "1"


def test_tampered_ciphertext_fails_loudly() -> None:
    blob = bytearray(TokenCipher(KEY_1, "1").encrypt(SECRET))
    blob[20] ^= 0x01
    with pytest.raises(TokenDecryptionError, match="altered"):
        TokenCipher(KEY_1, "1").decrypt(bytes(blob))


def test_an_unknown_key_id_says_which_and_where_to_configure_it() -> None:
    blob = TokenCipher(KEY_1, "old7").encrypt(SECRET)
    with pytest.raises(TokenDecryptionError) as raised:
        TokenCipher(KEY_2, "2", {"1": KEY_1}).decrypt(blob)
    message = str(raised.value)
    assert "'old7'" in message and "TOKEN_ENCRYPTION_OLD_KEYS as old7:<key>" in message
    assert "configured ids: 1, 2" in message
    assert raised.value.key_id == "old7"


@pytest.mark.parametrize("blob", [b"", b"no-separator", b":token-without-id", b"1:", b"\xff:abc"])
def test_malformed_blobs_fail_loudly_and_count_as_needing_reencryption(blob: bytes) -> None:
    cipher = TokenCipher(KEY_1, "1")
    with pytest.raises(TokenDecryptionError):
        cipher.decrypt(blob)
    assert cipher.needs_reencryption(blob)


def test_bad_keys_and_ids_are_refused_at_construction() -> None:
    with pytest.raises(ValueError):
        TokenCipher(b"not-a-fernet-key", "1")
    with pytest.raises(ValueError, match="':'"):
        TokenCipher(KEY_1, "a:b")
    with pytest.raises(ValueError, match="both"):
        TokenCipher(KEY_1, "1", {"1": KEY_2})


# --- rotation, on Azurite -----------------------------------------------------------------------------------


@pytest.fixture
def store(storage_connection_string: str) -> TokenCacheStore:
    prefix = "t" + uuid.uuid4().hex[:10]
    return StorageAccount(StorageSettings(storage_connection_string, None, None, prefix)).token_caches


def _put(store: TokenCacheStore, cipher: TokenCipher, syncro_user_id: int) -> None:
    store.save_cache(
        TokenCacheRecord(syncro_user_id, cipher.encrypt(SECRET + b"%d" % syncro_user_id), datetime.now(UTC))
    )


def test_rotation_moves_every_cache_to_the_new_key_and_the_old_key_can_then_go(store: TokenCacheStore) -> None:
    key_1 = TokenCipher(KEY_1, "1")
    for tech in (101, 102, 5560138523):
        _put(store, key_1, tech)

    rotating = TokenCipher(KEY_2, "2", {"1": KEY_1})  # new key current, old key kept for decryption
    assert all(rotating.decrypt(r.encrypted).startswith(SECRET) for r in store.list_caches())
    _put(store, rotating, 103)  # a sign-in during the rotation is written under the new key
    assert sorted(caches_needing_reencryption(store, rotating)) == [101, 102, 5560138523]

    assert reencrypt_token_caches(store, rotating) == 3
    assert caches_needing_reencryption(store, rotating) == []
    assert reencrypt_token_caches(store, rotating) == 0  # idempotent

    only_new = TokenCipher(KEY_2, "2")  # TOKEN_ENCRYPTION_OLD_KEYS emptied
    plaintexts = {r.syncro_user_id: only_new.decrypt(r.encrypted) for r in store.list_caches()}
    assert plaintexts == {tech: SECRET + b"%d" % tech for tech in (101, 102, 103, 5560138523)}
    with pytest.raises(TokenDecryptionError, match="'2'"):
        key_1.decrypt(store.get_cache(101).encrypted)


class _RacingStore(TokenCacheStore):
    """A store where another instance rewrites tech ``racer``'s cache between our read and our write."""

    def __init__(self, inner: TokenCacheStore, racer: int) -> None:
        self.__dict__.update(inner.__dict__)
        self._racer = racer

    def save_cache(self, record: TokenCacheRecord) -> TokenCacheRecord:
        if record.syncro_user_id == self._racer:
            raise ConcurrencyConflict("tokencaches", str(record.syncro_user_id))
        return super().save_cache(record)


def test_rotation_skips_a_cache_rewritten_meanwhile_and_one_no_key_can_read(store: TokenCacheStore) -> None:
    key_1 = TokenCipher(KEY_1, "1")
    for tech in (201, 202):
        _put(store, key_1, tech)
    _put(store, TokenCipher(Fernet.generate_key(), "lost"), 203)  # its key is not configured anywhere
    rotating = TokenCipher(KEY_2, "2", {"1": KEY_1})

    assert reencrypt_token_caches(_RacingStore(store, racer=202), rotating) == 1
    assert sorted(caches_needing_reencryption(store, rotating)) == [202, 203]
    assert reencrypt_token_caches(store, rotating) == 1  # the next run picks up the one that raced
    assert caches_needing_reencryption(store, rotating) == [203]
