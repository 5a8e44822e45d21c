"""Reading one setting: `SettingsError`, and a reader for each shape of value (a required text,
a URL, a whole number, a choice, a flag, a list of GUIDs). Each reader names the setting and the
shape it wants in its error. `settings` and `settings_secrets` build on these.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


class SettingsError(Exception):
    """A setting is missing or malformed. ``str()`` is one line fit for a person to act on."""

    def __init__(self, name: str, problem: str, example: str) -> None:
        super().__init__(f"setting {name} {problem}; a valid value looks like {example}")
        self.name = name


def required(env: Mapping[str, str], name: str, example: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(name, "is missing", example)
    check_resolved(name, value, example)
    return value


def check_resolved(name: str, value: str, example: str) -> None:
    """Azure passes a Key Vault reference it could not resolve through as its literal text."""
    if value.startswith("@Microsoft.KeyVault("):
        raise SettingsError(
            name,
            "is a Key Vault reference Azure could not resolve (does the secret exist, and may the app's "
            "identity read it? see docs/troubleshooting.md)",
            example,
        )


def url(env: Mapping[str, str], name: str, example: str, *, default: str | None = None, https: bool = False) -> str:
    raw = env.get(name, "").strip() or default
    if raw is None:
        raise SettingsError(name, "is missing", example)
    return check_url(name, raw, example, https=https)


def check_url(name: str, raw: str, example: str, *, https: bool) -> str:
    """A base URL without query or fragment; https required unless the host is loopback."""
    parts = urlsplit(raw)
    allowed = ("https",) if https and not _is_loopback(parts.hostname) else ("http", "https")
    if parts.scheme not in allowed or not parts.netloc or parts.query or parts.fragment:
        raise SettingsError(name, f"is not a valid {'https ' if https else ''}base URL ({raw!r})", example)
    return raw.rstrip("/")


def _is_loopback(host: str | None) -> bool:
    return host in ("localhost", "127.0.0.1", "::1")


def integer(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(name, f"is not a whole number ({raw!r})", f"{default}") from None
    if not low <= value <= high:
        raise SettingsError(name, f"is {value}, outside {low}..{high}", f"{default}")
    return value


def choice(env: Mapping[str, str], name: str, kind: Callable[[str], T], default: T, example: str) -> T:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise SettingsError(name, f"is {raw!r}", example) from None


def flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise SettingsError(name, f"is {raw!r}", "true or false")


GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def guids(env: Mapping[str, str], name: str, example: str) -> frozenset[str]:
    raw = env.get(name, "").strip()
    check_resolved(name, raw, example)
    items = [part.strip().lower() for part in raw.replace(";", ",").split(",") if part.strip()]
    for item in items:
        if not GUID.match(item):
            raise SettingsError(name, f"holds {item!r}, which is not an id (a GUID)", example)
    return frozenset(items)
