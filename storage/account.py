"""`StorageAccount`: the one handle on Table and Queue Storage that the app passes around.

Built from `StorageSettings`: a connection string (Azurite, account key) or identity-based
endpoints with `DefaultAzureCredential` (managed identity in Azure). Tables and queues are
created on first use, once per process. Every repository hangs off this object.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from storage.errors import StorageUnavailable
from storage.table import Table, translated_errors

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from settings import StorageSettings
    from storage.admin_log import AdminLogStore
    from storage.conflicts import ConflictStore
    from storage.cursors import CursorStore
    from storage.feed_tokens import FeedTokenStore
    from storage.leases import LeaseStore
    from storage.links import LinkStore
    from storage.mappings import MappingStore
    from storage.mirror import MirrorStore
    from storage.oauth_state import OAuthStateStore
    from storage.outlook_mirror import OutlookMirrorStore
    from storage.overrides import OverrideStore
    from storage.rate_limits import RateLimitStore
    from storage.recycle_bin import RecycleBinStore
    from storage.session_versions import SessionVersionStore
    from storage.subscriptions import SubscriptionStore
    from storage.sync_queue import SyncQueue
    from storage.token_caches import TokenCacheStore

Clock = Callable[[], datetime]

# Short timeouts and few retries: a health check or webhook must not hang on a dead account.
_CLIENT_OPTIONS: dict[str, Any] = {"retry_total": 2, "connection_timeout": 5, "read_timeout": 30}
# Connections kept per service: the host runs up to 40 functions at once (webhook bursts); requests'
# default of 10 would close and reopen the rest after every call.
_POOL_SIZE = 64


def utc_now() -> datetime:
    return datetime.now(UTC)


def _env_once_session() -> Any:
    """A requests Session that honours the environment's ``HTTP(S)_PROXY``, ``NO_PROXY`` and
    ``REQUESTS_CA_BUNDLE`` as requests does, but reads them once per origin instead of on every
    call (with ``trust_env`` requests re-scans ``os.environ`` and stats ``~/.netrc`` for each
    request: about a millisecond of CPU). The variables are read when an origin is first called
    and are not expected to change under a running process; ``.netrc`` is not consulted (its Basic
    auth would replace the storage Authorization header anyway). Token requests
    (DefaultAzureCredential) go through the credential's own transport and are unaffected."""
    from urllib.parse import urlsplit

    import requests

    class EnvOnceSession(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            self.trust_env = False
            self._environment = requests.Session()  # trust_env on: reads the variables when asked
            self._merged: dict[tuple[Any, ...], dict[str, Any]] = {}

        def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
            parts = urlsplit(url)
            key = (parts.scheme, parts.netloc, tuple(sorted((proxies or {}).items())), stream, verify, cert)
            known = self._merged.get(key)
            if known is None:
                known = self._environment.merge_environment_settings(url, proxies, stream, verify, cert)
                if len(self._merged) >= 64:
                    self._merged.clear()
                self._merged[key] = known
            return {**known, "proxies": dict(known["proxies"])}

    return EnvOnceSession()


class StorageAccount:
    """Table and Queue Storage for the app. Thread-safe; create one per process."""

    def __init__(
        self,
        settings: StorageSettings,
        *,
        credential: TokenCredential | None = None,
        connection_verify: str | bool = True,
        clock: Clock = utc_now,
        sync_queue_name: str = "sync-jobs",
    ) -> None:
        self._settings = settings
        self._credential = credential
        self._options = {**_CLIENT_OPTIONS, "connection_verify": connection_verify}
        self.clock = clock
        self.sync_queue_name = sync_queue_name
        self._ready: set[str] = set()
        self._clients: dict[str, Any] = {}  # Table or QueueClient by name, built once
        self._lock = threading.Lock()

    # --- service clients -----------------------------------------------------------------

    def _identity(self) -> TokenCredential:
        if self._credential is None:
            from azure.identity import DefaultAzureCredential

            self._credential = DefaultAzureCredential()
        return self._credential

    def _transport(self) -> Any:
        """azure-core's requests transport with a larger connection pool and the environment read
        once per origin (`_env_once_session`) instead of on every call."""
        from azure.core.pipeline.transport import RequestsTransport
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        session = _env_once_session()
        no_retries = Retry(total=False, redirect=False, raise_on_status=False)  # azure-core retries
        adapter = HTTPAdapter(pool_maxsize=_POOL_SIZE, max_retries=no_retries)
        for scheme in ("http://", "https://"):
            session.mount(scheme, adapter)
        return RequestsTransport(session=session, session_owner=True, **self._options)

    @cached_property
    def _tables(self) -> Any:
        from azure.data.tables import TableServiceClient

        options = {**self._options, "transport": self._transport()}
        if self._settings.connection_string:
            return TableServiceClient.from_connection_string(self._settings.connection_string, **options)
        return TableServiceClient(endpoint=self._settings.table_endpoint, credential=self._identity(), **options)

    @cached_property
    def _queues(self) -> Any:
        from azure.storage.queue import QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        # Base64 text, as the Functions queue trigger expects by default (messageEncoding).
        codec = {"message_encode_policy": TextBase64EncodePolicy(), "message_decode_policy": TextBase64DecodePolicy()}
        options = {**self._options, "transport": self._transport()}
        if self._settings.connection_string:
            return QueueServiceClient.from_connection_string(self._settings.connection_string, **codec, **options)
        return QueueServiceClient(
            account_url=self._settings.queue_endpoint, credential=self._identity(), **codec, **options
        )

    def table(self, name: str) -> Table:
        """The table ``name`` (prefixed by TABLE_PREFIX), created if this process has not seen it yet."""
        full = f"{self._settings.table_prefix}{name}"
        known = self._clients.get(full)
        if known is not None:
            return known
        client = self._tables.get_table_client(full)
        with self._lock, translated_errors(full, "(create table)"):
            if full not in self._ready:
                self._tables.create_table_if_not_exists(full)
                self._ready.add(full)
            # Built once per table: a TableClient costs about a millisecond of CPU to build, and
            # the SDK's clients are safe to share between threads.
            return self._clients.setdefault(full, Table(client, full))

    def queue(self, name: str) -> Any:
        """A QueueClient for ``name``, created if this process has not seen it yet. Messages are
        base64 both ways, as the Functions host's queue trigger (``messageEncoding``) reads and
        writes them; the policies are passed here because ``get_queue_client`` does not inherit
        the service client's."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy

        known = self._clients.get(f"queue:{name}")
        if known is not None:
            return known
        client = self._queues.get_queue_client(
            name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
        )
        with self._lock, translated_errors(name, "(create queue)"):
            if f"queue:{name}" not in self._ready:
                try:
                    client.create_queue()
                except ResourceExistsError:
                    pass
                self._ready.add(f"queue:{name}")
            return self._clients.setdefault(f"queue:{name}", client)

    def ping(self) -> None:
        """Raise StorageUnavailable unless both services answer."""
        try:
            self.links.count()
            self.sync_queue.depth()
        except StorageUnavailable:
            raise
        except Exception as error:  # anything else still means "not usable": report it, do not crash health
            raise StorageUnavailable(f"{type(error).__name__}: {error}") from error

    # --- repositories ----------------------------------------------------------------------

    @cached_property
    def links(self) -> LinkStore:
        from storage.links import LinkStore

        return LinkStore(self)

    @cached_property
    def token_caches(self) -> TokenCacheStore:
        from storage.token_caches import TokenCacheStore

        return TokenCacheStore(self)

    @cached_property
    def mappings(self) -> MappingStore:
        from storage.mappings import MappingStore

        return MappingStore(self)

    @cached_property
    def subscriptions(self) -> SubscriptionStore:
        from storage.subscriptions import SubscriptionStore

        return SubscriptionStore(self)

    @cached_property
    def cursors(self) -> CursorStore:
        from storage.cursors import CursorStore

        return CursorStore(self)

    @cached_property
    def mirror(self) -> MirrorStore:
        from storage.mirror import MirrorStore

        return MirrorStore(self)

    @cached_property
    def outlook_mirror(self) -> OutlookMirrorStore:
        from storage.outlook_mirror import OutlookMirrorStore

        return OutlookMirrorStore(self)

    @cached_property
    def recycle_bin(self) -> RecycleBinStore:
        from storage.recycle_bin import RecycleBinStore

        return RecycleBinStore(self)

    @cached_property
    def feed_tokens(self) -> FeedTokenStore:
        from storage.feed_tokens import FeedTokenStore

        return FeedTokenStore(self)

    @cached_property
    def oauth_states(self) -> OAuthStateStore:
        from storage.oauth_state import OAuthStateStore

        return OAuthStateStore(self)

    @cached_property
    def conflicts(self) -> ConflictStore:
        from storage.conflicts import ConflictStore

        return ConflictStore(self)

    @cached_property
    def overrides(self) -> OverrideStore:
        from storage.overrides import OverrideStore

        return OverrideStore(self)

    @cached_property
    def leases(self) -> LeaseStore:
        from storage.leases import LeaseStore

        return LeaseStore(self)

    @cached_property
    def session_versions(self) -> SessionVersionStore:
        from storage.session_versions import SessionVersionStore

        return SessionVersionStore(self)

    @cached_property
    def rate_limits(self) -> RateLimitStore:
        from storage.rate_limits import RateLimitStore

        return RateLimitStore(self)

    @cached_property
    def admin_log(self) -> AdminLogStore:
        from storage.admin_log import AdminLogStore

        return AdminLogStore(self)

    @cached_property
    def sync_queue(self) -> SyncQueue:
        from storage.sync_queue import SyncQueue

        return SyncQueue(self)
