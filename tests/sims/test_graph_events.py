"""Graph simulator: auth, calendars, event CRUD, preconditions, idempotent creates, extended
properties, time zones and the all-day rules, over real HTTPS."""

from __future__ import annotations

import json
import re

from tests.sims.graph_support import OTHER_USER, PROP_ID, USER, GraphHarness, event_body

pytest_plugins = ["tests.sims.graph_fixtures"]  # the graph fixtures

SEVEN_DIGITS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}$")


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "message", "innerError"} <= set(body["error"])
    assert {"date", "request-id", "client-request-id"} <= set(body["error"]["innerError"])
    return body["error"]


# --- authentication and scopes ---------------------------------------------------------------
def test_missing_token_is_401_invalid_authentication_token(graph: GraphHarness) -> None:
    response = graph.plain().get(f"{graph.v1}/me/events")
    assert response.status_code == 401
    assert _error(response)["code"] == "InvalidAuthenticationToken"
    assert "Bearer" in response.headers["WWW-Authenticate"]


def test_expired_token_is_401_once_the_clock_moves(graph: GraphHarness) -> None:
    session = graph.session(lifetime=600)
    assert session.get(f"{graph.v1}/me/events").status_code == 200
    graph.control.clock.advance(601)
    response = session.get(f"{graph.v1}/me/events")
    assert response.status_code == 401
    assert "expired" in _error(response)["message"]


def test_token_from_another_issuer_is_401(graph: GraphHarness) -> None:
    from local.sims.tokens import TokenIssuer

    foreign = TokenIssuer().issue(
        tenant_id="t",
        object_id="o",
        username="u",
        name="n",
        scopes=["Calendars.Read"],
        client_id="c",
        now=graph.control.clock.timestamp(),
        lifetime_seconds=600,
    )
    assert graph.session(foreign).get(f"{graph.v1}/me/events").status_code == 401


def test_read_scope_cannot_write_and_no_scope_cannot_read(graph: GraphHarness) -> None:
    reader = graph.session(scopes=["Calendars.Read"])
    assert reader.get(f"{graph.v1}/me/events").status_code == 200
    denied = reader.post(f"{graph.v1}/me/events", json=event_body())
    assert denied.status_code == 403
    assert _error(denied)["code"] == "ErrorAccessDenied"
    nothing = graph.session(scopes=["User.Read"])
    assert nothing.get(f"{graph.v1}/me/events").status_code == 403
    assert nothing.get(f"{graph.v1}/me").json()["id"] == USER


# --- routing and malformed requests ------------------------------------------------------------
def test_unknown_segment_and_malformed_json_answer_in_graph_shape(graph: GraphHarness) -> None:
    session = graph.session()
    unknown = session.get(f"{graph.v1}/me/nonsense")
    assert unknown.status_code == 400
    assert _error(unknown)["message"] == "Resource not found for the segment 'nonsense'."
    broken = session.post(f"{graph.v1}/me/events", data=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400
    assert _error(broken)["code"] == "BadRequest"
    missing = session.get(f"{graph.v1}/me/events/AAMkAdoesnotexist=")
    assert missing.status_code == 404
    assert _error(missing)["code"] == "ErrorItemNotFound"
    wrong_type = session.post(f"{graph.v1}/me/events", json=event_body(showAs="sleeping"))
    assert wrong_type.status_code == 400
    unknown_property = session.post(f"{graph.v1}/me/events", json=event_body(colour="red"))
    assert unknown_property.status_code == 400
    assert "colour" in _error(unknown_property)["message"]


def test_client_request_id_is_echoed(graph: GraphHarness) -> None:
    response = graph.session().get(f"{graph.v1}/me", headers={"client-request-id": "abc-123"})
    assert response.headers["client-request-id"] == "abc-123"
    assert response.headers["request-id"]


# --- calendars ---------------------------------------------------------------------------------
def test_mailbox_is_created_lazily_with_a_default_calendar(graph: GraphHarness) -> None:
    session = graph.session()
    calendars = session.get(f"{graph.v1}/me/calendars").json()["value"]
    assert [c["name"] for c in calendars] == ["Calendar"]
    assert calendars[0]["isDefaultCalendar"] is True
    default = session.get(f"{graph.v1}/me/calendar").json()
    assert default["id"] == calendars[0]["id"]
    assert session.get(f"{graph.v1}/me/calendars/{default['id']}").json()["name"] == "Calendar"


def test_users_path_reaches_own_mailbox_only(graph: GraphHarness) -> None:
    session = graph.session()
    session.get(f"{graph.v1}/me")
    assert session.get(f"{graph.v1}/users/tech@contoso.example/calendars").status_code == 200
    assert session.get(f"{graph.v1}/users/{USER}/events").status_code == 200
    graph.session(oid="aaaaaaaa-0000-0000-0000-000000000009", username="other@contoso.example").get(f"{graph.v1}/me")
    assert session.get(f"{graph.v1}/users/other@contoso.example/events").status_code == 403


# --- CRUD and preconditions ----------------------------------------------------------------------
def test_create_read_update_delete(graph: GraphHarness) -> None:
    session = graph.session()
    created = session.post(f"{graph.v1}/me/events", json=event_body(body={"contentType": "text", "content": "hi"}))
    assert created.status_code == 201
    event = created.json()
    assert event["@odata.etag"] == f'W/"{event["changeKey"]}"'
    assert event["type"] == "singleInstance" and event["isOrganizer"] is True
    assert event["organizer"]["emailAddress"]["address"] == "tech@contoso.example"
    assert event["iCalUId"] and event["createdDateTime"].endswith("Z")
    read = session.get(f"{graph.v1}/me/events/{event['id']}").json()
    assert read["subject"] == "Visit"
    patched = session.patch(f"{graph.v1}/me/events/{event['id']}", json={"subject": "Visit 2"}).json()
    assert patched["subject"] == "Visit 2" and patched["changeKey"] != event["changeKey"]
    assert session.delete(f"{graph.v1}/me/events/{event['id']}").status_code == 204
    assert session.get(f"{graph.v1}/me/events/{event['id']}").status_code == 404


def test_an_event_is_answered_through_any_calendar_path_with_its_parent_folder(graph: GraphHarness) -> None:
    # Event ids are unique per mailbox: live Graph answers /calendars/{other}/events/{id} with the
    # event wherever it lives (microsoft-graph-docs#391); where it lives is its parentFolderId.
    session = graph.session()
    default = session.get(f"{graph.v1}/me/calendar").json()["id"]
    work = session.post(f"{graph.v1}/me/calendars", json={"name": "Work Orders"}).json()["id"]
    event = session.post(f"{graph.v1}/me/calendars/{default}/events", json=event_body()).json()
    assert event["parentFolderId"] == default
    through_other = session.get(f"{graph.v1}/me/calendars/{work}/events/{event['id']}")
    assert through_other.status_code == 200, through_other.text
    assert (through_other.json()["id"], through_other.json()["parentFolderId"]) == (event["id"], default)
    listed = session.get(f"{graph.v1}/me/calendars/{work}/events").json()["value"]
    assert listed == []  # the collection is still the calendar's own
    unknown = session.get(f"{graph.v1}/me/calendars/AAMkAnocalendar=/events/{event['id']}")
    assert unknown.status_code == 404


def test_stale_if_match_is_412_and_current_one_succeeds(graph: GraphHarness) -> None:
    session = graph.session()
    event = session.post(f"{graph.v1}/me/events", json=event_body()).json()
    first = session.patch(
        f"{graph.v1}/me/events/{event['id']}", json={"subject": "A"}, headers={"If-Match": event["@odata.etag"]}
    )
    assert first.status_code == 200
    stale = session.patch(
        f"{graph.v1}/me/events/{event['id']}", json={"subject": "B"}, headers={"If-Match": event["@odata.etag"]}
    )
    assert stale.status_code == 412
    assert _error(stale)["code"] == "ErrorIrresolvableConflict"
    stale_delete = session.delete(f"{graph.v1}/me/events/{event['id']}", headers={"If-Match": event["@odata.etag"]})
    assert stale_delete.status_code == 412
    ok = session.delete(f"{graph.v1}/me/events/{event['id']}", headers={"If-Match": first.json()["@odata.etag"]})
    assert ok.status_code == 204


def test_repeated_transaction_id_returns_the_existing_event(graph: GraphHarness) -> None:
    session = graph.session()
    body = event_body(transactionId="syncro-42-create")
    first = session.post(f"{graph.v1}/me/events", json=body).json()
    second = session.post(f"{graph.v1}/me/events", json=body).json()
    assert second["id"] == first["id"]
    assert len(session.get(f"{graph.v1}/me/events").json()["value"]) == 1
    graph.settings(transaction_id_dedupe=False)
    third = session.post(f"{graph.v1}/me/events", json=body).json()
    assert third["id"] != first["id"]


def test_extended_property_is_stored_not_echoed_and_found_by_expand_and_filter(graph: GraphHarness) -> None:
    session = graph.session()
    tagged = session.post(
        f"{graph.v1}/me/events", json=event_body(singleValueExtendedProperties=[{"id": PROP_ID, "value": "123"}])
    ).json()
    session.post(f"{graph.v1}/me/events", json=event_body(subject="untagged"))
    assert "singleValueExtendedProperties" not in tagged
    expand = f"singleValueExtendedProperties($filter=id eq '{PROP_ID}')"
    read = session.get(f"{graph.v1}/me/events/{tagged['id']}", params={"$expand": expand}).json()
    assert read["singleValueExtendedProperties"] == [{"id": PROP_ID, "value": "123"}]
    found = session.get(
        f"{graph.v1}/me/events",
        params={"$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROP_ID}' and ep/value eq '123')"},
    ).json()
    assert [e["id"] for e in found["value"]] == [tagged["id"]]
    none = session.get(
        f"{graph.v1}/me/events",
        params={"$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROP_ID}' and ep/value eq '999')"},
    ).json()
    assert none["value"] == []
    bad = session.get(f"{graph.v1}/me/events", params={"$filter": "contains(subject, 'x')"})
    assert bad.status_code == 400 and _error(bad)["code"] == "BadRequest"


def test_select_top_and_paging(graph: GraphHarness) -> None:
    session = graph.session()
    for n in range(12):
        session.post(f"{graph.v1}/me/events", json=event_body(subject=f"E{n}"))
    first = session.get(f"{graph.v1}/me/events").json()
    assert len(first["value"]) == 10 and "@odata.nextLink" in first
    second = session.get(first["@odata.nextLink"]).json()
    assert len(second["value"]) == 2 and "@odata.nextLink" not in second
    selected = session.get(f"{graph.v1}/me/events", params={"$select": "subject", "$top": "3"}).json()["value"]
    assert len(selected) == 3 and set(selected[0]) == {"@odata.etag", "id", "subject"}


# --- time -----------------------------------------------------------------------------------------
def test_reads_use_seven_digits_and_the_preferred_zone(graph: GraphHarness) -> None:
    session = graph.session()
    event = session.post(
        f"{graph.v1}/me/events",
        json=event_body(start="2030-07-01T10:00:00", end="2030-07-01T11:00:00", zone="Pacific Standard Time"),
    ).json()
    # A create answers in the event's own zone, a read without Prefer in UTC (both documented).
    assert event["start"] == {"dateTime": "2030-07-01T10:00:00.0000000", "timeZone": "Pacific Standard Time"}
    assert SEVEN_DIGITS.match(event["end"]["dateTime"])
    plain = session.get(f"{graph.v1}/me/events/{event['id']}").json()
    assert plain["start"] == {"dateTime": "2030-07-01T17:00:00.0000000", "timeZone": "UTC"}
    prefer = {"Prefer": 'outlook.timezone="W. Europe Standard Time"'}
    local = session.get(f"{graph.v1}/me/events/{event['id']}", headers=prefer)
    assert local.json()["start"] == {"dateTime": "2030-07-01T19:00:00.0000000", "timeZone": "W. Europe Standard Time"}
    assert 'outlook.timezone="W. Europe Standard Time"' in local.headers["Preference-Applied"]
    assert event["originalStartTimeZone"] == "Pacific Standard Time"
    unsupported = session.get(f"{graph.v1}/me/events", headers={"Prefer": 'outlook.timezone="Mars/Olympus"'})
    assert unsupported.status_code == 400
    assert _error(unsupported)["code"] == "TimeZoneNotSupportedException"


def test_write_responses_come_back_in_utc_whatever_prefer_says(graph: GraphHarness) -> None:
    session = graph.session()
    prefer = {"Prefer": 'outlook.timezone="Eastern Standard Time"'}
    created = session.post(f"{graph.v1}/me/events", json=event_body(), headers=prefer).json()
    assert created["start"] == {"dateTime": "2030-01-07T10:00:00.0000000", "timeZone": "UTC"}
    patched = session.patch(f"{graph.v1}/me/events/{created['id']}", json={"subject": "x"}, headers=prefer).json()
    assert patched["start"]["timeZone"] == "UTC"
    graph.settings(write_response_honours_prefer_timezone=True)
    honoured = session.patch(f"{graph.v1}/me/events/{created['id']}", json={"subject": "y"}, headers=prefer).json()
    assert honoured["start"] == {"dateTime": "2030-01-07T05:00:00.0000000", "timeZone": "Eastern Standard Time"}


def test_seven_digit_input_and_offsets_are_accepted(graph: GraphHarness) -> None:
    session = graph.session()
    event = session.post(
        f"{graph.v1}/me/events", json=event_body(start="2030-01-07T10:00:00.1234567", end="2030-01-07T11:00:00.0000000")
    ).json()
    assert event["start"]["dateTime"] == "2030-01-07T10:00:00.1234560"


def test_text_body_comes_back_as_html_unless_text_is_asked(graph: GraphHarness) -> None:
    session = graph.session()
    event = session.post(
        f"{graph.v1}/me/events", json=event_body(body={"contentType": "text", "content": "line one\nline <two>"})
    ).json()
    assert event["body"]["contentType"] == "html" and "<html>" in event["body"]["content"]
    text = session.get(
        f"{graph.v1}/me/events/{event['id']}", headers={"Prefer": 'outlook.body-content-type="text"'}
    ).json()
    assert text["body"] == {"contentType": "text", "content": "line one\nline <two>"}


def test_all_day_rules(graph: GraphHarness) -> None:
    session = graph.session()
    ok = session.post(
        f"{graph.v1}/me/events",
        json=event_body(
            start="2030-03-10T00:00:00", end="2030-03-11T00:00:00", zone="Eastern Standard Time", isAllDay=True
        ),
    )
    assert ok.status_code == 201
    # Read in another zone: still floating midnight-to-midnight dates.
    read = session.get(
        f"{graph.v1}/me/events/{ok.json()['id']}", headers={"Prefer": 'outlook.timezone="Tokyo Standard Time"'}
    ).json()
    assert read["start"]["dateTime"] == "2030-03-10T00:00:00.0000000" and read["isAllDay"] is True
    not_midnight = session.post(
        f"{graph.v1}/me/events", json=event_body(start="2030-03-10T09:00:00", end="2030-03-11T09:00:00", isAllDay=True)
    )
    assert not_midnight.status_code == 400 and _error(not_midnight)["code"] == "ErrorInvalidRequest"
    same_day = session.post(
        f"{graph.v1}/me/events", json=event_body(start="2030-03-10T00:00:00", end="2030-03-10T00:00:00", isAllDay=True)
    )
    assert same_day.status_code == 400
    assert "at least 24 hours" in _error(same_day)["message"]
    mixed_zones = session.post(
        f"{graph.v1}/me/events",
        json={
            "subject": "x",
            "isAllDay": True,
            "start": {"dateTime": "2030-03-10T00:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-03-11T00:00:00", "timeZone": "Tokyo Standard Time"},
        },
    )
    assert mixed_zones.status_code == 400


# --- meetings --------------------------------------------------------------------------------------
def test_cancel_is_for_organizers_and_emails_attendees(graph: GraphHarness) -> None:
    session = graph.session()
    session.get(f"{graph.v1}/me")
    attendees = [{"emailAddress": {"address": "client@example.com", "name": "Client"}, "type": "required"}]
    meeting = session.post(f"{graph.v1}/me/events", json=event_body(attendees=attendees)).json()
    session.patch(f"{graph.v1}/me/events/{meeting['id']}", json={"subject": "Moved"})
    assert session.post(f"{graph.v1}/me/events/{meeting['id']}/cancel", json={"comment": "sorry"}).status_code == 202
    assert session.get(f"{graph.v1}/me/events/{meeting['id']}").status_code == 404
    sent = graph.plain().get(f"{graph.url}/_sim/mailboxes/{USER}/sent").json()
    assert [m["kind"] for m in sent["sent"]] == ["invitation", "update", "cancellation"]
    assert sent["sent"][-1]["comment"] == "sorry"
    graph.sim.seed(
        {
            "mailboxes": [
                {
                    "oid": USER,
                    "email": "tech@contoso.example",
                    "tenant_id": "t",
                    "events": [
                        {
                            **event_body(subject="Canceled: Their meeting"),
                            "isOrganizer": False,
                            "isCancelled": True,
                            "organizer": {"emailAddress": {"address": "boss@example.com", "name": "Boss"}},
                        }
                    ],
                }
            ]
        }
    )
    copy = next(e for e in session.get(f"{graph.v1}/me/events").json()["value"] if not e["isOrganizer"])
    assert copy["isCancelled"] is True and copy["subject"].startswith("Canceled: ")
    refused = session.post(f"{graph.v1}/me/events/{copy['id']}/cancel", json={"comment": "no"})
    assert refused.status_code == 400
    assert _error(refused)["message"] == (
        "Your request can't be completed. You need to be an organizer to cancel a meeting."
    )


def test_body_without_json_content_type_is_refused(graph: GraphHarness) -> None:
    response = graph.session().post(
        f"{graph.v1}/me/events", data=json.dumps(event_body()), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 400
    assert "Content-Type" in _error(response)["message"]


def test_meeting_between_two_simulated_mailboxes_gives_the_attendee_a_copy(graph: GraphHarness) -> None:
    organizer = graph.session()
    attendee = graph.session(oid=OTHER_USER, username="colleague@contoso.example")
    attendee.get(f"{graph.v1}/me")
    invite = [{"emailAddress": {"address": "colleague@contoso.example", "name": "Colleague"}, "type": "required"}]
    meeting = organizer.post(f"{graph.v1}/me/events", json=event_body(subject="Planning", attendees=invite)).json()
    [copy] = attendee.get(f"{graph.v1}/me/events").json()["value"]
    assert copy["id"] != meeting["id"] and copy["iCalUId"] == meeting["iCalUId"]
    assert copy["isOrganizer"] is False and copy["organizer"]["emailAddress"]["address"] == "tech@contoso.example"
    organizer.patch(f"{graph.v1}/me/events/{meeting['id']}", json={"subject": "Planning, moved"})
    assert attendee.get(f"{graph.v1}/me/events/{copy['id']}").json()["subject"] == "Planning, moved"
    organizer.post(f"{graph.v1}/me/events/{meeting['id']}/cancel", json={"comment": "off"})
    cancelled = attendee.get(f"{graph.v1}/me/events/{copy['id']}").json()
    assert cancelled["isCancelled"] is True and cancelled["subject"] == "Canceled: Planning, moved"
