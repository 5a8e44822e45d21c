"""Graph simulator fidelity (issue 11 point 6): /me with upn and mail apart, automatic
reauthorizationRequired with paused delivery, batched notification POSTs with extra `updated`
notifications, all through real HTTPS requests and a real webhook receiver."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.sims.graph_support import USER, GraphHarness, Receiver, event_body, expiry, subscription_body

pytest_plugins = ["tests.sims.graph_fixtures"]


# --- /me: userPrincipalName and mail ---------------------------------------------------------------
def _seed(graph: GraphHarness, **mailbox: Any) -> int:
    body = {"mailboxes": [{"oid": USER, "name": "Alex Smith", "tenant_id": "t-1", **mailbox}]}
    return graph.plain().post(f"{graph.url}/_sim/seed", json=body).status_code


def test_me_shows_upn_and_mail_apart_with_their_case(graph: GraphHarness) -> None:
    assert _seed(graph, upn="Alex.Smith@Contoso.example", mail="ASmith@contoso.example") == 200
    for path in ("/me", f"/users/{USER}"):
        me = graph.session().get(f"{graph.v1}{path}").json()
        assert me["userPrincipalName"] == "Alex.Smith@Contoso.example", path
        assert me["mail"] == "ASmith@contoso.example", path
    [listed] = graph.plain().get(f"{graph.url}/_sim/mailboxes").json()["mailboxes"]
    assert (listed["upn"], listed["mail"]) == ("Alex.Smith@Contoso.example", "ASmith@contoso.example")


def test_me_mail_may_be_null(graph: GraphHarness) -> None:
    assert _seed(graph, upn="alex@contoso.example", mail=None) == 200
    me = graph.session().get(f"{graph.v1}/me").json()
    assert me["mail"] is None and me["userPrincipalName"] == "alex@contoso.example"


def test_a_mailbox_seeded_with_just_an_email_has_both_equal(graph: GraphHarness) -> None:
    assert _seed(graph, email="Tess.Tech@contoso.example") == 200
    me = graph.session().get(f"{graph.v1}/me").json()
    assert me["mail"] == me["userPrincipalName"] == "Tess.Tech@contoso.example"


def test_a_mailbox_made_from_a_token_has_both_equal(graph: GraphHarness) -> None:
    me = graph.session(username="Token.User@contoso.example").get(f"{graph.v1}/me").json()
    assert me["mail"] == me["userPrincipalName"] == "Token.User@contoso.example"


def test_bad_mailbox_addresses_are_refused(graph: GraphHarness) -> None:
    assert _seed(graph) == 400
    assert _seed(graph, upn=5) == 400
    assert _seed(graph, email="a@b.example", mail="") == 400
    assert graph.plain().get(f"{graph.url}/_sim/mailboxes").json()["mailboxes"] == []


# --- notifications: helpers ------------------------------------------------------------------------
def _subscribe(
    graph: GraphHarness,
    receiver: Receiver,
    *,
    minutes: float = 4000,
    lifecycle: bool = True,
    change_type: str = "created,updated,deleted",
    **token: Any,
) -> dict[str, Any]:
    body = subscription_body(graph, receiver, minutes=minutes, lifecycle=lifecycle, change_type=change_type)
    response = graph.session(**token).post(f"{graph.v1}/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _settled(graph: GraphHarness) -> None:
    # A tick of the scheduler (0.1 s) has run, and nothing is left to send.
    time.sleep(0.25)
    assert graph.sim.notifier.wait_until_settled()


def _items(receiver: Receiver, path: str) -> list[dict[str, Any]]:
    return [item for post in receiver.received if post["path"] == path for item in post["body"]["value"]]


def _create(graph: GraphHarness, subject: str = "Visit") -> str:
    response = graph.session().post(f"{graph.v1}/me/events", json=event_body(subject=subject))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


CHANGES = "/api/graph/notifications"
LIFECYCLE = "/api/graph/lifecycle"


# --- several changes per POST; created followed by updated ------------------------------------------
def test_changes_within_the_window_share_one_post(graph: GraphHarness, receiver: Receiver) -> None:
    graph.settings(notification_batch_window_seconds=1.0, extra_updated_notifications=0)
    _subscribe(graph, receiver)
    ids = [_create(graph, f"E{n}") for n in range(3)]
    _settled(graph)
    [post] = receiver.received
    assert [item["resourceData"]["id"] for item in post["body"]["value"]] == ids


def test_a_batch_holds_at_most_max_items(graph: GraphHarness, receiver: Receiver) -> None:
    graph.settings(notification_batch_window_seconds=1.0, notification_batch_max_items=2, extra_updated_notifications=0)
    _subscribe(graph, receiver)
    for n in range(3):
        _create(graph, f"E{n}")
    _settled(graph)
    assert sorted(len(post["body"]["value"]) for post in receiver.received) == [1, 2]


def test_a_create_is_followed_by_updated_notifications_by_default(graph: GraphHarness, receiver: Receiver) -> None:
    defaults = graph.plain().get(f"{graph.url}/_sim/settings").json()
    assert defaults["extra_updated_notifications"] == 2 and defaults["notification_batch_window_seconds"] > 0
    _subscribe(graph, receiver)
    event_id = _create(graph)
    _settled(graph)
    items = _items(receiver, CHANGES)
    assert [i["changeType"] for i in items] == ["created", "updated", "updated"]
    assert {i["resourceData"]["id"] for i in items} == {event_id}
    graph.session().delete(f"{graph.v1}/me/events/{event_id}")
    _settled(graph)
    assert [i["changeType"] for i in _items(receiver, CHANGES)][3:] == ["deleted"]


def test_without_a_window_the_extra_updates_are_posts_of_their_own(graph: GraphHarness, receiver: Receiver) -> None:
    graph.settings(notification_batch_window_seconds=0, extra_updated_notifications=1)
    _subscribe(graph, receiver)
    event_id = _create(graph)
    graph.session().patch(f"{graph.v1}/me/events/{event_id}", json={"subject": "Moved"})
    _settled(graph)
    assert len(receiver.received) == 4
    assert sorted(i["changeType"] for i in _items(receiver, CHANGES)) == ["created", "updated", "updated", "updated"]


def test_no_extra_updates_for_a_subscription_without_updated(graph: GraphHarness, receiver: Receiver) -> None:
    _subscribe(graph, receiver, change_type="created")
    _create(graph)
    _settled(graph)
    assert [i["changeType"] for i in _items(receiver, CHANGES)] == ["created"]


# --- reauthorizationRequired on its own, and paused delivery ---------------------------------------
def test_challenge_near_token_expiry_pauses_delivery_until_reauthorize(graph: GraphHarness, receiver: Receiver) -> None:
    graph.settings(extra_updated_notifications=0)
    subscription = _subscribe(graph, receiver, lifetime=3600)
    _create(graph, "before")
    _settled(graph)
    assert len(_items(receiver, CHANGES)) == 1 and _items(receiver, LIFECYCLE) == []
    graph.control.clock.advance(46 * 60)  # the token has 14 minutes left; the lead is 15
    receiver.wait_for(2)
    [challenge] = _items(receiver, LIFECYCLE)
    assert challenge["lifecycleEvent"] == "reauthorizationRequired"
    assert challenge["subscriptionId"] == subscription["id"] and challenge["clientState"] == "s3cret"
    _create(graph, "while paused")
    _settled(graph)
    assert len(_items(receiver, CHANGES)) == 1
    [lost] = graph.plain().get(f"{graph.url}/_sim/notifications", params={"status": "dropped"}).json()["deliveries"]
    assert lost["note"] == "lost: reauthorization required"
    [state] = graph.plain().get(f"{graph.url}/_sim/subscriptions").json()["subscriptions"]
    assert state["reauthorization"]["paused"] is True and state["reauthorization"]["challengedSince"]
    reauthorize = graph.session(lifetime=3600).post(f"{graph.v1}/subscriptions/{subscription['id']}/reauthorize")
    assert reauthorize.status_code == 204
    [state] = graph.plain().get(f"{graph.url}/_sim/subscriptions").json()["subscriptions"]
    assert state["reauthorization"]["paused"] is False
    after = _create(graph, "after")
    _settled(graph)
    assert [i["resourceData"]["id"] for i in _items(receiver, CHANGES)][1:] == [after]
    assert len(_items(receiver, LIFECYCLE)) == 1


def test_challenge_near_subscription_expiry_and_renewal_resumes(graph: GraphHarness, receiver: Receiver) -> None:
    graph.settings(extra_updated_notifications=0)
    subscription = _subscribe(graph, receiver, minutes=60, lifetime=24 * 3600)
    graph.control.clock.advance(50 * 60)
    receiver.wait_for(1)
    assert [i["lifecycleEvent"] for i in _items(receiver, LIFECYCLE)] == ["reauthorizationRequired"]
    _create(graph, "lost")
    _settled(graph)
    assert _items(receiver, CHANGES) == []
    renewed = graph.session(lifetime=24 * 3600).patch(
        f"{graph.v1}/subscriptions/{subscription['id']}", json={"expirationDateTime": expiry(graph, 600)}
    )
    assert renewed.status_code == 200
    kept = _create(graph, "kept")
    _settled(graph)
    assert [i["resourceData"]["id"] for i in _items(receiver, CHANGES)] == [kept]


def test_held_changes_are_sent_once_reauthorized(graph: GraphHarness, receiver: Receiver) -> None:
    graph.settings(extra_updated_notifications=0, reauthorization_paused_changes="held")
    subscription = _subscribe(graph, receiver, lifetime=3600)
    graph.control.clock.advance(46 * 60)
    receiver.wait_for(1)
    held = _create(graph, "held")
    _settled(graph)
    assert _items(receiver, CHANGES) == []
    graph.session().post(f"{graph.v1}/subscriptions/{subscription['id']}/reauthorize")
    _settled(graph)
    assert [i["resourceData"]["id"] for i in _items(receiver, CHANGES)] == [held]


def test_challenges_repeat_while_unanswered(graph: GraphHarness, receiver: Receiver) -> None:
    _subscribe(graph, receiver, lifetime=3600)
    graph.control.clock.advance(46 * 60)
    receiver.wait_for(1)
    graph.control.clock.advance(5 * 60)
    _settled(graph)
    assert len(_items(receiver, LIFECYCLE)) == 1
    graph.control.clock.advance(11 * 60)
    receiver.wait_for(2)
    assert [i["lifecycleEvent"] for i in _items(receiver, LIFECYCLE)] == ["reauthorizationRequired"] * 2


def test_delivery_goes_on_for_the_grace_period(graph: GraphHarness, receiver: Receiver) -> None:
    graph.settings(extra_updated_notifications=0, reauthorization_pause_after_minutes=10)
    _subscribe(graph, receiver, lifetime=24 * 3600, minutes=600)
    graph.control.clock.advance(586 * 60)  # 14 minutes before the subscription expires
    receiver.wait_for(1)
    _create(graph, "within grace")
    _settled(graph)
    assert len(_items(receiver, CHANGES)) == 1
    graph.control.clock.advance(11 * 60)  # 11 minutes after the challenge; 3 before expiry
    _create(graph, "after grace")
    _settled(graph)
    assert len(_items(receiver, CHANGES)) == 1


def test_no_challenge_without_a_lifecycle_url_or_when_switched_off(graph: GraphHarness, receiver: Receiver) -> None:
    graph.settings(extra_updated_notifications=0)
    _subscribe(graph, receiver, lifecycle=False, lifetime=3600)
    graph.control.clock.advance(46 * 60)
    _create(graph)
    _settled(graph)
    assert len(_items(receiver, CHANGES)) == 1 and _items(receiver, LIFECYCLE) == []
    graph.settings(reauthorization_challenges=False)
    _subscribe(graph, receiver, lifetime=600)
    _settled(graph)
    assert _items(receiver, LIFECYCLE) == []


def test_bad_reauthorization_input(graph: GraphHarness, receiver: Receiver) -> None:
    plain = graph.plain()
    assert plain.patch(f"{graph.url}/_sim/settings", json={"reauthorization_paused_changes": "x"}).status_code == 400
    assert plain.patch(f"{graph.url}/_sim/settings", json={"notification_batch_max_items": -1}).status_code == 400
    missing = graph.session().post(f"{graph.v1}/subscriptions/{uuid.uuid4()}/reauthorize")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceNotFound"
