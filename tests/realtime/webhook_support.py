"""The in-process product with ALEX linked (two-way), for the webhook tests: what reached the
sync-job and subscription-job queues, and handles on the Graph and Syncro simulators.
Load with ``pytest_plugins = ["tests.realtime.webhook_support"]``."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from local import demo
from local.azurite import Azurite
from local.inprocess import Product, install_settings, start_product
from local.tls import TlsFiles
from realtime import SUBSCRIPTION_QUEUE
from storage.errors import NotFound
from storage.links import Link
from storage.subscriptions import SubscriptionRecord, hash_client_state
from storage.sync_queue import SyncJob
from tests.app.linking_support import graph_as

ALEX = demo.TECHS[0]
BLAKE = demo.TECHS[1]


@dataclass
class RealtimeStack:
    product: Product

    @property
    def url(self) -> str:
        return self.product.host_url

    @property
    def account(self) -> Any:
        return self.product.storage()

    @property
    def graph_sim(self) -> Any:
        return self.product.sim("graph")

    @property
    def syncro_sim(self) -> Any:
        return self.product.sim("syncro")

    def post(self, path: str, body: bytes | str | None = None, **kwargs: Any) -> requests.Response:
        return requests.post(f"{self.url}{path}", data=body, timeout=30, **kwargs)

    def post_json(self, path: str, payload: Any, **kwargs: Any) -> requests.Response:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        return self.post(path, json.dumps(payload), headers=headers, **kwargs)

    # -- queues --------------------------------------------------------------------------------

    def sync_jobs(self) -> list[SyncJob]:
        """Every message waiting on the sync-job queue (peeked, so left in place)."""
        return self.account.sync_queue.peek_jobs()

    def subscription_jobs(self) -> list[dict[str, Any]]:
        messages = self.account.queue(SUBSCRIPTION_QUEUE).peek_messages(max_messages=32)
        return [json.loads(m.content) for m in messages]

    def take_subscription_jobs(self) -> list[str]:
        """Receive and delete what waits on the subscription queue, decoded as the host's pump
        decodes it (base64, host.json's messageEncoding, undone by `StorageAccount.queue`'s policy:
        a message that is not base64 fails here)."""
        queue = self.account.queue(SUBSCRIPTION_QUEUE)
        taken = []
        for message in queue.receive_messages(max_messages=32, visibility_timeout=60):
            taken.append(message.content)
            queue.delete_message(message)
        return taken

    def clear(self) -> None:
        """Empty both queues, forget every pending sync request and past webhook deliveries."""
        from realtime.enqueue import sync_started
        from realtime.notifications import changes, records

        self.account.queue(self.account.sync_queue.name).clear_messages()
        self.account.queue(SUBSCRIPTION_QUEUE).clear_messages()
        for tech in (ALEX.syncro_user_id, BLAKE.syncro_user_id):
            sync_started(self.account, tech)
        records.clear()
        changes.clear()
        self.graph_sim.notifier.clear()
        self.syncro_sim.notifications.clear()

    def wait_for(self, condition: Callable[[], Any], timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            time.sleep(0.05)
        raise AssertionError("timed out waiting")

    # -- the link and its subscription --------------------------------------------------------------

    def link(self, tech: int = ALEX.syncro_user_id) -> Link:
        return self.account.links.get_link(tech)

    def sim_subscriptions(self) -> list[Any]:
        return self.graph_sim.subscriptions.all_subscriptions()

    def graph(self, method: str, path: str, *, tech: int = ALEX.syncro_user_id, **kwargs: Any) -> requests.Response:
        return graph_as(self.product, tech, method, path, **kwargs)

    def outlook_create(self, subject: str) -> str:
        link = self.link()
        body = {
            "subject": subject,
            "start": {"dateTime": "2030-01-02T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-02T11:00:00", "timeZone": "UTC"},
        }
        return self.graph("POST", f"/me/calendars/{link.calendar_id}/events", json=body).json()["id"]


@pytest.fixture(scope="module")
def realtime_stack(azurite: Azurite, tls_files: TlsFiles) -> Iterator[RealtimeStack]:
    import services

    with ExitStack() as stack:
        product = start_product(stack, tls=tls_files, storage=azurite.connection_string)
        # A queue of this module's own: other modules' products share the Azurite.
        install_settings({"SYNC_QUEUE_NAME": f"rt-{uuid.uuid4().hex[:12]}"})
        assert os.environ["SYNC_QUEUE_NAME"].startswith("rt-")
        page = product.sign_in(product.browser(), ALEX.sign_in)
        assert page.status_code == 200, page.text
        links = product.storage().links
        links.update_link(links.get_link(ALEX.syncro_user_id).with_changes(two_way=True))
        yield RealtimeStack(product)
        for forget in (
            lambda: services.token_service().forget(ALEX.syncro_user_id),
            lambda: links.delete_link(ALEX.syncro_user_id),
        ):
            try:
                forget()
            except NotFound:
                pass


# -- Syncro's Notification Center ----------------------------------------------------------------


def syncro_hook(stack: RealtimeStack, secret: str | None = None) -> str:
    """The Notification Center URL's path, with the configured secret unless ``secret`` is given."""
    return f"/api/syncro/notifications/{secret if secret is not None else stack.product.env['SYNCRO_WEBHOOK_SECRET']}"


def syncro_at(days: int, hour: int = 15) -> str:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days, hours=hour)
    return day.isoformat().replace("+00:00", "Z")


def dispatch(stack: RealtimeStack, summary: str, *, user_id: int = ALEX.syncro_user_id, days: int = 2) -> int:
    """Create an appointment as a dispatcher in Syncro's UI (which fires the Notification Center)."""
    body = {"summary": summary, "start_at": syncro_at(days), "end_at": syncro_at(days, 16), "user_id": user_id}
    answer = stack.product.browser().post(f"{stack.product.sim_url('syncro')}/_sim/appointments", json=body, timeout=30)
    assert answer.status_code < 400, answer.text
    data = answer.json()
    assert stack.syncro_sim.notifications.wait_idle()  # its notification went out and was answered
    return int(data.get("id") or data["appointment"]["id"])


def syncro_payload(appointment_id: Any) -> dict[str, Any]:
    return {"text": "Appointment was created\nOn site", "attributes": {"id": appointment_id, "summary": "On site"}}


# -- Graph's change notifications ----------------------------------------------------------------


def known_subscription(stack: RealtimeStack, tech: int, client_state: str) -> SubscriptionRecord:
    """A subscription row of our own making, whose clientState the test knows."""
    now = datetime.now(UTC)
    record = SubscriptionRecord(
        f"test-{tech}-{client_state[:6]}",
        tech,
        "/me/events",
        now + timedelta(days=2),
        hash_client_state(client_state),
        now,
    )
    return stack.account.subscriptions.upsert_subscription(record)


def graph_notification(subscription_id: str, client_state: str | None, change: str = "updated") -> dict:
    return {
        "subscriptionId": subscription_id,
        "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z",
        "clientState": client_state,
        "changeType": change,
        "resource": "Users/x/Events/AAMkA=",
        "tenantId": "t",
        "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "id": "AAMkA="},
    }
