"""The feed over real HTTP: the local host serving function_app.py, Azurite, the simulators (the
Syncro one gives the account's zone). The mirror is filled directly, as the poller would."""

from __future__ import annotations

import http.client
import json
import secrets
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from storage.mirror import MirrorEntry
from sync.mapping import DESCRIPTION_LIMIT
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
    stack.storage().mirror.put_entry(
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
    # Last-Modified moves to the current minute at most once a minute: echoing it is a 304 unless
    # the minute turned in between; a date after the server's clock is invalid and ignored.
    since = session.get(url, headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status_code == 304 or since.headers["Last-Modified"] != first.headers["Last-Modified"]
    ahead = format_datetime(datetime.now(UTC) + timedelta(days=1), usegmt=True)
    assert session.get(url, headers={"If-Modified-Since": ahead}).status_code == 200
    assert session.get(url, headers={"If-None-Match": "*"}).status_code == 304
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


def test_unknown_malformed_and_revoked_tokens_cost_one_lookup_each_like_a_known_one(
    linking_stack: LinkingStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same time for known and unknown: before any 404, every request hashes a token of the
    same shape and makes exactly one table lookup, and none reads the mirror."""
    from storage.feed_tokens import FeedTokenStore
    from storage.mirror import MirrorStore

    revoked = issue(linking_stack)
    known = issue(linking_stack)  # revokes the first
    lookups: list[str] = []
    reads: list[int] = []
    real_get, real_list = FeedTokenStore.get_by_token, MirrorStore.list_entries

    def counted_get(self: FeedTokenStore, token: str) -> Any:
        lookups.append(token)
        return real_get(self, token)

    def counted_list(self: MirrorStore, tech: int) -> Any:
        reads.append(tech)
        return real_list(self, tech)

    monkeypatch.setattr(FeedTokenStore, "get_by_token", counted_get)
    monkeypatch.setattr(MirrorStore, "list_entries", counted_list)
    session = linking_stack.browser()
    token_of = {"known": known.rsplit("/", 1)[1].removesuffix(".ics")}
    for name, url in [
        ("unknown", f"{linking_stack.host_url}/api/ics/{secrets.token_urlsafe(32)}.ics"),
        ("malformed", f"{linking_stack.host_url}/api/ics/short.ics"),
        ("revoked", revoked),
        ("known", known),
    ]:
        lookups.clear()
        reads.clear()
        status = session.get(url).status_code
        assert status == (200 if name == "known" else 404), name
        assert len(lookups) == 1 and len(lookups[0]) == 43, (name, lookups)
        assert reads == ([TECH] if name == "known" else []), name
        if name == "known":
            assert lookups == [token_of["known"]]


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


# --- event bytes stored beside the mirror rows (ics.fragments) ----------------------------


def test_a_served_feed_stores_each_events_bytes_so_a_fresh_instance_renders_none(
    linking_stack: LinkingStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ics import fragments
    from ics.feed import reset_caches

    put(linking_stack, TECH, 1, summary="One; with, commas")
    put(linking_stack, TECH, 2, all_day=True, start_at=_when(5, 8), end_at=_when(7, 8))
    put(linking_stack, TECH, 3, start_at=_when(-90), end_at=_when(-90, 10))  # before the window: not stored
    url = issue(linking_stack)
    session = linking_stack.browser()
    first = session.get(url)
    assert first.status_code == 200, first.text
    rows = {entry.appointment_id: entry for entry in linking_stack.storage().mirror.list_entries(TECH)}
    assert rows[1].feed_fragment and rows[1].feed_fragment in first.content
    assert rows[2].feed_fragment and rows[2].feed_fragment in first.content
    assert rows[3].feed_fragment is None

    reset_caches()  # a fresh instance: nothing cached in the process

    def no_icalendar(*_: object) -> bytes:
        raise AssertionError("a fresh instance rendered an event its row holds")

    monkeypatch.setattr(fragments, "event_fragment", no_icalendar)
    again = session.get(url)
    assert again.status_code == 200
    assert (again.content, again.headers["ETag"]) == (first.content, first.headers["ETag"])
    assert session.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304


def test_stored_bytes_never_outlive_the_appointment_version(linking_stack: LinkingStack) -> None:
    mirror = linking_stack.storage().mirror
    put(linking_stack, TECH, 1, summary="Before")
    read = mirror.get_entry(TECH, 1)
    stamped = mirror.attach_fragment(read, "key-1", b"BEGIN:VEVENT\r\nEND:VEVENT\r\n")
    assert stamped is not None and stamped.etag != read.etag
    assert (mirror.get_entry(TECH, 1).feed_fragment_key, mirror.get_entry(TECH, 1).feed_fragment) == (
        "key-1",
        b"BEGIN:VEVENT\r\nEND:VEVENT\r\n",
    )
    # The poller writes a changed appointment (a new entry, no fragment): the bytes go with it.
    put(linking_stack, TECH, 1, version=2, summary="After")
    assert mirror.get_entry(TECH, 1).feed_fragment is None
    # A request that read the row before that write loses: the poll's version stays.
    assert mirror.attach_fragment(stamped, "key-2", b"stale") is None
    assert mirror.get_entry(TECH, 1).feed_fragment is None
    mirror.delete_entry(TECH, 1)
    assert mirror.attach_fragment(read, "key-3", b"gone") is None


def test_an_appointment_too_large_to_share_its_row_is_served_without_stored_bytes(linking_stack: LinkingStack) -> None:
    # 770,000 characters nearly fill the row (Table Storage's limit is 1 MiB); the event shows
    # what Outlook shows of them (the first DESCRIPTION_LIMIT), which no longer fits beside them.
    put(linking_stack, TECH, 1, description="x" * 770_000)
    url = issue(linking_stack)
    answer = linking_stack.browser().get(url)
    assert answer.status_code == 200 and DESCRIPTION_LIMIT < len(answer.content) < 2 * DESCRIPTION_LIMIT
    row = linking_stack.storage().mirror.get_entry(TECH, 1)
    assert row.feed_fragment is None
    assert linking_stack.storage().mirror.attach_fragment(row, "k", answer.content) is None


# --- end to end: Syncro (the simulator), the poller, the feed ------------------------------


def test_through_the_poller_a_change_shows_at_the_next_poll_a_deletion_disappears_and_an_old_url_404s(
    linking_stack: LinkingStack,
) -> None:
    from local import demo
    from sync.budget import RequestBudget
    from sync.engine import default_deps
    from sync.poller import poll_once
    from sync.syncro import SyncroClient

    tech = demo.TECHS[1].syncro_user_id  # not linked to Outlook: the feed needs no link
    own_token = secrets.token_hex(16)
    linking_stack.sim("syncro").seed({"tokens": [{"token": own_token, "user_id": tech}]})
    http = linking_stack.browser()
    sims = linking_stack.sim_url("syncro")

    def poll() -> None:
        deps, storage = default_deps(), linking_stack.storage()
        own = SyncroClient(f"{sims}/api/v1", api_token=own_token, ca_bundle=str(linking_stack.tls.ca_bundle))
        poll_once(
            client=deps.syncro,
            mirror=storage.mirror,
            cursors=storage.cursors,
            queue=storage.sync_queue,
            budget=RequestBudget(10_000),
            clock=lambda: datetime.now(UTC),
            techs=[tech],
            tech_clients={tech: own},
            zone=deps.account_zone(),
            slice_days=200,  # one run reads the whole window, as a full poll interval does
        )

    def dispatcher(method: str, path: str, **body: Any) -> dict[str, Any]:
        http.post(f"{sims}/_sim/clock", json={"advance_seconds": 2}, timeout=30)  # SEQUENCE counts seconds
        answer = http.request(method, f"{sims}/_sim/appointments{path}", json=body or None, timeout=30)
        assert answer.status_code < 400, answer.text
        return answer.json() if answer.content else {}

    def events(answer: Any) -> dict[str, Any]:
        assert answer.status_code == 200, answer.text
        return {str(e["summary"]): e for e in Calendar.from_ical(answer.content).walk("VEVENT")}

    created = dispatcher("POST", "", summary="Feed visit", start_at=_when(3, 15), end_at=_when(3, 16), user_id=tech)
    appointment_id = int(created.get("id") or created["appointment"]["id"])
    poll()
    url = issue(linking_stack, tech)
    session = linking_stack.browser()
    first = session.get(url)
    before = events(first)["Feed visit"]

    dispatcher("PUT", f"/{appointment_id}", summary="Feed visit, moved", start_at=_when(4, 15), end_at=_when(4, 16))
    assert session.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304  # not polled yet
    poll()
    changed = session.get(url, headers={"If-None-Match": first.headers["ETag"]})
    after = events(changed)
    assert "Feed visit" not in after
    moved = after["Feed visit, moved"]
    assert moved["uid"] == before["uid"]
    assert int(moved["sequence"]) > int(before["sequence"])
    assert moved.decoded("dtstart") - before.decoded("dtstart") == timedelta(days=1)

    dispatcher("DELETE", f"/{appointment_id}")
    poll()
    assert "Feed visit, moved" not in events(session.get(url))

    rotated = issue(linking_stack, tech)
    assert session.get(url).status_code == 404
    assert session.get(rotated).status_code == 200
