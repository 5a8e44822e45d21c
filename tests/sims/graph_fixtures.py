"""Fixtures of the Graph simulator tests (load with ``pytest_plugins = ["tests.sims.graph_fixtures"]``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from local.serve import serve_in_thread
from local.sims.control import SimControl
from local.sims.graph import GraphSim
from local.sims.tokens import TokenIssuer
from local.tls import TlsFiles
from tests.sims.graph_support import GraphHarness, Receiver


@pytest.fixture(scope="module")
def graph_server(tls_files: TlsFiles) -> Iterator[GraphHarness]:
    control = SimControl()
    issuer = TokenIssuer()
    sim = GraphSim(control=control, issuer=issuer, ca_bundle=str(tls_files.ca_bundle))
    server = serve_in_thread(sim.app, tls=tls_files, name="graph-sim")
    try:
        yield GraphHarness(sim, server, control, issuer, str(tls_files.ca_bundle))
    finally:
        server.stop()
        sim.close()


@pytest.fixture
def graph(graph_server: GraphHarness) -> GraphHarness:
    """The module's simulator, emptied, with default settings and a fresh clock."""
    graph_server.sim.reset()
    graph_server.control.faults.clear()
    graph_server.control.counters.clear()
    graph_server.control.clock.reset()
    return graph_server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    app = Starlette(routes=[Route("/{path:path}", hook.endpoint, methods=["POST"])])
    hook.server = serve_in_thread(app, name="webhook")
    try:
        yield hook
    finally:
        hook.server.stop()
