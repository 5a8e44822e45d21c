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
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

VERSION = "0.1.0"
# The tenant every personal Microsoft account (outlook.com, hotmail.com, live.com) belongs to.
PERSONAL_ACCOUNTS_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
# The Entra app role that makes a signed-in user an admin (declared in the app registration).
ADMIN_APP_ROLE = "SyncAdmin"


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
class SyncOptions:
    """The admin's choices for what the sync carries (docs/sync.md "Policies")."""

    import_existing: bool = False  # Outlook events made before the link go to Syncro too
    import_existing_days: int = 14  # ... those starting from today to this many days ahead
    recurring: bool = True  # occurrences of recurring Outlook events sync one by one
    appointment_type_id: int | None = None  # for appointments created in Syncro from Outlook
    customer_id: int | None = None  # ditto
    syncro_web_url: str = ""  # e.g. https://acme.syncromsp.com, for ticket links on Outlook events
    poll_requests_per_minute: int = 60  # the poller's share of Syncro's 180 a minute
    requests_per_minute: int = 150  # every instance and caller together (sync.budget.SharedBudget)


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
    # Sign-in is bound to these tenants (lower-case GUIDs): a Microsoft account is its tid + oid in one
    # of them (docs/security.md). From MS_AUTHORITY's tenant, or ALLOWED_TENANT_IDS.
    allowed_tenant_ids: frozenset[str]
    # Admins: the app role ADMIN_APP_ROLE in the ID token's ``roles``, or one of these groups in ``groups``.
    admin_group_ids: frozenset[str]  # lower-case GUIDs
    ca_bundle: str | None
    sync_queue: str
    window_past_days: int
    window_future_days: int
    conflict_policy: ConflictPolicy
    sync: SyncOptions
    max_request_body_bytes: int
    app_version: str


# --- parsing helpers: each names the setting and the shape it wants -------------------------


def _required(env: Mapping[str, str], name: str, example: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(name, "is missing", example)
    _check_resolved(name, value, example)
    return value


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


def _webhook_secret(env: Mapping[str, str]) -> str:
    """SYNCRO_WEBHOOK_SECRET: the credential in the Notification Center URL, so it must be
    unguessable: at least 128 bits. The value is never part of the error."""
    name = "SYNCRO_WEBHOOK_SECRET"
    value = _required(env, name, _WEBHOOK_SECRET_EXAMPLE)
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


def _check_resolved(name: str, value: str, example: str) -> None:
    """Azure passes a Key Vault reference it could not resolve through as its literal text."""
    if value.startswith("@Microsoft.KeyVault("):
        raise SettingsError(
            name,
            "is a Key Vault reference Azure could not resolve (does the secret exist, and may the app's "
            "identity read it? see docs/troubleshooting.md)",
            example,
        )


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
    _check_resolved(name, env.get(name, "").strip(), example)
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


_AUTHORITY_EXAMPLE = "https://login.microsoftonline.com/<your tenant id> (Entra ID > Overview > Tenant ID)"
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _guids(env: Mapping[str, str], name: str, example: str) -> frozenset[str]:
    raw = env.get(name, "").strip()
    _check_resolved(name, raw, example)
    items = [part.strip().lower() for part in raw.replace(";", ",").split(",") if part.strip()]
    for item in items:
        if not _GUID.match(item):
            raise SettingsError(name, f"holds {item!r}, which is not an id (a GUID)", example)
    return frozenset(items)


def _sign_in_tenants(env: Mapping[str, str]) -> tuple[str, frozenset[str]]:
    """MS_AUTHORITY and the tenants whose accounts may sign in. A tenant-specific authority binds
    sign-in to its tenant; ``/common`` or ``/organizations`` lets any tenant's accounts in, so it
    is refused unless ALLOWED_TENANT_IDS lists the tenants we accept (checked on every callback)."""
    if env.get("ALLOW_PERSONAL_ACCOUNTS", "").strip().lower() in ("true", "1", "yes"):
        raise SettingsError(
            "ALLOW_PERSONAL_ACCOUNTS",
            "is no longer supported: techs link a work account of the MSP's own tenant (remove the setting)",
            "no value",
        )
    authority = _url(env, "MS_AUTHORITY", _AUTHORITY_EXAMPLE, https=True)
    tenants_example = "your tenant id, a GUID (several comma-separated)"
    allowed = _guids(env, "ALLOWED_TENANT_IDS", tenants_example)
    if PERSONAL_ACCOUNTS_TENANT_ID in allowed:
        raise SettingsError(
            "ALLOWED_TENANT_IDS", "lists the tenant of all personal Microsoft accounts", tenants_example
        )
    segment = urlsplit(authority).path.rstrip("/").rsplit("/", 1)[-1].lower()
    if segment in ("consumers", PERSONAL_ACCOUNTS_TENANT_ID):
        raise SettingsError("MS_AUTHORITY", "is the authority of personal Microsoft accounts", _AUTHORITY_EXAMPLE)
    if _GUID.match(segment):
        if allowed and segment not in allowed:
            raise SettingsError(
                "ALLOWED_TENANT_IDS", f"does not list {segment}, the tenant MS_AUTHORITY names", segment
            )
        return authority, allowed or frozenset({segment})
    if allowed:
        return authority, allowed
    if segment in ("common", "organizations", ""):
        raise SettingsError(
            "MS_AUTHORITY",
            f"is {authority!r}, which lets an account of any Microsoft tenant sign in; set it to your own "
            "tenant's authority, or list the tenants you allow in ALLOWED_TENANT_IDS",
            _AUTHORITY_EXAMPLE,
        )
    raise SettingsError(
        "MS_AUTHORITY",
        f"names the tenant {segment!r} by domain; give its tenant id (a GUID) instead",
        _AUTHORITY_EXAMPLE,
    )


def _admin_groups(env: Mapping[str, str]) -> frozenset[str]:
    if env.get("ADMIN_EMAILS", "").strip():
        raise SettingsError(
            "ADMIN_EMAILS",
            f"is no longer read: admins are users given the app role {ADMIN_APP_ROLE} (docs/deploy.md), or members "
            "of the groups in ADMIN_GROUP_IDS; remove ADMIN_EMAILS",
            "no value",
        )
    return _guids(env, "ADMIN_GROUP_IDS", "the object id of an Entra group, a GUID (several comma-separated)")


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


def _optional_id(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(name, f"is {raw!r}, not a Syncro id", "5560138523 (or leave it empty)")
    return int(raw)


def _sync_options(env: Mapping[str, str]) -> SyncOptions:
    base = _url(env, "SYNCRO_BASE_URL", "https://yoursubdomain.syncromsp.com/api/v1", https=True)
    web = _url(
        env, "SYNCRO_WEB_URL", "https://yoursubdomain.syncromsp.com", default=base.removesuffix("/api/v1"), https=True
    )
    return SyncOptions(
        import_existing=_flag(env, "IMPORT_EXISTING_EVENTS", default=False),
        import_existing_days=_int(env, "IMPORT_EXISTING_DAYS", 14, low=1, high=730),
        recurring=_flag(env, "SYNC_RECURRING_EVENTS", default=True),
        appointment_type_id=_optional_id(env, "SYNCRO_APPOINTMENT_TYPE_ID"),
        customer_id=_optional_id(env, "SYNCRO_CUSTOMER_ID"),
        syncro_web_url=web,
        poll_requests_per_minute=_int(env, "SYNCRO_POLL_REQUESTS_PER_MINUTE", 60, low=1, high=180),
        # The whole app's budget, across instances: under Syncro's 180 for clock skew and the MSP's
        # other integrations on the same account (docs/budget.md).
        requests_per_minute=_int(env, "SYNCRO_REQUESTS_PER_MINUTE", 150, low=10, high=180),
    )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raises SettingsError on the first bad one."""
    env = os.environ if env is None else env
    settings = Settings(
        storage=_storage(env),
        public_base_url=_url(env, "PUBLIC_BASE_URL", "https://my-sync.azurewebsites.net", https=True),
        ms_client_id=_required(env, "MS_CLIENT_ID", "the app registration's Application (client) ID, a GUID"),
        ms_client_secret=_required(env, "MS_CLIENT_SECRET", "a client secret value of that app registration"),
        ms_authority=(bound := _sign_in_tenants(env))[0],
        graph_base_url=_url(
            env,
            "GRAPH_BASE_URL",
            "https://graph.microsoft.com/v1.0",
            default="https://graph.microsoft.com/v1.0",
            https=True,
        ),
        syncro_base_url=_url(env, "SYNCRO_BASE_URL", "https://yoursubdomain.syncromsp.com/api/v1", https=True),
        syncro_api_token=_required(env, "SYNCRO_API_TOKEN", "an API token from Syncro (Admin > API Tokens)"),
        syncro_webhook_secret=_webhook_secret(env),
        token_encryption_key=_encryption_key(env),
        token_encryption_key_id=(key_id := _encryption_key_id(env)),
        token_encryption_old_keys=_old_encryption_keys(env, key_id),
        allowed_tenant_ids=bound[1],
        admin_group_ids=_admin_groups(env),
        ca_bundle=_ca_bundle(env),
        sync_queue=env.get("SYNC_QUEUE_NAME", "").strip() or "sync-jobs",
        window_past_days=_int(env, "SYNC_WINDOW_PAST_DAYS", 60, low=1, high=365),
        window_future_days=_int(env, "SYNC_WINDOW_FUTURE_DAYS", 60, low=1, high=730),
        conflict_policy=_choice(
            env, "CONFLICT_POLICY", ConflictPolicy, ConflictPolicy.LATEST, "latest, syncro or outlook"
        ),
        sync=_sync_options(env),
        max_request_body_bytes=_int(env, "MAX_REQUEST_BODY_BYTES", 1024 * 1024, low=1024, high=100 * 1024 * 1024),
        app_version=env.get("APP_VERSION", "").strip() or VERSION,
    )
    # Read again where they are used (the timers are indexed before settings are read), but
    # checked here too, so health and the local host name a bad one like any other setting.
    load_realtime_settings(env)
    load_timer_schedules(env)
    return settings


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use (raises SettingsError if invalid)."""
    return load_settings()


# --- real time: subscriptions and the sync-request coalescing (realtime/, sync/subscriptions.py) ---


@dataclass(frozen=True)
class RealtimeSettings:
    """Settings of the webhooks and Graph subscriptions (docs/configuration.md, docs/realtime.md)."""

    # Graph's maximum for Outlook events is 10,080 minutes (older documentation said 4,230).
    subscription_lifetime_minutes: int
    # Upkeep renews a subscription once less than this is left (the upkeep timer runs hourly).
    subscription_renew_margin_minutes: int
    # Sync requests for one tech within this many seconds, while the job they queued has not started,
    # make one queue message.
    sync_coalesce_seconds: int


def load_realtime_settings(env: Mapping[str, str] | None = None) -> RealtimeSettings:
    """Read and validate the real-time settings; raises SettingsError on the first bad one."""
    env = os.environ if env is None else env
    lifetime = _int(env, "SUBSCRIPTION_LIFETIME_MINUTES", 10080, low=45, high=10080)
    margin = _int(env, "SUBSCRIPTION_RENEW_MARGIN_MINUTES", 1440, low=5, high=10080)
    if margin >= lifetime:
        raise SettingsError(
            "SUBSCRIPTION_RENEW_MARGIN_MINUTES",
            f"is {margin}, not less than SUBSCRIPTION_LIFETIME_MINUTES ({lifetime})",
            "1440 (renew one day before expiry)",
        )
    return RealtimeSettings(
        subscription_lifetime_minutes=lifetime,
        subscription_renew_margin_minutes=margin,
        sync_coalesce_seconds=_int(env, "SYNC_COALESCE_SECONDS", 30, low=1, high=3600),
    )


_realtime_cache: list[tuple[Settings, RealtimeSettings]] = []


def get_realtime_settings() -> RealtimeSettings:
    """The process-wide real-time settings, read again whenever `get_settings` was reset."""
    current = get_settings()
    if not _realtime_cache or _realtime_cache[0][0] is not current:
        _realtime_cache[:] = [(current, load_realtime_settings())]
    return _realtime_cache[0][1]


# --- timer schedules (realtime/timers.py, blueprints/background.py) ----------------------------
# Read when function_app.py is indexed (the trigger decorators need them then); Azure restarts the
# app when an app setting changes, so a new schedule takes effect at once.

_NCRONTAB_FIELDS = (  # (name, low, high, names accepted in place of numbers)
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")),
    ("day-of-week", 0, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)


@dataclass(frozen=True)
class TimerSchedules:
    """Six-field NCRONTAB schedules (``second minute hour day month day-of-week``, UTC)."""

    syncro_poll: str = "0 * * * * *"  # every minute
    reconcile: str = "30 */15 * * * *"  # every 15 minutes, half a minute after that minute's poll
    subscription_upkeep: str = "0 7 * * * *"  # hourly
    cleanup: str = "0 40 3 * * *"  # daily, 03:40 UTC


def _ncrontab_value(text: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        value = int(text)
        return value if low <= value <= high else None
    upper = text.upper()
    return names.index(upper) + low if upper in names else None


def _ncrontab_field_ok(text: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    for item in text.split(","):
        span, slash, step = item.partition("/")
        if slash and not (step.isdigit() and 0 < int(step) <= high):
            return False
        if span == "*":
            continue
        first, dash, last = span.partition("-")
        start = _ncrontab_value(first, low, high, names)
        end = _ncrontab_value(last, low, high, names) if dash else start
        if start is None or end is None or start > end:
            return False
    return True


def check_ncrontab(name: str, raw: str) -> str:
    """``raw`` if it is a six-field NCRONTAB expression; SettingsError naming ``name`` otherwise."""
    fields = raw.split()
    example = '"0 */5 * * * *" (second minute hour day month day-of-week: every five minutes)'
    if len(fields) != 6:
        raise SettingsError(name, f"has {len(fields)} fields ({raw!r}), not six", example)
    for text, (field_name, low, high, names) in zip(fields, _NCRONTAB_FIELDS, strict=True):
        if not _ncrontab_field_ok(text, low, high, names):
            problem = f"has a {field_name} field {text!r} that is not *, {low}..{high}, a-b, a,b or */n"
            raise SettingsError(name, problem, example)
    return " ".join(fields)


def load_timer_schedules(env: Mapping[str, str] | None = None) -> TimerSchedules:
    """The timers' schedules from SYNCRO_POLL_SCHEDULE, RECONCILE_SCHEDULE,
    SUBSCRIPTION_UPKEEP_SCHEDULE and CLEANUP_SCHEDULE; raises SettingsError on a bad one."""
    env = os.environ if env is None else env
    defaults = TimerSchedules()

    def read(name: str, default: str) -> str:
        raw = env.get(name, "").strip()
        return check_ncrontab(name, raw) if raw else default

    return TimerSchedules(
        syncro_poll=read("SYNCRO_POLL_SCHEDULE", defaults.syncro_poll),
        reconcile=read("RECONCILE_SCHEDULE", defaults.reconcile),
        subscription_upkeep=read("SUBSCRIPTION_UPKEEP_SCHEDULE", defaults.subscription_upkeep),
        cleanup=read("CLEANUP_SCHEDULE", defaults.cleanup),
    )
