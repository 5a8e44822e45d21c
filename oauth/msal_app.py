"""The one place an MSAL confidential client is configured from settings."""

from __future__ import annotations

import threading
import time
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msal
import requests
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

if TYPE_CHECKING:
    from settings import Settings

# Calendar-only, delegated. MSAL adds offline_access (the refresh token), openid and profile itself and
# refuses them here.
GRAPH_SCOPES = ["Calendars.ReadWrite", "User.Read"]

# (connect, read) seconds: a token request that hangs must not hold a sync job or a web request for long.
HTTP_TIMEOUT = (5, 20)


def build_msal_app(
    settings: Settings,
    *,
    token_cache: msal.TokenCache | None = None,
    http_client: Any = None,
    http_cache: MutableMapping[str, Any] | None = None,
) -> msal.ConfidentialClientApplication:
    """MSAL for MS_CLIENT_ID / MS_CLIENT_SECRET at MS_AUTHORITY.

    ``http_client`` defaults to `msal_http_session(settings)`. ``http_cache`` lets several apps share
    MSAL's cache of discovery documents. Raises ValueError (from MSAL) when the authority's OpenID
    discovery fails, and requests' exceptions when it cannot be reached.
    """
    return msal.ConfidentialClientApplication(
        settings.ms_client_id,
        client_credential=settings.ms_client_secret,
        authority=settings.ms_authority,
        token_cache=token_cache,
        http_client=http_client if http_client is not None else msal_http_session(settings),
        http_cache=http_cache,
        # Instance discovery asks login.microsoftonline.com whether the authority is a Microsoft cloud;
        # an authority elsewhere (the local identity simulator, a test double) would fail that check.
        instance_discovery=is_microsoft_authority(settings.ms_authority),
    )


def is_microsoft_authority(authority: str) -> bool:
    return (urlsplit(authority).hostname or "").lower() in WELL_KNOWN_AUTHORITY_HOSTS


def msal_http_session(settings: Settings) -> requests.Session:
    """The session MSAL talks to the identity platform with.

    With CA_BUNDLE set, it verifies against that bundle only: requests would otherwise let
    REQUESTS_CA_BUNDLE from the environment override ``Session.verify`` (docs/configuration.md,
    "Outbound TLS"), so the environment is ignored. Without CA_BUNDLE (Azure) the session keeps the
    environment's proxy and CA settings, which a machine behind a TLS-inspecting proxy needs.
    """
    session = _MsalSession()
    if settings.ca_bundle:
        session.verify = settings.ca_bundle
        session.trust_env = False
    return session


class _MsalSession(requests.Session):
    """A session with a default timeout (requests has none; MSAL passes none for a given
    http_client) that keeps discovery documents for `DISCOVERY_SECONDS`.

    MSAL reads the authority's OpenID configuration (and, for Microsoft's clouds, instance
    discovery) whenever an app is built, and the app is built per token request, around each
    technician's own token cache: without this, every Graph request of a sync began with a
    discovery round trip (about 30 ms here). Thread-safe, so one session can serve the process."""

    def __init__(self) -> None:
        super().__init__()
        self._discovered: dict[str, tuple[float, requests.Response]] = {}
        self._lock = threading.Lock()

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = HTTP_TIMEOUT
        return super().request(method, url, *args, **kwargs)

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        text = url.decode() if isinstance(url, bytes) else url
        if not _is_discovery(text):
            return super().get(url, **kwargs)
        key = f"{text} {sorted((kwargs.get('params') or {}).items())}"
        now = time.monotonic()
        with self._lock:
            kept = self._discovered.get(key)
        if kept is not None and now - kept[0] < DISCOVERY_SECONDS:
            return kept[1]
        response = super().get(url, **kwargs)
        if 200 <= response.status_code < 300:
            _ = response.content  # read now: the same response answers the next calls
            with self._lock:
                self._discovered[key] = (now, response)
        return response


DISCOVERY_SECONDS = 3600.0  # MSAL's own http_cache keeps them a day


def _is_discovery(url: str) -> bool:
    path = urlsplit(url).path
    return path.endswith("/.well-known/openid-configuration") or path.endswith("/discovery/instance")
