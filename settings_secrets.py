"""The secret settings: the webhook secret, checked to be unguessable, and the token encryption
keys (the current one, its id, and the old ones a rotation keeps for decrypting).
The values never appear in an error.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from settings_values import SettingsError, check_resolved, required

_WEBHOOK_SECRET_EXAMPLE = "what `make key` prints (44 random url-safe characters; use it as it is)"
# The smallest alphabet a secret's characters come from, and the bits each character then carries
# at most: a secret of 22 base64url characters or 32 hex digits is the least that reaches 128.
_ALPHABETS = (
    (frozenset("0123456789"), 10),
    (frozenset("0123456789abcdef"), 16),
    (frozenset("0123456789ABCDEF"), 16),
    (frozenset("0123456789abcdefghijklmnopqrstuvwxyz"), 36),
    (frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"), 36),
    (frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"), 62),
    (frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"), 64),
)
MIN_WEBHOOK_SECRET_BITS = 128


def secret_bits(value: str) -> float | None:
    """At most how many bits of randomness ``value`` holds (length x bits per character of the
    smallest alphabet it fits, base64 padding ignored), or None when it has characters outside
    url-safe base64 (it is a URL path segment: ``/``, ``%`` or ``?`` would break the URL)."""
    import math

    body = value.rstrip("=")
    for alphabet, size in _ALPHABETS:
        if set(body) <= alphabet:
            return len(body) * math.log2(size)
    return None


def webhook_secret(env: Mapping[str, str]) -> str:
    """SYNCRO_WEBHOOK_SECRET: the credential in the Notification Center URL, so it must be
    unguessable: at least 128 bits. The value is never part of the error."""
    name = "SYNCRO_WEBHOOK_SECRET"
    value = required(env, name, _WEBHOOK_SECRET_EXAMPLE)
    bits = secret_bits(value)
    if bits is None:
        raise SettingsError(name, "has characters other than letters, digits, '-' and '_'", _WEBHOOK_SECRET_EXAMPLE)
    if bits < MIN_WEBHOOK_SECRET_BITS:
        raise SettingsError(
            name,
            f"is too short to be unguessable (at most {int(bits)} bits of randomness; at least "
            f"{MIN_WEBHOOK_SECRET_BITS} bits are needed)",
            _WEBHOOK_SECRET_EXAMPLE,
        )
    return value


_KEY_EXAMPLE = "a Fernet key: 32 random bytes in url-safe base64 (make key prints one)"
_KEY_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def encryption_key(env: Mapping[str, str]) -> bytes:
    return _fernet_key("TOKEN_ENCRYPTION_KEY", required(env, "TOKEN_ENCRYPTION_KEY", _KEY_EXAMPLE))


def _fernet_key(name: str, raw: str) -> bytes:
    try:
        key = base64.b64decode(raw.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise SettingsError(name, "is not base64", _KEY_EXAMPLE) from None
    if len(key) != 32:
        raise SettingsError(name, f"decodes to {len(key)} bytes, not 32", _KEY_EXAMPLE)
    return raw.encode("ascii")


def _key_id(name: str, raw: str, example: str) -> str:
    if not raw or len(raw) > 16 or not set(raw) <= _KEY_ID_CHARS:
        raise SettingsError(name, f"has a key id {raw!r} that is not 1-16 letters, digits, - or _", example)
    return raw


def encryption_key_id(env: Mapping[str, str]) -> str:
    return _key_id("TOKEN_ENCRYPTION_KEY_ID", env.get("TOKEN_ENCRYPTION_KEY_ID", "").strip() or "1", "2")


def old_encryption_keys(env: Mapping[str, str], current_id: str) -> dict[str, bytes]:
    """``id:key`` pairs, comma-separated: keys that decrypt what they encrypted before a rotation."""
    name, example = "TOKEN_ENCRYPTION_OLD_KEYS", "1:<the previous TOKEN_ENCRYPTION_KEY>"
    check_resolved(name, env.get(name, "").strip(), example)
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in env.get(name, "").split(","))):
        key_id, colon, raw = item.partition(":")
        if not colon:
            raise SettingsError(name, "holds an entry that is not id:key", example)
        key_id = _key_id(name, key_id.strip(), example)
        if key_id == current_id or key_id in keys:
            raise SettingsError(name, f"repeats the key id {key_id!r}", example)
        keys[key_id] = _fernet_key(name, raw.strip())
    return keys
