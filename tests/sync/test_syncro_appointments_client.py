"""SyncroClient's appointments and account settings against the Syncro simulator over real TLS,
with its strict defaults: ids above 2^32, user fields withheld from responses, times in the
account's offset, 25 a page with ``meta``, PUT as a whole-form save."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from sync.errors import NotFound, SyncroError, SyncroInvalidRequest, SyncroNotFound
from sync.syncro import AppointmentPage, SyncroClient
from tests.sims.test_syncro import ADMIN_TOKEN, FULL_APPOINTMENT, JOE, TECH_TOKEN, TINA, Stack
from tests.sync.client_support import Sleeps, quick_retry, syncro_client_for, syncro_count, syncro_fault

pytest_plugins = ["tests.sims.test_syncro", "tests.sync.client_support"]

APPOINTMENTS = "/api/v1/appointments$"
UNWRAPPED_KEYS = {"id", "summary", "start_at", "end_at"}


@pytest.fixture
def client(stack: Stack, sleeps: Sleeps) -> SyncroClient:
    with syncro_client_for(stack, sleeps) as client:
        yield client


def settings(stack: Stack, **changes: Any) -> None:
    response = stack.client(None).patch(f"{stack.server.url}/_sim/settings", json=changes)
    assert response.status_code == 200, response.text


def whole(stack: Stack, appointment_id: int) -> dict[str, Any]:
    """The stored record with the fields the API withholds."""
    response = stack.client(None).get(f"{stack.server.url}/_sim/appointments/{appointment_id}")
    assert response.status_code == 200, response.text
    return response.json()


def seed_march(stack: Stack, count_: int, *, user_id: int = TINA) -> list[int]:
    """``count_`` appointments on March 2026 days (Los Angeles), one an hour from 08:00 local."""
    start = datetime.fromisoformat("2026-03-02T08:00:00-08:00")
    entries = [
        {
            "summary": f"Visit {index}",
            "start_at": (start + timedelta(hours=index)).isoformat(),
            "end_at": (start + timedelta(hours=index, minutes=30)).isoformat(),
            "user_id": user_id,
        }
        for index in range(count_)
    ]
    return stack.sim.seed({"appointments": entries})["appointments"]


def full_form(**changes: Any) -> dict[str, Any]:
    """The simulator tests' full appointment as a whole-form save sends it: one user, every boolean."""
    form = {key: value for key, value in FULL_APPOINTMENT.items() if key not in ("user_ids", "appointment_type_id")}
    return {**form, "all_day": False, "email_customer": False, **changes}


# -- the account ------------------------------------------------------------------------------------


def test_account_settings_give_the_account_time_zone(client: SyncroClient) -> None:
    body = client.account_settings()
    assert body["locale"]["time_zone"] == "America/Los_Angeles"
    assert client.account_time_zone() == "America/Los_Angeles"
    assert client.requests_made == 2


# -- listing ----------------------------------------------------------------------------------------


def test_a_page_holds_25_flat_records_with_large_ids_offset_times_and_no_user_fields(
    stack: Stack, client: SyncroClient
) -> None:
    ids = seed_march(stack, 60)
    page = client.list_appointments(date_from=date(2026, 3, 1), date_to=date(2026, 4, 1))
    assert isinstance(page, AppointmentPage)
    assert (page.page, page.total_pages, len(page.items)) == (1, 3, 25)
    assert [item["id"] for item in page.items] == ids[:25]
    first = page.items[0]
    assert first["id"] > 2**32 and isinstance(first["id"], int)
    assert first.keys() >= UNWRAPPED_KEYS and "appointment" not in first
    assert "user_id" not in first and "user_ids" not in first  # withheld, as Syncro does
    assert first["start_at"] == "2026-03-02T08:00:00.000-08:00"
    last = client.list_appointments(date_from=date(2026, 3, 1), date_to=date(2026, 4, 1), page=3)
    assert (last.page, last.total_pages, len(last.items)) == (3, 3, 10)


def test_iter_appointments_follows_meta_to_the_last_page(stack: Stack, client: SyncroClient) -> None:
    ids = seed_march(stack, 60)
    listed = list(client.iter_appointments(date_from=date(2026, 3, 1), date_to=date(2026, 4, 1)))
    assert [item["id"] for item in listed] == ids
    assert syncro_count(stack, "GET /api/v1/appointments") == 3
    assert client.requests_made == 3


def test_an_empty_window_is_one_request(stack: Stack, client: SyncroClient) -> None:
    seed_march(stack, 3)
    assert list(client.iter_appointments(date_from=date(2027, 1, 1), date_to=date(2027, 2, 1))) == []
    assert client.requests_made == 1  # meta says 0 pages


def test_flat_list_items_read_the_same_as_wrapped_ones(stack: Stack, client: SyncroClient) -> None:
    seed_march(stack, 30)
    window = {"date_from": date(2026, 3, 1), "date_to": date(2026, 4, 1)}
    wrapped = list(client.iter_appointments(**window))
    settings(stack, list_items_wrapped=False)
    flat = list(client.iter_appointments(**window))
    assert flat == wrapped and len(flat) == 30


def test_without_meta_pages_are_read_until_an_empty_one(stack: Stack, client: SyncroClient) -> None:
    ids = seed_march(stack, 60)
    settings(stack, list_meta=False, list_items_wrapped=False)
    page = client.list_appointments(date_from=date(2026, 3, 1), date_to=None)
    assert page.total_pages is None and len(page.items) == 25
    listed = list(client.iter_appointments(date_from=date(2026, 3, 1), date_to=None))
    assert [item["id"] for item in listed] == ids
    assert syncro_count(stack, "GET /api/v1/appointments") == 1 + 4  # three full pages, then an empty one


def test_a_list_that_ignores_page_is_read_once(stack: Stack, client: SyncroClient) -> None:
    body = {"appointments": [{"appointment": {"id": 5_560_138_523, "summary": "Same"}}]}
    syncro_fault(stack, path=APPOINTMENTS, status=200, body=body, times=0)
    assert [item["id"] for item in client.iter_appointments(date_from=None, date_to=None)] == [5_560_138_523]
    assert client.requests_made == 2  # the second page brought nothing new


def test_a_bare_list_body_and_string_ids_are_read(stack: Stack, client: SyncroClient) -> None:
    syncro_fault(stack, path=APPOINTMENTS, status=200, body=[{"id": "5560138524", "summary": "Bare"}], times=1)
    page = client.list_appointments(date_from=None, date_to=None)
    assert page.items == [{"id": 5_560_138_524, "summary": "Bare"}] and page.total_pages is None


def test_pages_that_shift_while_read_yield_each_appointment_once(stack: Stack, client: SyncroClient) -> None:
    one = {"appointment": {"id": 5_560_138_600, "summary": "A"}}
    two = {"appointment": {"id": 5_560_138_601, "summary": "B"}}
    syncro_fault(
        stack, path=APPOINTMENTS, status=200, body={"appointments": [one], "meta": {"total_pages": 2}}, times=1
    )
    syncro_fault(
        stack, path=APPOINTMENTS, status=200, body={"appointments": [one, two], "meta": {"total_pages": 2}}, times=1
    )
    assert [item["summary"] for item in client.iter_appointments(date_from=None, date_to=None)] == ["A", "B"]


def test_date_to_is_exclusive_and_days_are_the_accounts(stack: Stack, client: SyncroClient) -> None:
    late = stack.create(summary="Late", start_at="2026-03-10T23:30:00-07:00", end_at="2026-03-10T23:45:00-07:00")
    early = stack.create(summary="Next", start_at="2026-03-11T00:30:00-07:00", end_at="2026-03-11T01:00:00-07:00")
    # 23:30 in Los Angeles on the 10th is already the 11th in UTC: the account's day counts.
    on_tenth = client.list_appointments(date_from=date(2026, 3, 10), date_to=date(2026, 3, 11))
    assert [item["id"] for item in on_tenth.items] == [late["id"]]
    on_eleventh = client.list_appointments(date_from=date(2026, 3, 11), date_to=date(2026, 3, 12))
    assert [item["id"] for item in on_eleventh.items] == [early["id"]]


def test_mine_lists_the_token_users_own(stack: Stack, sleeps: Sleeps) -> None:
    tinas = seed_march(stack, 2, user_id=TINA)
    seed_march(stack, 3, user_id=JOE)
    with syncro_client_for(stack, sleeps, token=TECH_TOKEN) as client:
        mine = client.list_appointments(date_from=date(2026, 3, 1), date_to=None, mine=True)
        everyone = client.list_appointments(date_from=date(2026, 3, 1), date_to=None)
    assert [item["id"] for item in mine.items] == tinas
    assert len(everyone.items) == 5


def test_a_bad_page_number_is_refused_before_any_request(client: SyncroClient) -> None:
    with pytest.raises(ValueError):
        client.list_appointments(date_from=None, date_to=None, page=0)
    assert client.requests_made == 0


# -- one appointment --------------------------------------------------------------------------------


def test_create_get_update_delete_with_a_large_id(stack: Stack, client: SyncroClient) -> None:
    created = client.create_appointment(full_form())
    appointment_id = created["id"]
    assert isinstance(appointment_id, int) and appointment_id > 2**32
    assert created["summary"] == "Server swap" and created["do_not_email"] == "1"
    assert whole(stack, appointment_id)["user_id"] == TINA

    fetched = client.get_appointment(appointment_id)
    assert fetched == created

    updated = client.update_appointment(appointment_id, full_form(summary="Server swap (2)"))
    assert updated["summary"] == "Server swap (2)"
    stored = whole(stack, appointment_id)
    assert stored["do_not_email"] == "1"  # the whole form kept it
    assert stored["user_id"] == TINA
    assert updated["updated_at"] > created["updated_at"]

    assert client.delete_appointment(appointment_id) is None
    with pytest.raises(SyncroNotFound):
        client.get_appointment(appointment_id)


def test_update_needs_the_whole_form_and_sends_nothing_without_it(stack: Stack, client: SyncroClient) -> None:
    created = client.create_appointment(full_form())
    before = client.requests_made
    partial = {"summary": "Only this", "start_at": created["start_at"]}
    with pytest.raises(ValueError, match="all_day, do_not_email, email_customer"):
        client.update_appointment(created["id"], partial)
    assert client.requests_made == before
    assert whole(stack, created["id"])["do_not_email"] == "1"


def test_an_unknown_appointment_is_not_found_for_get_update_and_delete(client: SyncroClient) -> None:
    missing = 9_999_999_999
    with pytest.raises(SyncroNotFound) as caught:
        client.get_appointment(missing)
    assert isinstance(caught.value, NotFound) and caught.value.status == 404
    with pytest.raises(SyncroNotFound):
        client.update_appointment(missing, full_form())
    with pytest.raises(SyncroNotFound):
        client.delete_appointment(missing)


def test_deleting_twice_reports_not_found_the_second_time(client: SyncroClient) -> None:
    created = client.create_appointment(full_form())
    client.delete_appointment(created["id"])
    with pytest.raises(SyncroNotFound):
        client.delete_appointment(created["id"])


def test_a_refused_create_names_the_fields(client: SyncroClient) -> None:
    with pytest.raises(SyncroInvalidRequest) as caught:
        client.create_appointment({"description": "Incomplete appointment"})
    assert caught.value.status == 422 and "Summary can't be blank" in caught.value.message


# -- the request budget -----------------------------------------------------------------------------


def test_every_request_is_counted_retries_included(stack: Stack, sleeps: Sleeps) -> None:
    seen: list[tuple[str, str]] = []
    with syncro_client_for(stack, sleeps, on_request=lambda method, path: seen.append((method, path))) as client:
        syncro_fault(stack, path=APPOINTMENTS, status=429, times=2)
        client.list_appointments(date_from=None, date_to=None)
        created = client.create_appointment(full_form())
        client.delete_appointment(created["id"])
        assert client.requests_made == 5
    assert seen == [("GET", "/appointments")] * 3 + [
        ("POST", "/appointments"),
        ("DELETE", f"/appointments/{created['id']}"),
    ]
    assert sleeps.waits == [0.5, 1.0]


def test_a_put_whose_answer_was_lost_is_not_resent(stack: Stack, sleeps: Sleeps) -> None:
    """Found by the soak: Syncro's PUT has no precondition, so resending it after a read timeout
    (the client waits 30 s) would overwrite a dispatcher's save made in between. The save did
    happen; the client says it does not know, and the next sync reads the appointment again."""
    appointment_id = seed_march(stack, 1)[0]
    path = f"/api/v1/appointments/{appointment_id}$"
    syncro_fault(stack, method="PUT", path=path, timeout="after", delay_seconds=1.5, times=1)
    client = SyncroClient(
        stack.api,
        api_token=ADMIN_TOKEN,
        ca_bundle=str(stack.tls.ca_bundle),
        timeout=(5, 0.5),
        retry=quick_retry(sleeps),
    )
    with client, pytest.raises(SyncroError):
        client.update_appointment(appointment_id, full_form(summary="Ours"))
    assert client.requests_made == 1 and sleeps.waits == []
    time.sleep(1.5)  # the held answer goes out: the simulator counts the PUT then
    puts = stack.client(None).get(f"{stack.server.url}/_sim/counters").json()["counters"]
    assert sum(n for key, n in puts.items() if key.startswith("PUT ")) == 1
    assert whole(stack, appointment_id)["summary"] == "Ours"  # done, though the answer was lost
