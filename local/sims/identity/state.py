"""The one object every route module shares: directory, grants, settings, clock and the lock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from local.sims.control import SimControl
from local.sims.identity.directory import Directory
from local.sims.identity.grants import Grants
from local.sims.identity.minting import Minter
from local.sims.identity.settings import IdentitySettings
from local.sims.tokens import TokenIssuer


class IdentityState:
    """Handlers run on uvicorn's loop while tests call in from other threads: hold ``lock`` for every use."""

    def __init__(self, *, control: SimControl, issuer: TokenIssuer, settings: IdentitySettings) -> None:
        self.lock = threading.RLock()
        self.control = control
        self.initial_settings = settings
        self.settings = settings
        self.directory = Directory()
        self.grants = Grants()
        self.minter = Minter(issuer)

    def now(self) -> float:
        return self.control.clock.timestamp()

    def now_datetime(self) -> datetime:
        return self.control.clock.now()

    @staticmethod
    def as_datetime(timestamp: float) -> datetime:
        return datetime.fromtimestamp(timestamp, UTC)

    def reset(self) -> None:
        with self.lock:
            self.settings = self.initial_settings
            self.directory = Directory()
            self.grants = Grants()
