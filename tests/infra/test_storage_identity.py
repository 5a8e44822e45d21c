"""In Azure the app reaches storage by account URL and DefaultAzureCredential, exactly as
`infra/main.bicep` sets it up: a user-assigned identity named by ``AZURE_CLIENT_ID``, tokens from
the Functions platform's identity endpoint (``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``).

Here the real credential chain runs unchanged (DefaultAzureCredential -> ManagedIdentityCredential
-> MSAL's App Service flow, over real HTTP) against a loopback stand-in for that endpoint, which
mints the JWT Azurite's ``--oauth basic`` mode accepts; Azurite serves HTTPS with the tests' CA.
No credential object is passed in: storage/account.py builds DefaultAzureCredential itself.
(The connection-string path is what every other storage test uses.)
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from local.azurite import DEV_ACCOUNT, Azurite, start_azurite
from local.tls import TlsFiles
from settings import load_settings
from storage import StorageAccount, StorageUnavailable
from storage.sync_queue import SyncJob
from tests.conftest import app_settings_env
from tests.storage.test_tables import make_link

CLIENT_ID = "0d7b2a52-1c1e-4c7b-9f55-6f0a3c2f1e11"  # the user-assigned identity's client id

# Variables that would steer DefaultAzureCredential to another credential than managed identity.
_OTHER_CREDENTIAL_VARIABLES = (
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
)


class IdentityEndpoint:
    """The App Service / Functions managed-identity endpoint (REST protocol 2019-08-01) on loopback."""

    def __init__(self) -> None:
        self.header = secrets.token_urlsafe(16)
        self.requests: list[dict[str, object]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}
                endpoint.requests.append({"query": query, "header": self.headers.get("X-IDENTITY-HEADER")})
                if self.headers.get("X-IDENTITY-HEADER") != endpoint.header:
                    self._answer(401, {"statusCode": 401, "message": "wrong X-IDENTITY-HEADER"})
                    return
                now = int(time.time())
                claims = {
                    "aud": query.get("resource", ""),
                    "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000001/",
                    "nbf": now - 60,
                    "iat": now - 60,
                    "exp": now + 3600,
                    "oid": "00000000-0000-0000-0000-0000000000aa",
                    "appid": query.get("client_id", ""),
                }
                token = jwt.encode(claims, "azurite-does-not-check-signatures!", algorithm="HS256")
                self._answer(
                    200,
                    {
                        "access_token": token,
                        "expires_on": str(now + 3600),
                        "resource": query.get("resource"),
                        "token_type": "Bearer",
                        "client_id": query.get("client_id"),
                    },
                )

            def _answer(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/msi/token"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def oauth_azurite(tls_files: TlsFiles) -> Iterator[Azurite]:
    running = start_azurite(tls=tls_files)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def identity_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[IdentityEndpoint]:
    endpoint = IdentityEndpoint()
    for name in _OTHER_CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)
    monkeypatch.setenv("IDENTITY_HEADER", endpoint.header)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    try:
        yield endpoint
    finally:
        endpoint.close()


def identity_storage(oauth_azurite: Azurite, tls_files: TlsFiles, prefix: str) -> StorageAccount:
    """The StorageAccount the app builds from the template's settings (no connection string),
    with the account's endpoints pointed at Azurite instead of <account>.table.core.windows.net."""
    env = app_settings_env("", TABLE_PREFIX=prefix)
    del env["AzureWebJobsStorage"]
    env |= {
        "AzureWebJobsStorage__accountName": DEV_ACCOUNT,
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": CLIENT_ID,
        "AzureWebJobsStorage__tableServiceUri": oauth_azurite.endpoint("table"),
        "AzureWebJobsStorage__queueServiceUri": oauth_azurite.endpoint("queue"),
    }
    settings = load_settings(env)
    assert settings.storage.uses_identity
    return StorageAccount(
        settings.storage, connection_verify=str(tls_files.ca_bundle), sync_queue_name=f"{prefix}-jobs"
    )


def test_default_azure_credential_reaches_tables_and_queues_with_the_user_assigned_identity(
    oauth_azurite: Azurite, tls_files: TlsFiles, identity_endpoint: IdentityEndpoint
) -> None:
    account = identity_storage(oauth_azurite, tls_files, "ident1")

    account.links.create_link(make_link(21))
    assert account.links.get_link(21).email == "tech@contoso.com"
    account.sync_queue.enqueue(SyncJob(21, "admin", datetime.now(UTC).isoformat()))
    assert account.sync_queue.depth() == 1
    account.ping()

    asked = identity_endpoint.requests
    assert asked, "DefaultAzureCredential never asked the identity endpoint"
    assert all(r["header"] == identity_endpoint.header for r in asked)
    assert {r["query"]["resource"] for r in asked} == {"https://storage.azure.com"}
    assert {r["query"]["client_id"] for r in asked} == {CLIENT_ID}  # the identity the template names
    # One credential for both services, its token cached: one call however many requests were made.
    assert len(asked) == 1


def test_a_refused_identity_makes_storage_unavailable_not_a_crash(
    oauth_azurite: Azurite, tls_files: TlsFiles, identity_endpoint: IdentityEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-platforms-header")
    for tool in ("AZURE_CONFIG_DIR", "AZD_CONFIG_DIR"):  # developer credentials further down the chain find nothing
        monkeypatch.setenv(tool, "/nonexistent")
    account = identity_storage(oauth_azurite, tls_files, "ident2")

    with pytest.raises(StorageUnavailable) as raised:
        account.ping()
    assert identity_endpoint.requests, "the managed identity endpoint was not tried"
    assert identity_endpoint.header not in str(raised.value)
