"""Microsoft's own client, msgraph-sdk (GraphServiceClient), against the simulator over TLS."""

from __future__ import annotations

import asyncio
import ssl
from datetime import timedelta
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.event import Event
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.graph_request_adapter import options as GRAPH_OPTIONS
from msgraph_core import GraphClientFactory

from tests.sims.graph_support import GraphHarness, Receiver

pytest_plugins = ["tests.sims.graph_fixtures"]
# The generated SDK warns about its own deprecated request-configuration classes.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph.*")


class MintedCredential:
    """A TokenCredential handing out one token minted by the simulator's issuer."""

    def __init__(self, graph: GraphHarness) -> None:
        self.token = graph.token()
        self.expires_on = int(graph.control.clock.timestamp()) + 3600

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, self.expires_on)


def _client(graph: GraphHarness) -> tuple[GraphServiceClient, httpx.AsyncHTTPTransport]:
    """The SDK client, and its transport to close at the end (msgraph-core's wrapper never closes it)."""
    transport = httpx.AsyncHTTPTransport(verify=ssl.create_default_context(cafile=graph.ca_bundle))
    http = httpx.AsyncClient(transport=transport, trust_env=False)
    # The adapter's own default client rewrites /users/me-token-to-replace to /me; ours must too.
    http = GraphClientFactory.create_with_default_middleware(client=http, options=GRAPH_OPTIONS)
    auth = AzureIdentityAuthenticationProvider(
        MintedCredential(graph), scopes=["Calendars.ReadWrite"], allowed_hosts=["127.0.0.1"]
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = graph.v1
    return GraphServiceClient(request_adapter=adapter), transport


def _event(subject: str, day: int) -> Event:
    return Event(
        subject=subject,
        body=ItemBody(content_type=BodyType.Text, content="From the SDK"),
        start=DateTimeTimeZone(date_time=f"2030-01-{day:02d}T10:00:00", time_zone="UTC"),
        end=DateTimeTimeZone(date_time=f"2030-01-{day:02d}T11:00:00", time_zone="UTC"),
    )


def test_sdk_lists_calendars_and_does_event_crud(graph: GraphHarness) -> None:
    async def scenario() -> None:
        client, transport = _client(graph)
        async with transport:
            await steps(client)

    async def steps(client: GraphServiceClient) -> None:
        calendars = await client.me.calendars.get()
        assert [c.name for c in calendars.value] == ["Calendar"]
        created = await client.me.events.post(_event("SDK visit", 7))
        assert created.id and created.change_key and created.start.date_time.endswith(".0000000")
        read = await client.me.events.by_event_id(created.id).get()
        assert read.subject == "SDK visit"
        updated = await client.me.events.by_event_id(created.id).patch(Event(subject="SDK visit, moved"))
        assert updated.subject == "SDK visit, moved" and updated.change_key != created.change_key
        await client.me.events.by_event_id(created.id).delete()
        remaining = await client.me.events.get()
        assert remaining.value == []

    asyncio.run(scenario())


def test_sdk_pages_through_calendar_view_delta(graph: GraphHarness) -> None:
    async def scenario() -> None:
        client, transport = _client(graph)
        async with transport:
            await steps(client)

    async def steps(client: GraphServiceClient) -> None:
        for day in range(1, 6):
            await client.me.events.post(_event(f"E{day}", day))
        query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
            start_date_time="2030-01-01T00:00:00Z", end_date_time="2030-02-01T00:00:00Z"
        )
        config = RequestConfiguration(query_parameters=query)
        config.headers.add("Prefer", "odata.maxpagesize=2")
        page = await client.me.calendar_view.delta.get(request_configuration=config)
        subjects, pages = [e.subject for e in page.value], 1
        while page.odata_next_link:
            page = await client.me.calendar_view.delta.with_url(page.odata_next_link).get()
            subjects += [e.subject for e in page.value]
            pages += 1
        assert sorted(subjects) == ["E1", "E2", "E3", "E4", "E5"] and pages == 3
        assert page.odata_delta_link
        again = await client.me.calendar_view.delta.with_url(page.odata_delta_link).get()
        assert again.value == [] and again.odata_delta_link

    asyncio.run(scenario())


def test_sdk_creates_a_subscription(graph: GraphHarness, receiver: Receiver) -> None:
    async def scenario() -> None:
        client, transport = _client(graph)
        async with transport:
            await steps(client)

    async def steps(client: GraphServiceClient) -> None:
        expiry = graph.control.clock.now() + timedelta(days=2)
        created = await client.subscriptions.post(
            Subscription(
                change_type="created,updated,deleted",
                notification_url=f"{receiver.url}/api/graph/notifications",
                lifecycle_notification_url=f"{receiver.url}/api/graph/lifecycle",
                resource="/me/events",
                expiration_date_time=expiry,
                client_state="sdk-state",
            )
        )
        assert created.id and created.resource == "/me/events"
        await client.me.events.post(_event("Notify me", 9))

    asyncio.run(scenario())
    [post] = receiver.wait_for(1)
    assert post["body"]["value"][0]["clientState"] == "sdk-state"
