"""Issue 16, low items: hostile input gets a clear 4xx, no ERROR line, and changes nothing.

- JSON nested 200,000 levels deep (Python's decoder recurses per level) on the three anonymous
  webhooks and on ``PUT /api/admin/syncro-tokens/{id}``;
- recycle-bin entry ids that are paths (``..%2F..%2Fx``) or other shapes: 404."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import services
from realtime.enqueue import pending_since
from tests.realtime.webhook_support import ALEX, RealtimeStack, syncro_hook

pytest_plugins = ["tests.realtime.webhook_support"]

TECH = ALEX.syncro_user_id
DEEP = 200_000


@pytest.fixture
def stack(realtime_stack: RealtimeStack) -> Iterator[RealtimeStack]:
    realtime_stack.clear()
    yield realtime_stack
    realtime_stack.clear()


def _admin(stack: RealtimeStack, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"x-functions-key": stack.product.function_key, **kwargs.pop("headers", {})}
    return requests.request(method, f"{stack.url}{path}", headers=headers, timeout=30, **kwargs)


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def _deep(opening: str, closing: str, inner: str = "1") -> bytes:
    return (opening * DEEP + inner + closing * DEEP).encode()


@pytest.mark.parametrize("shape", ["lists", "objects"])
@pytest.mark.parametrize("hook", ["/api/graph/notifications", "/api/graph/lifecycle", "syncro"])
def test_deeply_nested_json_on_a_webhook_is_400_with_a_message_and_no_error_log(
    stack: RealtimeStack, caplog: pytest.LogCaptureFixture, hook: str, shape: str
) -> None:
    path = syncro_hook(stack) if hook == "syncro" else hook
    body = _deep("[", "]") if shape == "lists" else _deep('{"":', "}")
    caplog.set_level(logging.INFO)
    answer = stack.post(path, body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert "nested" in answer.json()["message"]
    assert _errors(caplog) == []
    assert stack.sync_jobs() == [] and pending_since(stack.account, TECH) is None


def test_deeply_nested_json_on_the_admin_token_route_is_400_and_stores_nothing(
    stack: RealtimeStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    before = services.syncro_token_service().status(TECH)
    body = b'{"token": ' + _deep("[", "]", '"t0k3n"') + b"}"
    answer = _admin(stack, "PUT", f"/api/admin/syncro-tokens/{TECH}", data=body)
    assert answer.status_code == 400, answer.text
    assert "nested" in answer.json()["message"] and '{"token"' in answer.json()["message"]
    assert _errors(caplog) == []
    assert services.syncro_token_service().status(TECH) == before  # nothing stored


def test_the_body_reader_tells_too_deep_from_not_json_and_takes_ordinary_nesting() -> None:
    from web.json_body import UnreadableJson, parse_json_body

    assert parse_json_body(b"[" * 50 + b"]" * 50) is not None
    with pytest.raises(UnreadableJson, match="nested too deeply"):
        parse_json_body(_deep("[", "]"))
    with pytest.raises(UnreadableJson, match="UTF-8"):
        parse_json_body(b"\xff\xfe")
    with pytest.raises(UnreadableJson, match="not valid JSON"):
        parse_json_body(b"{")


@pytest.mark.parametrize(
    "entry",
    ["..%2F..%2Fx", "..%2F..%2F..%2Fapi%2Fhealth", "%2E%2E", "a%23b", "20260101T000000000000-0000000g", "x" * 2000],
)
def test_a_recycle_bin_entry_id_of_another_shape_is_404_with_no_error_log(
    stack: RealtimeStack, caplog: pytest.LogCaptureFixture, entry: str
) -> None:
    caplog.set_level(logging.INFO)
    answer = _admin(stack, "POST", f"/api/admin/recycle-bin/{TECH}/{entry}/restore")
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"] == "not_found"
    assert _errors(caplog) == []


def test_a_well_formed_entry_id_that_does_not_exist_is_404_too(stack: RealtimeStack) -> None:
    answer = _admin(stack, "POST", f"/api/admin/recycle-bin/{TECH}/20260101T000000000000-0123abcd/restore")
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"


# -- any JSON at all, on every anonymous webhook --------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
# Shapes close to what each endpoint expects, with the fields that matter replaced by anything.
NEAR_MISSES = st.one_of(
    JSON_VALUES.map(lambda v: {"value": v}),
    JSON_VALUES.map(lambda v: {"value": [{"subscriptionId": v, "clientState": "x", "lifecycleEvent": "missed"}]}),
    JSON_VALUES.map(lambda v: {"value": [{"subscriptionId": "s", "clientState": v, "lifecycleEvent": v}]}),
    JSON_VALUES.map(lambda v: {"attributes": {"id": v}}),
    JSON_VALUES.map(lambda v: {"attributes": v}),
    JSON_VALUES,
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=NEAR_MISSES, hook=st.sampled_from(["/api/graph/notifications", "/api/graph/lifecycle", "syncro"]))
def test_any_json_on_a_webhook_is_answered_without_a_5xx_or_an_error_log(
    realtime_stack: RealtimeStack, payload: object, hook: str
) -> None:
    import json

    stack = realtime_stack
    path = syncro_hook(stack) if hook == "syncro" else hook
    handler = _ErrorCounter()
    logging.getLogger().addHandler(handler)
    try:
        answer = stack.post(path, json.dumps(payload), headers={"Content-Type": "application/json"})
    finally:
        logging.getLogger().removeHandler(handler)
    assert answer.status_code < 500, answer.text
    assert handler.errors == []
    assert stack.sync_jobs() == [] and pending_since(stack.account, TECH) is None


class _ErrorCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.errors.append(record.getMessage())
