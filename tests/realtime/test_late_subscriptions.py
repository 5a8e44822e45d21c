"""Notifications for a subscription this instance does not know yet are answered at once, exactly
as any other, and re-checked after the answer (realtime.late_subscriptions): one whose row turns
up (another instance wrote it just after Graph created the subscription) still gets its sync, a
forged one never does, and the answer never tells which was which."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from realtime.enqueue import pending_since
from realtime.late_subscriptions import LateIds
from storage import StorageAccount
from storage.errors import StorageUnavailable
from storage.subscriptions import SubscriptionRecord, hash_client_state
from tests.realtime.webhook_support import ALEX, RealtimeStack
from tests.realtime.webhook_support import graph_notification as _notification

pytest_plugins = ["tests.realtime.webhook_support"]

TECH = ALEX.syncro_user_id
NOTIFY = "/api/graph/notifications"


@pytest.fixture
def stack(realtime_stack: RealtimeStack) -> Iterator[RealtimeStack]:
    realtime_stack.clear()
    yield realtime_stack
    realtime_stack.clear()


def _other_process(stack: RealtimeStack) -> StorageAccount:
    from settings import get_settings

    return StorageAccount(get_settings().storage, sync_queue_name=stack.account.sync_queue.name)


def _late_row(subscription_id: str, client_state: str) -> SubscriptionRecord:
    now = datetime.now(UTC)
    return SubscriptionRecord(
        subscription_id, TECH, "/me/events", now + timedelta(days=2), hash_client_state(client_state), now
    )


def _wait_for(condition: Any, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def test_an_id_unknown_when_it_came_and_found_by_the_recheck_still_gets_its_sync(
    stack: RealtimeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from realtime.notifications import records

    monkeypatch.setattr(records, "_unknown_refresh", 0.0)  # every re-check reads (1 s apart by default)
    store = stack.account.subscriptions
    store.forget_cached()
    # The in-memory copy is fresh and lacks the row, which another instance writes just after.
    assert store.lookup_many(["late-sub"], max_age=30) == {"late-sub": None}
    _other_process(stack).subscriptions.upsert_subscription(_late_row("late-sub", "late-secret"))
    release = threading.Event()
    listed = store.list_subscriptions
    monkeypatch.setattr(store, "list_subscriptions", lambda: (release.wait(15), listed())[1])
    try:
        answer = stack.post_json(NOTIFY, {"value": [_notification("late-sub", "late-secret")]})
        # Answered while the re-read is held: the request did not wait for it.
        assert answer.status_code == 202 and answer.content == b""
        assert pending_since(stack.account, TECH) is None
        release.set()
        assert _wait_for(lambda: pending_since(stack.account, TECH) is not None)  # the re-check asked
    finally:
        release.set()
        _other_process(stack).subscriptions.delete_subscription("late-sub")
        store.forget_cached()


def test_an_id_found_late_with_a_wrong_client_state_never_gets_a_sync(
    stack: RealtimeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from realtime.notifications import records

    monkeypatch.setattr(records, "_unknown_refresh", 0.0)
    store = stack.account.subscriptions
    store.forget_cached()
    try:
        assert store.lookup_many(["late-forged"], max_age=30) == {"late-forged": None}
        _other_process(stack).subscriptions.upsert_subscription(_late_row("late-forged", "the-real-secret"))
        forged = stack.post_json(NOTIFY, {"value": [_notification("late-forged", "guessed")]})
        unknown = stack.post_json(NOTIFY, {"value": [_notification("never-ours", "guessed")]})
        assert (forged.status_code, forged.content) == (unknown.status_code, unknown.content) == (202, b"")
        # The re-check read the row (the next request finds it in the copy) and refused the guess.
        assert _wait_for(lambda: store.peek_many(["late-forged"], max_age=30, unknown_refresh=3600) is not None)
        assert _wait_for(lambda: store.peek_many(["late-forged"], max_age=30, unknown_refresh=3600)["late-forged"])
        time.sleep(0.5)
        assert pending_since(stack.account, TECH) is None and stack.sync_jobs() == []
    finally:
        _other_process(stack).subscriptions.delete_subscription("late-forged")
        store.forget_cached()


def test_rechecks_share_one_run_are_bounded_and_retry_storage_then_give_up() -> None:
    seen: list[list[str]] = []
    failures = {"left": 2}

    async def recheck(account: Any, items: list[dict[str, Any]]) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise StorageUnavailable("down")
        seen.append([item["subscriptionId"] for item in items])

    async def scenario() -> None:
        late = LateIds(recheck, max_pending=3, retry_delays=(0.01, 0.01))
        account = object()
        late.add(account, [{"subscriptionId": "a"}])  # type: ignore[arg-type]
        late.add(account, [{"subscriptionId": "b"}, {"subscriptionId": "c"}, {"subscriptionId": "d"}])  # type: ignore[arg-type]
        await late.drain()

    asyncio.run(scenario())
    assert seen == [["a", "b", "c"]]  # one run for both POSTs, the fourth dropped, two failures retried

    failures["left"] = 9
    seen.clear()

    async def down() -> None:
        late = LateIds(recheck, retry_delays=(0.01,))
        late.add(object(), [{"subscriptionId": "x"}])  # type: ignore[arg-type]
        await late.drain()

    asyncio.run(down())
    assert seen == [] and failures["left"] == 7  # two tries, then dropped
