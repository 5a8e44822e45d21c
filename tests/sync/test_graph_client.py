"""GraphClient against the Graph simulator over real TLS, with tokens from the simulator's issuer."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sync.client_http import RetryPolicy
from sync.errors import (
    Forbidden,
    GraphForbidden,
    GraphNotFound,
    GraphThrottled,
    GraphUnauthorized,
    GraphUnavailable,
    GraphUnexpectedResponse,
    NotFound,
)
from sync.graph import Calendar, GraphClient, MicrosoftUser
from tests.sims.graph_support import USER, GraphHarness
from tests.sync.client_support import Sleeps, graph_client_for, graph_count, graph_fault

pytest_plugins = ["tests.sims.graph_fixtures", "tests.sync.client_support"]

CALENDARS = "/v1.0/me/calendars$"


def seed(graph: GraphHarness, **mailbox: Any) -> dict[str, Any]:
    spec = {"oid": USER, "name": "Tess Tech", "tenant_id": "t-1", **mailbox}
    response = graph.plain().post(f"{graph.url}/_sim/seed", json={"mailboxes": [spec]})
    assert response.status_code == 200, response.text
    return response.json()["mailboxes"][0]


@pytest.fixture
def client(graph: GraphHarness, sleeps: Sleeps) -> GraphClient:
    token = graph.token()
    with graph_client_for(graph, sleeps, lambda: token) as client:
        yield client


# -- /me ------------------------------------------------------------------------------------------


def test_me_without_mail_and_with_a_sign_in_name_of_its_own(graph: GraphHarness, client: GraphClient) -> None:
    seed(graph, upn="Tess.Tech@Contoso.onmicrosoft.example", mail=None, email="tess@contoso.example")
    assert client.me() == MicrosoftUser(
        id=USER, user_principal_name="Tess.Tech@Contoso.onmicrosoft.example", mail=None, display_name="Tess Tech"
    )


def test_me_with_mail_apart_from_the_upn(graph: GraphHarness, client: GraphClient) -> None:
    seed(graph, upn="tt@contoso.onmicrosoft.example", mail="Tess@Contoso.example")
    me = client.me()
    assert (me.mail, me.user_principal_name) == ("Tess@Contoso.example", "tt@contoso.onmicrosoft.example")


def test_every_request_asks_for_utc_and_immutable_ids_with_a_fresh_token(graph: GraphHarness) -> None:
    seen: list[requests.PreparedRequest] = []
    session = graph.plain()
    session.hooks["response"].append(lambda response, **_: seen.append(response.request))
    calls: list[int] = []

    def token() -> str:
        calls.append(1)
        return graph.token()

    client = GraphClient(graph.v1, token=token, session=session)
    client.me()
    client.calendars()
    assert len(calls) == 2
    for request in seen:
        prefer = request.headers["Prefer"]
        assert 'outlook.timezone="UTC"' in prefer and 'IdType="ImmutableId"' in prefer
    client.close()
    assert session.get(f"{graph.url}/_sim/settings").status_code == 200  # a caller's session stays open


# -- calendars ------------------------------------------------------------------------------------


def test_calendars_lists_each_with_default_and_edit_rights(graph: GraphHarness, client: GraphClient) -> None:
    ids = seed(
        graph,
        email="tess@contoso.example",
        calendars=[{"name": "Calendar", "is_default": True}, {"name": "Syncro"}],
    )["calendars"]
    calendars = client.calendars()
    assert sorted(calendars, key=lambda c: c.name) == [
        Calendar(id=ids["Calendar"], name="Calendar", can_edit=True, is_default=True),
        Calendar(id=ids["Syncro"], name="Syncro", can_edit=True, is_default=False),
    ]
    assert client.calendar(ids["Syncro"]) == calendars[[c.name for c in calendars].index("Syncro")]


def test_calendars_follows_next_links_and_keeps_read_only_calendars(graph: GraphHarness, client: GraphClient) -> None:
    ids = seed(graph, email="tess@contoso.example", calendars=[{"name": "Calendar", "is_default": True}])["calendars"]
    # Graph pages calendars when a mailbox has many, and lists calendars shared read-only with
    # canEdit false; the simulator's first page is replaced by such a page.
    shared = {"id": "AAMkShared-Boss_1=", "name": "Boss's calendar", "canEdit": False, "isDefaultCalendar": False}
    first_page = {"value": [shared], "@odata.nextLink": f"{graph.v1}/me/calendars?$skiptoken=page2"}
    graph_fault(graph, path=CALENDARS, status=200, body=first_page, times=1)
    assert client.calendars() == [
        Calendar(id="AAMkShared-Boss_1=", name="Boss's calendar", can_edit=False, is_default=False),
        Calendar(id=ids["Calendar"], name="Calendar", can_edit=True, is_default=True),
    ]
    assert graph_count(graph, "GET /v1.0/me/calendars") == 2


def test_a_next_link_to_another_host_is_refused(graph: GraphHarness, client: GraphClient) -> None:
    page = {"value": [], "@odata.nextLink": "https://graph.example.invalid/v1.0/me/calendars?$skiptoken=x"}
    graph_fault(graph, path=CALENDARS, status=200, body=page, times=1)
    with pytest.raises(GraphUnexpectedResponse, match="another host"):
        client.calendars()


def test_an_unknown_calendar_is_not_found(graph: GraphHarness, client: GraphClient) -> None:
    seed(graph, email="tess@contoso.example")
    with pytest.raises(GraphNotFound) as caught:
        client.calendar("AAMkA-no_such_calendar=")
    error = caught.value
    assert isinstance(error, NotFound)
    assert (error.status, error.code) == (404, "ErrorItemNotFound")
    assert "Microsoft Graph answered 404 ErrorItemNotFound" in str(error)


# -- errors and throttling -------------------------------------------------------------------------


def test_a_refused_token_is_unauthorized_and_says_to_link_again(graph: GraphHarness, sleeps: Sleeps) -> None:
    client = GraphClient(
        graph.v1, token=lambda: "not-a-token", ca_bundle=graph.ca_bundle, retry=RetryPolicy(sleep=sleeps)
    )
    with pytest.raises(GraphUnauthorized) as caught:
        client.me()
    assert caught.value.status == 401 and caught.value.code
    assert "link their calendar again" in str(caught.value)
    assert "not-a-token" not in str(caught.value)
    assert sleeps.waits == []


def test_an_expired_token_is_unauthorized(graph: GraphHarness, sleeps: Sleeps) -> None:
    token = graph.token(lifetime=60)
    graph.control.clock.advance(3600)
    client = GraphClient(graph.v1, token=lambda: token, ca_bundle=graph.ca_bundle, retry=RetryPolicy(sleep=sleeps))
    with pytest.raises(GraphUnauthorized):
        client.calendars()


def test_a_token_without_calendar_scope_is_forbidden(graph: GraphHarness) -> None:
    token = graph.token(scopes=["User.Read"])
    client = GraphClient(graph.v1, token=lambda: token, ca_bundle=graph.ca_bundle)
    assert client.me().id == USER
    with pytest.raises(GraphForbidden) as caught:
        client.calendars()
    assert isinstance(caught.value, Forbidden) and caught.value.status == 403
    assert "Calendars.ReadWrite" in str(caught.value)


def test_429_with_a_fractional_retry_after_is_waited_out(
    graph: GraphHarness, client: GraphClient, sleeps: Sleeps
) -> None:
    seed(graph, email="tess@contoso.example")
    graph_fault(graph, path="/v1.0/me$", status=429, headers={"Retry-After": "0.3"}, times=2)
    assert client.me().id == USER
    assert sleeps.waits == [0.3, 0.3]


def test_429_without_retry_after_backs_off(graph: GraphHarness, client: GraphClient, sleeps: Sleeps) -> None:
    seed(graph, email="tess@contoso.example")
    graph_fault(graph, path="/v1.0/me$", status=429, times=2)
    assert client.me().id == USER
    assert sleeps.waits == [0.5, 1.0]


def test_503_is_retried_like_429(graph: GraphHarness, client: GraphClient, sleeps: Sleeps) -> None:
    seed(graph, email="tess@contoso.example")
    graph_fault(graph, path=CALENDARS, status=503, headers={"Retry-After": "1"}, times=1)
    assert len(client.calendars()) == 1
    assert sleeps.waits == [1.0]


def test_throttling_that_outlasts_the_attempts_raises_throttled(
    graph: GraphHarness, client: GraphClient, sleeps: Sleeps
) -> None:
    graph_fault(graph, path="/v1.0/me$", status=429, headers={"Retry-After": "2"}, times=0)
    with pytest.raises(GraphThrottled) as caught:
        client.me()
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (429, "TooManyRequests", 2.0)
    assert sleeps.waits == [2.0, 2.0, 2.0]
    assert graph_count(graph, "GET /v1.0/me") == 4


def test_a_wait_longer_than_allowed_is_handed_to_the_caller(
    graph: GraphHarness, client: GraphClient, sleeps: Sleeps
) -> None:
    graph_fault(graph, path="/v1.0/me$", status=429, headers={"Retry-After": "120"}, times=1)
    with pytest.raises(GraphThrottled) as caught:
        client.me()
    assert caught.value.retry_after == 120.0
    assert sleeps.waits == []


def test_mailbox_concurrency_throttling_of_the_simulator_is_absorbed(graph: GraphHarness) -> None:
    """The simulator's own MailboxConcurrency 429s (Retry-After integer, fractional or absent)."""
    from concurrent.futures import ThreadPoolExecutor

    seed(graph, email="tess@contoso.example")
    graph.settings(request_latency_seconds=0.05, retry_after_seconds=0.05)
    token = graph.token()
    policy = RetryPolicy(max_attempts=8, backoff_seconds=0.05, max_total_wait_seconds=5)
    client = GraphClient(graph.v1, token=lambda: token, ca_bundle=graph.ca_bundle, retry=policy)
    with client, ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: client.me().id, range(16)))
    assert results == [USER] * 16
    assert graph_count(graph, "GET /v1.0/me") > 16  # some were answered 429 and sent again


def test_an_untrusted_certificate_is_unavailable_at_once_and_names_the_ca_setting(
    graph: GraphHarness, sleeps: Sleeps
) -> None:
    """Without the simulators' CA (and REQUESTS_CA_BUNDLE ignored), TLS fails; no retry can help."""
    client = GraphClient(graph.v1, token=graph.token, retry=RetryPolicy(sleep=sleeps))
    with client, pytest.raises(GraphUnavailable) as caught:
        client.me()
    assert caught.value.status is None and "CA_BUNDLE" in str(caught.value)
    assert sleeps.waits == []
