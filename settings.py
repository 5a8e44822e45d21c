"""Every setting the app reads, typed and validated once.

`load_settings()` reads the environment (in Azure: app settings; locally: `local.settings.json`
``Values``, which the local host and `func start` put into the environment). A missing or
malformed setting raises `SettingsError` whose message is one line naming the setting and
showing what a valid value looks like. `docs/configuration.md` describes each one.

This module imports nothing heavy: it runs on every cold start.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

# What callers import from here, wherever it is defined: one name each, `from settings import ...`.
from settings_realtime import RealtimeSettings, load_realtime_settings, load_timer_schedules
from settings_realtime import TimerSchedules as TimerSchedules
from settings_secrets import MIN_WEBHOOK_SECRET_BITS as MIN_WEBHOOK_SECRET_BITS
from settings_secrets import encryption_key, encryption_key_id, old_encryption_keys, webhook_secret
from settings_secrets import secret_bits as secret_bits
from settings_values import GUID, SettingsError, check_url, choice, flag, guids, integer, required, url

VERSION = "0.1.0"
# The tenant every personal Microsoft account (outlook.com, hotmail.com, live.com) belongs to.
PERSONAL_ACCOUNTS_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
# The Entra app role that makes a signed-in user an admin (declared in the app registration).
ADMIN_APP_ROLE = "SyncAdmin"


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


# --- the settings read here; each reader names the setting and the shape it wants -------------

_AUTHORITY_EXAMPLE = "https://login.microsoftonline.com/<your tenant id> (Entra ID > Overview > Tenant ID)"


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
    authority = url(env, "MS_AUTHORITY", _AUTHORITY_EXAMPLE, https=True)
    tenants_example = "your tenant id, a GUID (several comma-separated)"
    allowed = guids(env, "ALLOWED_TENANT_IDS", tenants_example)
    if PERSONAL_ACCOUNTS_TENANT_ID in allowed:
        raise SettingsError(
            "ALLOWED_TENANT_IDS", "lists the tenant of all personal Microsoft accounts", tenants_example
        )
    segment = urlsplit(authority).path.rstrip("/").rsplit("/", 1)[-1].lower()
    if segment in ("consumers", PERSONAL_ACCOUNTS_TENANT_ID):
        raise SettingsError("MS_AUTHORITY", "is the authority of personal Microsoft accounts", _AUTHORITY_EXAMPLE)
    if GUID.match(segment):
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
    return guids(env, "ADMIN_GROUP_IDS", "the object id of an Entra group, a GUID (several comma-separated)")


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
        check_url("AzureWebJobsStorage__tableServiceUri", tables, "https://acct.table.core.windows.net", https=True),
        check_url("AzureWebJobsStorage__queueServiceUri", queues, "https://acct.queue.core.windows.net", https=True),
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
    base = url(env, "SYNCRO_BASE_URL", "https://yoursubdomain.syncromsp.com/api/v1", https=True)
    web = url(
        env, "SYNCRO_WEB_URL", "https://yoursubdomain.syncromsp.com", default=base.removesuffix("/api/v1"), https=True
    )
    return SyncOptions(
        import_existing=flag(env, "IMPORT_EXISTING_EVENTS", default=False),
        import_existing_days=integer(env, "IMPORT_EXISTING_DAYS", 14, low=1, high=730),
        recurring=flag(env, "SYNC_RECURRING_EVENTS", default=True),
        appointment_type_id=_optional_id(env, "SYNCRO_APPOINTMENT_TYPE_ID"),
        customer_id=_optional_id(env, "SYNCRO_CUSTOMER_ID"),
        syncro_web_url=web,
        poll_requests_per_minute=integer(env, "SYNCRO_POLL_REQUESTS_PER_MINUTE", 60, low=1, high=180),
        # The whole app's budget, across instances: under Syncro's 180 for clock skew and the MSP's
        # other integrations on the same account (docs/budget.md).
        requests_per_minute=integer(env, "SYNCRO_REQUESTS_PER_MINUTE", 150, low=10, high=180),
    )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raises SettingsError on the first bad one."""
    env = os.environ if env is None else env
    settings = Settings(
        storage=_storage(env),
        public_base_url=url(env, "PUBLIC_BASE_URL", "https://my-sync.azurewebsites.net", https=True),
        ms_client_id=required(env, "MS_CLIENT_ID", "the app registration's Application (client) ID, a GUID"),
        ms_client_secret=required(env, "MS_CLIENT_SECRET", "a client secret value of that app registration"),
        ms_authority=(bound := _sign_in_tenants(env))[0],
        graph_base_url=url(
            env,
            "GRAPH_BASE_URL",
            "https://graph.microsoft.com/v1.0",
            default="https://graph.microsoft.com/v1.0",
            https=True,
        ),
        syncro_base_url=url(env, "SYNCRO_BASE_URL", "https://yoursubdomain.syncromsp.com/api/v1", https=True),
        syncro_api_token=required(env, "SYNCRO_API_TOKEN", "an API token from Syncro (Admin > API Tokens)"),
        syncro_webhook_secret=webhook_secret(env),
        token_encryption_key=encryption_key(env),
        token_encryption_key_id=(key_id := encryption_key_id(env)),
        token_encryption_old_keys=old_encryption_keys(env, key_id),
        allowed_tenant_ids=bound[1],
        admin_group_ids=_admin_groups(env),
        ca_bundle=_ca_bundle(env),
        sync_queue=env.get("SYNC_QUEUE_NAME", "").strip() or "sync-jobs",
        window_past_days=integer(env, "SYNC_WINDOW_PAST_DAYS", 60, low=1, high=365),
        window_future_days=integer(env, "SYNC_WINDOW_FUTURE_DAYS", 60, low=1, high=730),
        conflict_policy=choice(
            env, "CONFLICT_POLICY", ConflictPolicy, ConflictPolicy.LATEST, "latest, syncro or outlook"
        ),
        sync=_sync_options(env),
        max_request_body_bytes=integer(env, "MAX_REQUEST_BODY_BYTES", 1024 * 1024, low=1024, high=100 * 1024 * 1024),
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


_realtime_cache: list[tuple[Settings, RealtimeSettings]] = []


def get_realtime_settings() -> RealtimeSettings:
    """The process-wide real-time settings, read again whenever `get_settings` was reset."""
    current = get_settings()
    if not _realtime_cache or _realtime_cache[0][0] is not current:
        _realtime_cache[:] = [(current, load_realtime_settings())]
    return _realtime_cache[0][1]
