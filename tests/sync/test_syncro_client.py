"""SyncroClient against the Syncro simulator over real TLS, with its default (strict) settings:
ids of a live account's size, permission failures as 401 with Syncro's sentence, 429 without
Retry-After."""

from __future__ import annotations

import pytest

from sync.client_http import RetryPolicy
from sync.errors import Forbidden, SyncroForbidden, SyncroNotFound, SyncroThrottled, SyncroUnauthorized
from sync.syncro import SyncroClient, SyncroUser
from tests.sims.test_syncro import ADMIN_TOKEN, JOE, SAM, TINA, Stack
from tests.sync.client_support import Sleeps, syncro_client_for, syncro_count, syncro_fault

pytest_plugins = ["tests.sims.test_syncro", "tests.sync.client_support"]

BIG = 5_560_138_523  # above 2^32, as a live account's ids are
USERS = "/api/v1/users$"


@pytest.fixture
def client(stack: Stack, sleeps: Sleeps) -> SyncroClient:
    with syncro_client_for(stack, sleeps) as client:
        yield client


# -- users ------------------------------------------------------------------------------------------


def test_users_reads_each_pair_for_its_email(stack: Stack, client: SyncroClient) -> None:
    stack.sim.seed({"users": [{"id": BIG, "email": "Big.Id@Acme.test", "full_name": "Bea Big"}]})
    users = client.users()
    assert users == [
        SyncroUser(id=JOE, email="joe@acme.test", full_name="Joe Doe"),
        SyncroUser(id=TINA, email="Tina@Acme.test", full_name="Tina Tech"),
        SyncroUser(id=SAM, email="sam@acme.test", full_name="Sam Own"),
        SyncroUser(id=BIG, email="Big.Id@Acme.test", full_name="Bea Big"),
    ]
    assert syncro_count(stack, "GET /api/v1/users") == 1
    assert syncro_count(stack, "GET /api/v1/users/{user_id:int}") == 4


def test_users_follows_meta_pages(stack: Stack, client: SyncroClient) -> None:
    syncro_fault(
        stack, path=USERS, status=200, body={"users": [[JOE, "Joe Doe"]], "meta": {"page": 1, "total_pages": 2}}
    )
    syncro_fault(
        stack, path=USERS, status=200, body={"users": [[str(TINA), "Tina Tech"]], "meta": {"page": 2, "total_pages": 2}}
    )
    assert [user.id for user in client.users()] == [JOE, TINA]
    assert syncro_count(stack, "GET /api/v1/users") == 2


def test_users_takes_whole_records_wrapped_or_flat_without_more_requests(stack: Stack, client: SyncroClient) -> None:
    body = {
        "users": [
            {"user": {"id": BIG, "email": " Bea@Acme.test ", "full_name": "Bea Big"}},
            {"id": 17, "email": None, "firstname": "No", "lastname": "Mail"},
        ]
    }
    syncro_fault(stack, path=USERS, status=200, body=body)
    assert client.users() == [
        SyncroUser(id=BIG, email="Bea@Acme.test", full_name="Bea Big"),
        SyncroUser(id=17, email=None, full_name="No Mail"),
    ]
    assert syncro_count(stack, "GET /api/v1/users/{user_id:int}") == 0


def test_user_reads_one_with_a_large_id(stack: Stack, client: SyncroClient) -> None:
    stack.sim.seed({"users": [{"id": BIG, "email": "big@acme.test", "full_name": "Bea Big"}]})
    assert client.user(BIG) == SyncroUser(id=BIG, email="big@acme.test", full_name="Bea Big")


def test_an_unknown_user_is_not_found(client: SyncroClient) -> None:
    with pytest.raises(SyncroNotFound) as caught:
        client.user(999_999_999_999)
    assert caught.value.status == 404 and caught.value.code is None
    assert "Not found" in str(caught.value)


# -- errors -----------------------------------------------------------------------------------------


def test_a_bad_token_is_unauthorized_and_names_the_setting(stack: Stack, sleeps: Sleeps) -> None:
    with syncro_client_for(stack, sleeps, token="wrong-token") as client, pytest.raises(SyncroUnauthorized) as caught:
        client.users()
    assert caught.value.status == 401
    assert "SYNCRO_API_TOKEN" in str(caught.value)
    assert "wrong-token" not in str(caught.value)
    assert sleeps.waits == []


def test_a_permission_failure_tells_the_admin_to_grant_permissions(stack: Stack, client: SyncroClient) -> None:
    syncro_fault(stack, path=USERS, status=401, body=stack.sim.settings.forbidden_body)
    with pytest.raises(SyncroForbidden) as caught:
        client.users()
    error = caught.value
    assert isinstance(error, Forbidden) and error.status == 401
    assert "update your group permissions" in error.message
    assert "permission" in error.advice and "API Tokens" in error.advice


def test_429_without_retry_after_backs_off_then_succeeds(stack: Stack, client: SyncroClient, sleeps: Sleeps) -> None:
    syncro_fault(stack, path=USERS, status=429, times=2)
    assert len(client.users()) == 3
    assert sleeps.waits == [0.5, 1.0]


def test_the_rate_limit_is_waited_out_until_the_next_minute(stack: Stack) -> None:
    """Syncro's own 429 (fixed minute windows, no Retry-After); waiting moves the simulator's clock."""
    assert stack.client(None).patch(f"{stack.server.url}/_sim/settings", json={"rate_limit_per_minute": 3}).ok
    stack.clock_to_window_start()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        stack.sim.control.clock.advance(seconds)

    retry = RetryPolicy(backoff_seconds=20, max_wait_seconds=40, max_total_wait_seconds=90, jitter=0, sleep=sleep)
    client = SyncroClient(stack.api, api_token=ADMIN_TOKEN, ca_bundle=str(stack.tls.ca_bundle), retry=retry)
    assert len(client.users()) == 3  # four requests: the fourth meets the limit
    assert waits == [20, 40]


def test_throttling_past_the_budget_raises_throttled(stack: Stack, client: SyncroClient, sleeps: Sleeps) -> None:
    syncro_fault(stack, path=USERS, status=429, times=0)
    with pytest.raises(SyncroThrottled) as caught:
        client.users()
    assert caught.value.status == 429 and caught.value.retry_after is None
    assert "180 requests a minute" in str(caught.value)
    assert sleeps.waits == [0.5, 1.0, 2.0]
