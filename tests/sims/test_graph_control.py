"""Graph simulator: its /_sim control surface over HTTP (seed, settings, stored events, reset)."""

from __future__ import annotations

from tests.sims.graph_support import PROP_ID, USER, GraphHarness, event_body

pytest_plugins = ["tests.sims.graph_fixtures"]


def test_seed_over_http_then_read_as_the_user(graph: GraphHarness) -> None:
    seed = {
        "mailboxes": [
            {
                "oid": USER,
                "email": "tech@contoso.example",
                "name": "Tess Tech",
                "tenant_id": "t-1",
                "calendars": [{"name": "Calendar", "is_default": True}, {"name": "Syncro"}],
                "events": [
                    {
                        "calendar": "Syncro",
                        **event_body(subject="Seeded"),
                        "singleValueExtendedProperties": [{"id": PROP_ID, "value": "7"}],
                    },
                    {**event_body(subject="Default one")},
                ],
            }
        ]
    }
    response = graph.plain().post(f"{graph.url}/_sim/seed", json=seed)
    assert response.status_code == 200
    seeded = response.json()["mailboxes"][0]
    assert set(seeded["calendars"]) == {"Calendar", "Syncro"} and len(seeded["events"]) == 2
    session = graph.session()
    syncro = session.get(f"{graph.v1}/me/calendars/{seeded['calendars']['Syncro']}/events").json()["value"]
    assert [e["subject"] for e in syncro] == ["Seeded"]
    stored = graph.plain().get(f"{graph.url}/_sim/mailboxes/{USER}/events").json()["events"]
    by_subject = {e["subject"]: e for e in stored}
    assert by_subject["Seeded"]["calendarName"] == "Syncro"
    assert by_subject["Seeded"]["singleValueExtendedProperties"] == [{"id": PROP_ID, "value": "7"}]


def test_bad_seed_and_unknown_settings_are_400(graph: GraphHarness) -> None:
    plain = graph.plain()
    assert plain.post(f"{graph.url}/_sim/seed", json={"mailboxes": [{"email": "no oid"}]}).status_code == 400
    bad_event = {"mailboxes": [{"oid": USER, "email": "t@x", "events": [event_body(zone="Mars/Olympus")]}]}
    assert plain.post(f"{graph.url}/_sim/seed", json=bad_event).status_code == 400
    assert plain.post(f"{graph.url}/_sim/seed", json=[1, 2]).status_code == 400
    assert plain.patch(f"{graph.url}/_sim/settings", json={"no_such_setting": 1}).status_code == 400
    assert plain.patch(f"{graph.url}/_sim/settings", json={"notification_copies": "three"}).status_code == 400
    assert plain.get(f"{graph.url}/_sim/settings").json()["notification_copies"] == 1


def test_reset_empties_the_simulator_and_restores_settings(graph: GraphHarness) -> None:
    graph.session().post(f"{graph.v1}/me/events", json=event_body())
    graph.settings(delta_default_page_size=3)
    assert graph.plain().post(f"{graph.url}/_sim/reset").status_code == 204
    assert graph.plain().get(f"{graph.url}/_sim/mailboxes").json()["mailboxes"] == []
    assert graph.plain().get(f"{graph.url}/_sim/settings").json()["delta_default_page_size"] == 10


def test_other_api_versions_are_refused(graph: GraphHarness) -> None:
    response = graph.session().get(f"{graph.url}/v2.0/me")
    assert response.status_code == 400 and response.json()["error"]["code"] == "BadRequest"
