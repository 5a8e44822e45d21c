"""Every setting the app reads, typed and validated once.

`load_settings()` reads the environment (in Azure: app settings; locally: `local.settings.json`
``Values``, which the local host and `func start` put into the environment). A missing or
malformed setting raises `SettingsError` whose message is one line naming the setting and
showing what a valid value looks like. `docs/configuration.md` describes each one.

This module imports nothing heavy: it runs on every cold start.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

VERSION = "0.1.0"


class SettingsError(Exception):
    """A setting is missing or malformed. ``str()`` is one line fit for a person to act on."""

    def __init__(self, name: str, problem: str, example: str) -> None:
        super().__init__(f"setting {name} {problem}; a valid value looks like {example}")
        self.name = name


class ConflictPolicy(StrEnum):
    """What wins when an appointment changed on both sides since the last sync."""

    LATEST = "latest"
    SYNCRO = "syncro"
    OUTLOOK = "outlook"


@dataclass(frozen=True)
class StorageSettings:
    """Either a connection string (Azurite, or an account key) or identity-based endpoints."""

    connection_string: str | None
    table_endpoint: str | None
    queue_endpoint: str | None
    table_prefix: str = ""

    @property
    def uses_identity(self) -> bool:
        return self.connection_string is None


@dataclass(frozen=True)
class Settings:
    storage: StorageSettings
    public_base_url: str
    ms_client_id: str
    ms_client_secret: str = field(repr=False)
    ms_authority: str
    graph_base_url: str
    syncro_base_url: str
    syncro_api_token: str = field(repr=False)
    syncro_webhook_secret: str = field(repr=False)
    token_encryption_key: bytes = field(repr=False)
    # The current key's id is written beside every ciphertext, so old keys can still decrypt
    # during a rotation (docs/security.md).
    token_encryption_key_id: str
    token_encryption_old_keys: dict[str, bytes] = field(repr=False)
    allow_personal_accounts: bool
    admin_emails: frozenset[str]  # lower-case
    ca_bundle: str | None
    sync_queue: str
    window_past_days: int
    window_future_days: int
    conflict_policy: ConflictPolicy
    max_request_body_bytes: int
    app_version: str


# --- parsing helpers: each names the setting and the shape it wants -------------------------


def _required(env: Mapping[str, str], name: str, example: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(name, "is missing", example)
    return value


def _url(env: Mapping[str, str], name: str, example: str, *, default: str | None = None, https: bool = False) -> str:
    raw = env.get(name, "").strip() or default
    if raw is None:
        raise SettingsError(name, "is missing", example)
    return _check_url(name, raw, example, https=https)


def _check_url(name: str, raw: str, example: str, *, https: bool) -> str:
    """A base URL without query or fragment; https required unless the host is loopback."""
    parts = urlsplit(raw)
    allowed = ("https",) if https and not _is_loopback(parts.hostname) else ("http", "https")
    if parts.scheme not in allowed or not parts.netloc or parts.query or parts.fragment:
        raise SettingsError(name, f"is not a valid {'https ' if https else ''}base URL ({raw!r})", example)
    return raw.rstrip("/")


def _is_loopback(host: str | None) -> bool:
    return host in ("localhost", "127.0.0.1", "::1")


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
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


def _choice(env: Mapping[str, str], name: str, kind: Callable[[str], T], default: T, example: str) -> T:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise SettingsError(name, f"is {raw!r}", example) from None


_KEY_EXAMPLE = "a Fernet key: 32 random bytes in url-safe base64 (make key prints one)"
_KEY_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def _encryption_key(env: Mapping[str, str]) -> bytes:
    return _fernet_key("TOKEN_ENCRYPTION_KEY", _required(env, "TOKEN_ENCRYPTION_KEY", _KEY_EXAMPLE))


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


def _encryption_key_id(env: Mapping[str, str]) -> str:
    return _key_id("TOKEN_ENCRYPTION_KEY_ID", env.get("TOKEN_ENCRYPTION_KEY_ID", "").strip() or "1", "2")


def _old_encryption_keys(env: Mapping[str, str], current_id: str) -> dict[str, bytes]:
    """``id:key`` pairs, comma-separated: keys that decrypt what they encrypted before a rotation."""
    name, example = "TOKEN_ENCRYPTION_OLD_KEYS", "1:<the previous TOKEN_ENCRYPTION_KEY>"
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


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise SettingsError(name, f"is {raw!r}", "true or false")


def _emails(env: Mapping[str, str], name: str) -> frozenset[str]:
    items = [part.strip() for part in env.get(name, "").replace(";", ",").split(",") if part.strip()]
    for item in items:
        if "@" not in item or " " in item:
            raise SettingsError(
                name, f"holds {item!r}, which is not an email address", "ann@msp.example,bo@msp.example"
            )
    return frozenset(item.lower() for item in items)


def _storage(env: Mapping[str, str]) -> StorageSettings:
    prefix = env.get("TABLE_PREFIX", "").strip()
    if prefix and not (prefix.isalnum() and prefix[0].isalpha() and len(prefix) <= 20):
        raise SettingsError("TABLE_PREFIX", f"is {prefix!r}", "letters and digits, starting with a letter (e.g. dev1)")
    connection = env.get("AzureWebJobsStorage", "").strip()
    if connection:
        if connection != "UseDevelopmentStorage=true" and "AccountName=" not in connection:
            raise SettingsError(
                "AzureWebJobsStorage",
                "is not a storage connection string",
                "DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...",
            )
        return StorageSettings(connection, None, None, prefix)
    account = env.get("AzureWebJobsStorage__accountName", "").strip()
    tables = env.get("AzureWebJobsStorage__tableServiceUri", "").strip()
    queues = env.get("AzureWebJobsStorage__queueServiceUri", "").strip()
    if account:
        tables = tables or f"https://{account}.table.core.windows.net"
        queues = queues or f"https://{account}.queue.core.windows.net"
    if not (tables and queues):
        raise SettingsError(
            "AzureWebJobsStorage",
            "is missing (and no AzureWebJobsStorage__accountName is set)",
            "a connection string, or AzureWebJobsStorage__accountName=mystorageacct for managed identity",
        )
    return StorageSettings(
        None,
        _check_url("AzureWebJobsStorage__tableServiceUri", tables, "https://acct.table.core.windows.net", https=True),
        _check_url("AzureWebJobsStorage__queueServiceUri", queues, "https://acct.queue.core.windows.net", https=True),
        prefix,
    )


def _ca_bundle(env: Mapping[str, str]) -> str | None:
    raw = env.get("CA_BUNDLE", "").strip()
    if raw and not Path(raw).is_file():
        raise SettingsError(
            "CA_BUNDLE", f"names {raw!r}, which is not a file", "/path/to/ca.pem (leave unset in Azure)"
        )
    return raw or None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raises SettingsError on the first bad one."""
    env = os.environ if env is None else env
    return Settings(
        storage=_storage(env),
        public_base_url=_url(env, "PUBLIC_BASE_URL", "https://my-sync.azurewebsites.net", https=True),
        ms_client_id=_required(env, "MS_CLIENT_ID", "the app registration's Application (client) ID, a GUID"),
        ms_client_secret=_required(env, "MS_CLIENT_SECRET", "a client secret value of that app registration"),
        ms_authority=_url(
            env,
            "MS_AUTHORITY",
            "https://login.microsoftonline.com/common",
            default="https://login.microsoftonline.com/common",
            https=True,
        ),
        graph_base_url=_url(
            env,
            "GRAPH_BASE_URL",
            "https://graph.microsoft.com/v1.0",
            default="https://graph.microsoft.com/v1.0",
            https=True,
        ),
        syncro_base_url=_url(env, "SYNCRO_BASE_URL", "https://yoursubdomain.syncromsp.com/api/v1", https=True),
        syncro_api_token=_required(env, "SYNCRO_API_TOKEN", "an API token from Syncro (Admin > API Tokens)"),
        syncro_webhook_secret=_required(
            env,
            "SYNCRO_WEBHOOK_SECRET",
            "a long random string (python -c 'import secrets; print(secrets.token_urlsafe(32))')",
        ),
        token_encryption_key=_encryption_key(env),
        token_encryption_key_id=(key_id := _encryption_key_id(env)),
        token_encryption_old_keys=_old_encryption_keys(env, key_id),
        allow_personal_accounts=_flag(env, "ALLOW_PERSONAL_ACCOUNTS", default=False),
        admin_emails=_emails(env, "ADMIN_EMAILS"),
        ca_bundle=_ca_bundle(env),
        sync_queue=env.get("SYNC_QUEUE_NAME", "").strip() or "sync-jobs",
        window_past_days=_int(env, "SYNC_WINDOW_PAST_DAYS", 60, low=1, high=365),
        window_future_days=_int(env, "SYNC_WINDOW_FUTURE_DAYS", 60, low=1, high=730),
        conflict_policy=_choice(
            env, "CONFLICT_POLICY", ConflictPolicy, ConflictPolicy.LATEST, "latest, syncro or outlook"
        ),
        max_request_body_bytes=_int(env, "MAX_REQUEST_BODY_BYTES", 1024 * 1024, low=1024, high=100 * 1024 * 1024),
        app_version=env.get("APP_VERSION", "").strip() or VERSION,
    )


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use (raises SettingsError if invalid)."""
    return load_settings()
