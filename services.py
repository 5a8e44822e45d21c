"""The composition root: the process-wide objects the triggers share (clients, stores, the deps
a sync or a subscription needs), built once from settings on first use.

The only place that builds them. Nothing below it imports it (`docs/architecture.md`): storage,
sync, oauth and ics take what they need as arguments; the shell (web, realtime, blueprints)
asks here. Nothing here is imported eagerly by function_app.py's dependencies beyond this
module, so a cold start pays only for what the first invocation needs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

    from oauth.crypto import TokenCipher
    from oauth.flow import LinkingServices
    from oauth.tokens import TokenService
    from storage import StorageAccount
    from sync.budget import RequestBudget, SharedBudget
    from sync.engine import SyncDeps
    from sync.graph import GraphClient
    from sync.subscriptions import SubscriptionDeps
    from sync.syncro import SyncroClient
    from sync.syncro_tokens import SyncroTokenService
    from web.session import SessionCookies


@functools.cache
def storage_account() -> StorageAccount:
    """Raises SettingsError if the app's settings are invalid."""
    from settings import get_settings
    from storage import StorageAccount

    settings = get_settings()
    return StorageAccount(settings.storage, sync_queue_name=settings.sync_queue)


def app_version() -> str:
    from settings import VERSION, SettingsError, get_settings

    try:
        return get_settings().app_version
    except SettingsError:
        return VERSION


@functools.cache
def token_cipher() -> TokenCipher:
    from oauth.crypto import TokenCipher
    from settings import get_settings

    return TokenCipher.from_settings(get_settings())


@functools.cache
def token_service() -> TokenService:
    """Graph access tokens per technician, from their encrypted MSAL cache."""
    from oauth.msal_app import build_msal_app
    from oauth.tokens import TokenService
    from settings import get_settings

    settings = get_settings()
    account = storage_account()
    return TokenService(
        links=account.links,
        caches=account.token_caches,
        cipher=token_cipher(),
        app_factory=lambda cache: build_msal_app(settings, token_cache=cache, http_client=msal_session()),
    )


@functools.cache
def msal_session() -> requests.Session:
    """One HTTP session for every MSAL app of the process: its connections and the discovery
    documents it keeps (`oauth.msal_app.msal_http_session`) serve each token request."""
    from oauth.msal_app import msal_http_session
    from settings import get_settings

    return msal_http_session(get_settings())


@functools.cache
def syncro_client() -> SyncroClient:
    from settings import get_settings
    from sync.syncro import SyncroClient

    settings = get_settings()
    return SyncroClient(
        settings.syncro_base_url,
        api_token=settings.syncro_api_token,
        ca_bundle=settings.ca_bundle,
        budget=syncro_budget(),
    )


@functools.cache
def syncro_budget() -> SharedBudget:
    """Syncro's requests for the whole app: every instance and every caller (poller, webhook, sync
    jobs, token checks) takes from one ledger in Table Storage (docs/budget.md). Every SyncroClient
    the app builds asks it before each request."""
    from settings import get_settings
    from storage.syncro_budget import SyncroBudgetStore
    from sync.budget import SharedBudget

    return SharedBudget(SyncroBudgetStore(storage_account()), get_settings().sync.requests_per_minute)


def graph_client(access_token: str) -> GraphClient:
    """A Graph client acting with one access token (a sign-in's, before any link exists)."""
    from settings import get_settings
    from sync.graph import GraphClient

    settings = get_settings()
    return GraphClient(settings.graph_base_url, token=lambda: access_token, ca_bundle=settings.ca_bundle)


def graph_client_for(syncro_user_id: int) -> GraphClient:
    """A Graph client acting as a linked technician (tokens refreshed as needed)."""
    from settings import get_settings
    from sync.graph import GraphClient

    settings = get_settings()
    tokens = token_service()
    return GraphClient(
        settings.graph_base_url, token=lambda: tokens.access_token_for(syncro_user_id), ca_bundle=settings.ca_bundle
    )


@functools.cache
def linking_services() -> LinkingServices:
    from oauth.flow import LinkingServices
    from oauth.msal_app import build_msal_app
    from settings import get_settings

    settings = get_settings()
    account = storage_account()
    return LinkingServices(
        redirect_uri=f"{settings.public_base_url}/api/oauth/callback",
        authority=settings.ms_authority,
        client_id=settings.ms_client_id,
        allowed_tenants=settings.allowed_tenant_ids,
        admin_groups=settings.admin_group_ids,
        states=account.oauth_states,
        links=account.links,
        tokens=token_service(),
        cipher=token_cipher(),
        msal_app=lambda cache: build_msal_app(settings, token_cache=cache, http_client=msal_session()),
        graph=graph_client,
        syncro=syncro_client(),
        overrides=lambda: account.overrides.all_overrides(),
        clock=account.clock,
    )


@functools.cache
def syncro_token_service() -> SyncroTokenService:
    """Technicians' own Syncro API tokens (the poller's fallback when Syncro hides owners)."""
    from settings import get_settings
    from storage.syncro_tokens import SyncroTokenStore
    from sync.syncro import SyncroClient
    from sync.syncro_tokens import SyncroTokenService

    settings = get_settings()
    account = storage_account()
    return SyncroTokenService(
        SyncroTokenStore(account),
        token_cipher(),
        lambda token: SyncroClient(
            settings.syncro_base_url, api_token=token, ca_bundle=settings.ca_bundle, budget=syncro_budget()
        ),
        account.clock,
    )


@functools.cache
def poll_budget() -> RequestBudget:
    """The most the poller spends a minute (the poll timer is a singleton across instances, so one
    process polls at a time); every request also comes out of the app-wide `syncro_budget`."""
    from settings import get_settings
    from sync.budget import RequestBudget

    return RequestBudget(get_settings().sync.poll_requests_per_minute)


# A burst guard per instance: one instance's webhooks never spend more than this a minute. The
# account-wide limit is `syncro_budget`, which also reserves the webhooks' share there.
WEBHOOK_REQUESTS_PER_MINUTE = 30


@functools.cache
def webhook_budget() -> RequestBudget:
    """The most one instance's Syncro webhooks spend a minute (within `syncro_budget`)."""
    from sync.budget import RequestBudget

    return RequestBudget(WEBHOOK_REQUESTS_PER_MINUTE)


@functools.cache
def session_codec() -> SessionCookies:
    """Signs and reads the settings page's session cookies (key derived from the token key)."""
    from settings import get_settings
    from web.session import SessionCookies

    settings = get_settings()
    return SessionCookies(settings.token_encryption_key, old_keys=settings.token_encryption_old_keys.values())


def sync_deps() -> SyncDeps:
    """What a sync needs, from the app's settings (raises SettingsError when they are invalid)."""
    from settings import get_settings
    from sync.engine import SyncDeps

    settings = get_settings()
    return SyncDeps(
        storage=storage_account(),
        graph_for=graph_client_for,
        syncro=syncro_client(),
        syncro_web_url=settings.sync.syncro_web_url,
        options=settings.sync,
        public_base_url=settings.public_base_url,
        past_days=settings.window_past_days,
        future_days=settings.window_future_days,
        conflict=settings.conflict_policy.value,
        forget_tokens=lambda tech: token_service().forget(tech),
        forget_subscriptions=_remove_subscriptions,
    )


def _remove_subscriptions(syncro_user_id: int) -> object:
    from sync.subscriptions import remove_for_link

    return remove_for_link(syncro_user_id, deps=subscription_deps())


def subscription_deps() -> SubscriptionDeps:
    """What Graph subscription upkeep needs, from the app's settings. Raises SettingsError."""
    from datetime import timedelta

    from settings import get_realtime_settings, get_settings
    from sync.subscriptions import CREATE_TIMEOUT, SubscriptionDeps, SubscriptionsClient

    settings, realtime = get_settings(), get_realtime_settings()
    tokens = token_service()

    def graph_for(syncro_user_id: int) -> SubscriptionsClient:
        return SubscriptionsClient(
            settings.graph_base_url,
            token=lambda: tokens.access_token_for(syncro_user_id),
            ca_bundle=settings.ca_bundle,
            timeout=CREATE_TIMEOUT,
        )

    return SubscriptionDeps(
        account=storage_account(),
        graph_for=graph_for,
        public_base_url=settings.public_base_url,
        lifetime=timedelta(minutes=realtime.subscription_lifetime_minutes),
        renew_margin=timedelta(minutes=realtime.subscription_renew_margin_minutes),
    )


# What the layers above keep per process and forget with the settings (the settings page's
# calendar lists): they hand their `clear` here, so `reset` needs no import of theirs.
_forgetters: list[Callable[[], None]] = []


def forget_on_reset(clear: Callable[[], None]) -> None:
    """Call ``clear`` at every `reset` (a cache above this layer that depends on the settings)."""
    _forgetters.append(clear)


def reset() -> None:
    """Forget every object built from settings (tests that change settings call this)."""
    from ics.feed import reset_caches as reset_feed_caches
    from settings import get_settings

    get_settings.cache_clear()
    for cached in (
        storage_account,
        token_cipher,
        token_service,
        msal_session,
        syncro_client,
        linking_services,
        session_codec,
        syncro_token_service,
        poll_budget,
        webhook_budget,
        syncro_budget,
    ):
        cached.cache_clear()
    reset_feed_caches()
    for clear in _forgetters:
        clear()
