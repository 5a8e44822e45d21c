"""Fixtures every test layer shares: Azurite, loopback TLS, the simulators' clock; and the hooks
that mark the tests needing a stack and deal the suite to parallel workers (`tests.parallel`).

Azurite is started once per test session on free ports and stopped at the end, so
``make test`` needs nothing running beforehand. Under pytest-xdist each worker is a session of
its own: its own Azurite, simulators and hosts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from local.azurite import Azurite, start_azurite
from local.sims.control import SimClock
from local.tls import TlsFiles, make_tls_files
from tests import parallel

if TYPE_CHECKING:
    from local.host import FunctionHost


def pytest_configure(config: pytest.Config) -> None:
    # One name for this run (the browser tests' artifacts folder), the same in every xdist worker:
    # they inherit the environment of the process that starts them, which runs this first.
    os.environ.setdefault("TEST_RUN_STAMP", datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if parallel.needs_stack(item):
            item.add_marker(pytest.mark.stack)
    parallel.in_dealt_order(config, items)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    parallel.configure_node(node)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` deals files as `tests.parallel` says; other modes are xdist's own."""
    if config.getoption("dist") == "loadfile":
        return parallel.make_scheduler(config, log)
    return None


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    running = start_azurite()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def storage_connection_string(azurite: Azurite) -> str:
    return azurite.connection_string


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(Path(tmp_path_factory.mktemp("tls")))


# The tenant app_settings_env binds sign-in to (settings refuse an authority that names none).
TEST_TENANT_ID = "6d2f1c4b-3a59-4e8d-9c7b-1f0e2d3c4b5a"


@pytest.fixture
def sim_clock() -> SimClock:
    return SimClock()


def app_settings_env(storage_connection_string: str, **overrides: str) -> dict[str, str]:
    """A complete, valid set of app settings (as local.settings.json would give)."""
    import base64
    import os as _os
    import secrets
    import uuid

    env = {
        "AzureWebJobsStorage": storage_connection_string,
        "TABLE_PREFIX": "t" + uuid.uuid4().hex[:10],
        "PUBLIC_BASE_URL": "http://127.0.0.1:7071",
        "MS_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
        "MS_CLIENT_SECRET": "client-secret-value",
        "MS_AUTHORITY": f"https://login.microsoftonline.com/{TEST_TENANT_ID}",
        "SYNCRO_BASE_URL": "https://127.0.0.1:9/api/v1",
        "SYNCRO_API_TOKEN": "syncro-token-value",
        "SYNCRO_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        "TOKEN_ENCRYPTION_KEY": base64.urlsafe_b64encode(_os.urandom(32)).decode(),
        "SYNC_QUEUE_NAME": "jobs-" + uuid.uuid4().hex[:8],
    }
    env.update(overrides)
    return env


@pytest.fixture
def use_app_settings(monkeypatch: pytest.MonkeyPatch):
    """Install app settings into the process environment for code that reads them (services.py)."""
    import services

    def install(env: dict[str, str]) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        services.reset()

    yield install
    services.reset()


@pytest.fixture
def served_app() -> Iterator[FunctionHost]:
    """The real function_app on the local host, HTTP only; settings come from `use_app_settings`."""
    import function_app
    from local.host import FunctionHost, HostConfig

    with FunctionHost(
        function_app.app, config=HostConfig(), env={}, timers_enabled=False, queues_enabled=False
    ) as host:
        yield host
