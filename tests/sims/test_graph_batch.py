"""Graph simulator: ``$batch`` ``dependsOn`` as Graph takes it. A batch is fully parallel, serial
(each step depends on the one before) or "same" (every dependant names one step); anything else
is a 400. Serial and same batches run one step at a time, so twenty chained steps never meet the
mailbox's four concurrent requests; a failed step fails its dependants with 424 without running
them; the counters tell steps from HTTP requests."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from tests.sims.graph_support import GraphHarness, event_body

pytest_plugins = ["tests.sims.graph_fixtures"]

JSON = {"Content-Type": "application/json"}


def _batch(graph: GraphHarness, steps: list[dict[str, Any]], session: requests.Session | None = None) -> Any:
    return (session or graph.session()).post(f"{graph.v1}/$batch", json={"requests": steps})


def _gets(count: int, *, prefix: str = "") -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{n}", "method": "GET", "url": "/me/calendars"} for n in range(count)]


def _chain(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each step made to depend on the one before it."""
    return [step if not index else {**step, "dependsOn": [steps[index - 1]["id"]]} for index, step in enumerate(steps)]


def _counters(graph: GraphHarness) -> dict[str, int]:
    return graph.plain().get(f"{graph.url}/_sim/counters").json()["counters"]


def test_twenty_chained_steps_run_one_at_a_time_and_never_meet_the_concurrency_limit(graph: GraphHarness) -> None:
    graph.settings(request_latency_seconds=0.05)
    creates = [
        {"id": str(n), "method": "POST", "url": "/me/events", "headers": JSON, "body": event_body(f"Visit {n}")}
        for n in range(20)
    ]
    answer = _batch(graph, _chain(creates))
    assert answer.status_code == 200, answer.text
    assert sorted(int(a["id"]) for a in answer.json()["responses"] if a["status"] == 201) == list(range(20))
    counters = _counters(graph)
    assert counters["POST /v1.0/$batch"] == 1
    assert counters["POST /v1.0/me/events"] == 20 and counters["STEP /v1.0/$batch"] == 20


def test_the_same_twenty_steps_in_parallel_meet_429s(graph: GraphHarness) -> None:
    graph.settings(request_latency_seconds=0.05)
    answers = _batch(graph, _gets(20)).json()["responses"]
    assert sum(a["status"] == 429 for a in answers) >= 12  # four run; the rest find the mailbox busy


def test_a_failed_step_fails_the_rest_of_its_chain_with_424_without_running_them(graph: GraphHarness) -> None:
    steps = _chain(
        [
            {"id": "a", "method": "POST", "url": "/me/events", "headers": JSON, "body": event_body("Kept")},
            {
                "id": "b",
                "method": "PATCH",
                "url": "/me/events/AAMkAmissing=",
                "headers": JSON,
                "body": {"subject": "x"},
            },
            {"id": "c", "method": "POST", "url": "/me/events", "headers": JSON, "body": event_body("Never made")},
            {"id": "d", "method": "GET", "url": "/me/calendars"},
        ]
    )
    answers = {a["id"]: a for a in _batch(graph, steps).json()["responses"]}
    assert answers["a"]["status"] == 201
    assert answers["b"]["status"] == 404 and answers["b"]["body"]["error"]["code"] == "ErrorItemNotFound"
    assert answers["c"]["status"] == 424 and answers["d"]["status"] == 424
    assert answers["c"]["body"]["error"]["code"] == "FailedDependency"
    events = graph.session().get(f"{graph.v1}/me/events").json()["value"]
    assert [e["subject"] for e in events] == ["Kept"]
    counters = _counters(graph)
    assert counters["STEP /v1.0/$batch"] == 2 and "GET /v1.0/me/calendars" not in counters


def test_a_throttled_step_fails_the_rest_of_its_chain_with_424(graph: GraphHarness) -> None:
    graph.plain().post(
        f"{graph.url}/_sim/faults",
        json={"method": "GET", "path": "^/v1.0/me$", "status": 429, "headers": {"Retry-After": "1"}, "times": 1},
    )
    steps = _chain([{"id": "1", "method": "GET", "url": "/me/calendars"}, {"id": "2", "method": "GET", "url": "/me"}])
    steps += [{"id": "3", "method": "GET", "url": "/me/calendars", "dependsOn": ["2"]}]
    statuses = {a["id"]: a["status"] for a in _batch(graph, steps).json()["responses"]}
    assert statuses == {"1": 200, "2": 429, "3": 424}


def test_steps_that_all_name_one_step_run_after_it_one_at_a_time(graph: GraphHarness) -> None:
    graph.settings(request_latency_seconds=0.05)
    steps = [{"id": "head", "method": "GET", "url": "/me"}]
    steps += [{**step, "dependsOn": ["head"]} for step in _gets(12)]
    answers = _batch(graph, steps).json()["responses"]
    assert [a["status"] for a in answers] == [200] * 13  # sequential: no 429


@pytest.mark.parametrize(
    "depends",
    [
        {"1": ["0"], "3": ["2"]},  # two chains side by side (the documented example once did this)
        {"2": ["0", "1"]},  # on two steps
        {"0": ["1"]},  # on a later step
        {"1": ["0"], "2": ["0"], "3": ["2"]},  # a chain hanging off a "same" pattern
    ],
)
def test_other_dependency_shapes_are_refused_with_400(graph: GraphHarness, depends: dict[str, list[str]]) -> None:
    steps = [{**step, "dependsOn": depends.get(step["id"], [])} for step in _gets(4)]
    answer = _batch(graph, steps)
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        **answer.json()["error"],
        "code": "BadRequest",
        "message": "Batch should be either fully sequential or fully parallel.",
    }
    assert "STEP /v1.0/$batch" not in _counters(graph)  # nothing ran


def test_four_chained_batches_in_flight_at_once_stay_within_the_mailbox_limit(graph: GraphHarness) -> None:
    graph.settings(request_latency_seconds=0.05)
    sessions = [graph.session() for _ in range(4)]
    results: list[list[int]] = []
    lock = threading.Lock()

    def send(lane: int) -> None:
        answers = _batch(graph, _chain(_gets(5, prefix=f"l{lane}-")), sessions[lane]).json()["responses"]
        with lock:
            results.append([a["status"] for a in answers])

    threads = [threading.Thread(target=send, args=(lane,)) for lane in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # The $batch requests themselves take no slot: each holds one step in flight at most.
    assert results == [[200] * 5] * 4
