"""Graph simulator: subscriptions with the validation handshake, change and lifecycle notifications
with their unreliability settings, retries and expiry on the movable clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import requests

from tests.sims.graph_support import TENANT, USER, GraphHarness, Receiver, event_body, expiry, subscription_body

pytest_plugins = ["tests.sims.graph_fixtures"]


def _subscribe(
    graph: GraphHarness,
    receiver: Receiver,
    *,
    resource: str = "/me/events",
    minutes: float = 4000,
    lifecycle: bool = True,
    **extra: Any,
) -> requests.Response:
    body = subscription_body(graph, receiver, resource=resource, minutes=minutes, lifecycle=lifecycle)
    return graph.session().post(f"{graph.v1}/subscriptions", json={**body, **extra})


def _notifications(graph: GraphHarness, status: str | None = None) -> list[dict[str, Any]]:
    params = {"status": status} if status else {}
    return graph.plain().get(f"{graph.url}/_sim/notifications", params=params).json()["deliveries"]


def test_create_runs_the_handshake_on_both_urls(graph: GraphHarness, receiver: Receiver) -> None:
    response = _subscribe(graph, receiver)
    assert response.status_code == 201, response.text
    subscription = response.json()
    assert subscription["resource"] == "/me/events" and subscription["changeType"] == "created,updated,deleted"
    assert subscription["applicationId"] == "app-client-id" and subscription["creatorId"] == USER
    assert subscription["latestSupportedTlsVersion"] == "v1_2"
    assert len(receiver.validations) == 2
    assert all(
        t.startswith("Validation: Testing client application reachability for subscription Request-Id: ")
        for t in receiver.validations
    )
    listed = graph.session().get(f"{graph.v1}/subscriptions").json()["value"]
    assert [s["id"] for s in listed] == [subscription["id"]] and listed[0]["clientState"] is None


def test_failed_handshakes_refuse_the_subscription(graph: GraphHarness, receiver: Receiver) -> None:
    for mode in ("wrong", "error", "html"):
        receiver.validation = mode
        response = _subscribe(graph, receiver)
        assert response.status_code == 400, mode
        assert response.json()["error"]["code"] == "ValidationError"
        assert response.json()["error"]["message"].startswith("Subscription validation request failed.")
    dead = graph.session().post(
        f"{graph.v1}/subscriptions",
        json={
            "changeType": "created",
            "notificationUrl": "http://127.0.0.1:9/nothing",
            "resource": "/me/events",
            "expirationDateTime": expiry(graph, 60),
        },
    )
    assert dead.status_code == 400


def test_creation_rules(graph: GraphHarness, receiver: Receiver) -> None:
    other_host = _subscribe(
        graph, receiver, lifecycle=False, lifecycleNotificationUrl="https://elsewhere.example/api/graph/lifecycle"
    )
    assert other_host.status_code == 400
    assert _subscribe(graph, receiver, minutes=10081).status_code == 400
    assert _subscribe(graph, receiver, clientState="x" * 129).status_code == 400
    assert _subscribe(graph, receiver, resource="/me/events/AAMkAsingle=").status_code == 400
    no_expiry = graph.session().post(
        f"{graph.v1}/subscriptions",
        json={"changeType": "created", "notificationUrl": f"{receiver.url}/n", "resource": "/me/events"},
    )
    assert no_expiry.status_code == 400
    short = _subscribe(graph, receiver, minutes=10).json()
    expires = datetime.fromisoformat(short["expirationDateTime"].replace("0000Z", "+00:00"))
    assert expires - graph.control.clock.now() > timedelta(minutes=44)


def test_change_notification_payload(graph: GraphHarness, receiver: Receiver) -> None:
    graph.settings(extra_updated_notifications=0)  # one item per change here (extras: fidelity tests)
    subscription = _subscribe(graph, receiver).json()
    event = graph.session().post(f"{graph.v1}/me/events", json=event_body()).json()
    [post] = receiver.wait_for(1)
    assert post["path"] == "/api/graph/notifications"
    [item] = post["body"]["value"]
    resource = f"Users/{USER}/Events/{event['id']}"
    assert item == {
        "subscriptionId": subscription["id"],
        "subscriptionExpirationDateTime": subscription["expirationDateTime"],
        "clientState": "s3cret",
        "changeType": "created",
        "resource": resource,
        "tenantId": TENANT,
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": resource,
            "@odata.etag": event["@odata.etag"],
            "id": event["id"],
        },
    }
    graph.session().delete(f"{graph.v1}/me/events/{event['id']}")
    assert receiver.wait_for(2)[1]["body"]["value"][0]["changeType"] == "deleted"


def test_only_the_subscribed_calendar_notifies(graph: GraphHarness, receiver: Receiver) -> None:
    session = graph.session()
    other = session.post(f"{graph.v1}/me/calendars", json={"name": "Other"}).json()
    _subscribe(graph, receiver, resource=f"/me/calendars/{other['id']}/events")
    session.post(f"{graph.v1}/me/events", json=event_body(subject="default calendar"))
    mine = session.post(f"{graph.v1}/me/calendars/{other['id']}/events", json=event_body(subject="other")).json()
    assert graph.sim.notifier.wait_until_settled()
    assert [p["body"]["value"][0]["resourceData"]["id"] for p in receiver.received] == [mine["id"]]


def test_copies_and_drops(graph: GraphHarness, receiver: Receiver) -> None:
    graph.settings(extra_updated_notifications=0)
    _subscribe(graph, receiver)
    graph.settings(notification_copies=3)
    graph.session().post(f"{graph.v1}/me/events", json=event_body())
    assert len(receiver.wait_for(3)) == 3
    graph.settings(notification_copies=1, notification_drop_next=1)
    graph.session().post(f"{graph.v1}/me/events", json=event_body())
    assert graph.sim.notifier.wait_until_settled()
    assert len(receiver.received) == 3
    assert len(_notifications(graph, "dropped")) == 1


def test_failed_delivery_is_retried(graph: GraphHarness, receiver: Receiver) -> None:
    _subscribe(graph, receiver)
    receiver.fail_next = 2
    graph.session().post(f"{graph.v1}/me/events", json=event_body())
    assert len(receiver.wait_for(1)) == 1
    assert graph.sim.notifier.wait_until_settled()
    [delivery] = _notifications(graph, "delivered")
    assert delivery["attempts"] == 3 and delivery["responses"] == ["500", "500", "202"]


def test_pause_holds_deliveries_until_release(graph: GraphHarness, receiver: Receiver) -> None:
    _subscribe(graph, receiver)
    graph.plain().post(f"{graph.url}/_sim/notifications/pause")
    graph.session().post(f"{graph.v1}/me/events", json=event_body())
    assert len(_notifications(graph, "pending")) == 1 and receiver.received == []
    graph.plain().post(f"{graph.url}/_sim/notifications/release")
    assert len(receiver.wait_for(1)) == 1


def test_expiry_on_the_clock_stops_delivery_and_renewal(graph: GraphHarness, receiver: Receiver) -> None:
    session = graph.session(lifetime=24 * 3600)
    subscription = _subscribe(graph, receiver, minutes=60).json()
    renewed = session.patch(
        f"{graph.v1}/subscriptions/{subscription['id']}", json={"expirationDateTime": expiry(graph, 120)}
    )
    assert renewed.status_code == 200 and renewed.json()["expirationDateTime"] != subscription["expirationDateTime"]
    graph.control.clock.advance(121 * 60)
    session.post(f"{graph.v1}/me/events", json=event_body())
    assert graph.sim.notifier.wait_until_settled()
    assert receiver.received == []
    assert session.get(f"{graph.v1}/subscriptions/{subscription['id']}").status_code == 404
    late = session.patch(
        f"{graph.v1}/subscriptions/{subscription['id']}", json={"expirationDateTime": expiry(graph, 120)}
    )
    assert late.status_code == 404


def test_lifecycle_notifications_on_demand(graph: GraphHarness, receiver: Receiver) -> None:
    subscription = _subscribe(graph, receiver).json()
    control = f"{graph.url}/_sim/subscriptions/{subscription['id']}/lifecycle"
    assert graph.plain().post(control, json={"event": "reauthorizationRequired"}).status_code == 202
    [post] = receiver.wait_for(1)
    assert post["path"] == "/api/graph/lifecycle"
    item = post["body"]["value"][0]
    assert item["lifecycleEvent"] == "reauthorizationRequired" and item["subscriptionId"] == subscription["id"]
    assert item["clientState"] == "s3cret"
    session = graph.session()
    assert session.post(f"{graph.v1}/subscriptions/{subscription['id']}/reauthorize").status_code == 204
    graph.plain().post(control, json={"event": "subscriptionRemoved"})
    assert receiver.wait_for(2)[1]["body"]["value"][0]["lifecycleEvent"] == "subscriptionRemoved"
    assert session.get(f"{graph.v1}/subscriptions/{subscription['id']}").status_code == 404
    assert graph.plain().post(control, json={"event": "bogus"}).status_code in (400, 404)


def test_delete_subscription(graph: GraphHarness, receiver: Receiver) -> None:
    subscription = _subscribe(graph, receiver).json()
    session = graph.session()
    assert session.delete(f"{graph.v1}/subscriptions/{subscription['id']}").status_code == 204
    assert session.get(f"{graph.v1}/subscriptions/{subscription['id']}").status_code == 404


def test_silent_removal_sends_nothing(graph: GraphHarness, receiver: Receiver) -> None:
    subscription = _subscribe(graph, receiver).json()
    assert graph.plain().delete(f"{graph.url}/_sim/subscriptions/{subscription['id']}").status_code == 204
    graph.session().post(f"{graph.v1}/me/events", json=event_body())
    assert graph.sim.notifier.wait_until_settled()
    assert receiver.received == []
    assert graph.session().get(f"{graph.v1}/subscriptions/{subscription['id']}").status_code == 404


def test_mailbox_that_cannot_subscribe(graph: GraphHarness, receiver: Receiver) -> None:
    graph.sim.seed({"mailboxes": [{"oid": USER, "email": "tech@contoso.example", "can_subscribe": False}]})
    refused = _subscribe(graph, receiver)
    assert refused.status_code == 400
    assert "REST API is not yet supported for this mailbox" in refused.json()["error"]["message"]


def test_reordering_sends_held_notifications_newest_first(graph: GraphHarness, receiver: Receiver) -> None:
    _subscribe(graph, receiver)
    # One POST per change, so the order of POSTs is the order of changes.
    graph.settings(notification_reorder=True, notification_batch_window_seconds=0, extra_updated_notifications=0)
    graph.plain().post(f"{graph.url}/_sim/notifications/pause")
    session = graph.session()
    ids = [session.post(f"{graph.v1}/me/events", json=event_body(subject=f"E{n}")).json()["id"] for n in range(3)]
    graph.plain().post(f"{graph.url}/_sim/notifications/release")
    assert graph.sim.notifier.wait_until_settled()
    by_send_order = sorted(_notifications(graph, "delivered"), key=lambda d: d["sent_order"])
    assert [d["body"]["value"][0]["resourceData"]["id"] for d in by_send_order] == ids[::-1]
    assert len(receiver.wait_for(3)) == 3


def test_one_post_carries_every_matching_subscription_of_a_url(graph: GraphHarness, receiver: Receiver) -> None:
    first = _subscribe(graph, receiver).json()
    default_calendar = graph.session().get(f"{graph.v1}/me/calendar").json()["id"]
    second = _subscribe(graph, receiver, resource=f"/me/calendars/{default_calendar}/events").json()
    graph.session().post(f"{graph.v1}/me/events", json=event_body())
    [post] = receiver.wait_for(1)
    assert {item["subscriptionId"] for item in post["body"]["value"]} == {first["id"], second["id"]}


def test_slow_endpoints_get_delayed_then_dropped(graph: GraphHarness, receiver: Receiver) -> None:
    _subscribe(graph, receiver)
    graph.settings(
        notification_batch_window_seconds=0,
        extra_updated_notifications=0,
        notification_slow_seconds=0.05,
        notification_slow_min_count=2,
        notification_slow_delay_ratio=0.5,
        notification_slow_drop_ratio=1.5,
        notification_slow_delay_seconds=60,
    )
    receiver.delay_seconds = 0.1
    session = graph.session()
    for n in range(2):
        session.post(f"{graph.v1}/me/events", json=event_body(subject=f"slow {n}"))
        assert graph.sim.notifier.wait_until_settled()
    session.post(f"{graph.v1}/me/events", json=event_body(subject="delayed"))
    [held] = _notifications(graph, "pending")
    assert held["note"].startswith("delayed: slow endpoint")
    graph.settings(notification_slow_drop_ratio=0.9)
    session.post(f"{graph.v1}/me/events", json=event_body(subject="dropped"))
    [dropped] = _notifications(graph, "dropped")
    assert dropped["note"].startswith("slow endpoint")


def test_lost_notifications_can_be_followed_by_missed(graph: GraphHarness, receiver: Receiver) -> None:
    subscription = _subscribe(graph, receiver).json()
    graph.settings(lifecycle_missed_after_failures=True, notification_drop_next=1, extra_updated_notifications=0)
    graph.session().post(f"{graph.v1}/me/events", json=event_body())
    [post] = receiver.wait_for(1)
    assert post["path"] == "/api/graph/lifecycle"
    assert post["body"]["value"][0]["lifecycleEvent"] == "missed"
    assert post["body"]["value"][0]["subscriptionId"] == subscription["id"]
