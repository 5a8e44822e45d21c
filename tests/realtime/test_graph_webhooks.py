"""The Graph webhooks through the in-process product: the Graph simulator creates our subscription
(its validation requests reach our endpoints), delivers change and lifecycle notifications to
them, and what lands on Azurite's queues is checked. Bad payloads get their documented answer
and enqueue nothing (docs/realtime.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

import services
from local.sims.control import FaultRule
from realtime import lifecycle
from realtime.enqueue import pending_since, sync_started
from realtime.notifications import items_of, read_json, sort_items, validation_answer
from storage import StorageAccount
from storage.subscriptions import SubscriptionRecord, hash_client_state
from sync import subscriptions
from tests.realtime.webhook_support import ALEX, BLAKE, RealtimeStack
from tests.realtime.webhook_support import graph_notification as _notification
from tests.realtime.webhook_support import known_subscription as _known

pytest_plugins = ["tests.realtime.webhook_support"]

TECH = ALEX.syncro_user_id
NOTIFY = "/api/graph/notifications"
LIFECYCLE = "/api/graph/lifecycle"
TOKEN = "Validation: Testing client application reachability for subscription Request-Id: 7c1e-ab&x=1 %20<b>"


@pytest.fixture
def stack(realtime_stack: RealtimeStack) -> Iterator[RealtimeStack]:
    realtime_stack.clear()
    assert subscriptions.ensure_for_link(realtime_stack.link(), deps=services.subscription_deps()) in (
        subscriptions.Outcome.CREATED,
        subscriptions.Outcome.KEPT,
    )
    realtime_stack.clear()  # the creation's own traffic is not the test's
    yield realtime_stack
    sim = realtime_stack.graph_sim.settings
    sim.notification_copies, sim.notification_reorder = 1, False
    realtime_stack.clear()


def _subscription(stack: RealtimeStack) -> SubscriptionRecord:
    (row,) = stack.account.subscriptions.list_for_tech(TECH)
    return row


def _nothing_queued(stack: RealtimeStack, *techs: int) -> bool:
    return stack.sync_jobs() == [] and all(pending_since(stack.account, tech) is None for tech in techs)


# -- the validation handshake ----------------------------------------------------------------------


@pytest.mark.parametrize("path", [NOTIFY, LIFECYCLE])
def test_the_handshake_answers_the_decoded_token_as_plain_text_and_nothing_else(
    stack: RealtimeStack, path: str
) -> None:
    answer = stack.post(f"{path}?validationToken={quote(TOKEN, safe='')}", b"", headers={"Content-Type": "text/plain"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.content == TOKEN.encode()
    assert _nothing_queued(stack, TECH)


def test_an_empty_or_oversized_validation_token_is_refused() -> None:
    assert validation_answer({"validationToken": ""}).status == 400
    assert validation_answer({"validationToken": "x" * 5000}).status == 400
    assert validation_answer({}) is None


# -- change notifications ----------------------------------------------------------------------------


def test_an_outlook_change_queues_one_sync_job_for_the_tech_and_is_acknowledged_202(stack: RealtimeStack) -> None:
    stack.outlook_create("Webhook check")
    assert stack.graph_sim.notifier.wait_until_settled()
    deliveries = stack.graph_sim.notifier.snapshot()["deliveries"]
    assert deliveries and all(d["status"] == "delivered" and d["responses"] == ["202"] for d in deliveries)
    # One created and two updated notifications (Graph's reported habit), one job.
    items = [item for d in deliveries for item in d["body"]["value"]]
    assert sorted(i["changeType"] for i in items) == ["created", "updated", "updated"]
    (job,) = stack.sync_jobs()
    assert job.syncro_user_id == TECH and job.reason == "graph-notification"


def test_duplicated_and_reordered_deliveries_still_make_one_job(stack: RealtimeStack) -> None:
    sim = stack.graph_sim.settings
    sim.notification_copies, sim.notification_reorder = 3, True
    stack.outlook_create("Said three times")
    stack.outlook_create("And again")
    assert stack.graph_sim.notifier.wait_until_settled()
    assert len(stack.graph_sim.notifier.snapshot()["deliveries"]) >= 3
    assert [job.syncro_user_id for job in stack.sync_jobs()] == [TECH]


def test_a_change_after_the_job_started_queues_a_job_of_its_own(stack: RealtimeStack) -> None:
    stack.outlook_create("First")
    assert stack.graph_sim.notifier.wait_until_settled()
    sync_started(stack.account, TECH)  # what the queue job does before it reads anything
    stack.outlook_create("While the job ran")
    assert stack.graph_sim.notifier.wait_until_settled()
    assert [job.syncro_user_id for job in stack.sync_jobs()] == [TECH, TECH]


def test_a_batch_naming_two_techs_queues_one_job_each(stack: RealtimeStack) -> None:
    alex, blake = _known(stack, TECH, "alex-secret"), _known(stack, BLAKE.syncro_user_id, "blake-secret")
    batch = {
        "value": [
            _notification(alex.subscription_id, "alex-secret", "created"),
            _notification(blake.subscription_id, "blake-secret"),
            _notification(alex.subscription_id, "alex-secret"),
            _notification(blake.subscription_id, "blake-secret", "deleted"),
        ]
    }
    try:
        answer = stack.post_json(NOTIFY, batch)
        assert answer.status_code == 202 and answer.content == b""
        assert sorted(job.syncro_user_id for job in stack.sync_jobs()) == sorted([TECH, BLAKE.syncro_user_id])
    finally:
        for record in (alex, blake):
            stack.account.subscriptions.delete_subscription(record.subscription_id)


def test_in_a_mixed_batch_only_the_genuine_notifications_count(stack: RealtimeStack) -> None:
    blake = _known(stack, BLAKE.syncro_user_id, "blake-secret")
    batch = {
        "value": [
            _notification(blake.subscription_id, "not-blakes-secret"),
            _notification("no-such-subscription", "whatever"),
            _notification(_subscription(stack).subscription_id, None),  # ours, but no clientState
        ]
    }
    try:
        assert stack.post_json(NOTIFY, batch).status_code == 202
        assert _nothing_queued(stack, TECH, BLAKE.syncro_user_id)
    finally:
        stack.account.subscriptions.delete_subscription(blake.subscription_id)


def test_each_request_leaves_structured_lines_and_never_a_client_state(
    stack: RealtimeStack, caplog: pytest.LogCaptureFixture
) -> None:
    ours = _known(stack, TECH, "alex-secret")
    batch = {
        "value": [
            _notification(ours.subscription_id, "alex-secret", "created"),
            _notification(ours.subscription_id, "alex-secret"),
            _notification(ours.subscription_id, "forged-secret"),
            _notification("no-such-subscription", "another-secret"),
        ]
    }
    try:
        with caplog.at_level(logging.INFO, logger="realtime.notifications"):
            assert stack.post_json(NOTIFY, batch).status_code == 202
            # The unknown id is logged by its re-check, just after the answer (realtime.late_subscriptions).
            deadline = time.monotonic() + 10
            while "unknown_subscription" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
        lines = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith('{"event":')]
        assert {"event": "webhook.graph", "tech": TECH, "job_id": None, "correlation_id": ours.subscription_id,
                "copies": 0, "notifications": 2, "sync_asked": True} in lines  # fmt: skip
        ignored = {line["outcome"]: line for line in lines if line["tech"] is None}
        assert ignored["unknown_subscription"]["subscriptions"] == "no-such-subscription"
        assert ignored["wrong_client_state"]["subscriptions"] == ours.subscription_id
        ours_only = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("realtime"))
        assert "secret" not in ours_only
    finally:
        stack.account.subscriptions.delete_subscription(ours.subscription_id)


# -- bad payloads: the documented answer, nothing queued ------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"value": [', "application/json", 400, "malformed_json"),
        (b"\xff\xfe{}", "application/json", 400, "malformed_json"),
        (b"[]", "application/json", 400, "bad_payload"),
        (b'{"value": []}', "application/json", 400, "bad_payload"),
        (b'{"value": [{"clientState": "x"}]}', "application/json", 400, "bad_payload"),
        (b'{"value": [{"subscriptionId": 7}]}', "application/json", 400, "bad_payload"),
        (b'{"value": [{"subscriptionId": "s", "clientState": 7}]}', "application/json", 400, "bad_payload"),
        (b'{"value": [{"subscriptionId": "s"}]}', "text/plain", 415, "unsupported_media_type"),
        (b'{"value": [{"subscriptionId": "s"}]}', "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b'{"value": [{"subscriptionId": "s"}]}', "", 415, "unsupported_media_type"),
    ],
)
@pytest.mark.parametrize("path", [NOTIFY, LIFECYCLE])
def test_a_bad_payload_gets_a_clear_4xx_and_queues_nothing(
    stack: RealtimeStack, path: str, body: bytes, content_type: str, status: int, code: str
) -> None:
    answer = stack.post(path, body, headers={"Content-Type": content_type} if content_type else {})
    assert answer.status_code == status
    assert answer.json()["error"] == code and answer.json()["message"]
    assert _nothing_queued(stack, TECH) and stack.subscription_jobs() == []


@pytest.mark.parametrize("path", [NOTIFY, LIFECYCLE])
def test_a_huge_body_is_refused_413(stack: RealtimeStack, path: str) -> None:
    row = _subscription(stack)
    huge = json.dumps({"value": [_notification(row.subscription_id, "x")], "pad": "x" * (2 * 1024 * 1024)})
    answer = stack.post(path, huge, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    assert _nothing_queued(stack, TECH) and stack.subscription_jobs() == []


def test_a_huge_body_is_refused_by_the_function_itself_too() -> None:
    with pytest.raises(Exception) as refused:
        read_json({"Content-Type": "application/json"}, b"{" + b" " * 2048 + b"}", max_bytes=1024)
    assert refused.value.answer.status == 413


@pytest.mark.parametrize("path", [NOTIFY, LIFECYCLE])
def test_a_wrong_client_state_or_unknown_subscription_is_acknowledged_and_ignored(
    stack: RealtimeStack, path: str
) -> None:
    row = _subscription(stack)
    for item in (_notification(row.subscription_id, "guessed"), _notification("unknown-subscription", "x")):
        item["lifecycleEvent"] = "missed"
        answer = stack.post_json(path, {"value": [item]})
        assert answer.status_code == 202 and answer.content == b""  # nothing that tells which was wrong
    assert _nothing_queued(stack, TECH) and stack.subscription_jobs() == []


def test_an_unreachable_storage_answers_503_so_graph_delivers_again(stack: RealtimeStack) -> None:
    from realtime.notifications import receive_notifications
    from settings import StorageSettings
    from storage import StorageAccount

    dead = StorageAccount(
        StorageSettings(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
            "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;",
            None,
            None,
        )
    )
    body = json.dumps({"value": [_notification("any", "x")]}).encode()
    headers = {"Content-Type": "application/json"}
    answer = asyncio.run(receive_notifications({}, headers, body, account=dead, max_bytes=4096))
    assert answer.status == 503 and answer.headers["Retry-After"]


# -- lifecycle notifications ---------------------------------------------------------------------------


def test_missed_asks_for_a_sync_at_once(stack: RealtimeStack) -> None:
    stack.graph_sim.subscriptions.lifecycle(_subscription(stack).subscription_id, "missed")
    assert stack.graph_sim.notifier.wait_until_settled()
    (job,) = stack.sync_jobs()
    assert job.syncro_user_id == TECH and job.reason == "graph-missed"
    assert stack.subscription_jobs() == []


def test_reauthorization_required_renews_the_subscription_then_asks_for_a_sync(stack: RealtimeStack) -> None:
    row = _subscription(stack)
    stack.graph_sim.subscriptions.lifecycle(row.subscription_id, "reauthorizationRequired")
    assert stack.graph_sim.notifier.wait_until_settled()
    assert stack.sync_jobs() == []  # the sync waits for the subscription to work again
    (text,) = stack.take_subscription_jobs()
    assert json.loads(text)["action"] == "reauthorize"
    assert lifecycle.run_subscription_job(text) is subscriptions.Outcome.RENEWED
    (sub,) = stack.sim_subscriptions()
    assert sub.id == row.subscription_id and sub.challenged_since is None  # delivery resumed
    assert [job.reason for job in stack.sync_jobs()] == ["graph-reauthorize"]


def test_subscription_removed_creates_a_new_subscription_then_asks_for_a_sync(stack: RealtimeStack) -> None:
    row = _subscription(stack)
    stack.graph_sim.subscriptions.lifecycle(row.subscription_id, "subscriptionRemoved")
    assert stack.graph_sim.notifier.wait_until_settled()
    (text,) = stack.take_subscription_jobs()
    assert lifecycle.run_subscription_job(text) is subscriptions.Outcome.CREATED
    (sub,) = stack.sim_subscriptions()
    assert sub.id != row.subscription_id
    assert [r.subscription_id for r in stack.account.subscriptions.list_for_tech(TECH)] == [sub.id]
    assert [job.reason for job in stack.sync_jobs()] == ["graph-replace"]
    # and the new subscription works: a change reaches us again
    stack.clear()
    stack.outlook_create("After the new subscription")
    assert stack.graph_sim.notifier.wait_until_settled()
    assert [job.syncro_user_id for job in stack.sync_jobs()] == [TECH]


def test_a_message_that_is_not_a_subscription_job_is_dropped_not_retried() -> None:
    assert lifecycle.run_subscription_job('{"action": "explode"}') is None
    assert lifecycle.run_subscription_job("not json") is None


def test_a_replacement_graph_refused_is_retried_by_the_host_after_asking_for_the_sync(
    stack: RealtimeStack,
) -> None:
    row = _subscription(stack)
    stack.graph_sim.subscriptions.lifecycle(row.subscription_id, "subscriptionRemoved")
    assert stack.graph_sim.notifier.wait_until_settled()
    (text,) = stack.take_subscription_jobs()
    stack.graph_sim.control.faults.add(FaultRule("POST", r"^/v1\.0/subscriptions$", 503, times=0))
    try:
        with pytest.raises(lifecycle.SubscriptionRetry):
            lifecycle.run_subscription_job(text)
    finally:
        stack.graph_sim.control.faults.clear()
    assert [job.reason for job in stack.sync_jobs()] == ["graph-replace"]  # delta catches up meanwhile
    assert stack.account.subscriptions.get_status(TECH).state.value == "failed"
    assert lifecycle.run_subscription_job(text) is subscriptions.Outcome.CREATED  # the host's retry


# -- pure parts ------------------------------------------------------------------------------------


def test_sorting_tells_ours_from_unknown_and_forged() -> None:
    now = datetime.now(UTC)
    ours = SubscriptionRecord("s1", 1, "/me/events", now, hash_client_state("right"), now)
    items = items_of(
        {"value": [_notification("s1", "right"), _notification("s1", "wrong"), _notification("s2", "right")]}
    )
    result = sort_items(items, {"s1": ours}.get)
    assert [record.syncro_user_id for record, _ in result.accepted] == [1]
    assert result.forged == ["s1"] and result.unknown == ["s2"]


# -- the coalescing sync request ----------------------------------------------------------------------


def test_requests_while_a_job_is_queued_coalesce_and_a_stale_one_no_longer_covers(stack: RealtimeStack) -> None:
    from realtime.enqueue import request_sync

    window = timedelta(seconds=30)
    now = datetime.now(UTC)
    assert request_sync(stack.account, TECH, "graph-notification", now=now, window=window) is True
    assert request_sync(stack.account, TECH, "reconcile", now=now + timedelta(seconds=5), window=window) is False
    # Its message may have been lost: past the window the next request sends a new one.
    assert request_sync(stack.account, TECH, "reconcile", now=now + timedelta(seconds=31), window=window) is True
    assert [job.reason for job in stack.sync_jobs()] == ["graph-notification", "reconcile"]


def test_a_burst_of_concurrent_requests_sends_one_message(stack: RealtimeStack) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from realtime.enqueue import request_sync

    with ThreadPoolExecutor(20) as pool:
        sent = list(pool.map(lambda _: request_sync(stack.account, TECH, "graph-notification"), range(40)))
    assert sent.count(True) == 1
    assert len(stack.sync_jobs()) == 1


def test_a_message_that_could_not_be_sent_leaves_no_row_to_coalesce_into(
    stack: RealtimeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from realtime.enqueue import request_sync
    from storage.errors import StorageUnavailable

    def refuse(*args: object, **kwargs: object) -> None:
        raise StorageUnavailable("queue down")

    monkeypatch.setattr(stack.account.sync_queue, "enqueue", refuse)
    with pytest.raises(StorageUnavailable):
        request_sync(stack.account, TECH, "graph-notification")
    assert pending_since(stack.account, TECH) is None
    monkeypatch.undo()
    assert request_sync(stack.account, TECH, "graph-notification") is True


def test_the_hosts_queue_pump_runs_the_lifecycle_work_end_to_end(stack: RealtimeStack) -> None:
    """subscriptionRemoved -> our lifecycle URL -> the subscription-jobs queue -> the local host's pump
    running the app's queue trigger -> a new subscription at Graph and a sync job."""
    import dataclasses
    import os

    import function_app
    from local.host import HostConfig
    from local.host.functions import QueueFunction, read_functions
    from local.host.queues import QueuePump

    spec = next(
        f
        for f in read_functions(function_app.app, {**os.environ, **stack.product.env})
        if isinstance(f, QueueFunction) and f.name == "graph_subscription_job"
    )
    config = dataclasses.replace(HostConfig(), queue_visibility_timeout=0.0, queue_max_polling_interval=0.2)
    pump = QueuePump(spec, stack.product.env["AzureWebJobsStorage"], config)
    pump.start()
    try:
        old = _subscription(stack).subscription_id
        stack.graph_sim.subscriptions.lifecycle(old, "subscriptionRemoved")
        new = stack.wait_for(lambda: [s for s in stack.sim_subscriptions() if s.id != old])
        stack.wait_for(lambda: [job for job in stack.sync_jobs() if job.reason == "graph-replace"])
    finally:
        pump.stop()
    assert [r.subscription_id for r in stack.account.subscriptions.list_for_tech(TECH)] == [new[0].id]
    assert stack.subscription_jobs() == []  # done, not retried or poisoned


def _burst(
    flush, first: list[int], later: list[list[int]], *, seal_early: bool = False
) -> tuple[list[str], list[dict[int, str]]]:
    """``first`` asks; once its round is in the worker, every ``later`` request asks; returns the
    order they were answered in and the rounds ``flush`` saw."""
    import threading

    from realtime.group_commit import GroupCommit

    rounds: list[dict[int, str]] = []
    release = threading.Event()

    def recorded(account: object, techs: dict[int, str], seal) -> frozenset[int]:
        rounds.append(dict(techs))
        if len(rounds) == 1:
            if seal_early:
                seal()  # its message went out before the others came
            release.wait(5)  # everyone else arrives while the first round talks to storage
        return flush(techs, seal)

    commit = GroupCommit("graph-notification", recorded)
    account = object()

    async def run() -> list[str]:
        order: list[str] = []

        async def ask(name: str, techs: list[int]) -> None:
            await commit.ask(account, techs)  # type: ignore[arg-type]
            order.append(name)

        tasks = [asyncio.create_task(ask("first", first))]
        while not rounds:
            await asyncio.sleep(0.01)
        tasks += [asyncio.create_task(ask(f"later-{i}", techs)) for i, techs in enumerate(later)]
        await asyncio.sleep(0.05)
        assert order == []  # nobody is answered before the round that covers them has run
        release.set()
        await asyncio.gather(*tasks)
        return order

    return asyncio.run(run()), rounds


def test_requests_that_came_during_a_round_which_found_a_job_queued_wait_for_the_next() -> None:
    """The first round found tech 1's job queued (sent nothing): that job may start before the
    later requests' changes, so they share one more round, which begins after they came."""
    order, rounds = _burst(lambda techs, seal: frozenset(), [1], [[i % 5 + 1] for i in range(40)])
    assert order[0] == "first" and len(order) == 41
    assert rounds == [{1: "graph-notification"}, {t: "graph-notification" for t in range(1, 6)}]


def test_requests_that_came_before_a_round_sent_their_techs_message_are_answered_by_it() -> None:
    def sent_after_they_came(techs: dict[int, str], seal) -> frozenset[int]:
        seal()  # the message goes out now, after the later requests arrived
        return frozenset(techs)

    order, rounds = _burst(sent_after_they_came, [1, 2], [[1], [2], [1, 2], [3]])
    assert len(order) == 5
    # Those naming only techs 1 and 2 were covered by the first round's message; tech 3 was not.
    assert rounds == [{1: "graph-notification", 2: "graph-notification"}, {3: "graph-notification"}]


def test_requests_that_came_after_a_round_sealed_wait_for_the_next() -> None:
    order, rounds = _burst(lambda techs, seal: frozenset(techs), [1], [[1], [1]], seal_early=True)
    assert len(order) == 3
    assert rounds == [{1: "graph-notification"}, {1: "graph-notification"}]  # its message predates them


def test_a_failed_round_fails_every_request_in_it_and_the_next_round_tries_afresh() -> None:
    from realtime.group_commit import GroupCommit
    from storage.errors import StorageUnavailable

    attempts: list[int] = []

    def flush(account: object, techs: dict[int, str], seal) -> frozenset[int]:
        attempts.append(len(techs))
        if len(attempts) == 1:
            raise StorageUnavailable("queue down")
        seal()
        return frozenset(techs)

    commit = GroupCommit("graph-notification", flush)

    async def scenario() -> tuple[list[object], list[object]]:
        account = object()
        failed = await asyncio.gather(*(commit.ask(account, [t]) for t in (1, 2, 3)), return_exceptions=True)  # type: ignore[arg-type]
        answered = await asyncio.gather(commit.ask(account, [4]), return_exceptions=True)  # type: ignore[arg-type]
        return failed, answered

    failed, answered = asyncio.run(scenario())
    assert [type(f).__name__ for f in failed] == ["StorageUnavailable"] * 3
    assert answered == [None]
    assert attempts == [3, 1]


def test_a_hundred_notifications_for_a_hundred_techs_cost_a_message_or_two_and_fan_out_to_one_job_each(
    stack: RealtimeStack,
) -> None:
    """What bench/webhook_ack.py measures, checked for what it must do: every POST answered 202,
    and once the fan-out messages ran, exactly one job per tech."""
    from concurrent.futures import ThreadPoolExecutor

    from realtime.jobs import Delivery, run_job
    from storage.sync_queue import FanOut, parse_message

    techs = list(range(9_400, 9_500))
    rows = [_known(stack, tech, f"state-{tech}-secret") for tech in techs]
    stack.account.subscriptions.forget_cached()
    try:
        bodies = [{"value": [_notification(row.subscription_id, f"state-{row.syncro_user_id}-secret")]} for row in rows]
        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(lambda body: stack.post_json(NOTIFY, body).status_code, bodies))
        assert answers == [202] * 100
        rounds = _take_all(stack)
        assert 1 <= len(rounds) < 20  # messages per round, not per request
        fanned = [m for m in rounds if isinstance(parse_message(m), FanOut)]
        assert fanned  # a hundred requests at once share rounds naming several techs
        for number, content in enumerate(fanned):
            assert run_job(Delivery(content.encode(), f"m{number}", 1)) == "fanned-out"
        jobs = [parse_message(m) for m in rounds if m not in fanned] + [parse_message(m) for m in _take_all(stack)]
        assert sorted(job.syncro_user_id for job in jobs) == techs  # one job per tech, none twice
    finally:
        for row in rows:
            stack.account.subscriptions.delete_subscription(row.subscription_id)
        for tech in techs:
            sync_started(stack.account, tech)


def test_a_copy_of_a_change_already_answered_asks_for_nothing_a_new_version_does(stack: RealtimeStack) -> None:
    row = _known(stack, TECH, "alex-secret")
    first = _notification(row.subscription_id, "alex-secret")
    first["resourceData"]["@odata.etag"] = 'W/"v1"'
    try:
        assert stack.post_json(NOTIFY, {"value": [first]}).status_code == 202
        sync_started(stack.account, TECH)  # the job ran, and read past that change
        assert stack.post_json(NOTIFY, {"value": [first]}).status_code == 202  # Graph delivers it again
        assert len(stack.sync_jobs()) == 1
        second = {**first, "resourceData": {**first["resourceData"], "@odata.etag": 'W/"v2"'}}
        assert stack.post_json(NOTIFY, {"value": [second]}).status_code == 202
        assert len(stack.sync_jobs()) == 2
    finally:
        stack.account.subscriptions.delete_subscription(row.subscription_id)


# -- what keeps the acknowledgement fast (bench/webhook_ack.py) -----------------------------------------


def _other_process(stack: RealtimeStack) -> StorageAccount:
    """Another instance's handle on the same storage (what Azure runs when it scales out)."""
    from settings import get_settings

    return StorageAccount(get_settings().storage, sync_queue_name=stack.account.sync_queue.name)


def test_a_burst_for_many_subscriptions_costs_one_read_and_writes_elsewhere_still_count(
    stack: RealtimeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from realtime.notifications import RecordCache

    store = stack.account.subscriptions
    rows = [_known(stack, 9_100 + i, f"state-{i}-secret") for i in range(12)]
    queries: list[int] = []
    listed = store.list_subscriptions
    monkeypatch.setattr(store, "list_subscriptions", lambda: (queries.append(1), listed())[1])
    cache = RecordCache(seconds=30, unknown_refresh=0.0)
    try:
        cache.clear()
        with ThreadPoolExecutor(12) as pool:
            found = list(pool.map(lambda row: cache.lookup(stack.account, row.subscription_id), rows * 3))
        assert [r.syncro_user_id if r else None for r in found] == [row.syncro_user_id for row in rows] * 3
        assert len(queries) == 1  # one query of the partition served all 36 lookups
        # Another instance creates a subscription: its first notification finds the row (read alone).
        other = _other_process(stack)
        late = SubscriptionRecord(
            "test-late", 9_200, "/me/events", datetime.now(UTC) + timedelta(days=2), hash_client_state("late"),
            datetime.now(UTC),
        )  # fmt: skip
        other.subscriptions.upsert_subscription(late)
        assert cache.lookup(stack.account, "test-late").syncro_user_id == 9_200
        assert cache.lookup(stack.account, "never-ours") is None
        # Another instance's delete shows once the copy is older than its age; ours shows at once.
        other.subscriptions.delete_subscription(rows[0].subscription_id)
        assert cache.lookup(stack.account, rows[0].subscription_id) is not None
        assert RecordCache(seconds=0).lookup(stack.account, rows[0].subscription_id) is None
        store.delete_subscription(rows[1].subscription_id)
        assert cache.lookup(stack.account, rows[1].subscription_id) is None
        other.subscriptions.delete_subscription("test-late")
    finally:
        for row in rows:
            store.delete_subscription(row.subscription_id)
        store.forget_cached()


def test_when_the_shared_read_fails_every_caller_waiting_on_it_gets_storage_unavailable(
    stack: RealtimeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from storage.errors import StorageUnavailable

    store = stack.account.subscriptions
    store.forget_cached()
    release = threading.Event()
    calls: list[int] = []

    def failing() -> Iterator[SubscriptionRecord]:
        calls.append(1)
        release.wait(5)
        raise StorageUnavailable("table down")

    monkeypatch.setattr(store, "list_subscriptions", failing)

    started = threading.Semaphore(0)

    def lookup(_: int) -> str:
        started.release()
        try:
            store.lookup("any", max_age=30)
        except StorageUnavailable:
            return "503"
        return "answered"

    with ThreadPoolExecutor(8) as pool:
        answers = [pool.submit(lookup, i) for i in range(8)]
        for _ in range(8):  # every thread running, however slowly a busy machine starts them
            assert started.acquire(timeout=30)
        time.sleep(0.3)  # and then all eight are waiting on the one read
        release.set()
        assert [a.result() for a in answers] == ["503"] * 8
    assert len(calls) == 1
    store.forget_cached()


def test_a_job_started_by_another_instance_is_not_mistaken_for_a_pending_one(stack: RealtimeStack) -> None:
    from realtime.enqueue import request_sync

    assert request_sync(stack.account, TECH, "graph-notification") is True
    assert request_sync(stack.account, TECH, "graph-notification") is False
    sync_started(_other_process(stack), TECH)  # the job began on another instance: this one was not told
    assert request_sync(stack.account, TECH, "graph-notification") is True
    assert len(stack.sync_jobs()) == 2


def test_storage_clients_are_built_once_per_table_and_queue(stack: RealtimeStack) -> None:
    account = _other_process(stack)
    assert account.table("syncrequests") is account.table("syncrequests")
    assert account.queue(account.sync_queue.name) is account.queue(account.sync_queue.name)


def _take_all(stack: RealtimeStack) -> list[str]:
    """Receive and delete every message on the sync-job queue (more than a peek's 32)."""
    queue = stack.account.queue(stack.account.sync_queue.name)
    taken: list[str] = []
    while batch := list(queue.receive_messages(max_messages=32, messages_per_page=32)):
        for message in batch:
            taken.append(message.content)
            queue.delete_message(message)
    return taken


def test_a_fan_out_inserts_the_rows_together_and_respects_rows_already_there(
    stack: RealtimeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from realtime.enqueue import TABLE, fan_out
    from storage.sync_queue import FanOut, parse_message
    from storage.table import Table

    techs = list(range(9_300, 9_340))
    table = stack.account.table(TABLE)
    for tech in techs:
        table.delete("pending", str(tech))
    already = techs[5::10]  # jobs queued by another instance a moment ago
    stale = techs[7]  # a row whose message was lost long ago: it no longer covers anything
    for tech in already:
        table.create({"PartitionKey": "pending", "RowKey": str(tech), "requested_at": datetime.now(UTC), "reason": "x"})
    old = datetime.now(UTC) - timedelta(hours=1)
    table.create({"PartitionKey": "pending", "RowKey": str(stale), "requested_at": old, "reason": "x"})
    batches: list[int] = []
    create_each = Table.create_each
    monkeypatch.setattr(
        Table, "create_each", lambda self, rows: (batches.append(len(rows)), create_each(self, rows))[1]
    )
    try:
        message = FanOut(tuple(techs), "graph-notification", datetime.now(UTC).isoformat())
        assert fan_out(stack.account, message) == len(techs) - len(already)
        assert batches == [len(techs)]  # one call inserted every row that was not there
        queued = sorted(parse_message(m).syncro_user_id for m in _take_all(stack))
        assert queued == [t for t in techs if t not in already]  # the stale row's tech included
        assert fan_out(stack.account, message) == 0  # delivered again: every tech is covered now
    finally:
        for tech in techs:
            table.delete("pending", str(tech))


def test_a_fan_out_cut_short_leaves_no_row_without_its_job_and_its_retry_queues_the_rest(
    stack: RealtimeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from realtime.enqueue import fan_out
    from storage.errors import StorageUnavailable
    from storage.sync_queue import FanOut, parse_message

    techs = list(range(9_600, 9_606))
    message = FanOut(tuple(techs), "graph-notification", datetime.now(UTC).isoformat())
    queue = stack.account.sync_queue
    send, sent = queue.enqueue, []

    def two_then_down(job, **kwargs) -> None:  # the queue fails after two messages
        if len(sent) == 2:
            raise StorageUnavailable("queue down")
        send(job, **kwargs)
        sent.append(job.syncro_user_id)

    monkeypatch.setattr(queue, "enqueue", two_then_down)
    try:
        with pytest.raises(StorageUnavailable):
            fan_out(stack.account, message)
        assert [tech for tech in techs if pending_since(stack.account, tech)] == sent == techs[:2]
        monkeypatch.undo()
        assert fan_out(stack.account, message) == 4  # delivered again: the four left behind
        assert sorted(parse_message(m).syncro_user_id for m in _take_all(stack)) == techs
    finally:
        for tech in techs:
            sync_started(stack.account, tech)


def test_a_fan_out_message_is_read_back_whole_and_a_bad_one_is_refused() -> None:
    from storage.sync_queue import FanOut, SyncJob, parse_message

    message = FanOut((5_560_138_523, 7), "graph-notification", "2026-12-01T10:00:00+00:00")
    assert parse_message(message.to_json()) == message
    assert parse_message(SyncJob(7, "reconcile", "t").to_json()) == SyncJob(7, "reconcile", "t")
    for bad in ('{"syncro_user_ids": [], "reason": "x", "requested_at": "t"}', '{"syncro_user_ids": [0, 5]}', "[1]"):
        with pytest.raises(ValueError):
            parse_message(bad)


def test_inserting_rows_together_reports_each_row_as_inserting_it_alone_would(stack: RealtimeStack) -> None:
    table = stack.account.table("syncrequests")
    rows = [{"PartitionKey": "batch-test", "RowKey": f"{i:03d}", "n": i} for i in range(130)]
    for i in (0, 64, 129):
        table.create(rows[i])
    try:
        inserted = table.create_each(rows)
        assert [i for i, done in enumerate(inserted) if not done] == [0, 64, 129]
        assert table.count("batch-test") == 130
        assert table.create_each(rows[:3]) == [False, False, False]
    finally:
        for row in rows:
            table.delete("batch-test", row["RowKey"])


def test_storage_calls_still_honour_the_proxy_settings_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment is read once per origin now, not per call: it must still be read."""
    from storage.account import _env_once_session

    for name in ("NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/our-ca.pem")
    session = _env_once_session()
    settings = session.merge_environment_settings("https://acct.table.core.windows.net/x", {}, False, True, None)
    assert settings["proxies"]["https"] == "http://proxy.invalid:3128"
    assert settings["verify"] == "/etc/our-ca.pem"
    monkeypatch.setenv("NO_PROXY", ".core.windows.net")
    bypassed = _env_once_session().merge_environment_settings(
        "https://acct.table.core.windows.net/", {}, False, True, None
    )
    assert "https" not in bypassed["proxies"]
    # Read once per origin: the first session keeps what it read.
    again = session.merge_environment_settings("https://acct.table.core.windows.net/y", {}, False, True, None)
    assert again["proxies"]["https"] == "http://proxy.invalid:3128"
    assert session.trust_env is False  # so requests neither re-reads it nor consults ~/.netrc per call
