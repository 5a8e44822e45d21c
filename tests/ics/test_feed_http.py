"""The feed over real HTTP: the local host serving function_app.py, Azurite, the simulators (the
Syncro one gives the account's zone). The mirror is filled directly, as the poller would."""

from __future__ import annotations

import http.client
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from storage.mirror import MirrorEntry
from tests.app.linking_support import LinkingStack

pytest_plugins = ["tests.app.linking_support"]

TECH = 5560138523  # above 2**32, as live Syncro ids are; not linked to anything
OTHER_TECH = 5560138999


def _when(days: float, hours: float = 9) -> str:
    moment = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days, hours=hours)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def put(stack: LinkingStack, tech: int, appointment_id: int, *, version: int = 1, **fields: Any) -> None:
    appointment = {
        "id": appointment_id,
        "summary": f"Visit {appointment_id}",
        "description": "",
        "location": "",
        "start_at": _when(2),
        "end_at": _when(2, 10),
        "updated_at": (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=version)).isoformat(),
        "all_day": False,
        **fields,
    }
    stack.storage().mirror.upsert_entry(
        MirrorEntry(tech, appointment_id, appointment["updated_at"], f"h{version}", appointment, datetime.now(UTC))
    )


def admin(stack: LinkingStack, method: str, tech: int | str) -> Any:
    return stack.browser().request(
        method, f"{stack.host_url}/api/admin/feeds/{tech}", headers={"x-functions-key": stack.function_key}
    )


def issue(stack: LinkingStack, tech: int = TECH) -> str:
    answer = admin(stack, "POST", tech)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["syncro_user_id"] == str(tech)
    assert body["webcal_url"] == "webcal://" + body["url"].split("://", 1)[1]
    # The URL names the public base; the test talks to the host it runs.
    return f"{stack.host_url}{urlsplit(body['url']).path}"


def raw_get(stack: LinkingStack, path: str, method: str = "GET", headers: dict[str, str] | None = None):
    """A request with the path exactly as given (no client-side normalising of dots or escapes)."""
    parts = urlsplit(stack.host_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(method, path, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


def summaries(feed: bytes) -> list[str]:
    return [str(event["summary"]) for event in Calendar.from_ical(feed).walk("VEVENT")]


@pytest.fixture
def clean_mirror(linking_stack: LinkingStack):
    from ics.feed import reset_caches

    reset_caches()  # the zone and feeds cached by an earlier module's stack
    yield
    mirror = linking_stack.storage().mirror
    for tech in (TECH, OTHER_TECH):
        for entry in list(mirror.list_entries(tech)):
            mirror.delete_entry(tech, entry.appointment_id)


pytestmark = pytest.mark.usefixtures("clean_mirror")


def test_the_feed_serves_the_techs_mirror_with_validators(linking_stack: LinkingStack) -> None:
    put(linking_stack, TECH, 1, summary="Swap disks, then test; done")
    put(linking_stack, TECH, 2, all_day=True, start_at=_when(5, 8), end_at=_when(7, 8))
    put(linking_stack, TECH, 3, start_at=_when(-90), end_at=_when(-90, 10))  # before the window
    put(linking_stack, OTHER_TECH, 4, summary="Not Ann's")
    url = issue(linking_stack)
    answer = linking_stack.browser().get(url)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert answer.headers["ETag"].startswith('"')
    assert answer.headers["Last-Modified"].endswith("GMT")
    assert "max-age" in answer.headers["Cache-Control"]
    assert answer.headers["Content-Disposition"].startswith("inline; filename=")
    assert sorted(summaries(answer.content)) == ["Swap disks, then test; done", "Visit 2"]


def test_if_none_match_gets_304_and_head_gets_headers_only(linking_stack: LinkingStack) -> None:
    put(linking_stack, TECH, 1)
    url = issue(linking_stack)
    session = linking_stack.browser()
    first = session.get(url)
    etag = first.headers["ETag"]
    again = session.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag
    assert session.get(url, headers={"If-None-Match": f'W/{etag}, "x"'}).status_code == 304
    # Clients that add a cache-busting query get the same feed.
    assert session.get(url, params={"nocache": "1", "token": "../../x"}).headers["ETag"] == etag
    assert session.get(url, headers={"If-Modified-Since": first.headers["Last-Modified"]}).status_code in (200, 304)
    head = session.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["ETag"] == etag
    assert head.headers["Content-Type"] == "text/calendar; charset=utf-8"


def test_a_change_shows_at_once_with_a_new_etag_and_a_deletion_disappears(linking_stack: LinkingStack) -> None:
    put(linking_stack, TECH, 1, summary="Before")
    put(linking_stack, TECH, 2, summary="Stays")
    url = issue(linking_stack)
    session = linking_stack.browser()
    first = session.get(url)
    put(linking_stack, TECH, 1, version=2, summary="After")
    changed = session.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != first.headers["ETag"]
    assert sorted(summaries(changed.content)) == ["After", "Stays"]
    linking_stack.storage().mirror.delete_entry(TECH, 2)
    gone = session.get(url, headers={"If-None-Match": changed.headers["ETag"]})
    assert gone.status_code == 200
    assert summaries(gone.content) == ["After"]


def test_a_new_url_stops_the_old_one_at_once_and_delete_revokes(linking_stack: LinkingStack) -> None:
    session = linking_stack.browser()
    old = issue(linking_stack)
    assert session.get(old).status_code == 200
    new = issue(linking_stack)
    assert new != old
    assert session.get(old).status_code == 404
    assert session.get(new).status_code == 200
    revoked = admin(linking_stack, "DELETE", TECH)
    assert revoked.status_code == 200 and revoked.json()["revoked"] == 1
    assert session.get(new).status_code == 404
    assert session.head(new).status_code == 404
    assert admin(linking_stack, "DELETE", TECH).json()["revoked"] == 0


def test_the_feed_404_says_what_to_do(linking_stack: LinkingStack) -> None:
    answer = linking_stack.browser().get(f"{linking_stack.host_url}/api/ics/{secrets.token_urlsafe(32)}.ics")
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"
    assert "settings page" in answer.json()["message"]


def test_the_admin_endpoint_needs_the_function_key_and_a_real_id(linking_stack: LinkingStack) -> None:
    session = linking_stack.browser()
    assert session.post(f"{linking_stack.host_url}/api/admin/feeds/{TECH}").status_code == 401
    for bad in ("abc", "0", "-5", "99999999999999999999999", "1.5"):
        assert admin(linking_stack, "POST", bad).status_code in (400, 404), bad
    assert admin(linking_stack, "GET", TECH).status_code in (404, 405)


@pytest.mark.parametrize(
    "path",
    [
        "/api/ics/.ics",
        "/api/ics/{token}",
        "/api/ics/{token}.ics/extra",
        "/api/ics/{token}.ics.ics",
        "/api/ics/{token}x.ics",
        "/api/ics/{short}.ics",
        "/api/ics/../admin/links.ics",
        "/api/ics/..%2Fadmin%2Flinks.ics",
        "/api/ics/%2e%2e/%2e%2e/settings.ics",
        "/api/ics/{token}%00.ics",
        "/api/ics/{token}%2F.ics",
        "/api/ics/" + "A" * 5000 + ".ics",
        "/api/ics/%F0%9F%92%A9%FF%FE.ics",
    ],
)
def test_path_tricks_get_404_or_400(linking_stack: LinkingStack, path: str) -> None:
    token = issue(linking_stack).rsplit("/", 1)[1].removesuffix(".ics")
    status, _, body = raw_get(linking_stack, path.format(token=token, short=token[:-1]))
    assert status in (400, 404), (path, status, body[:200])
    assert b"BEGIN:VCALENDAR" not in body


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=0, max_size=200))
def test_any_token_is_a_404_never_a_500(linking_stack: LinkingStack, token: str) -> None:
    status, _, body = raw_get(linking_stack, f"/api/ics/{quote(token, safe='')}.ics")
    assert status in (400, 404), (token, status, body[:200])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=100),
)
def test_odd_conditional_headers_get_200_or_304(linking_stack: LinkingStack, none_match: str, since: str) -> None:
    url = _fuzz_url(linking_stack)
    path = urlsplit(url).path
    for headers in (
        {"If-None-Match": none_match},
        {"If-Modified-Since": since},
        {"If-None-Match": none_match, "If-Modified-Since": since},
    ):
        status, _, _ = raw_get(linking_stack, path, headers=headers)
        assert status in (200, 304), (headers, status)


_fuzz_urls: dict[int, str] = {}


def _fuzz_url(stack: LinkingStack) -> str:
    """One URL for the whole fuzz run (issuing one per example would rotate it every time)."""
    if id(stack) not in _fuzz_urls:
        _fuzz_urls[id(stack)] = issue(stack, OTHER_TECH)
    return _fuzz_urls[id(stack)]


def test_the_feed_makes_no_syncro_call_per_request(linking_stack: LinkingStack) -> None:
    put(linking_stack, TECH, 1)
    url = issue(linking_stack)
    session = linking_stack.browser()
    session.get(url)  # the first may read the account's zone (once per process and hour)
    control = linking_stack.sim_url("syncro")
    before = _syncro_calls(linking_stack, control)
    for _ in range(5):
        assert session.get(url).status_code == 200
    assert _syncro_calls(linking_stack, control) == before


def _syncro_calls(stack: LinkingStack, control: str) -> Any:
    answer = stack.browser().get(f"{control}/_sim/counters")
    assert answer.status_code == 200, answer.text
    return {route: n for route, n in json.loads(answer.text)["counters"].items() if "/_sim/" not in route}
