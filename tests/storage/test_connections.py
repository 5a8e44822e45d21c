"""Both ways the app reaches storage: a connection string (Azurite, account keys) and an account
URL with a token credential (managed identity in Azure), plus an unreachable account."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import jwt
import pytest
from azure.core.credentials import AccessToken

from local.azurite import Azurite, free_port, start_azurite
from settings import StorageSettings
from storage import StorageAccount, StorageUnavailable
from storage.sync_queue import SyncJob
from tests.storage.test_tables import make_link


class StaticTokenCredential:
    """A TokenCredential like DefaultAzureCredential's, minting the JWT Azurite's OAuth mode accepts."""

    def __init__(self) -> None:
        self.scopes_asked: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        self.scopes_asked.append(scopes)
        now = int(time.time())
        claims = {
            "aud": "https://storage.azure.com",
            "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000001/",
            "nbf": now - 60,
            "iat": now - 60,
            "exp": now + 3600,
            "oid": "00000000-0000-0000-0000-0000000000aa",
        }
        return AccessToken(jwt.encode(claims, "azurite-does-not-check-signatures!", algorithm="HS256"), now + 3600)


@pytest.fixture(scope="module")
def oauth_azurite(tls_files) -> Iterator[Azurite]:
    running = start_azurite(tls=tls_files)
    try:
        yield running
    finally:
        running.stop()


def test_account_url_with_token_credential(oauth_azurite: Azurite, tls_files) -> None:
    settings = StorageSettings(None, oauth_azurite.endpoint("table"), oauth_azurite.endpoint("queue"), "ident")
    credential = StaticTokenCredential()
    account = StorageAccount(settings, credential=credential, connection_verify=str(tls_files.ca_bundle))

    account.links.create_link(make_link(11))
    assert account.links.get_link(11).email == "tech@contoso.com"
    account.sync_queue.enqueue(SyncJob(11, "admin", datetime.now(UTC).isoformat()))
    assert account.sync_queue.depth() == 1
    assert credential.scopes_asked, "the credential was never asked for a token"
    assert all(scope.startswith("https://storage.azure.com") for scopes in credential.scopes_asked for scope in scopes)


def test_account_url_without_a_token_is_refused(oauth_azurite: Azurite, tls_files) -> None:
    class NoToken(StaticTokenCredential):
        def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
            return AccessToken("not-a-jwt", int(time.time()) + 3600)

    settings = StorageSettings(None, oauth_azurite.endpoint("table"), oauth_azurite.endpoint("queue"), "noauth")
    account = StorageAccount(settings, credential=NoToken(), connection_verify=str(tls_files.ca_bundle))
    with pytest.raises(StorageUnavailable):
        account.ping()


def test_unreachable_storage_raises_storage_unavailable() -> None:
    port = free_port()  # nothing listens here
    connection = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    account = StorageAccount(StorageSettings(connection, None, None))
    with pytest.raises(StorageUnavailable):
        account.ping()
