"""Graph simulator: arbitrary JSON bodies and query values get Graph-shaped 4xx answers, never 5xx."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sims.graph_support import GraphHarness, event_body

pytest_plugins = ["tests.sims.graph_fixtures"]

KEYS = [
    "subject",
    "start",
    "end",
    "dateTime",
    "timeZone",
    "isAllDay",
    "recurrence",
    "pattern",
    "range",
    "type",
    "attendees",
    "emailAddress",
    "address",
    "body",
    "content",
    "contentType",
    "location",
    "categories",
    "singleValueExtendedProperties",
    "id",
    "value",
    "requests",
    "url",
    "method",
    "dependsOn",
    "headers",
    "changeType",
    "notificationUrl",
    "resource",
    "expirationDateTime",
    "clientState",
    "interval",
    "daysOfWeek",
    "numberOfOccurrences",
    "startDate",
    "showAs",
    "comment",
    "name",
    "transactionId",
]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=15,
)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True)
def _no_latency(graph: GraphHarness) -> None:
    """Latency is not what these tests are about, and they send hundreds of requests each."""
    graph.sim.settings.apply({"request_latency_seconds": 0})


def _session_with_series(graph: GraphHarness) -> tuple[requests.Session, str, str]:
    session = graph.session()
    master = session.post(
        f"{graph.v1}/me/events",
        json=event_body(
            recurrence={
                "pattern": {"type": "daily", "interval": 1},
                "range": {"type": "numbered", "numberOfOccurrences": 3},
            }
        ),
    ).json()
    occurrence = session.get(
        f"{graph.v1}/me/events/{master['id']}/instances",
        params={"startDateTime": "2030-01-01", "endDateTime": "2030-02-01"},
    ).json()["value"][0]["id"]
    return session, master["id"], occurrence


def _assert_graph_answer(response: requests.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert {"code", "message", "innerError"} <= set(response.json()["error"])


def test_random_bodies_never_break_the_writers(graph: GraphHarness) -> None:
    session, master_id, occurrence_id = _session_with_series(graph)
    targets = [
        ("POST", "/me/events"),
        ("PATCH", f"/me/events/{master_id}"),
        ("PATCH", f"/me/events/{occurrence_id}"),
        ("POST", f"/me/events/{master_id}/cancel"),
        ("POST", "/subscriptions"),
        ("POST", "/$batch"),
        ("POST", "/me/calendars"),
        ("PATCH", "/subscriptions/unknown"),
    ]

    @FUZZ
    @given(st.sampled_from(targets), JSON)
    def check(target: tuple[str, str], body: Any) -> None:
        response = session.request(
            target[0], graph.v1 + target[1], data=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        _assert_graph_answer(response)

    with session:  # closed at the end, so the server's shutdown never waits on it
        check()


def test_random_query_values_never_break_the_readers(graph: GraphHarness) -> None:
    session, master_id, _ = _session_with_series(graph)
    paths = [
        "/me/events",
        "/me/calendarView",
        "/me/calendarView/delta",
        f"/me/events/{master_id}/instances",
        f"/me/events/{master_id}",
    ]
    options = [
        "$filter",
        "$select",
        "$expand",
        "$top",
        "$skip",
        "$orderby",
        "startDateTime",
        "endDateTime",
        "$deltatoken",
        "$skiptoken",
    ]
    text = st.text(alphabet=string.printable, max_size=30)

    @FUZZ
    @given(
        st.sampled_from(paths),
        st.sampled_from(options),
        text,
        st.sampled_from(['outlook.timezone="{}"', "odata.maxpagesize={}", 'outlook.body-content-type="{}"']),
        text,
    )
    def check(path: str, option: str, value: str, prefer: str, prefer_value: str) -> None:
        params = {"startDateTime": "2030-01-01", "endDateTime": "2030-02-01", option: value}
        header = prefer.format("".join(c for c in prefer_value if c.isprintable() and c not in '"\\'))
        _assert_graph_answer(session.get(graph.v1 + path, params=params, headers={"Prefer": header}))

    with session:
        check()
