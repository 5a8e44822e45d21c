"""Table keys that are safe for any Graph or Syncro id.

Azure Table keys may not contain ``/ \\ # ?`` or control characters (U+0000-U+001F,
U+007F-U+009F). Graph ids are case-sensitive and may contain ``/``, ``+`` and ``=``; we
percent-encode only the forbidden characters and ``%`` itself, so keys stay readable,
reversible and case-exact.
"""

from __future__ import annotations

MAX_KEY_LENGTH = 1024  # characters, Azure Table limit for PartitionKey and RowKey

_FORBIDDEN = set("/\\#?%") | {chr(c) for c in range(0x20)} | {chr(c) for c in range(0x7F, 0xA0)}


def encode_key(value: str) -> str:
    """A table key for ``value``; raises ValueError if the result exceeds the key length limit."""
    encoded = "".join(
        "".join(f"%{byte:02X}" for byte in char.encode("utf-8")) if char in _FORBIDDEN else char for char in value
    )
    if len(encoded) > MAX_KEY_LENGTH:
        raise ValueError(f"key too long for Table Storage ({len(encoded)} > {MAX_KEY_LENGTH} characters)")
    return encoded


def decode_key(key: str) -> str:
    """The original value of an ``encode_key`` result."""
    from urllib.parse import unquote

    return unquote(key, errors="strict")
