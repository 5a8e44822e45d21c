"""The settings page's session: a signed cookie naming the technician, and its CSRF token.

After the OAuth callback has matched a Microsoft account to a Syncro user, the handler issues a
`Session` with `SessionCookies.new` (an admin who is no technician gets one without a Syncro id)
and sets it with `SessionCookies.make_cookie`; every later request reads it back with
`SessionCookies.read_session`. The cookie is signed, not encrypted: it holds
the Syncro user id, the Microsoft email and the CSRF token, none of which is a credential on its
own; what makes it trustworthy is that nobody without the key can forge or alter one.

Key: derived with HKDF-SHA256 (info ``b"session-cookie"``) from ``TOKEN_ENCRYPTION_KEY``, so the
app needs no extra secret, and the derived key can neither decrypt token caches nor be turned
back into the key that can. Keys from ``TOKEN_ENCRYPTION_OLD_KEYS`` still verify cookies during a
rotation; a key that was removed signs people out, which is the point of removing it.

Cookie: ``HttpOnly`` (no script reads it), ``SameSite=Lax`` (sent on the top-level redirect back
from Microsoft, not on cross-site POSTs), ``Path=/api``, ``Max-Age`` of the session's lifetime,
and ``Secure`` except when the caller serves plain http on loopback. Expiry is enforced on the
server from the signed timestamp as well, so a cookie kept past ``Max-Age`` is still refused.

CSRF: each session carries 32 random bytes; every POST form echoes them in ``csrf_token`` and
`check_csrf` compares in constant time.

Who: the cookie names the Microsoft account (``oid.tid``) and whether its ID token made it an
admin (the SyncAdmin app role or an admin group, read at sign-in). Its ``version`` is a copy of the
person's counter in `storage.session_versions`; the handlers refuse a cookie whose copy is behind,
so sign-out, unlink and an admin's "remove" end every earlier session at once.

Sign-in binding (login CSRF): `/api/oauth/start` sets a short-lived cookie holding a hash of the
OAuth ``state`` (`sign_in_cookie`); the callback goes on only when its ``state`` hashes to one
of them (`sign_in_started_here`), so a callback URL opened in another browser signs nobody in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

COOKIE_NAME = "calendar_session"
COOKIE_PATH = "/api"
DEFAULT_MAX_AGE = timedelta(hours=8)

_HKDF_INFO = b"session-cookie"
# itsdangerous mixes the salt into its signing key: a value signed for another purpose with the
# same key (should one ever exist) is not a valid session.
_SALT = "settings-session"


@dataclass(frozen=True)
class Session:
    """Who is signed in: a technician (``syncro_user_id`` set) or an admin who is not one (None)."""

    syncro_user_id: int | None  # in the cookie as a decimal string: Syncro ids exceed 2**32
    ms_email: str  # the Microsoft account's sign-in name, for display only
    csrf_token: str = field(repr=False)
    issued_at: datetime  # aware, UTC, whole seconds
    account: str = ""  # the Microsoft account: ``oid.tid``
    admin: bool = False  # the ID token carried the SyncAdmin role or an admin group
    version: int = 0  # the person's session version when this was issued

    @property
    def subject(self) -> str:
        """Whose session version this session must match (`storage.session_versions`)."""
        from storage.session_versions import account_subject, tech_subject

        return tech_subject(self.syncro_user_id) if self.syncro_user_id is not None else account_subject(self.account)


def new_session(
    syncro_user_id: int | str | None,
    ms_email: str,
    *,
    account: str = "",
    admin: bool = False,
    version: int = 0,
    issued_at: datetime | None = None,
) -> Session:
    """A fresh session with a new CSRF token, issued now unless ``issued_at`` says otherwise."""
    moment = issued_at if issued_at is not None else datetime.now(UTC)
    return Session(
        syncro_user_id=None if syncro_user_id is None else int(syncro_user_id),
        ms_email=ms_email,
        csrf_token=secrets.token_urlsafe(32),
        issued_at=moment.astimezone(UTC).replace(microsecond=0),
        account=account,
        admin=admin,
        version=version,
    )


def check_csrf(session: Session, form_token: str | None) -> bool:
    """True when the form's ``csrf_token`` is this session's, compared in constant time."""
    if not form_token:
        return False
    # compare_digest refuses non-ASCII str; bytes compare anything a form can send.
    return hmac.compare_digest(form_token.encode("utf-8", "surrogatepass"), session.csrf_token.encode("utf-8"))


def clear_cookie(*, secure: bool = False) -> str:
    """A Set-Cookie value that deletes the session cookie.

    It carries no value, so ``Secure`` is optional; without it, it works on http loopback too.
    """
    cookie = f"{COOKIE_NAME}=; Max-Age=0; Path={COOKIE_PATH}; HttpOnly; SameSite=Lax"
    return cookie + "; Secure" if secure else cookie


class SessionCookies:
    """Signs sessions into cookie values and reads them back.

    ``key`` is the app's ``TOKEN_ENCRYPTION_KEY`` (raw bytes, as settings decode it); ``old_keys``
    the values of ``TOKEN_ENCRYPTION_OLD_KEYS``. ``clock`` returns Unix seconds; tests pass one.
    """

    def __init__(
        self,
        key: bytes,
        *,
        old_keys: Iterable[bytes] = (),
        max_age: timedelta = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._max_age = int(max_age.total_seconds())
        if self._max_age <= 0:
            raise ValueError("max_age must be positive")

        class _ClockedSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock())

        # itsdangerous signs with the last key and accepts any of them.
        keys = [_derive(old) for old in old_keys] + [_derive(key)]
        self._serializer = URLSafeTimedSerializer(keys, salt=_SALT, signer=_ClockedSigner)

        self._clock = clock

    @property
    def max_age(self) -> timedelta:
        return timedelta(seconds=self._max_age)

    def new(
        self,
        *,
        syncro_user_id: int | str | None,
        ms_email: str,
        account: str = "",
        admin: bool = False,
        version: int = 0,
    ) -> Session:
        """A fresh session issued now (by this instance's clock)."""
        moment = datetime.fromtimestamp(self._clock(), UTC)
        return new_session(syncro_user_id, ms_email, account=account, admin=admin, version=version, issued_at=moment)

    def make_cookie(self, session: Session, *, secure: bool) -> str:
        """The Set-Cookie header value for ``session``. ``secure=False`` only for http://127.0.0.1 or localhost."""
        value = self._serializer.dumps(
            {
                "uid": None if session.syncro_user_id is None else str(session.syncro_user_id),
                "email": session.ms_email,
                "csrf": session.csrf_token,
                "iat": int(session.issued_at.timestamp()),
                "acct": session.account,
                "adm": session.admin,
                "ver": session.version,
            }
        )
        cookie = f"{COOKIE_NAME}={value}; Max-Age={self._max_age}; Path={COOKIE_PATH}; HttpOnly; SameSite=Lax"
        return cookie + "; Secure" if secure else cookie

    def read_session(self, cookie_header: str | None) -> Session | None:
        """The session in a request's ``Cookie`` header, or None when absent, expired, altered or
        signed with another key. Never raises, whatever the header holds."""
        for value in cookie_values(cookie_header, COOKIE_NAME):
            session = self._load(value)
            if session is not None:
                return session
        return None

    def _load(self, value: str) -> Session | None:
        try:
            payload = self._serializer.loads(value, max_age=self._max_age)
        except (BadData, ValueError, TypeError, OverflowError):
            # BadData covers bad signatures, expiry and undecodable payloads; the others guard
            # against a hostile timestamp or JSON that itsdangerous passes through.
            return None
        if not isinstance(payload, dict):
            return None
        uid, email, csrf, iat = (payload.get(name) for name in ("uid", "email", "csrf", "iat"))
        account, admin, version = payload.get("acct", ""), payload.get("adm", False), payload.get("ver", 0)
        if not (isinstance(account, str) and isinstance(admin, bool)):
            return None
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            return None
        if not (uid is None or (isinstance(uid, str) and uid.isascii() and uid.isdigit() and len(uid) <= 20)):
            return None
        if not (isinstance(email, str) and isinstance(csrf, str) and csrf):
            return None
        if not isinstance(iat, int) or isinstance(iat, bool):
            return None
        try:
            issued_at = datetime.fromtimestamp(iat, UTC)
        except (ValueError, OverflowError, OSError):
            return None
        return Session(
            syncro_user_id=None if uid is None else int(uid),
            ms_email=email,
            csrf_token=csrf,
            issued_at=issued_at,
            account=account,
            admin=admin,
            version=version,
        )

    # The names the page handlers (web.*_handlers) use.
    read = read_session
    cookie = make_cookie

    @staticmethod
    def clear_cookie(*, secure: bool = False) -> str:
        return clear_cookie(secure=secure)


# --- the sign-in's binding to the browser that started it -----------------------------------

SIGN_IN_COOKIE = "calendar_signin"
SIGN_IN_COOKIE_PATH = "/api/oauth"
SIGN_IN_COOKIE_SECONDS = 600  # the flow's own lifetime (oauth.flow.FLOW_LIFETIME)
_SIGN_INS_KEPT = 3  # sign-ins started in other tabs of the same browser still finish


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()


def sign_in_cookie(state: str, cookie_header: str | None, *, secure: bool) -> str:
    """The Set-Cookie value binding a new sign-in's ``state`` to this browser (a hash, never the
    state), keeping the latest few started here. HttpOnly, SameSite=Lax: Microsoft's redirect
    back is a top-level GET, so the cookie comes with it."""
    earlier = [value for value in _sign_in_hashes(cookie_header) if value != _state_hash(state)]
    value = ".".join([_state_hash(state), *earlier][:_SIGN_INS_KEPT])
    cookie = f"{SIGN_IN_COOKIE}={value}; Max-Age={SIGN_IN_COOKIE_SECONDS}; Path={SIGN_IN_COOKIE_PATH}; HttpOnly; SameSite=Lax"
    return cookie + "; Secure" if secure else cookie


def sign_in_started_here(state: str, cookie_header: str | None) -> bool:
    """Whether this browser started the sign-in ``state`` names; compared in constant time."""
    wanted = _state_hash(state).encode()
    return any(hmac.compare_digest(wanted, value.encode()) for value in _sign_in_hashes(cookie_header))


def _sign_in_hashes(cookie_header: str | None) -> list[str]:
    hashes = []
    for value in cookie_values(cookie_header, SIGN_IN_COOKIE):
        hashes += [h for h in value.split(".") if len(h) == 64 and h.isascii() and h.isalnum()]
    return hashes[: _SIGN_INS_KEPT * 2]


def _derive(key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(key)


def cookie_values(header: str | None, name: str) -> list[str]:
    """Every value the ``Cookie`` header carries under ``name``, in order.

    Parsed by hand: http.cookies drops every cookie after one it dislikes, and other apps on the
    same host may set cookies it dislikes. Several cookies may share a name (another Path)."""
    values = []
    for part in (header or "").split(";"):
        key, eq, value = part.partition("=")
        if eq and key.strip() == name:
            values.append(value.strip().strip('"'))
    return values
