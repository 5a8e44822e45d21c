"""`FunctionHost`: HTTP, timers and queues of one function app, started and stopped together."""

from __future__ import annotations

import gc
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from local.host.config import HostConfig
from local.host.functions import HttpFunction, QueueFunction, TimerFunction, read_functions
from local.host.http import HostKeys, HttpTriggers
from local.host.queues import QueuePump
from local.host.timers import TimerRunner

log = logging.getLogger("host")


def generate_keys() -> HostKeys:
    return HostKeys(function_key=secrets.token_urlsafe(32), master_key=secrets.token_urlsafe(32))


@dataclass
class FunctionHost:
    """Serve ``app`` (a ``func.FunctionApp``) on loopback. ``env`` supplies app settings
    (queue connections, ``%NAME%`` binding expressions); it defaults to the process environment."""

    app: Any
    config: HostConfig = field(default_factory=HostConfig)
    keys: HostKeys = field(default_factory=generate_keys)
    env: Mapping[str, str] | None = None
    host: str = "127.0.0.1"
    port: int = 0
    timers_enabled: bool = True
    queues_enabled: bool = True

    def __post_init__(self) -> None:
        self._server: Any = None
        self._timers: list[TimerRunner] = []
        self._pumps: list[QueuePump] = []
        self.url = ""

    def start(self) -> str:
        """Index the app, start every trigger, and return the base URL (without the route prefix)."""
        from local.serve import serve_in_thread

        env = os.environ if self.env is None else self.env
        functions = read_functions(self.app, env)
        http = [f for f in functions if isinstance(f, HttpFunction)]
        timers = [TimerRunner(f) for f in functions if isinstance(f, TimerFunction)] if self.timers_enabled else []
        pumps = [
            QueuePump(f, _connection_string(env, f.connection_setting), self.config)
            for f in functions
            if isinstance(f, QueueFunction) and self.queues_enabled
        ]
        self._server = serve_in_thread(
            HttpTriggers(http, self.config, self.keys), host=self.host, port=self.port, name="functions-host"
        )
        self.url = self._server.url
        for runner in [*pumps, *timers]:
            runner.start()
        self._timers, self._pumps = timers, pumps
        for function in functions:
            log.info("function indexed", extra={"function": function.name, "trigger": type(function).__name__})
        # What is loaded now (the app, its SDKs) lives as long as the host: keep it out of the
        # garbage collector's full passes, which otherwise pause every request for ~50 ms.
        gc.collect()
        gc.freeze()
        return self.url

    def stop(self) -> None:
        for runner in [*self._timers, *self._pumps]:
            runner.stop()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FunctionHost:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _connection_string(env: Mapping[str, str], setting: str) -> str:
    value = env.get(setting, "")
    if not value:
        raise ValueError(
            f"queue trigger connection {setting} is not set: the local host needs a connection string (e.g. Azurite's)"
        )
    return value
