"""What a sync needs (`SyncDeps`), built once a process by `services.sync_deps` from the settings:
the stores, the clients, the window and the options, and the account's zone
(`sync.account_zone`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from settings import SyncOptions
from storage.account import utc_now
from storage.leases import KEPT_LEASE
from sync.account_zone import ACCOUNT_ZONES

if TYPE_CHECKING:
    from storage.account import StorageAccount
    from sync.graph import GraphClient
    from sync.syncro import SyncroClient


@dataclass
class SyncDeps:
    """What a sync needs; `services.sync_deps` builds it from the app's settings."""

    storage: StorageAccount
    graph_for: Callable[[int], GraphClient]
    syncro: SyncroClient
    syncro_web_url: str  # e.g. https://acme.syncromsp.com, for ticket links on Outlook events
    past_days: int = 60
    future_days: int = 60
    conflict: str = "latest"
    clock: Callable[[], datetime] = utc_now
    forget_tokens: Callable[[int], None] | None = None
    forget_subscriptions: Callable[[int], object] | None = None  # an unlink's: Graph stops notifying
    zone: ZoneInfo | None = None  # set: this zone, never Syncro's (tests, benches)
    max_rounds: int = 4
    lease: timedelta = KEPT_LEASE  # a crashed sync blocks the tech this long; renewed while it runs
    longest_run: timedelta = timedelta(minutes=10)  # host.json's functionTimeout: never kept past it
    options: SyncOptions = field(default_factory=SyncOptions)
    public_base_url: str = ""  # the app's URL: the ICS feed's UIDs, so polls can pre-render feed events

    def account_zone(self) -> ZoneInfo:
        """The Syncro account's zone (``zone`` when set), read once an hour a process
        (`sync.account_zone`). Raises SyncroError when Syncro has never answered it."""
        if self.zone is not None:
            return self.zone
        return ACCOUNT_ZONES.get(self.syncro.base_url, self.syncro.account_time_zone)
