"""Graph simulator: per-mailbox concurrency 429s with Retry-After styles, injected faults, and
``$batch`` with dependsOn, 424 and per-step throttling."""

from __future__ import annotations

import threading
from typing import Any

import requests

from tests.sims.graph_support import OTHER_USER, GraphHarness, event_body

pytest_plugins = ["tests.sims.graph_fixtures"]


def _concurrent_gets(graph: GraphHarness, sessions: list[requests.Session]) -> list[requests.Response]:
    """One GET per session, released together."""
    barrier = threading.Barrier(len(sessions))
    results: list[requests.Response] = []
    lock = threading.Lock()

    def run(session: requests.Session) -> None:
        barrier.wait()
        response = session.get(f"{graph.v1}/me/calendars")
        with lock:
            results.append(response)

    threads = [threading.Thread(target=run, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def _warm(graph: GraphHarness, count: int, **kwargs: Any) -> list[requests.Session]:
    """Sessions whose TLS connection is already open, so only the requests race."""
    sessions = [graph.session(**kwargs) for _ in range(count)]
    for session in sessions:
        assert session.get(f"{graph.v1}/me/calendars").status_code == 200
    return sessions


def test_more_than_four_concurrent_requests_for_one_mailbox_get_429(graph: GraphHarness) -> None:
    sessions = _warm(graph, 8)
    graph.settings(request_latency_seconds=1.0, retry_after_style="integer")
    results = _concurrent_gets(graph, sessions)
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] * 4 + [429] * 4
    throttled = next(r for r in results if r.status_code == 429)
    error = throttled.json()["error"]
    assert error["code"] == "ApplicationThrottled"
    assert error["message"] == "Application is over its MailboxConcurrency limit."
    assert throttled.headers["Retry-After"] == "1"


def test_other_mailboxes_are_not_throttled_by_a_busy_one(graph: GraphHarness) -> None:
    busy = _warm(graph, 4)
    other = _warm(graph, 1, oid=OTHER_USER, username="other@contoso.example")
    graph.settings(request_latency_seconds=1.0)
    results = _concurrent_gets(graph, busy + other)
    assert [r.status_code for r in results] == [200] * 5


def test_request_budget_per_window_on_the_clock(graph: GraphHarness) -> None:
    graph.settings(mailbox_requests_per_window=3, mailbox_window_seconds=600)
    session = graph.session()
    assert [session.get(f"{graph.v1}/me/calendars").status_code for _ in range(4)] == [200, 200, 200, 429]
    graph.control.clock.advance(601)
    assert session.get(f"{graph.v1}/me/calendars").status_code == 200


def test_retry_after_styles(graph: GraphHarness) -> None:
    sessions = _warm(graph, 6)
    graph.settings(request_latency_seconds=1.0, retry_after_style="fractional", retry_after_seconds=0.249)
    throttled = [r for r in _concurrent_gets(graph, sessions) if r.status_code == 429]
    assert throttled and all(r.headers["Retry-After"] == "0.249" for r in throttled)
    graph.settings(retry_after_style="absent")
    throttled = [r for r in _concurrent_gets(graph, sessions) if r.status_code == 429]
    assert throttled and all("Retry-After" not in r.headers for r in throttled)


def test_default_retry_after_is_mixed_and_sometimes_absent(graph: GraphHarness) -> None:
    assert graph.plain().get(f"{graph.url}/_sim/settings").json()["retry_after_style"] == "mixed"
    sessions = _warm(graph, 8)
    graph.settings(request_latency_seconds=1.0, retry_after_absent_probability=0.5, retry_after_seconds=0.249)
    seen: set[str | None] = set()
    for _ in range(8):
        seen |= {r.headers.get("Retry-After") for r in _concurrent_gets(graph, sessions) if r.status_code == 429}
        if len(seen) == 3:
            break
    # Up to 32 throttled answers: all three shapes show up (chance of missing one < 0.001).
    assert seen == {None, "1", "0.249"}


def test_default_latency_makes_a_parallel_batch_meet_the_concurrency_limit(graph: GraphHarness) -> None:
    assert graph.plain().get(f"{graph.url}/_sim/settings").json()["request_latency_seconds"] > 0
    steps = [{"id": str(n), "method": "GET", "url": "/me/calendars"} for n in range(6)]
    answers = _batch(graph, steps).json()["responses"]
    assert sorted(a["status"] for a in answers) == [200] * 4 + [429] * 2


def test_injected_fault_answers_in_graph_shape_then_clears(graph: GraphHarness) -> None:
    session = graph.session()
    graph.plain().post(
        f"{graph.url}/_sim/faults",
        json={"method": "GET", "path": "^/v1.0/me/events$", "status": 503, "headers": {"Retry-After": "2"}, "times": 1},
    )
    failed = session.get(f"{graph.v1}/me/events")
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "2"
    assert failed.json()["error"]["code"] == "ServiceUnavailable"
    assert session.get(f"{graph.v1}/me/events").status_code == 200
    counters = graph.plain().get(f"{graph.url}/_sim/counters").json()["counters"]
    assert counters["GET /v1.0/me/events"] == 2


def test_counters_use_graph_route_templates(graph: GraphHarness) -> None:
    session = graph.session()
    event = session.post(f"{graph.v1}/me/events", json=event_body()).json()
    session.get(f"{graph.v1}/me/events/{event['id']}")
    session.get(f"{graph.v1}/users/tech@contoso.example/events/{event['id']}")
    counters = graph.plain().get(f"{graph.url}/_sim/counters").json()["counters"]
    assert counters["POST /v1.0/me/events"] == 1
    assert counters["GET /v1.0/me/events/{id}"] == 1
    assert counters["GET /v1.0/users/{user}/events/{id}"] == 1


# --- $batch --------------------------------------------------------------------------------------
def _batch(graph: GraphHarness, requests_: list[dict[str, Any]]) -> requests.Response:
    return graph.session().post(f"{graph.v1}/$batch", json={"requests": requests_})


def test_batch_orders_by_depends_on_and_fails_dependents_with_424(graph: GraphHarness) -> None:
    json_header = {"Content-Type": "application/json"}
    response = _batch(
        graph,
        [
            {"id": "1", "method": "POST", "url": "/me/events", "headers": json_header, "body": event_body()},
            {"id": "2", "method": "GET", "url": "/me/events?$select=subject", "dependsOn": ["1"]},
            {
                "id": "3",
                "method": "PATCH",
                "url": "/me/events/AAMkAmissing=",
                "headers": json_header,
                "body": {"subject": "x"},
                "dependsOn": ["2"],
            },
            {"id": "4", "method": "DELETE", "url": "/me/events/AAMkAmissing=", "dependsOn": ["3"]},
        ],
    )
    assert response.status_code == 200
    answers = {a["id"]: a for a in response.json()["responses"]}
    assert answers["1"]["status"] == 201
    assert [e["subject"] for e in answers["2"]["body"]["value"]] == ["Visit"]
    assert answers["3"]["status"] == 404 and answers["3"]["body"]["error"]["code"] == "ErrorItemNotFound"
    assert answers["4"]["status"] == 424


def test_batch_limits_and_malformed_steps(graph: GraphHarness) -> None:
    too_many = _batch(graph, [{"id": str(n), "method": "GET", "url": "/me"} for n in range(21)])
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "BadRequest"
    no_type = _batch(graph, [{"id": "1", "method": "POST", "url": "/me/events", "body": event_body()}])
    assert no_type.status_code == 400
    broken = graph.session().post(f"{graph.v1}/$batch", data=b"{", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400


def test_batch_steps_are_throttled_and_faulted_on_their_own(graph: GraphHarness) -> None:
    graph.settings(request_latency_seconds=0.3)
    answers = _batch(graph, [{"id": str(n), "method": "GET", "url": "/me/calendars"} for n in range(6)]).json()
    statuses = sorted(a["status"] for a in answers["responses"])
    assert statuses == [200] * 4 + [429] * 2
    graph.settings(request_latency_seconds=0.0)
    graph.plain().post(f"{graph.url}/_sim/faults", json={"method": "GET", "path": "^/v1.0/me$", "status": 503})
    answers = _batch(
        graph, [{"id": "a", "method": "GET", "url": "/me"}, {"id": "b", "method": "GET", "url": "/me/calendars"}]
    ).json()
    statuses = {a["id"]: a["status"] for a in answers["responses"]}
    assert statuses == {"a": 503, "b": 200}


def test_batch_steps_need_a_token_each(graph: GraphHarness) -> None:
    answers = (
        graph.plain().post(f"{graph.v1}/$batch", json={"requests": [{"id": "1", "method": "GET", "url": "/me"}]}).json()
    )
    assert answers["responses"][0]["status"] == 401
