"""The local Functions host over real HTTP, with queues on Azurite."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
from azure.storage.queue import QueueClient

from local.host import FunctionHost, HostConfig
from local.host.http import HostKeys
from tests.host import sample_app

KEYS = HostKeys(function_key="fn-key-123", master_key="master-key-456")


def wait_for(condition, timeout: float = 20.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


@pytest.fixture(scope="module")
def host(storage_connection_string: str) -> Iterator[FunctionHost]:
    env = {"AzureWebJobsStorage": storage_connection_string, "SAMPLE_QUEUE": f"sample-{uuid.uuid4().hex[:8]}"}
    config = HostConfig(
        queue_batch_size=2,
        queue_visibility_timeout=0,
        queue_max_dequeue_count=3,
        queue_max_polling_interval=0.5,
        max_request_body_bytes=1024,
    )
    with FunctionHost(sample_app.app, config=config, keys=KEYS, env=env) as running:
        yield running


def api(host: FunctionHost, path: str) -> str:
    return f"{host.url}/api/{path}"


def test_route_parameters_query_headers_and_context(host: FunctionHost) -> None:
    response = requests.get(api(host, "items/42?x=1&y=two"), headers={"X-Test": "hello"}, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["method"] == "GET"
    assert body["route_params"] == {"id": "42"}
    assert body["params"] == {"x": "1", "y": "two"}
    assert body["header"] == "hello"
    assert body["url"].endswith("/api/items/42?x=1&y=two")
    assert body["function"] == "item"


def test_response_status_headers_and_body_pass_through(host: FunctionHost) -> None:
    payload = bytes(range(256))
    response = requests.post(api(host, "echo?status=202"), data=payload, timeout=10)
    assert response.status_code == 202
    assert response.headers["X-Echo"] == "yes"
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.content == payload


def test_literal_text_around_a_parameter_and_optional_parameters(host: FunctionHost) -> None:
    assert requests.get(api(host, "feeds/tok-123.ics"), timeout=10).text == "tok-123"
    assert requests.get(api(host, "feeds/tok-123.ics"), timeout=10).headers["Content-Type"].startswith("text/calendar")
    assert requests.get(api(host, "optional"), timeout=10).text == "(none)"
    assert requests.get(api(host, "optional/bob"), timeout=10).text == "bob"


def test_async_functions_run(host: FunctionHost) -> None:
    assert requests.get(api(host, "async-hello"), timeout=10).text == "hello from a coroutine"


def test_unknown_route_is_404_json(host: FunctionHost) -> None:
    for path in ("nothing-here", "items/not-a-number"):
        response = requests.get(api(host, path), timeout=10)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
    assert requests.get(f"{host.url}/outside-the-prefix", timeout=10).status_code == 404


def test_wrong_method_is_405_with_allow(host: FunctionHost) -> None:
    response = requests.delete(api(host, "items/42"), timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, PUT"
    assert "DELETE" in response.json()["message"]


@pytest.mark.parametrize(
    ("method", "path", "key", "status"),
    [
        ("GET", "secure", None, 401),
        ("GET", "secure", "wrong", 401),
        ("GET", "secure", KEYS.function_key, 200),
        ("GET", "secure", KEYS.master_key, 200),
        ("POST", "admin/thing", None, 401),
        ("POST", "admin/thing", KEYS.function_key, 401),
        ("POST", "admin/thing", KEYS.master_key, 200),
    ],
)
def test_auth_levels(host: FunctionHost, method: str, path: str, key: str | None, status: int) -> None:
    by_query = requests.request(method, api(host, path), params={"code": key} if key else None, timeout=10)
    by_header = requests.request(method, api(host, path), headers={"x-functions-key": key} if key else None, timeout=10)
    assert by_query.status_code == status
    assert by_header.status_code == status


def test_oversized_body_is_413_and_never_reaches_the_function(host: FunctionHost) -> None:
    response = requests.post(api(host, "echo"), data=b"x" * 2048, timeout=10)
    assert response.status_code == 413
    assert "1024 bytes" in response.json()["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
        for _ in range(4):
            yield b"y" * 512

    assert requests.post(api(host, "echo"), data=chunks(), timeout=10).status_code == 413


def test_a_raising_function_gives_500_like_the_real_host(host: FunctionHost) -> None:
    response = requests.get(api(host, "boom"), timeout=10)
    assert response.status_code == 500
    assert response.content == b""


def test_timer_runs_on_startup_and_then_on_its_schedule(host: FunctionHost) -> None:
    # Waits for three runs, however long a busy machine takes (no count of runs in a window).
    assert wait_for(lambda: len(sample_app.timer_runs) >= 3, timeout=60)
    first, *later = sample_app.timer_runs[:3]
    assert first.past_due is False
    assert all(run.schedule_status["Next"] > run.schedule_status["LastUpdated"] for run in later)


def _queue(host: FunctionHost, suffix: str = "") -> QueueClient:
    name = host.env["SAMPLE_QUEUE"] + suffix
    return QueueClient.from_connection_string(host.env["AzureWebJobsStorage"], name)


def _send(host: FunctionHost, text: str) -> None:
    _queue(host).send_message(base64.b64encode(text.encode()).decode())


def test_queue_message_that_raises_is_retried_then_poisoned(host: FunctionHost) -> None:
    _send(host, "fail-always")
    poison = _queue(host, "-poison")
    assert wait_for(lambda: poison.get_queue_properties().approximate_message_count == 1)
    attempts = [count for body, count in sample_app.queue_attempts if body == "fail-always"]
    assert attempts == [1, 2, 3]  # maxDequeueCount attempts, each seeing its dequeue count
    moved = next(poison.receive_messages())
    assert base64.b64decode(moved.content) == b"fail-always"
    poison.delete_message(moved)


def test_queue_message_that_fails_once_succeeds_on_retry_and_is_deleted(host: FunctionHost) -> None:
    _send(host, "fail-once")
    assert wait_for(lambda: [c for b, c in sample_app.queue_attempts if b == "fail-once"] == [1, 2])
    assert wait_for(lambda: _queue(host).get_queue_properties().approximate_message_count == 0)
    assert _queue(host, "-poison").get_queue_properties().approximate_message_count == 0


def test_a_message_that_is_not_base64_ends_in_the_poison_queue(host: FunctionHost) -> None:
    _queue(host).send_message("this is not base64!")
    poison = _queue(host, "-poison")
    assert wait_for(lambda: poison.get_queue_properties().approximate_message_count == 1)
    assert not any(body == "this is not base64!" for body, _ in sample_app.queue_attempts)
    poison.clear_messages()
