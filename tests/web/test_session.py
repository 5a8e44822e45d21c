"""The session cookie: signed, expiring, bound to the app's key, and never a crash on junk."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer

from web.session import (
    COOKIE_NAME,
    Session,
    SessionCookies,
    check_csrf,
    clear_cookie,
    new_session,
)

KEY = bytes(range(32))
BIG_ID = 2**40 + 7  # Syncro ids exceed 2**32


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def cookie_pair(set_cookie: str) -> str:
    """What a browser sends back: the ``name=value`` part of Set-Cookie."""
    return set_cookie.split(";", 1)[0]


def attributes(set_cookie: str) -> set[str]:
    return {part.strip() for part in set_cookie.split(";")[1:]}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cookies(clock: Clock) -> SessionCookies:
    return SessionCookies(KEY, clock=clock)


@pytest.fixture
def session(clock: Clock) -> Session:
    return new_session(BIG_ID, "alex@contoso.example", issued_at=datetime.fromtimestamp(clock.now, UTC))


def test_a_session_survives_the_round_trip(cookies: SessionCookies, session: Session) -> None:
    read = cookies.read_session(cookie_pair(cookies.make_cookie(session, secure=True)))
    assert read == session
    assert read is not None and read.syncro_user_id == BIG_ID


def test_the_id_travels_as_a_decimal_string(cookies: SessionCookies, session: Session) -> None:
    value = cookie_pair(cookies.make_cookie(session, secure=True)).split("=", 1)[1]
    assert cookies._serializer.loads(value)["uid"] == str(BIG_ID)


def test_an_admin_who_is_not_a_technician_has_no_syncro_id(cookies: SessionCookies) -> None:
    admin = cookies.new(syncro_user_id=None, ms_email="admin@contoso.example")
    assert cookies.read(cookie_pair(cookies.cookie(admin, secure=True))) == admin
    assert admin.syncro_user_id is None


def test_new_sessions_are_issued_by_the_codecs_clock(cookies: SessionCookies, clock: Clock) -> None:
    session = cookies.new(syncro_user_id="42", ms_email="a@b.example")
    assert session.issued_at == datetime.fromtimestamp(clock.now, UTC)
    assert session.syncro_user_id == 42


def test_the_cookie_is_found_among_others(cookies: SessionCookies, session: Session) -> None:
    header = f'theme=dark; other="a b"; {cookie_pair(cookies.make_cookie(session, secure=True))}; x=1'
    assert cookies.read_session(header) == session


def test_a_stale_cookie_of_the_same_name_does_not_hide_a_good_one(cookies: SessionCookies, session: Session) -> None:
    header = f"{COOKIE_NAME}=stale.junk.value; {cookie_pair(cookies.make_cookie(session, secure=True))}"
    assert cookies.read_session(header) == session


def test_new_sessions_get_distinct_unguessable_csrf_tokens() -> None:
    tokens = {new_session("1", "a@b.example").csrf_token for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(token) >= 43 for token in tokens)  # 32 bytes, url-safe base64


def test_the_csrf_token_stays_out_of_the_repr(session: Session) -> None:
    assert session.csrf_token not in repr(session)


@pytest.mark.parametrize("position", [len(COOKIE_NAME) + 5, -3])  # inside the payload, inside the signature
def test_a_tampered_cookie_is_refused(cookies: SessionCookies, session: Session, position: int) -> None:
    pair = cookie_pair(cookies.make_cookie(session, secure=True))
    flipped = "A" if pair[position] != "A" else "B"
    tampered = pair[:position] + flipped + pair[position + 1 :]
    assert cookies.read_session(tampered) is None


def test_another_payload_with_the_original_signature_is_refused(cookies: SessionCookies, session: Session) -> None:
    mine = cookie_pair(cookies.make_cookie(session, secure=True))
    other = cookie_pair(cookies.make_cookie(new_session("1", "mallory@example.com"), secure=True))
    # payload.timestamp.signature; a compressed payload starts with "." itself
    payload = other.split("=", 1)[1].rsplit(".", 2)[0]
    forged = f"{COOKIE_NAME}={payload}.{'.'.join(mine.rsplit('.', 2)[1:])}"
    assert forged != mine
    assert cookies.read_session(forged) is None


def test_a_session_expires_after_max_age(clock: Clock, session: Session) -> None:
    cookies = SessionCookies(KEY, clock=clock, max_age=timedelta(hours=1))
    pair = cookie_pair(cookies.make_cookie(session, secure=True))
    clock.now += 3600
    assert cookies.read_session(pair) == session
    clock.now += 1
    assert cookies.read_session(pair) is None


def test_the_default_lifetime_is_eight_hours(cookies: SessionCookies, clock: Clock, session: Session) -> None:
    set_cookie = cookies.make_cookie(session, secure=True)
    assert "Max-Age=28800" in attributes(set_cookie)
    clock.now += 8 * 3600 + 1
    assert cookies.read_session(cookie_pair(set_cookie)) is None


def test_a_cookie_signed_with_another_key_is_refused(clock: Clock, session: Session) -> None:
    other = SessionCookies(os.urandom(32), clock=clock)
    assert SessionCookies(KEY, clock=clock).read_session(cookie_pair(other.make_cookie(session, secure=True))) is None


def test_the_raw_encryption_key_does_not_sign_sessions(clock: Clock, session: Session) -> None:
    # The cookie key is derived (HKDF); the token-encryption key itself must not verify a cookie.
    raw = URLSafeTimedSerializer(KEY, salt="settings-session").dumps(
        {"uid": "1", "email": "a@b.example", "csrf": "x", "iat": int(clock.now)}
    )
    assert SessionCookies(KEY, clock=clock).read_session(f"{COOKIE_NAME}={raw}") is None


def test_old_keys_still_verify_during_a_rotation(clock: Clock, session: Session) -> None:
    old, new = os.urandom(32), os.urandom(32)
    pair = cookie_pair(SessionCookies(old, clock=clock).make_cookie(session, secure=True))
    assert SessionCookies(new, old_keys=[old], clock=clock).read_session(pair) == session
    assert SessionCookies(new, clock=clock).read_session(pair) is None


def test_a_signed_payload_of_the_wrong_shape_is_refused(cookies: SessionCookies) -> None:
    shapes = (
        [1, 2],
        "text",
        {"uid": "5"},
        {"uid": 5, "email": "a", "csrf": "x", "iat": 1},
        {"uid": "-5", "email": "a", "csrf": "x", "iat": 1},
        {"uid": "\u0665", "email": "a", "csrf": "x", "iat": 1},  # a digit, but not an ASCII one
        {"uid": "5", "email": "a", "csrf": "", "iat": 1},
        {"uid": "5", "email": "a", "csrf": "x", "iat": True},
        {"uid": "5", "email": "a", "csrf": "x", "iat": 10**30},
    )
    for payload in shapes:
        value = cookies._serializer.dumps(payload)
        assert cookies.read_session(f"{COOKIE_NAME}={value}") is None


def test_set_cookie_carries_every_protective_attribute(cookies: SessionCookies, session: Session) -> None:
    set_cookie = cookies.make_cookie(session, secure=True)
    assert set_cookie.startswith(f"{COOKIE_NAME}=")
    assert {"HttpOnly", "SameSite=Lax", "Path=/api", "Secure", "Max-Age=28800"} <= attributes(set_cookie)


def test_secure_is_left_off_only_when_asked(cookies: SessionCookies, session: Session) -> None:
    set_cookie = cookies.make_cookie(session, secure=False)
    assert "Secure" not in attributes(set_cookie)
    assert {"HttpOnly", "SameSite=Lax", "Path=/api"} <= attributes(set_cookie)


def test_clear_cookie_expires_the_cookie_on_the_same_path(cookies: SessionCookies) -> None:
    set_cookie = clear_cookie()
    assert set_cookie.startswith(f"{COOKIE_NAME}=;")
    assert {"Max-Age=0", "Path=/api", "HttpOnly"} <= attributes(set_cookie)
    assert "Secure" not in attributes(set_cookie)
    assert "Secure" in attributes(cookies.clear_cookie(secure=True))


def test_max_age_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SessionCookies(KEY, max_age=timedelta(0))


def test_csrf_accepts_only_the_sessions_token(session: Session) -> None:
    assert check_csrf(session, session.csrf_token)
    assert not check_csrf(session, None)
    assert not check_csrf(session, "")
    assert not check_csrf(session, session.csrf_token[:-1])
    assert not check_csrf(session, new_session("1", "x@y.example").csrf_token)
    assert not check_csrf(session, "é\udcff\x00")  # non-ASCII form input is refused, not an error


@pytest.mark.parametrize("header", [None, "", ";", "=", f"{COOKIE_NAME}", f"{COOKIE_NAME}=", f"{COOKIE_NAME}=a.b.c"])
def test_missing_or_empty_cookies_read_as_no_session(cookies: SessionCookies, header: str | None) -> None:
    assert cookies.read_session(header) is None


@given(st.text())
def test_any_cookie_header_reads_without_raising(header: str) -> None:
    assert SessionCookies(KEY).read_session(header) is None


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=300) | st.binary(max_size=200).map(lambda b: b.hex()))
def test_any_value_under_our_name_reads_without_raising(value: str) -> None:
    assert SessionCookies(KEY).read_session(f"{COOKIE_NAME}={value}") is None


@given(st.lists(st.sampled_from(["eyJ1aWQiOiIxIn0", ".", "aw6iWg", "A", "-", "_", "!", "=", '"']), max_size=30))
def test_signature_shaped_junk_reads_without_raising(parts: list[str]) -> None:
    assert SessionCookies(KEY).read_session(f"{COOKIE_NAME}={''.join(parts)}") is None
