"""The Syncro simulator behaving as a live account does (issue 11): large ids, withheld user
fields, Syncro's own rewrites of description and location, times in the account's offset,
permission failures as 401, whole-form PUTs, and nested tickets. Real HTTPS throughout, with
the fixtures of ``test_syncro.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sims.test_syncro import (
    CUSTOMER,
    FULL_APPOINTMENT,
    JOE,
    SAM,
    TECH_TOKEN,
    TINA,
    Stack,
    assert_valid,
    get_by_id_schema,
    instant,
)

pytest_plugins = ["tests.sims.test_syncro"]

USER_FIELDS = ("user_id", "user_ids", "appointment_type_id")
SHORT = {"summary": "Visit", "start_at": "2026-03-10T09:00:00-07:00", "end_at": "2026-03-10T10:00:00-07:00"}
# A customer with an address, a ticket of theirs, and one appointment type per location type.
WORLD: dict[str, Any] = {
    "customers": [
        {
            "id": 28000101,
            "business_name": "Fabrikam Ltd",
            "firstname": "Fay",
            "lastname": "Brook",
            "email": "fay@fabrikam.test",
            "phone": "555-0199",
            "address": "1 Main St",
            "address_2": "Suite 4",
            "city": "Springfield",
            "state": "OR",
            "zip": "97477",
        }
    ],
    "tickets": [
        {
            "id": 104000555,
            "number": 2042,
            "subject": "Printer jams",
            "status": "In Progress",
            "customer_id": 28000101,
            "user_id": TINA,
        }
    ],
    "appointment_types": [
        {"id": 21, "name": "Onsite", "location_type": "customer"},
        {"id": 22, "name": "Bench", "location_type": "shop"},
        {"id": 23, "name": "Branch", "location_type": "pre_defined", "location_hard_code": "12 Depot Rd"},
        {"id": 24, "name": "Anywhere", "location_type": "manual_entry"},
    ],
}


def control(stack: Stack) -> Any:
    """A session for the ``/_sim/...`` routes (no token)."""
    return stack.client(token=None)


def whole(stack: Stack, appointment_id: int) -> dict[str, Any]:
    response = control(stack).get(f"{stack.server.url}/_sim/appointments/{appointment_id}")
    assert response.status_code == 200, response.text
    return response.json()


def patch_settings(stack: Stack, changes: dict[str, Any]) -> None:
    response = control(stack).patch(f"{stack.server.url}/_sim/settings", json=changes)
    assert response.status_code == 200, response.text


def seed(stack: Stack, payload: dict[str, Any]) -> dict[str, Any]:
    response = control(stack).post(f"{stack.server.url}/_sim/seed", json=payload)
    assert response.status_code == 200, response.text
    return response.json()


# -- 1. large ids ---------------------------------------------------------------------------


def test_new_appointments_get_ids_above_2_to_the_32(stack: Stack) -> None:
    client, api = stack.client(), stack.api
    first = stack.create(**SHORT)
    second = stack.create(**SHORT)
    assert 2**32 < 5560138000 <= first["id"] < second["id"]
    assert client.get(f"{api}/appointments/{first['id']}").json()["id"] == first["id"]
    assert client.put(f"{api}/appointments/{first['id']}", json=SHORT).status_code == 200
    listed = client.get(f"{api}/appointments").json()["appointments"]
    assert [item["appointment"]["id"] for item in listed] == [first["id"], second["id"]]
    assert client.delete(f"{api}/appointments/{second['id']}").status_code == 200
    # Ids are never reused, as a database sequence's are not.
    assert stack.create(**SHORT)["id"] > second["id"]


def test_seeded_records_without_ids_get_realistic_ones_and_explicit_ids_stay(stack: Stack) -> None:
    result = seed(
        stack,
        {
            "users": [{"email": "new@acme.test", "full_name": "New Tech"}],
            "customers": [{"business_name": "No Id Inc", "address": "9 Elm St", "city": "Salem"}],
            "tickets": [{"subject": "No id ticket"}],
            "appointments": [{**SHORT, "id": 77}, SHORT],
        },
    )
    assert result["users"][:3] == [JOE, TINA, SAM] and result["users"][3] > SAM
    assert result["customers"][0] == CUSTOMER and result["customers"][1] > CUSTOMER
    assert result["tickets"][0] >= 104000000
    assert result["appointments"][0] == 77 and result["appointments"][1] >= 5560138000
    new_user = result["users"][3]
    assert stack.client().get(f"{stack.api}/users/{new_user}").json()["user"]["email"] == "new@acme.test"


def test_small_ids_for_readability(stack: Stack) -> None:
    patch_settings(stack, {"id_start": {"appointments": 1, "tickets": 1, "customers": 1, "users": 1}})
    assert stack.create(**SHORT)["id"] == 1
    seed(stack, {"appointments": [{**SHORT, "id": 500}]})
    assert stack.create(**SHORT)["id"] == 501  # past the highest id held


@pytest.mark.parametrize(
    "id_start",
    [
        {"appointments": 1},
        {"appointments": 0, "tickets": 1, "customers": 1, "users": 1},
        {"appointments": True, "tickets": 1, "customers": 1, "users": 1},
        {"appointments": "1", "tickets": 1, "customers": 1, "users": 1},
        {"appointments": 1, "tickets": 1, "customers": 1, "users": 1, "invoices": 1},
        [1, 2],
    ],
)
def test_a_bad_id_start_is_400_and_changes_nothing(stack: Stack, id_start: Any) -> None:
    response = control(stack).patch(f"{stack.server.url}/_sim/settings", json={"id_start": id_start})
    assert response.status_code == 400
    assert control(stack).get(f"{stack.server.url}/_sim/settings").json()["id_start"]["appointments"] == 5560138000


@pytest.mark.parametrize(
    "payload",
    [
        {"tickets": [{"subject": "x", "customer_id": 404}]},
        {"tickets": [{"subject": "x", "user_id": 404}]},
        {"tickets": [{"subject": 5}]},
        {"tickets": [{"id": -1, "subject": "x"}]},
        {"tickets": [{"subject": "x", "number": "A1"}]},
        {"tickets": [{"subject": "x", "colour": "red"}]},
        {"tickets": {"subject": "x"}},
        {"customers": [{"business_name": ["x"]}]},
        {"customers": ["x"]},
        {"users": [{"full_name": "No email"}]},
        {"users": [{"id": "9", "email": "a@b.test", "full_name": "x"}]},
    ],
)
def test_a_bad_seed_is_400(stack: Stack, payload: dict[str, Any]) -> None:
    assert control(stack).post(f"{stack.server.url}/_sim/seed", json=payload).status_code == 400


# -- 2. who an appointment belongs to ---------------------------------------------------------


def test_user_fields_are_withheld_from_every_response_and_kept_in_the_store(stack: Stack) -> None:
    client, api = stack.client(), stack.api
    created = client.post(f"{api}/appointments", json=FULL_APPOINTMENT).json()["appointment"]
    fetched = client.get(f"{api}/appointments/{created['id']}").json()
    listed = client.get(f"{api}/appointments").json()["appointments"][0]["appointment"]
    updated = client.put(f"{api}/appointments/{created['id']}", json=SHORT).json()["appointment"]
    for shown in (created, fetched, listed, updated):
        assert not set(USER_FIELDS) & set(shown)
    stored = whole(stack, created["id"])
    assert (stored["user_id"], stored["user_ids"], stored["appointment_type_id"]) == (TINA, [TINA], 7)
    everything = control(stack).get(f"{stack.server.url}/_sim/appointments").json()["appointments"]
    assert everything == [stored]
    assert control(stack).get(f"{stack.server.url}/_sim/appointments/999").status_code == 404


def test_mine_still_filters_by_the_withheld_users(stack: Stack) -> None:
    tinas = stack.create(**{**SHORT, "user_id": TINA})
    stack.create(**{**SHORT, "user_id": JOE})
    body = stack.client(TECH_TOKEN).get(f"{stack.api}/appointments", params={"mine": "true"}).json()
    assert [item["appointment"]["id"] for item in body["appointments"]] == [tinas["id"]]


def test_user_fields_can_be_shown(stack: Stack) -> None:
    patch_settings(stack, {"withhold_user_fields": False})
    record = stack.create(**FULL_APPOINTMENT)
    assert (record["user_id"], record["user_ids"], record["appointment_type_id"]) == (TINA, [TINA], 7)


def test_list_items_can_be_flat(stack: Stack) -> None:
    record = stack.create(**SHORT)
    patch_settings(stack, {"list_items_wrapped": False})
    listed = stack.client().get(f"{stack.api}/appointments").json()["appointments"]
    assert listed == [stack.client().get(f"{stack.api}/appointments/{record['id']}").json()]


# -- 3. Syncro rewrites what it is sent -------------------------------------------------------


def test_a_ticket_appointments_description_is_rewritten_with_ticket_and_customer(stack: Stack) -> None:
    seed(stack, WORLD)
    patch_settings(stack, {"rewrite_description": "ticket"})
    record = stack.create(**SHORT, ticket_id=104000555, description="Bring a fuser")
    lines = record["description"].split("\n")
    assert lines[:2] == ["Notes:", " Bring a fuser"]
    text = record["description"]
    for part in ("Fay Brook", "Ticket #2042: Printer jams", "In Progress", "555-0199", "fay@fabrikam.test"):
        assert part in text
    assert "https://acme.syncromsp.com/tickets/104000555" in text
    assert "1 Main St, Suite 4, Springfield, OR 97477" in text
    # Without a ticket, "ticket" mode leaves the description as sent.
    plain = stack.create(**SHORT, customer_id=28000101, description="Just notes")
    assert plain["description"] == "Just notes"
    # A PUT that sends a description gets it rewritten again.
    changed = stack.client().put(
        f"{stack.api}/appointments/{record['id']}", json={**SHORT, "description": "Bring two fusers"}
    )
    assert changed.json()["appointment"]["description"].split("\n")[:2] == ["Notes:", " Bring two fusers"]


def test_customer_mode_rewrites_any_customer_appointment_and_off_rewrites_nothing(stack: Stack) -> None:
    seed(stack, WORLD)
    untouched = stack.create(**SHORT, ticket_id=104000555, customer_id=28000101, description="As sent")
    assert untouched["description"] == "As sent"
    patch_settings(stack, {"rewrite_description": "customer"})
    record = stack.create(**SHORT, customer_id=28000101, description="Check backups")
    assert record["description"].startswith("Notes:\n Check backups\n\n Contact: \nFay Brook")
    assert "Customer Information: \n Fabrikam Ltd\n  Phone: 555-0199 - fay@fabrikam.test" in record["description"]
    assert stack.create(**SHORT, description="No customer")["description"] == "No customer"


@pytest.mark.parametrize(
    ("type_id", "location"),
    [(21, "1 Main St, Suite 4, Springfield, OR 97477"), (22, "In Shop"), (23, "12 Depot Rd"), (24, "Sent place")],
)
def test_location_follows_the_appointment_types_location_type(stack: Stack, type_id: int, location: str) -> None:
    seed(stack, WORLD)
    patch_settings(stack, {"rewrite_location": True})
    body = {**SHORT, "customer_id": 28000101, "appointment_type_id": type_id, "location": "Sent place"}
    record = stack.create(**body)
    assert record["location"] == location
    assert stack.client().get(f"{stack.api}/appointments/{record['id']}").json()["location"] == location


def test_location_is_kept_as_sent_by_default(stack: Stack) -> None:
    seed(stack, WORLD)
    record = stack.create(**SHORT, customer_id=28000101, appointment_type_id=22, location="Sent place")
    assert record["location"] == "Sent place"


# -- 4. details -------------------------------------------------------------------------------


def test_times_are_in_the_accounts_offset_by_default(stack: Stack) -> None:
    record = stack.create(summary="Summer", start_at="2026-06-01T16:00:53.119Z", end_at="2026-06-01T17:00:00Z")
    assert (record["start_at"], record["end_at"]) == ("2026-06-01T09:00:53.119-07:00", "2026-06-01T10:00:00.000-07:00")
    assert record["created_at"][-6:] in ("-07:00", "-08:00") and record["customer"] is None
    winter = stack.create(summary="Winter", start_at="2026-01-15T16:00:00Z", end_at="2026-01-15T17:00:00Z")
    assert winter["start_at"] == "2026-01-15T08:00:00.000-08:00"
    assert instant(winter["start_at"]) == instant("2026-01-15T16:00:00Z")
    user = stack.client().get(f"{stack.api}/users/{TINA}").json()["user"]
    assert user["created_at"][-6:] in ("-07:00", "-08:00")


def test_a_zone_at_utc_writes_z_as_rails_does(stack: Stack) -> None:
    seed(stack, {"account": {"subdomain": "acme", "time_zone": "Europe/London"}})
    winter = stack.create(summary="Winter", start_at="2026-01-15T16:00:00Z", end_at="2026-01-15T17:00:00Z")
    summer = stack.create(summary="Summer", start_at="2026-06-15T16:00:00Z", end_at="2026-06-15T17:00:00Z")
    assert (winter["start_at"], summer["start_at"]) == ("2026-01-15T16:00:00.000Z", "2026-06-15T17:00:00.000+01:00")


def test_a_record_with_a_customer_and_ticket_still_matches_the_specs_schema(stack: Stack) -> None:
    seed(stack, WORLD)
    # The spec's schema types description and location as strings: send both.
    record = stack.create(**SHORT, customer_id=28000101, ticket_id=104000555, description="d", location="l")
    fetched = stack.client().get(f"{stack.api}/appointments/{record['id']}").json()
    assert_valid(fetched, get_by_id_schema())
    assert fetched["customer"]["created_at"][-6:] in ("-07:00", "-08:00")


def test_a_nested_ticket_shows_number_subject_status_and_user(stack: Stack) -> None:
    seed(stack, WORLD)
    record = stack.create(**SHORT, ticket_id=104000555)
    ticket = record["ticket"]
    assert (ticket["id"], ticket["number"], ticket["subject"], ticket["status"]) == (
        104000555,
        2042,
        "Printer jams",
        "In Progress",
    )
    assert (ticket["user"]["id"], ticket["user"]["full_name"]) == (TINA, "Tina Tech")
    assert stack.create(**SHORT)["ticket"] is None
    assert stack.create(**SHORT, ticket_id=104009999)["ticket"] == {"id": 104009999}


def test_a_permission_failure_can_be_403(stack: Stack) -> None:
    patch_settings(stack, {"forbidden_status": 403})
    assert stack.client(TECH_TOKEN).get(f"{stack.api}/appointment_types").status_code == 403
    assert control(stack).patch(f"{stack.server.url}/_sim/settings", json={"forbidden_status": 500}).status_code == 400


def test_a_put_needs_start_at_by_default(stack: Stack) -> None:
    record = stack.create(**FULL_APPOINTMENT)
    response = stack.client().put(f"{stack.api}/appointments/{record['id']}", json={"summary": "No start"})
    assert response.status_code == 422
    assert response.json()["error"] == "Start at can't be blank"
    assert whole(stack, record["id"])["summary"] == "Server swap"
    patch_settings(stack, {"put_requires_start_at": False})
    response = stack.client().put(f"{stack.api}/appointments/{record['id']}", json={"summary": "No start"})
    assert response.status_code == 200


def test_a_put_resets_the_booleans_it_omits(stack: Stack) -> None:
    record = stack.create(**SHORT, all_day=True, do_not_email=True, email_customer=True)
    assert (record["all_day"], record["do_not_email"]) == (True, "1")
    reset = stack.client().put(f"{stack.api}/appointments/{record['id']}", json=SHORT).json()["appointment"]
    assert (reset["all_day"], reset["do_not_email"]) == (False, "0")
    assert whole(stack, record["id"])["all_day"] is False


def test_omitted_booleans_can_be_kept(stack: Stack) -> None:
    patch_settings(stack, {"put_resets_omitted_booleans": False})
    record = stack.create(**SHORT, all_day=True, do_not_email=True)
    kept = stack.client().put(f"{stack.api}/appointments/{record['id']}", json=SHORT).json()["appointment"]
    assert (kept["all_day"], kept["do_not_email"]) == (True, "1")


def test_dispatcher_edits_leave_omitted_booleans_alone(stack: Stack) -> None:
    record = stack.create(**SHORT, do_not_email=True)
    changed = control(stack).put(f"{stack.server.url}/_sim/appointments/{record['id']}", json={"summary": "UI edit"})
    assert changed.json()["appointment"]["do_not_email"] == "1"
    assert changed.json()["appointment"]["user_id"] == JOE  # dispatcher answers show the whole record


def test_date_days_can_be_utc_days(stack: Stack) -> None:
    # 02:00 UTC on March 10 is still March 9 in Los Angeles.
    evening = stack.create(summary="Late", start_at="2026-03-10T02:00:00Z", end_at="2026-03-10T03:00:00Z")

    def listed() -> list[int]:
        query = {"date_from": "2026-03-10", "date_to": "2026-03-11"}
        body = stack.client().get(f"{stack.api}/appointments", params=query).json()
        return [item["appointment"]["id"] for item in body["appointments"]]

    assert listed() == []
    patch_settings(stack, {"date_filter_zone": "utc"})
    assert listed() == [evening["id"]]
    assert (
        control(stack).patch(f"{stack.server.url}/_sim/settings", json={"date_filter_zone": "mars"}).status_code == 400
    )


def test_retry_after_stays_off_by_default(stack: Stack) -> None:
    patch_settings(stack, {"rate_limit_per_minute": 1})
    stack.clock_to_window_start()
    client = stack.client()
    client.get(f"{stack.api}/me")
    refused = client.get(f"{stack.api}/me")
    assert refused.status_code == 429 and "Retry-After" not in refused.headers


# -- no input gets a server error -----------------------------------------------------------

SETTING_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**10), st.text(max_size=8), st.lists(st.integers(), max_size=2)
)
SETTING_NAMES = st.sampled_from(
    [
        "id_start",
        "withhold_user_fields",
        "list_items_wrapped",
        "time_format",
        "rewrite_description",
        "rewrite_location",
        "date_filter_zone",
        "forbidden_status",
        "put_resets_omitted_booleans",
    ]
)
SEED_VALUES = st.dictionaries(
    st.sampled_from(["id", "subject", "number", "status", "customer_id", "user_id", "address", "business_name"]),
    SETTING_VALUES,
    max_size=4,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(SETTING_NAMES, SETTING_VALUES, max_size=3), ticket=SEED_VALUES, customer=SEED_VALUES)
def test_odd_settings_and_seeds_never_get_a_server_error(
    stack: Stack, changes: dict[str, Any], ticket: dict[str, Any], customer: dict[str, Any]
) -> None:
    session, base = control(stack), stack.server.url
    assert session.patch(f"{base}/_sim/settings", json=changes).status_code in (200, 400)
    seeded = session.post(f"{base}/_sim/seed", json={"customers": [customer], "tickets": [ticket]})
    assert seeded.status_code in (200, 400)
    session.patch(f"{base}/_sim/settings", json={"rate_limit_per_minute": 1_000_000})
    client = stack.client()
    ticket_id = max(stack.sim.store.tickets, default=1)
    made = client.post(f"{stack.api}/appointments", json={**SHORT, "ticket_id": ticket_id, "customer_id": CUSTOMER})
    assert made.status_code in (201, 422)
    assert client.get(f"{stack.api}/appointments").status_code == 200
    client.close()
    session.close()
