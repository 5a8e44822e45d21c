"""What the service-client tests share: a sleep that records its waits, clients with a quick retry
policy, and the simulators' fault and counter controls. The ``sleeps`` fixture is loaded with
``pytest_plugins = ["tests.sync.client_support"]``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from sync.client_http import RetryPolicy
from sync.graph import GraphClient
from sync.syncro import SyncroClient
from tests.sims.graph_support import GraphHarness
from tests.sims.test_syncro import ADMIN_TOKEN, Stack


class Sleeps:
    """A sleep that records the waits instead of waiting (tests never depend on wall-clock time)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def quick_retry(sleeps: Sleeps) -> RetryPolicy:
    """The tests' retry policy: waits of 0.5 s, doubling, without jitter, recorded in ``sleeps``."""
    return RetryPolicy(backoff_seconds=0.5, jitter=0, sleep=sleeps)


def syncro_client_for(stack: Stack, sleeps: Sleeps, token: str = ADMIN_TOKEN, **options: Any) -> SyncroClient:
    """A SyncroClient of the simulator with ``token`` and ``quick_retry``; ``options`` go to the client."""
    return SyncroClient(
        stack.api, api_token=token, ca_bundle=str(stack.tls.ca_bundle), timeout=10, retry=quick_retry(sleeps), **options
    )


def graph_client_for(graph: GraphHarness, sleeps: Sleeps, token: Callable[[], str]) -> GraphClient:
    """A GraphClient of the simulator with ``token`` and ``quick_retry``."""
    return GraphClient(graph.v1, token=token, ca_bundle=graph.ca_bundle, timeout=10, retry=quick_retry(sleeps))


def add_fault(control: requests.Session, sim_url: str, **rule: Any) -> None:
    """Add a fault rule to a simulator (``method`` GET unless the rule says otherwise)."""
    response = control.post(f"{sim_url}/_sim/faults", json={"method": "GET", **rule})
    assert response.status_code == 201, response.text


def counted(control: requests.Session, sim_url: str, key: str) -> int:
    """How many requests a simulator counted under ``key`` (``"GET /api/v1/users"``)."""
    return control.get(f"{sim_url}/_sim/counters").json()["counters"].get(key, 0)


def syncro_fault(stack: Stack, **rule: Any) -> None:
    add_fault(stack.client(None), stack.server.url, **rule)


def syncro_count(stack: Stack, key: str) -> int:
    return counted(stack.client(None), stack.server.url, key)


def graph_fault(graph: GraphHarness, **rule: Any) -> None:
    add_fault(graph.plain(), graph.url, **rule)


def graph_count(graph: GraphHarness, key: str) -> int:
    return counted(graph.plain(), graph.url, key)
