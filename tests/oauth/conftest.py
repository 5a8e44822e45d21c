"""Fixtures of the oauth tests: the identity simulator over real TLS, settings pointing the product's MSAL
app at it, a private StorageAccount on Azurite, and techs signed in through MSAL's password grant."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msal
import pytest
import requests

from local.serve import RunningServer, serve_in_thread
from local.sims.control import SimClock, SimControl
from local.sims.identity import IdentitySim, msal_session
from local.sims.tokens import TokenIssuer
from local.tls import TlsFiles
from oauth.crypto import TokenCipher
from oauth.msal_app import GRAPH_SCOPES, build_msal_app
from oauth.tokens import TokenService
from settings import Settings, load_settings
from storage import StorageAccount
from storage.links import Link, LinkStatus
from tests.conftest import app_settings_env

TENANT_ID = "5d1f0a52-7c2e-4b53-9d2b-6f0c1b7e2a33"
CLIENT_ID = "7b2d3c0e-2b7f-4c55-8e0a-9f2d4b6c8e02"
CLIENT_SECRET = "sync-app-secret~value"
REDIRECT_URI = "https://localhost:7071/api/oauth/callback"
PASSWORD = "Passw0rd!"
ALEX = "alex@fabrikam.example"
BLAKE = "blake@fabrikam.example"


@pytest.fixture(scope="module")
def identity(tls_files: TlsFiles) -> Iterator[tuple[RunningServer, IdentitySim, SimControl]]:
    control = SimControl()
    sim = IdentitySim(control=control, issuer=TokenIssuer())
    server = serve_in_thread(sim.app, tls=tls_files, name="identity-sim")
    try:
        yield server, sim, control
    finally:
        server.stop()


@dataclass
class Tenant:
    """The seeded identity simulator and the app's settings pointing at it."""

    url: str
    sim: IdentitySim
    control: SimControl
    tls: TlsFiles
    settings: Settings
    account: StorageAccount

    @property
    def clock(self) -> SimClock:
        return self.control.clock

    def session(self) -> requests.Session:
        """For calls to the simulator's control routes and for the password grant (see msal_session)."""
        return msal_session(self.url, str(self.tls.ca_bundle))

    def sign_in(self, email: str) -> msal.SerializableTokenCache:
        """A fresh token cache holding ``email``'s tokens, as a sign-in would leave it (password grant)."""
        cache = msal.SerializableTokenCache()
        app = build_msal_app(self.settings, token_cache=cache, http_client=self.session())
        result = app.acquire_token_by_username_password(email, PASSWORD, scopes=GRAPH_SCOPES)
        assert "access_token" in result, result
        assert "refresh_token" in result, result
        return cache

    def revoke(self, email: str) -> None:
        self.session().post(f"{self.url}/_sim/users/{email}/revoke").raise_for_status()

    def refresh_grants(self) -> list[tuple[str | None, int]]:
        return [
            (entry["email"], entry["status"])
            for entry in self.sim.token_requests()
            if entry["grant_type"] == "refresh_token"
        ]

    def token_service(self, **overrides: Any) -> TokenService:
        options: dict[str, Any] = {
            "links": self.account.links,
            "caches": self.account.token_caches,
            "cipher": TokenCipher.from_settings(self.settings),
            "app_factory": lambda cache: build_msal_app(self.settings, token_cache=cache),
        }
        options.update(overrides)
        return TokenService(**options)

    def link(self, syncro_user_id: int, email: str, service: TokenService | None = None) -> Link:
        """Sign ``email`` in, store the cache and the link, as the OAuth callback does."""
        cache = self.sign_in(email)
        [account] = build_msal_app(self.settings, token_cache=cache, http_client=self.session()).get_accounts()
        (service or self.token_service()).save_cache(syncro_user_id, cache)
        return self.account.links.create_link(
            Link(
                syncro_user_id=syncro_user_id,
                email=email,
                ms_account_id=account["home_account_id"],
                ms_username=account["username"],
                ms_tenant_id=TENANT_ID,
                calendar_id="AAMk-default",
                calendar_name="Calendar",
                two_way=True,
                status=LinkStatus.ACTIVE,
                linked_at=datetime.now(UTC),
            )
        )


@pytest.fixture
def tenant(
    identity: tuple[RunningServer, IdentitySim, SimControl], tls_files: TlsFiles, storage_connection_string: str
) -> Tenant:
    server, sim, control = identity
    sim.reset()
    control.clock.reset()
    control.faults.clear()
    control.counters.clear()
    sim.seed(
        {
            "tenants": [{"id": TENANT_ID, "name": "Fabrikam", "domain": "fabrikam.example"}],
            "users": [
                {"email": ALEX, "password": PASSWORD, "name": "Alex Tech"},
                {"email": BLAKE, "password": PASSWORD, "name": "Blake Tech"},
            ],
            "apps": [
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": [REDIRECT_URI],
                    "name": "Syncro Calendar Sync",
                }
            ],
        }
    )
    settings = load_settings(
        app_settings_env(
            storage_connection_string,
            MS_CLIENT_ID=CLIENT_ID,
            MS_CLIENT_SECRET=CLIENT_SECRET,
            # The password grant is refused at /common (as in Entra ID), so the app uses the tenant's authority.
            MS_AUTHORITY=f"{server.url}/{TENANT_ID}",
            CA_BUNDLE=str(tls_files.ca_bundle),
            TABLE_PREFIX="t" + uuid.uuid4().hex[:10],
        )
    )
    account = StorageAccount(settings.storage, sync_queue_name=settings.sync_queue)
    return Tenant(server.url, sim, control, tls_files, settings, account)


class _SimTime:
    """The ``time`` module as MSAL sees it: the simulator's clock for time(), the real module otherwise."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def time(self) -> float:
        return self._clock()

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture
def msal_on_sim_clock(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> SimClock:
    """MSAL judges token expiry on its own clock; make it read the simulator's, so moving that clock
    past an access token's lifetime makes MSAL refresh exactly as it would an hour later."""
    import msal.application
    import msal.token_cache

    shim = _SimTime(tenant.clock.timestamp)
    monkeypatch.setattr(msal.application, "time", shim)
    monkeypatch.setattr(msal.token_cache, "time", shim)
    return tenant.clock
