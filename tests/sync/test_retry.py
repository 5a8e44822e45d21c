"""The retry helper: Retry-After parsing (pure) and the bounds of `send` (against a real socket)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from sync.client_http import RetryPolicy, new_session, parse_retry_after, send

NOW = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)


class Sleeps:
    """A sleep that records instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


# -- parse_retry_after --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0", 0.0), (" 2 ", 2.0), ("0.25", 0.25), ("1.5", 1.5), ("120", 120.0)],
)
def test_seconds_whole_and_fractional(value: str, expected: float) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "-1", "nan", "inf", "-0.5", "1e400", "Mon, 99 Foo"])
def test_unreadable_values_are_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_http_date_in_the_future_is_seconds_from_now() -> None:
    assert parse_retry_after("Tue, 01 Dec 2026 10:00:30 GMT", NOW) == 30.0


def test_http_date_in_the_past_is_zero() -> None:
    assert parse_retry_after("Tue, 01 Dec 2026 09:59:00 GMT", NOW) == 0.0


def test_obsolete_date_forms_are_read_as_gmt() -> None:
    assert parse_retry_after("Tuesday, 01-Dec-26 10:00:10 GMT", NOW) == 10.0


@given(st.integers(min_value=0, max_value=86_400))
def test_any_http_date_round_trips(seconds: int) -> None:
    moment = NOW + timedelta(seconds=seconds)
    assert parse_retry_after(format_datetime(moment, usegmt=True), NOW) == seconds


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_any_non_negative_number_is_itself(seconds: float) -> None:
    assert parse_retry_after(repr(seconds), NOW) == seconds


# -- the policy's waits -------------------------------------------------------------------------


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(backoff_seconds=1, max_wait_seconds=5, jitter=0, random=lambda: 0.5)
    assert [policy.wait_for(n, None) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 5, 5]


def test_jitter_lengthens_and_never_shortens_a_servers_wait() -> None:
    policy = RetryPolicy(jitter=0.2, random=lambda: 0.999)
    assert 2.0 < policy.wait_for(1, 2.0) <= 2.4
    assert RetryPolicy(jitter=0.2, random=lambda: 0.0).wait_for(1, 2.0) == 2.0


def test_a_policy_needs_an_attempt() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


# -- send over a real socket: connection failures ------------------------------------------------


@pytest.fixture
def dead_url() -> str:
    """A loopback port nobody listens on: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/x"


def test_a_get_is_resent_after_a_refused_connection_then_the_error_surfaces(dead_url: str) -> None:
    sleeps = Sleeps()
    policy = RetryPolicy(max_attempts=3, backoff_seconds=0.1, jitter=0, sleep=sleeps)
    with new_session(None) as session, pytest.raises(requests.ConnectionError):
        send(session, "GET", dead_url, timeout=1, retry=policy)
    assert sleeps.waits == [0.1, 0.2]


def test_a_post_is_not_resent_after_a_connection_failure(dead_url: str) -> None:
    sleeps = Sleeps()
    with new_session(None) as session, pytest.raises(requests.ConnectionError):
        send(session, "POST", dead_url, timeout=1, retry=RetryPolicy(sleep=sleeps), json={})
    assert sleeps.waits == []


def test_a_post_marked_idempotent_is_resent(dead_url: str) -> None:
    sleeps = Sleeps()
    policy = RetryPolicy(max_attempts=2, backoff_seconds=0.1, jitter=0, sleep=sleeps)
    with new_session(None) as session, pytest.raises(requests.ConnectionError):
        send(session, "POST", dead_url, timeout=1, retry=policy, idempotent=True, json={})
    assert sleeps.waits == [0.1]


def test_the_total_wait_is_capped(dead_url: str) -> None:
    sleeps = Sleeps()
    policy = RetryPolicy(max_attempts=10, backoff_seconds=1, jitter=0, max_total_wait_seconds=3.5, sleep=sleeps)
    with new_session(None) as session, pytest.raises(requests.ConnectionError):
        send(session, "GET", dead_url, timeout=1, retry=policy)
    assert sleeps.waits == [1, 2]  # the next wait (4) would pass 3.5 in all
