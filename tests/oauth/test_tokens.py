"""TokenService against real parts: Azurite, the identity simulator over TLS, real MSAL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msal
import pytest
from azure.data.tables import TableServiceClient
from cryptography.fernet import Fernet

from local.sims.control import FaultRule
from oauth.crypto import TokenCipher, TokenDecryptionError
from oauth.msal_app import build_msal_app, is_microsoft_authority, msal_http_session
from oauth.tokens import AppCredentialsRejected, NeedsRelink, NotLinked, TokenService, TokenUnavailable
from storage.links import Link, LinkStatus, LinkStore
from storage.token_caches import TokenCacheRecord, TokenCacheStore
from tests.oauth.conftest import ALEX, BLAKE, Tenant

ALEX_ID, BLAKE_ID = 5560138523, 42


class CountingStore(TokenCacheStore):
    """The real store, counting the writes that reach it."""

    def __init__(self, inner: TokenCacheStore) -> None:
        self.__dict__.update(inner.__dict__)
        self.writes = 0

    def save_cache(self, record: TokenCacheRecord) -> TokenCacheRecord:
        self.writes += 1
        return super().save_cache(record)


class Interleaved:
    """MSAL's http client for one instance; runs ``other`` (another instance's work) once, around this
    instance's first token request: ``before`` it is sent or ``after`` its answer arrived."""

    def __init__(self, inner: Any, other: Callable[[], None], *, when: str) -> None:
        self._inner = inner
        self._other: Callable[[], None] | None = other
        self._when = when

    def post(self, url: str, **kwargs: Any) -> Any:
        other, self._other = (self._other, None) if url.endswith("/token") else (None, self._other)
        if other and self._when == "before":
            other()
        answer = self._inner.post(url, **kwargs)
        if other and self._when == "after":
            other()
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def stored_cache(tenant: Tenant, syncro_user_id: int) -> dict[str, Any]:
    record = tenant.account.token_caches.get_cache(syncro_user_id)
    return json.loads(TokenCipher.from_settings(tenant.settings).decrypt(record.encrypted))


def secrets_in(cache: dict[str, Any], kind: str) -> list[str]:
    return [entry["secret"] for entry in cache.get(kind, {}).values()]


# --- at rest -------------------------------------------------------------------------------------------------


def test_the_stored_cache_holds_no_token_in_plain_text(tenant: Tenant, storage_connection_string: str) -> None:
    tenant.link(ALEX_ID, ALEX)
    cache = stored_cache(tenant, ALEX_ID)
    tokens = [*secrets_in(cache, "RefreshToken"), *secrets_in(cache, "AccessToken"), *secrets_in(cache, "IdToken")]
    assert len(tokens) == 3 and all(len(token) > 20 for token in tokens)

    table = f"{tenant.settings.storage.table_prefix}tokencaches"
    raw = TableServiceClient.from_connection_string(storage_connection_string).get_table_client(table)
    entity = raw.get_entity("tokencache", str(ALEX_ID))
    stored = b"".join(value if isinstance(value, bytes) else str(value).encode() for value in entity.values())
    assert entity["cache_0"].startswith(f"{tenant.settings.token_encryption_key_id}:".encode())
    for token in tokens:
        assert token.encode() not in stored
        assert token.encode()[8:40] not in stored  # not even a fragment
    assert ALEX.encode() not in stored  # the account's name is encrypted too


# --- the MSAL app -------------------------------------------------------------------------------------------


def test_the_msal_app_trusts_ca_bundle_even_with_requests_ca_bundle_set(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    bogus = tmp_path / "other-ca.pem"
    bogus.write_text("not a certificate\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bogus))
    session = msal_http_session(tenant.settings)
    assert session.verify == str(tenant.tls.ca_bundle) and session.trust_env is False
    # Discovery over TLS to the simulator succeeds: CA_BUNDLE won, and instance discovery was skipped.
    app = build_msal_app(tenant.settings)
    assert app.get_accounts() == []
    assert is_microsoft_authority("https://login.microsoftonline.com/common")
    assert is_microsoft_authority("https://login.microsoftonline.us/organizations")
    assert not is_microsoft_authority(tenant.settings.ms_authority)


def test_msal_apps_sharing_a_session_read_the_discovery_document_once(tenant: Tenant) -> None:
    """An app is built per token request; the authority's OpenID configuration is read once."""
    session = msal_http_session(tenant.settings)
    sent: list[str] = []
    send = session.send
    session.send = lambda request, **kwargs: (sent.append(str(request.url)), send(request, **kwargs))[1]  # type: ignore[method-assign]
    for _ in range(3):
        assert build_msal_app(tenant.settings, http_client=session).get_accounts() == []
    assert len([url for url in sent if url.endswith("/.well-known/openid-configuration")]) == 1
    other = msal_http_session(tenant.settings)  # a session of its own reads it again
    other_send = other.send
    other.send = lambda request, **kwargs: (sent.append(str(request.url)), other_send(request, **kwargs))[1]  # type: ignore[method-assign]
    build_msal_app(tenant.settings, http_client=other)
    assert len([url for url in sent if url.endswith("/.well-known/openid-configuration")]) == 2


# --- access tokens ------------------------------------------------------------------------------------------


def test_a_fresh_access_token_comes_from_the_cache_without_a_write(tenant: Tenant) -> None:
    tenant.link(ALEX_ID, ALEX)
    store = CountingStore(tenant.account.token_caches)
    service = tenant.token_service(caches=store)
    signed_in = secrets_in(stored_cache(tenant, ALEX_ID), "AccessToken")
    assert service.access_token_for(ALEX_ID) in signed_in
    assert service.access_token_for(ALEX_ID) in signed_in
    assert store.writes == 0 and tenant.refresh_grants() == []


def test_an_expired_access_token_is_refreshed_silently_and_written_back_once(
    tenant: Tenant, msal_on_sim_clock: Any
) -> None:
    tenant.link(ALEX_ID, ALEX)
    store = CountingStore(tenant.account.token_caches)
    service = tenant.token_service(caches=store)
    first = service.access_token_for(ALEX_ID)
    old_refresh = secrets_in(stored_cache(tenant, ALEX_ID), "RefreshToken")

    msal_on_sim_clock.advance(3601)
    second = service.access_token_for(ALEX_ID)
    assert second != first
    assert tenant.refresh_grants() == [(ALEX, 200)]
    assert store.writes == 1
    stored = stored_cache(tenant, ALEX_ID)
    assert secrets_in(stored, "AccessToken") == [second]
    assert secrets_in(stored, "RefreshToken") != old_refresh  # the rotated refresh token was kept

    assert service.access_token_for(ALEX_ID) == second  # and is served from the cache again
    assert store.writes == 1 and len(tenant.refresh_grants()) == 1
    assert tenant.account.links.get_link(ALEX_ID).status is LinkStatus.ACTIVE


def test_a_revoked_grant_marks_only_that_tech_for_relinking(tenant: Tenant, msal_on_sim_clock: Any) -> None:
    tenant.link(ALEX_ID, ALEX)
    tenant.link(BLAKE_ID, BLAKE)
    service = tenant.token_service()
    tenant.revoke(ALEX)
    msal_on_sim_clock.advance(3601)

    with pytest.raises(NeedsRelink) as raised:
        service.access_token_for(ALEX_ID)
    assert raised.value.code == 50173 and raised.value.syncro_user_id == ALEX_ID
    link = tenant.account.links.get_link(ALEX_ID)
    assert link.status is LinkStatus.NEEDS_RELINK
    assert "revoked" in link.status_detail and "Sign in again on the settings page" in link.status_detail
    assert raised.value.reason == link.status_detail

    assert service.access_token_for(BLAKE_ID)  # the other tech's token still comes
    assert tenant.account.links.get_link(BLAKE_ID).status is LinkStatus.ACTIVE

    requests_so_far = len(tenant.refresh_grants())
    with pytest.raises(NeedsRelink, match="revoked"):  # no second try at Microsoft for a refused sign-in
        service.access_token_for(ALEX_ID)
    assert len(tenant.refresh_grants()) == requests_so_far


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (70008, "has expired"),
        (700082, "90 days without use"),
        (65001, "Permission for this app to use the calendar was withdrawn"),
        (50076, "multi-factor authentication"),
        (50057, "disabled"),
    ],
)
def test_each_refused_sign_in_is_explained_in_plain_words(
    tenant: Tenant, msal_on_sim_clock: Any, code: int, words: str
) -> None:
    tenant.link(ALEX_ID, ALEX)
    tenant.session().post(
        f"{tenant.url}/_sim/token_errors", json={"email": ALEX, "code": code, "grant_type": "refresh_token"}
    ).raise_for_status()
    msal_on_sim_clock.advance(3601)
    with pytest.raises(NeedsRelink, match=words):
        tenant.token_service().access_token_for(ALEX_ID)
    link = tenant.account.links.get_link(ALEX_ID)
    assert link.status is LinkStatus.NEEDS_RELINK and words in link.status_detail
    assert link.status_detail.endswith("Sign in again on the settings page to resume syncing.")


class ChangingLinks(LinkStore):
    """The real link store, where the settings page (or a new sign-in) changes the link just before our
    first update of it lands."""

    def __init__(self, inner: LinkStore, change: Callable[[Link], Link]) -> None:
        self.__dict__.update(inner.__dict__)
        self._change: Callable[[Link], Link] | None = change

    def update_link(self, link: Link) -> Link:
        if self._change is not None:
            change, self._change = self._change, None
            super().update_link(change(self.get_link(link.syncro_user_id)))
        return super().update_link(link)


@pytest.mark.parametrize(
    ("change", "marked"),
    [
        (lambda link: link.with_changes(calendar_name="Work", two_way=False), True),
        (lambda link: link.with_changes(linked_at=link.linked_at.replace(year=2030)), False),
    ],
    ids=["settings-changed-meanwhile", "signed-in-again-meanwhile"],
)
def test_marking_for_relink_respects_a_link_changed_meanwhile(
    tenant: Tenant, msal_on_sim_clock: Any, change: Callable[[Link], Link], marked: bool
) -> None:
    tenant.link(ALEX_ID, ALEX)
    tenant.revoke(ALEX)
    msal_on_sim_clock.advance(3601)
    service = tenant.token_service(links=ChangingLinks(tenant.account.links, change))
    with pytest.raises(NeedsRelink):
        service.access_token_for(ALEX_ID)
    link = tenant.account.links.get_link(ALEX_ID)
    assert (link.status is LinkStatus.NEEDS_RELINK) is marked
    if marked:
        assert link.calendar_name == "Work" and link.two_way is False  # the change made meanwhile is kept


def test_transient_failures_raise_and_leave_the_link_alone(tenant: Tenant, msal_on_sim_clock: Any) -> None:
    tenant.link(ALEX_ID, ALEX)
    service = tenant.token_service()
    msal_on_sim_clock.advance(3601)

    tenant.control.faults.add(FaultRule("POST", r"/oauth2/v2\.0/token$", 503, times=1))
    with pytest.raises(TokenUnavailable):
        service.access_token_for(ALEX_ID)
    tenant.session().post(
        f"{tenant.url}/_sim/token_errors", json={"email": ALEX, "code": 90033, "grant_type": "refresh_token"}
    ).raise_for_status()
    with pytest.raises(TokenUnavailable):
        service.access_token_for(ALEX_ID)
    tenant.session().post(
        f"{tenant.url}/_sim/token_errors", json={"email": ALEX, "code": 7000215, "grant_type": "refresh_token"}
    ).raise_for_status()
    with pytest.raises(AppCredentialsRejected, match="MS_CLIENT_SECRET"):
        service.access_token_for(ALEX_ID)

    assert tenant.account.links.get_link(ALEX_ID).status is LinkStatus.ACTIVE
    assert service.access_token_for(ALEX_ID)  # once Microsoft answers again, the same sign-in works


def test_an_unreachable_identity_platform_is_transient(tenant: Tenant, msal_on_sim_clock: Any) -> None:
    tenant.link(ALEX_ID, ALEX)
    settings = tenant.settings.__class__(**{**tenant.settings.__dict__, "ms_authority": "https://127.0.0.1:9/x"})
    service = tenant.token_service(app_factory=lambda cache: build_msal_app(settings, token_cache=cache))
    with pytest.raises(TokenUnavailable) as raised:
        service.access_token_for(ALEX_ID)
    assert "ConnectionError" in str(raised.value)
    assert tenant.account.links.get_link(ALEX_ID).status is LinkStatus.ACTIVE


def test_a_cache_under_a_key_no_longer_configured_fails_loudly_and_leaves_the_link(tenant: Tenant) -> None:
    tenant.link(ALEX_ID, ALEX)
    service = tenant.token_service(cipher=TokenCipher(Fernet.generate_key(), "9"))
    with pytest.raises(TokenDecryptionError, match="TOKEN_ENCRYPTION_OLD_KEYS"):
        service.access_token_for(ALEX_ID)
    assert tenant.account.links.get_link(ALEX_ID).status is LinkStatus.ACTIVE


def test_unlinked_and_forgotten_techs(tenant: Tenant) -> None:
    service = tenant.token_service()
    with pytest.raises(NotLinked):
        service.access_token_for(7)
    tenant.link(ALEX_ID, ALEX)
    service.forget(ALEX_ID)
    service.forget(ALEX_ID)  # already gone: still fine
    with pytest.raises(NeedsRelink, match="No Microsoft sign-in is saved"):
        service.access_token_for(ALEX_ID)
    assert tenant.account.links.get_link(ALEX_ID).status is LinkStatus.NEEDS_RELINK


def test_a_new_sign_in_replaces_the_stored_cache(tenant: Tenant) -> None:
    service = tenant.token_service()
    tenant.link(ALEX_ID, ALEX, service)
    before = secrets_in(stored_cache(tenant, ALEX_ID), "RefreshToken")
    service.save_cache(ALEX_ID, tenant.sign_in(ALEX))
    after = secrets_in(stored_cache(tenant, ALEX_ID), "RefreshToken")
    assert after and after != before
    assert service.access_token_for(ALEX_ID) in secrets_in(stored_cache(tenant, ALEX_ID), "AccessToken")


# --- two instances at once ----------------------------------------------------------------------------------


def _instance_a(tenant: Tenant, other: Callable[[], None], when: str) -> TokenService:
    """Instance A, which runs ``other`` around its first token request (only the first, of any of its apps)."""
    pending = [other]

    def once() -> None:
        if pending:
            pending.pop()()

    def app_factory(cache: msal.SerializableTokenCache) -> msal.ConfidentialClientApplication:
        client = Interleaved(msal_http_session(tenant.settings), once, when=when)
        return build_msal_app(tenant.settings, token_cache=cache, http_client=client)

    return tenant.token_service(app_factory=app_factory)


def test_two_instances_refreshing_at_once_keep_the_winners_refresh_token(
    tenant: Tenant, msal_on_sim_clock: Any
) -> None:
    tenant.link(ALEX_ID, ALEX)
    b = tenant.token_service()
    seen: dict[str, Any] = {}

    def b_refreshes_first() -> None:  # while A waits for its own refresh answer, B refreshes and stores
        seen["token"] = b.access_token_for(ALEX_ID)
        seen["record"] = tenant.account.token_caches.get_cache(ALEX_ID)

    a = _instance_a(tenant, b_refreshes_first, when="after")
    msal_on_sim_clock.advance(3601)
    token = a.access_token_for(ALEX_ID)

    assert tenant.refresh_grants() == [(ALEX, 200), (ALEX, 200)]  # both refreshed
    record = tenant.account.token_caches.get_cache(ALEX_ID)
    assert record.etag == seen["record"].etag  # A's late write lost the race and did not overwrite B's cache
    assert token == seen["token"]  # A re-read the cache and used B's fresh token
    # B's rotated refresh token is the stored one, and it works even where a used refresh token dies.
    tenant.sim.update_settings(old_refresh_tokens_stay_valid=False)
    msal_on_sim_clock.advance(3601)
    assert a.access_token_for(ALEX_ID) != token
    msal_on_sim_clock.advance(3601)
    assert a.access_token_for(ALEX_ID)
    assert [status for _, status in tenant.refresh_grants()] == [200, 200, 200, 200]
    assert tenant.account.links.get_link(ALEX_ID).status is LinkStatus.ACTIVE


def test_a_refresh_token_superseded_by_another_instance_is_not_taken_for_a_revocation(
    tenant: Tenant, msal_on_sim_clock: Any
) -> None:
    tenant.link(ALEX_ID, ALEX)
    tenant.sim.update_settings(old_refresh_tokens_stay_valid=False)  # a used refresh token dies at once
    b = tenant.token_service()
    seen: dict[str, str] = {}

    def b_refreshes_first() -> None:  # B redeems the shared refresh token just before A sends it
        seen["token"] = b.access_token_for(ALEX_ID)

    a = _instance_a(tenant, b_refreshes_first, when="before")
    msal_on_sim_clock.advance(3601)
    assert a.access_token_for(ALEX_ID) == seen["token"]
    statuses = [status for _, status in tenant.refresh_grants()]
    assert statuses == [200, 400]  # B's refresh, then A's with the superseded token
    assert tenant.account.links.get_link(ALEX_ID).status is LinkStatus.ACTIVE
