"""Fixtures every test layer shares: Azurite, loopback TLS, the simulators' clock.

Azurite is started once per test session on free ports and stopped at the end, so
``make test`` needs nothing running beforehand.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.azurite import Azurite, start_azurite
from local.sims.control import SimClock
from local.tls import TlsFiles, make_tls_files


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


@pytest.fixture
def sim_clock() -> SimClock:
    return SimClock()
