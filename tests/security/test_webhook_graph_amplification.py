"""Issue 16, item 2: one anonymous POST naming thousands of made-up ``subscriptionId``s must not
cost a storage read per id. Distinct ids per request are capped (413 beyond), unknown ids are
answered from the in-memory copy of our subscriptions, and the genuine notifications of a mixed
batch still queue their tech's sync."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from realtime.enqueue import pending_since
from realtime.notifications import MAX_SUBSCRIPTIONS_PER_POST
from tests.realtime.webhook_support import ALEX, RealtimeStack, graph_notification, known_subscription

pytest_plugins = ["tests.realtime.webhook_support"]

NOTIFY = "/api/graph/notifications"
LIFECYCLE = "/api/graph/lifecycle"
TECH = ALEX.syncro_user_id


class StorageReads:
    """Counts the subscription store's reads (each still goes to Azurite)."""

    def __init__(self, store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.partition_queries = 0
        self.row_reads = 0
        listed, got = store.list_subscriptions, store.get_subscription

        def list_subscriptions() -> Any:
            self.partition_queries += 1
            return listed()

        def get_subscription(subscription_id: str) -> Any:
            self.row_reads += 1
            return got(subscription_id)

        monkeypatch.setattr(store, "list_subscriptions", list_subscriptions)
        monkeypatch.setattr(store, "get_subscription", get_subscription)


@pytest.fixture
def stack(realtime_stack: RealtimeStack) -> Iterator[RealtimeStack]:
    realtime_stack.clear()
    yield realtime_stack
    realtime_stack.clear()


@pytest.fixture
def reads(stack: RealtimeStack, monkeypatch: pytest.MonkeyPatch) -> StorageReads:
    return StorageReads(stack.account.subscriptions, monkeypatch)


def _made_up(count: int) -> list[dict[str, Any]]:
    return [graph_notification(str(uuid.uuid4()), "guess") for _ in range(count)]


def _lifecycle(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**item, "lifecycleEvent": "missed"} for item in items]


@pytest.mark.parametrize("path", [NOTIFY, LIFECYCLE])
def test_more_distinct_subscriptions_than_graph_could_name_is_refused_413_without_a_read(
    stack: RealtimeStack, reads: StorageReads, path: str
) -> None:
    items = _made_up(MAX_SUBSCRIPTIONS_PER_POST + 1)
    answer = stack.post_json(path, {"value": _lifecycle(items) if path == LIFECYCLE else items})
    assert answer.status_code == 413, answer.text
    assert (
        answer.json()["error"] == "too_many_subscriptions"
        and str(MAX_SUBSCRIPTIONS_PER_POST) in answer.json()["message"]
    )
    assert (reads.partition_queries, reads.row_reads) == (0, 0)
    assert stack.sync_jobs() == []


def test_many_copies_of_one_subscription_are_not_many_subscriptions(stack: RealtimeStack) -> None:
    row = known_subscription(stack, TECH, "amplify-state-1")
    items = [graph_notification(row.subscription_id, "amplify-state-1") for _ in range(MAX_SUBSCRIPTIONS_PER_POST + 5)]
    try:
        assert stack.post_json(NOTIFY, {"value": items}).status_code == 202
        assert [job.syncro_user_id for job in stack.sync_jobs()] == [TECH]
    finally:
        stack.account.subscriptions.delete_subscription(row.subscription_id)


@pytest.mark.parametrize("path", [NOTIFY, LIFECYCLE])
def test_a_batch_of_made_up_ids_costs_no_read_per_id_and_the_genuine_one_still_counts(
    stack: RealtimeStack, reads: StorageReads, path: str
) -> None:
    row = known_subscription(stack, TECH, "amplify-state-2")
    items = [*_made_up(MAX_SUBSCRIPTIONS_PER_POST - 1), graph_notification(row.subscription_id, "amplify-state-2")]
    try:
        answer = stack.post_json(path, {"value": _lifecycle(items) if path == LIFECYCLE else items})
        assert answer.status_code == 202, answer.text
        assert reads.row_reads == 0
        assert reads.partition_queries <= 1  # at most one refresh of the copy, for all the unknown ids
        assert pending_since(stack.account, TECH) is not None  # the genuine notification asked for a sync
    finally:
        stack.account.subscriptions.delete_subscription(row.subscription_id)


def test_a_stream_of_posts_with_made_up_ids_does_not_read_storage_for_each(
    stack: RealtimeStack, reads: StorageReads, monkeypatch: pytest.MonkeyPatch
) -> None:
    from realtime.notifications import records

    # Refreshes of the copy for unknown ids are spaced (1 s by default); an hour here, so that the
    # count below does not depend on how fast this machine is.
    monkeypatch.setattr(records, "_unknown_refresh", 3600.0)
    for _ in range(20):
        assert stack.post_json(NOTIFY, {"value": _made_up(3)}).status_code == 202
    assert reads.row_reads == 0
    assert reads.partition_queries <= 1  # the copy itself, read once
    assert stack.sync_jobs() == []
