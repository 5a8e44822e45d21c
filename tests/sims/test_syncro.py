"""The Syncro simulator over real HTTPS, checked against Syncro's own OpenAPI subset.

Shapes are validated with jsonschema: the spec's one real schema (GET /appointments/{id}) is
used as written (OpenAPI ``nullable`` turned into JSON Schema), and every other response is
checked against a schema derived from the spec's example for it: every key of the example
present, every non-null example value's type kept, arrays checked item by item.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from local.serve import RunningServer, serve_in_thread
from local.sims.control import SimClock, SimControl
from local.sims.syncro import SyncroSim
from local.tls import TlsFiles

# The one copy of Syncro's spec is the project's shared reference, beside the checkout (as in CI).
SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "reference" / "syncro-openapi-subset.json"
SPEC = json.loads(SPEC_PATH.read_text())
ADMIN_TOKEN, TECH_TOKEN, OWN_ONLY_TOKEN = "tok-admin", "tok-tina", "tok-sam"
# Ids of the size a live account has (users in the millions, customers in the tens of millions).
JOE, TINA, SAM = 1_300_101, 1_300_102, 1_300_103
CUSTOMER = 28_000_005
SEED: dict[str, Any] = {
    "account": {"subdomain": "acme", "time_zone": "America/Los_Angeles"},
    "users": [
        {"id": JOE, "email": "joe@acme.test", "full_name": "Joe Doe", "admin": True, "group": "Admins"},
        {"id": TINA, "email": "Tina@Acme.test", "full_name": "Tina Tech", "color": "55b932"},
        {"id": SAM, "email": "sam@acme.test", "full_name": "Sam Own", "view_all_appointments": False},
    ],
    "tokens": [
        {"token": ADMIN_TOKEN, "user_id": JOE},
        {"token": TECH_TOKEN, "user_id": TINA},
        {"token": OWN_ONLY_TOKEN, "user_id": SAM},
    ],
    "customers": [
        {
            "id": CUSTOMER,
            "business_name": "Acme Dental",
            "firstname": "Ann",
            "lastname": "Lee",
            "email": "ann@acme.test",
            "phone": "555-0100",
        }
    ],
    "appointment_types": [
        {"id": 7, "name": "Onsite", "location_type": "customer", "email_instructions": "Bring the kit"}
    ],
}
FULL_APPOINTMENT = {
    "summary": "Server swap",
    "description": "Replace the NAS",
    "start_at": "2026-03-10T09:00:00-07:00",
    "end_at": "2026-03-10T11:00:00-07:00",
    "location": "Front office",
    "customer_id": CUSTOMER,
    "user_id": TINA,
    "user_ids": [TINA],
    "appointment_type_id": 7,
    "do_not_email": True,
}


# -- schemas from the spec ------------------------------------------------------------------


def _content(path: str, method: str, status: str) -> dict[str, Any]:
    content = SPEC["paths"][path][method]["responses"][status]["content"]
    return next(iter(content.values()))


def example_schema(example: Any) -> dict[str, Any]:
    """A JSON Schema every value shaped like ``example`` satisfies (null says nothing)."""
    if example is None:
        return {}
    if isinstance(example, bool):
        return {"type": "boolean"}
    if isinstance(example, int):
        return {"type": "integer"}
    if isinstance(example, float):
        return {"type": "number"}
    if isinstance(example, str):
        return {"type": "string"}
    if isinstance(example, list):
        items = [example_schema(item) for item in example]
        if len({json.dumps(item, sort_keys=True) for item in items}) > 1:  # a tuple such as [1, "Joe Doe"]
            return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
        return {"type": "array", "items": items[0]} if items else {"type": "array"}
    return {
        "type": "object",
        "required": sorted(example),
        "properties": {key: example_schema(value) for key, value in example.items()},
    }


def openapi_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema's ``type: [..., "null"]``."""
    converted = {key: value for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable"):
        converted["type"] = [schema["type"], "null"]
    if "properties" in schema:
        converted["properties"] = {name: openapi_schema(sub) for name, sub in schema["properties"].items()}
    return converted


def get_by_id_schema() -> dict[str, Any]:
    schema = openapi_schema(_content("/appointments/{id}", "get", "200")["schema"])
    # The spec contradicts itself: its schema types customer.contacts as an object, while every
    # example of the same record shows []. The simulator sends [], as the examples do.
    schema["properties"]["customer"]["properties"]["contacts"] = {"type": ["object", "array"]}
    return schema


def example_of(path: str, method: str, status: str) -> dict[str, Any]:
    return example_schema(_content(path, method, status)["example"])


def error_schema() -> dict[str, Any]:
    schema = example_of("/appointments", "post", "422")
    # ``params`` echoes whatever the request sent; the example's keys are that request's.
    schema["properties"]["params"] = {"type": "object"}
    return schema


def assert_valid(instance: Any, schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(schema).validate(instance)


def instant(text: str) -> datetime:
    """A time the simulator wrote (in the account's offset or "Z"), as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- fixtures -------------------------------------------------------------------------------


class Stack:
    """The simulator on HTTPS and a client per token."""

    def __init__(self, sim: SyncroSim, server: RunningServer, tls: TlsFiles) -> None:
        self.sim, self.server, self.tls = sim, server, tls
        self.api = f"{server.url}/api/v1"
        self.sessions: list[requests.Session] = []

    def close(self) -> None:
        # Open keep-alive connections would hold up the server's shutdown.
        for session in self.sessions:
            session.close()
        self.server.stop()

    def client(self, token: str | None = ADMIN_TOKEN) -> requests.Session:
        session = requests.Session()
        # REQUESTS_CA_BUNDLE in the environment would override session.verify (a requests quirk).
        session.trust_env = False
        session.verify = str(self.tls.ca_bundle)
        self.sessions.append(session)
        if token:
            session.headers["Authorization"] = f"Bearer {token}"
        return session

    def create(self, **fields: Any) -> dict[str, Any]:
        response = self.client().post(f"{self.api}/appointments", json=fields)
        assert response.status_code == 201, response.text
        return response.json()["appointment"]

    def clock_to_window_start(self) -> None:
        """Move the clock to just past a minute boundary, so a fixed window cannot roll mid-test."""
        clock = self.sim.control.clock
        clock.advance(60 - clock.timestamp() % 60 + 0.5)


@pytest.fixture
def stack(sim_clock: SimClock, tls_files: TlsFiles) -> Iterator[Stack]:
    sim = SyncroSim(control=SimControl(clock=sim_clock), ca_bundle=str(tls_files.ca_bundle))
    sim.seed(SEED)
    stack = Stack(sim, serve_in_thread(sim.app, tls=tls_files, name="syncro-sim"), tls_files)
    try:
        yield stack
    finally:
        stack.close()
        sim.close()


@pytest.fixture
def receiver(tls_files: TlsFiles) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook endpoint (HTTPS, same CA) that records what it is sent."""
    received: list[dict[str, Any]] = []
    lock = threading.Lock()

    async def hook(request: Request) -> JSONResponse:
        body = await request.json()  # never await while holding the lock: the other request would block the loop
        with lock:
            received.append({"path": request.url.path, "body": body})
        return JSONResponse({"ok": True}, status_code=202)

    app = Starlette(routes=[Route("/{name}", hook, methods=["POST"])])
    server = serve_in_thread(app, tls=tls_files, name="notification-receiver")
    try:
        yield server.url, received
    finally:
        server.stop()


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# -- shapes ---------------------------------------------------------------------------------


def test_every_used_response_matches_the_spec(stack: Stack) -> None:
    client, api = stack.client(), stack.api
    assert_valid(client.get(f"{api}/me").json(), example_of("/me", "get", "200"))
    assert_valid(client.get(f"{api}/users").json(), example_of("/users", "get", "200"))
    assert_valid(client.get(f"{api}/users/{TINA}").json(), example_of("/users/{id}", "get", "200"))
    assert_valid(client.get(f"{api}/settings").json(), example_of("/settings", "get", "200"))
    types = client.get(f"{api}/appointment_types").json()
    assert_valid(types, example_of("/appointment_types", "get", "200"))

    created = client.post(f"{api}/appointments", json=FULL_APPOINTMENT)
    assert created.status_code == 201
    assert_valid(created.json(), example_of("/appointments", "post", "201"))
    appointment_id = created.json()["appointment"]["id"]

    fetched = client.get(f"{api}/appointments/{appointment_id}")
    assert_valid(fetched.json(), get_by_id_schema())
    assert_valid(fetched.json(), example_of("/appointments/{id}", "put", "200")["properties"]["appointment"])

    updated = client.put(
        f"{api}/appointments/{appointment_id}",
        json={"summary": "Server swap (2)", "start_at": FULL_APPOINTMENT["start_at"]},
    )
    assert updated.status_code == 200
    assert_valid(updated.json(), example_of("/appointments/{id}", "put", "200"))

    listed = client.get(f"{api}/appointments", params={"date_from": "2026-03-01", "date_to": "2026-04-01"})
    assert_valid(listed.json(), example_of("/appointments", "get", "200"))
    assert [item["appointment"]["id"] for item in listed.json()["appointments"]] == [appointment_id]

    deleted = client.delete(f"{api}/appointments/{appointment_id}")
    assert (deleted.status_code, deleted.json()) == (200, {"message": "deleted"})


def test_the_three_wrappers_hold_the_same_record(stack: Stack) -> None:
    client, api = stack.client(), stack.api
    posted = client.post(f"{api}/appointments", json=FULL_APPOINTMENT).json()
    record = posted["appointment"]
    flat = client.get(f"{api}/appointments/{record['id']}").json()
    listed = client.get(f"{api}/appointments").json()["appointments"]
    assert flat == record
    assert listed == [{"appointment": record}]
    assert record["customer"]["business_then_name"] == "Acme Dental"
    assert record["appointment_location_type"] == "customer"
    assert record["do_not_email"] == "1"


def test_422_matches_the_specs_examples_word_for_word(stack: Stack) -> None:
    client, api = stack.client(), stack.api
    response = client.post(f"{api}/appointments", json={"description": "Incomplete appointment"})
    assert response.status_code == 422
    assert response.json() == _content("/appointments", "post", "422")["example"]

    record = stack.create(**FULL_APPOINTMENT)
    # The PUT example answers {"summary": ""} without "Start at can't be blank", although the PUT
    # schema requires start_at (which the simulator enforces by default): the example needs it off.
    stack.sim.update_settings({"put_requires_start_at": False})
    response = client.put(f"{api}/appointments/{record['id']}", json={"summary": ""})
    assert response.status_code == 422
    assert response.json() == _content("/appointments/{id}", "put", "422")["example"]


# -- times ----------------------------------------------------------------------------------


def test_times_come_back_in_utc_with_milliseconds(stack: Stack) -> None:
    stack.sim.update_settings({"time_format": "utc"})
    record = stack.create(
        summary="Offsets", start_at="2026-06-01T10:15:30.123456+02:00", end_at="2026-06-01T10:45:30+02:00"
    )
    assert record["start_at"] == "2026-06-01T08:15:30.123Z"
    assert record["end_at"] == "2026-06-01T08:45:30.000Z"
    assert record["duration"] == 0.5
    # Pacific daylight time: 08:15 UTC is 01:15 AM on the same day.
    assert record["start_at_label"] == "Mon 06-01-26 01:15 AM"
    assert record["created_at"].endswith("Z") and len(record["created_at"]) == len("2026-06-01T08:15:30.123Z")


def test_appointment_duration_in_minutes_stands_in_for_end_at(stack: Stack) -> None:
    record = stack.create(summary="Short", start_at="2026-06-01T16:00:00Z", appointment_duration="90")
    assert (record["end_at"], record["duration"]) == ("2026-06-01T10:30:00.000-07:00", 1.5)


def test_a_time_without_offset_is_read_in_the_account_zone(stack: Stack) -> None:
    record = stack.create(summary="Naive", start_at="2026-01-15T09:00:00", end_at="2026-01-15T10:00:00")
    assert record["start_at"] == "2026-01-15T09:00:00.000-08:00"  # 17:00 UTC


def test_settings_give_the_account_zone(stack: Stack) -> None:
    locale = stack.client().get(f"{stack.api}/settings").json()["locale"]
    assert locale["time_zone"] == "America/Los_Angeles"
    assert locale["time_offset"] == "-08:00"


def test_updated_at_strictly_increases_across_writes(stack: Stack) -> None:
    client = stack.client()
    record = stack.create(summary="Busy", start_at="2026-05-05T10:00:00Z", end_at="2026-05-05T11:00:00Z")
    stamps = [record["updated_at"]]
    for index in range(20):
        body = {"summary": "Busy"} if index % 2 else {"location": f"Room {index}"}  # no-op writes too
        body["start_at"] = "2026-05-05T10:00:00Z"
        stamps.append(
            client.put(f"{stack.api}/appointments/{record['id']}", json=body).json()["appointment"]["updated_at"]
        )
    # Writes straight into the store land many to a millisecond; each still gets its own stamp.
    for _ in range(200):
        result = stack.sim.update_appointment(record["id"], {"summary": "Busy"})
        assert result is not None and result.appointment is not None
        stamps.append(result.appointment["updated_at"])
    parsed = [instant(stamp) for stamp in stamps]
    assert all(later > earlier for earlier, later in itertools.pairwise(parsed))
    assert record["created_at"] == client.get(f"{stack.api}/appointments/{record['id']}").json()["created_at"]


def test_updated_at_follows_the_shared_clock(stack: Stack) -> None:
    record = stack.create(summary="Later", start_at="2026-05-05T10:00:00Z", end_at="2026-05-05T11:00:00Z")
    stack.sim.control.clock.advance(3600)
    moved = (
        stack.client()
        .put(f"{stack.api}/appointments/{record['id']}", json={"summary": "Later!", "start_at": record["start_at"]})
        .json()
    )
    gap = instant(moved["appointment"]["updated_at"]) - instant(record["updated_at"])
    assert gap.total_seconds() >= 3600


# -- listing --------------------------------------------------------------------------------


def test_lists_25_a_page_with_meta(stack: Stack) -> None:
    stack.sim.seed(
        {
            "appointments": [
                {
                    "summary": f"Visit {n}",
                    "start_at": f"2026-04-{1 + n % 28:02d}T16:00:00Z",
                    "end_at": f"2026-04-{1 + n % 28:02d}T17:00:00Z",
                }
                for n in range(60)
            ]
        }
    )
    client, seen = stack.client(), []
    for page in (1, 2, 3, 4):
        body = client.get(f"{stack.api}/appointments", params={"page": page}).json()
        assert body["meta"] == {"total_pages": 3, "total_entries": 60, "per_page": 25, "page": page}
        assert len(body["appointments"]) == {1: 25, 2: 25, 3: 10, 4: 0}[page]
        seen += [item["appointment"]["id"] for item in body["appointments"]]
    assert len(seen) == len(set(seen)) == 60


def test_an_empty_list_has_zero_pages(stack: Stack) -> None:
    body = stack.client().get(f"{stack.api}/appointments").json()
    assert body == {"appointments": [], "meta": {"total_pages": 0, "total_entries": 0, "per_page": 25, "page": 1}}


def test_meta_can_be_switched_off(stack: Stack) -> None:
    stack.sim.update_settings({"list_meta": False})
    assert "meta" not in stack.client().get(f"{stack.api}/appointments").json()


def test_date_range_is_read_in_the_account_zone(stack: Stack) -> None:
    late_evening = stack.create(
        summary="Mar 9, 23:30 local", start_at="2026-03-10T06:30:00Z", end_at="2026-03-10T08:00:00Z"
    )
    early_morning = stack.create(
        summary="Mar 10, 00:30 local", start_at="2026-03-10T07:30:00Z", end_at="2026-03-10T08:00:00Z"
    )
    last_day = stack.create(
        summary="Mar 11, 10:00 local", start_at="2026-03-11T17:00:00Z", end_at="2026-03-11T18:00:00Z"
    )

    def listed(**params: str) -> list[int]:
        body = stack.client().get(f"{stack.api}/appointments", params=params).json()
        return [item["appointment"]["id"] for item in body["appointments"]]

    # "start after date_from" and "start before date_to", both days in Los Angeles.
    assert listed(date_from="2026-03-10", date_to="2026-03-11") == [early_morning["id"]]
    stack.sim.update_settings({"date_to_inclusive": True})
    assert listed(date_from="2026-03-10", date_to="2026-03-11") == [early_morning["id"], last_day["id"]]
    stack.sim.update_settings({"date_to_inclusive": False, "date_filter": "overlap"})
    assert listed(date_from="2026-03-10", date_to="2026-03-11") == [late_evening["id"], early_morning["id"]]


def test_mine_lists_the_token_users_appointments(stack: Stack) -> None:
    joes = stack.create(summary="Joe's", start_at="2026-02-02T10:00:00Z", end_at="2026-02-02T11:00:00Z", user_id=JOE)
    tinas = stack.create(summary="Tina's", start_at="2026-02-02T12:00:00Z", end_at="2026-02-02T13:00:00Z", user_id=TINA)
    shared = stack.create(
        summary="Both", start_at="2026-02-02T14:00:00Z", end_at="2026-02-02T15:00:00Z", user_ids=[JOE, TINA]
    )
    sams = stack.create(summary="Sam's", start_at="2026-02-02T16:00:00Z", end_at="2026-02-02T17:00:00Z", user_id=SAM)

    def ids(token: str, **params: str) -> list[int]:
        body = stack.client(token).get(f"{stack.api}/appointments", params=params).json()
        return [item["appointment"]["id"] for item in body["appointments"]]

    assert ids(TECH_TOKEN, mine="true") == [tinas["id"], shared["id"]]
    assert ids(TECH_TOKEN) == [joes["id"], tinas["id"], shared["id"], sams["id"]]
    # Without "Appointments - View All" a user sees their own, asked or not.
    assert ids(OWN_ONLY_TOKEN) == [sams["id"]]


def test_a_post_naming_no_user_is_the_token_users(stack: Stack) -> None:
    response = stack.client(TECH_TOKEN).post(
        f"{stack.api}/appointments",
        json={"summary": "Mine", "start_at": "2026-02-02T10:00:00Z", "end_at": "2026-02-02T11:00:00Z"},
    )
    whole = stack.client(token=None).get(f"{stack.server.url}/_sim/appointments/{response.json()['appointment']['id']}")
    assert whole.json()["user_id"] == TINA


# -- errors ---------------------------------------------------------------------------------

INVALID_BODIES = [
    ({"start_at": "2026-02-02T10:00:00Z", "end_at": "2026-02-02T11:00:00Z"}, "Summary can't be blank"),
    (
        {"summary": "   ", "start_at": "2026-02-02T10:00:00Z", "end_at": "2026-02-02T11:00:00Z"},
        "Summary can't be blank",
    ),
    ({"summary": "x", "end_at": "2026-02-02T11:00:00Z"}, "Start at can't be blank"),
    ({"summary": "x", "start_at": "next tuesday", "end_at": "2026-02-02T11:00:00Z"}, "Start at can't be blank"),
    ({"summary": "x", "start_at": "2026-02-02T10:00:00Z"}, "End at can't be blank"),
    (
        {"summary": "x", "start_at": "2026-02-02T10:00:00Z", "end_at": "2026-02-02T09:00:00Z"},
        "End at must be after start at",
    ),
    (
        {"summary": "x", "start_at": "2026-02-02T10:00:00Z", "end_at": "2026-02-02T11:00:00Z", "user_id": 99},
        "User must exist",
    ),
    (
        {"summary": "x", "start_at": "2026-02-02T10:00:00Z", "end_at": "2026-02-02T11:00:00Z", "user_ids": [TINA, 99]},
        "Users must exist",
    ),
    (
        {"summary": "x", "start_at": "2026-02-02T10:00:00Z", "end_at": "2026-02-02T11:00:00Z", "user_ids": str(TINA)},
        "User ids is invalid",
    ),
    (
        {"summary": "x", "start_at": "2026-02-02T10:00:00Z", "end_at": "2026-02-02T11:00:00Z", "customer_id": 404},
        "Customer must exist",
    ),
]


@pytest.mark.parametrize(("body", "message"), INVALID_BODIES)
def test_invalid_input_is_422_and_changes_nothing(stack: Stack, body: dict[str, Any], message: str) -> None:
    response = stack.client().post(f"{stack.api}/appointments", json=body)
    assert response.status_code == 422
    assert_valid(response.json(), error_schema())
    assert message in response.json()["error"].split(",")
    assert response.json()["params"] == body
    assert stack.sim.store.all_appointments_json() == []


def test_malformed_json_is_422_in_syncros_shape(stack: Stack) -> None:
    response = stack.client().post(
        f"{stack.api}/appointments", data=b'{"summary": "x",', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["success"] is False
    assert stack.sim.store.all_appointments_json() == []


def test_a_bad_put_leaves_the_record_as_it_was(stack: Stack) -> None:
    record = stack.create(**FULL_APPOINTMENT)
    response = stack.client().put(f"{stack.api}/appointments/{record['id']}", json={"end_at": "2020-01-01T00:00:00Z"})
    assert response.status_code == 422
    assert stack.client().get(f"{stack.api}/appointments/{record['id']}").json() == record


def test_a_bad_date_filter_is_422(stack: Stack) -> None:
    response = stack.client().get(f"{stack.api}/appointments", params={"date_from": "soon"})
    assert response.status_code == 422
    assert response.json()["success"] is False


@pytest.mark.parametrize(
    "auth",
    [
        {},
        {"headers": {"Authorization": "Bearer nope"}},
        {"headers": {"Authorization": "nope"}},
        {"params": {"api_key": "nope"}},
    ],
)
def test_a_bad_token_is_401(stack: Stack, auth: dict[str, Any]) -> None:
    response = stack.client(token=None).get(f"{stack.api}/me", **auth)
    assert response.status_code == 401
    assert response.json() == {"error": "Not Authorized"}


@pytest.mark.parametrize("auth", [{"headers": {"Authorization": TECH_TOKEN}}, {"params": {"api_key": TECH_TOKEN}}])
def test_a_bare_token_or_api_key_is_accepted(stack: Stack, auth: dict[str, Any]) -> None:
    me = stack.client(token=None).get(f"{stack.api}/me", **auth).json()
    assert (me["user_id"], me["user_email"], me["admin"]) == (TINA, "Tina@Acme.test", False)


def test_a_missing_id_is_404(stack: Stack) -> None:
    client, api = stack.client(), stack.api
    assert client.get(f"{api}/appointments/999").status_code == 404
    assert client.put(f"{api}/appointments/999", json={"summary": "x"}).status_code == 404
    assert client.delete(f"{api}/appointments/999").status_code == 404
    assert client.get(f"{api}/users/999").status_code == 404
    record = stack.create(**FULL_APPOINTMENT)
    assert client.delete(f"{api}/appointments/{record['id']}").status_code == 200
    assert client.delete(f"{api}/appointments/{record['id']}").status_code == 404
    assert client.get(f"{api}/appointments/{record['id']}").json() == {"message": "Not found"}


def test_appointment_types_need_an_admin(stack: Stack) -> None:
    refused = stack.client(TECH_TOKEN).get(f"{stack.api}/appointment_types")
    # A live account answers a permission failure like a bad token: 401, with this sentence.
    assert refused.status_code == 401
    assert refused.json() == {"error": "Not authorized. Please ask account admin to update your group permissions."}
    assert stack.client(ADMIN_TOKEN).get(f"{stack.api}/appointment_types").status_code == 200


WRITABLE = [
    "summary",
    "description",
    "start_at",
    "end_at",
    "all_day",
    "location",
    "customer_id",
    "ticket_id",
    "user_id",
    "user_ids",
    "appointment_type_id",
    "email_customer",
    "do_not_email",
    "appointment_duration",
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)
TIMESTAMPS = st.datetimes(timezones=st.none() | st.timezones()).map(lambda moment: moment.isoformat())
PARAMS = st.dictionaries(st.sampled_from(WRITABLE) | st.text(max_size=8), JSON_VALUES | TIMESTAMPS, max_size=8)
QUERY_TEXT = TIMESTAMPS | st.text(max_size=12) | st.integers().map(str)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(create=PARAMS, change=PARAMS, date_from=QUERY_TEXT, page=QUERY_TEXT)
def test_no_input_gets_a_server_error(stack: Stack, create: dict, change: dict, date_from: str, page: str) -> None:
    stack.sim.update_settings({"rate_limit_per_minute": 1_000_000})
    client, api = stack.client(), stack.api
    assert client.post(f"{api}/appointments", json=create).status_code in (201, 422)
    target = stack.sim.store.all_appointments_json()[0]["id"] if stack.sim.store.all_appointments_json() else 1
    assert client.put(f"{api}/appointments/{target}", json=change).status_code in (200, 404, 422)
    listed = client.get(f"{api}/appointments", params={"date_from": date_from, "date_to": date_from, "page": page})
    assert listed.status_code in (200, 422)
    client.close()


# -- rate limit -----------------------------------------------------------------------------


def test_the_181st_request_in_a_minute_is_429_until_the_clock_moves(stack: Stack) -> None:
    stack.clock_to_window_start()
    client = stack.client()
    statuses = [client.get(f"{stack.api}/me").status_code for _ in range(180)]
    assert statuses == [200] * 180
    refused = client.get(f"{stack.api}/appointments")
    assert (refused.status_code, refused.text) == (429, "Retry later\n")
    assert "Retry-After" not in refused.headers
    assert client.get(f"{stack.server.url}/_sim/settings").status_code == 200  # control routes are not limited
    stack.sim.control.clock.advance(60)
    assert client.get(f"{stack.api}/me").status_code == 200


def test_refused_and_unauthorised_requests_count_too(stack: Stack) -> None:
    stack.clock_to_window_start()
    stack.sim.update_settings({"rate_limit_per_minute": 3})
    anonymous = stack.client(token=None)
    assert [anonymous.get(f"{stack.api}/me").status_code for _ in range(4)] == [401, 401, 401, 429]


def test_a_sliding_window_with_retry_after(stack: Stack) -> None:
    stack.sim.update_settings({"rate_limit_per_minute": 5, "rate_limit_window": "sliding", "retry_after_header": True})
    client = stack.client()
    assert [client.get(f"{stack.api}/me").status_code for _ in range(5)] == [200] * 5
    refused = client.get(f"{stack.api}/me")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    stack.sim.control.clock.advance(61)
    assert client.get(f"{stack.api}/me").status_code == 200


# -- Notification Center --------------------------------------------------------------------


def test_a_creation_posts_to_the_notification_center(stack: Stack, receiver: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = receiver
    stack.sim.update_settings(
        {"notification_urls": [f"{url}/all"], "user_notification_urls": {str(TINA): [f"{url}/tina"]}}
    )
    record = stack.create(**FULL_APPOINTMENT)
    wait_for(lambda: len(received) == 2)
    by_path = {entry["path"]: entry["body"] for entry in received}
    assert by_path["/all"]["text"].split("\n")[:2] == ["Appointment was created", "Server swap"]
    assert by_path["/tina"]["text"].split("\n")[:2] == ["An appointment for you was created", "Server swap"]
    assert by_path["/all"]["attributes"] == record
    assert stack.sim.notifications.wait_idle()
    assert all(entry["state"] == "delivered" for entry in stack.sim.notifications.deliveries())


def test_only_creations_notify_and_dispatcher_creations_do(
    stack: Stack, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    stack.sim.update_settings({"notification_urls": [f"{url}/all"]})
    record = stack.create(**FULL_APPOINTMENT)
    stack.client().put(f"{stack.api}/appointments/{record['id']}", json={"summary": "Moved"})
    stack.client().delete(f"{stack.api}/appointments/{record['id']}")
    session = stack.client(token=None)
    made = session.post(
        f"{stack.server.url}/_sim/appointments",
        json={
            "summary": "Booked by dispatch",
            "start_at": "2026-03-12T10:00:00Z",
            "end_at": "2026-03-12T11:00:00Z",
            "user_id": TINA,
        },
    )
    assert made.status_code == 201
    wait_for(lambda: len(received) == 2)
    assert stack.sim.notifications.wait_idle()
    assert [entry["body"]["attributes"]["summary"] for entry in received] == ["Server swap", "Booked by dispatch"]


def test_a_failing_receiver_is_recorded_and_not_retried_by_default(stack: Stack) -> None:
    stack.sim.update_settings({"notification_urls": ["http://127.0.0.1:9/unreachable"]})
    stack.create(**FULL_APPOINTMENT)
    assert stack.sim.notifications.wait_idle()
    [delivery] = stack.client(token=None).get(f"{stack.server.url}/_sim/notifications").json()["notifications"]
    assert (delivery["state"], delivery["attempts"]) == ("failed", 1)


def test_dropped_notifications_are_recorded_not_sent(stack: Stack, receiver: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = receiver
    stack.sim.update_settings({"notification_urls": [f"{url}/all"]})
    session = stack.client(token=None)
    assert session.post(f"{stack.server.url}/_sim/notifications/drop", json={"count": 1}).status_code == 200
    stack.create(**FULL_APPOINTMENT)
    stack.create(**{**FULL_APPOINTMENT, "summary": "Second"})
    wait_for(lambda: len(received) == 1)
    assert stack.sim.notifications.wait_idle()
    assert [d["state"] for d in stack.sim.notifications.deliveries()] == ["dropped", "delivered"]


def test_paused_notifications_wait_for_release(stack: Stack, receiver: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = receiver
    stack.sim.update_settings({"notification_urls": [f"{url}/all"]})
    session = stack.client(token=None)
    assert session.post(f"{stack.server.url}/_sim/notifications/pause").status_code == 200
    stack.create(**FULL_APPOINTMENT)
    assert not stack.sim.notifications.wait_idle(timeout=0.5)
    assert received == []
    assert [d["state"] for d in stack.sim.notifications.deliveries()] == ["pending"]
    assert session.post(f"{stack.server.url}/_sim/notifications/release").status_code == 200
    wait_for(lambda: len(received) == 1)
    assert stack.sim.notifications.wait_idle()
    assert [d["state"] for d in stack.sim.notifications.deliveries()] == ["delivered"]


# -- control surface ------------------------------------------------------------------------


def test_settings_patch_rejects_unknown_fields_and_bad_values(stack: Stack) -> None:
    session, base = stack.client(token=None), stack.server.url
    assert session.patch(f"{base}/_sim/settings", json={"no_such_thing": 1}).status_code == 400
    assert session.patch(f"{base}/_sim/settings", json={"per_page": "many"}).status_code == 400
    assert session.patch(f"{base}/_sim/settings", json={"date_filter": "sideways"}).status_code == 400
    changed = session.patch(f"{base}/_sim/settings", json={"per_page": 10})
    assert changed.status_code == 200 and changed.json()["per_page"] == 10
    assert session.get(f"{base}/_sim/settings").json()["per_page"] == 10


def test_seed_and_dispatcher_routes_over_http(stack: Stack) -> None:
    session, base = stack.client(token=None), stack.server.url
    seeded = session.post(
        f"{base}/_sim/seed",
        json={
            "appointments": [
                {"id": 500, "summary": "Seeded", "start_at": "2026-03-10T10:00:00Z", "end_at": "2026-03-10T11:00:00Z"}
            ]
        },
    )
    assert seeded.status_code == 200 and seeded.json()["appointments"] == [500]
    assert session.post(f"{base}/_sim/seed", json={"users": [{"id": 9}]}).status_code == 400
    changed = session.put(f"{base}/_sim/appointments/500", json={"summary": "Changed in the UI"})
    assert changed.json()["appointment"]["summary"] == "Changed in the UI"
    assert [a["id"] for a in session.get(f"{base}/_sim/appointments").json()["appointments"]] == [500]
    assert session.delete(f"{base}/_sim/appointments/500").status_code == 200
    assert session.get(f"{base}/_sim/appointments").json()["appointments"] == []
    assert stack.sim.notifications.deliveries() == []  # seeds and edits notify nobody


def test_injected_faults_answer_in_syncros_shape(stack: Stack) -> None:
    session = stack.client()
    session.post(f"{stack.server.url}/_sim/faults", json={"method": "GET", "path": "/appointments$", "status": 429})
    refused = session.get(f"{stack.api}/appointments")
    assert (refused.status_code, refused.text) == (429, "Retry later\n")
    assert session.get(f"{stack.api}/appointments").status_code == 200


def test_unknown_routes_are_404_json(stack: Stack) -> None:
    response = stack.client().get(f"{stack.api}/appointments/abc")
    assert response.status_code == 404 and response.json() == {"message": "Not found"}
    assert stack.client().post(f"{stack.api}/me").status_code == 404


def test_reset_forgets_everything(stack: Stack) -> None:
    stack.create(**FULL_APPOINTMENT)
    assert stack.client(token=None).post(f"{stack.server.url}/_sim/reset").status_code == 204
    assert stack.client().get(f"{stack.api}/me").status_code == 401
    assert stack.sim.store.all_appointments_json() == []


def test_the_busiest_minute_counts_arrivals_in_any_60_seconds_whatever_the_window(stack: Stack) -> None:
    client = stack.client()
    for _ in range(3):
        client.get(f"{stack.api}/me")
    stack.sim.control.clock.advance(59)  # still within 60 s of the first three
    for _ in range(2):
        client.get(f"{stack.api}/me")
    stack.sim.control.clock.advance(2)  # past the first three's minute
    client.get(f"{stack.api}/me")
    client.get(f"{stack.server.url}/_sim/settings")  # control routes are not Syncro's requests
    report = client.get(f"{stack.server.url}/_sim/rate_limit").json()
    assert report["requests_seen"] == 6
    assert report["busiest_minute"]["requests"] == 5


def test_the_busiest_minute_of_sorted_arrivals() -> None:
    from local.sims.syncro.rate_limit import busiest_minute

    assert busiest_minute([]) == (0, None)
    assert busiest_minute([0.0, 59.9, 60.0, 61.0]) == (3, 59.9)  # [0, 60) holds two; [59.9, 119.9) three
    assert busiest_minute([0.0, 30.0, 59.99]) == (3, 0.0)
    assert busiest_minute([0.0, 60.0, 120.0]) == (1, 0.0)
