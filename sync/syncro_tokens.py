"""Technicians' own Syncro API tokens: checked, kept encrypted, turned into clients for the poller.

Needed only when Syncro's responses leave out ``user_id``/``user_ids`` (`sync.poller`, ownership
"tokens"). A token is accepted only when ``GET /me`` says it belongs to the technician it is
entered for, so nobody can make one tech's calendar show another's appointments. Stored like the
Microsoft tokens: encrypted with `oauth.crypto.TokenCipher` (key rotation included), never logged,
never shown again (the pages show only when it was set and by whom).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from storage.errors import NotFound
from storage.syncro_tokens import SyncroTokenRecord, SyncroTokenStore

if TYPE_CHECKING:
    from oauth.crypto import TokenCipher
    from sync.syncro import SyncroClient

MAX_TOKEN_LENGTH = 200  # Syncro's tokens are about 60 characters; anything far longer is a paste error


class SyncroTokenRejected(Exception):
    """The token cannot be used for this technician; ``str()`` says why, fit for a page."""


class SyncroTokenService:
    def __init__(
        self,
        store: SyncroTokenStore,
        cipher: TokenCipher,
        client_for: Callable[[str], SyncroClient],
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._client_for = client_for
        self._clock = clock

    def save(self, syncro_user_id: int, token: str, *, set_by: str) -> SyncroTokenRecord:
        """Check ``token`` with Syncro, then keep it encrypted. Raises SyncroTokenRejected (wrong
        shape, refused by Syncro, or another user's), SyncroError when Syncro cannot answer."""
        from sync.budget import Caller, spending_as
        from sync.errors import SyncroForbidden, SyncroUnauthorized

        token = token.strip()
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isprintable() or " " in token:
            raise SyncroTokenRejected("That is not a Syncro API token: paste the token exactly as Syncro showed it.")
        client = self._client_for(token)
        try:
            with spending_as(Caller.TOKEN):  # a person waits on this one: its own reserved share
                owner = client.me()
        except (SyncroUnauthorized, SyncroForbidden):
            raise SyncroTokenRejected(
                "Syncro refused this token. Check that it is still active "
                "(Syncro: your user menu > Profile/Password > API Tokens) and paste it again."
            ) from None
        finally:
            client.close()
        if owner != syncro_user_id:
            # Never say whose it is: the form must not tell anyone who a token they found belongs to.
            raise SyncroTokenRejected(
                "This token belongs to another Syncro user. Sign in to Syncro as this technician, make a token "
                "there (your user menu > Profile/Password > API Tokens) and paste that one."
            )
        record = SyncroTokenRecord(syncro_user_id, self._cipher.encrypt(token.encode("utf-8")), self._clock(), set_by)
        self._store.save_token(record)
        return record

    def forget(self, syncro_user_id: int) -> bool:
        """Remove the tech's token; False when there was none."""
        try:
            self._store.get_token(syncro_user_id)
        except NotFound:
            return False
        self._store.delete_token(syncro_user_id)
        return True

    def status(self, syncro_user_id: int) -> SyncroTokenRecord | None:
        """When and by whom the tech's token was set (None: not set). Never the token."""
        try:
            record = self._store.get_token(syncro_user_id)
        except NotFound:
            return None
        return SyncroTokenRecord(record.syncro_user_id, b"", record.set_at, record.set_by)

    def clients(self, techs: Iterable[int]) -> dict[int, SyncroClient]:
        """A client per tech in ``techs`` that has a token (the caller closes them). A token that
        no longer decrypts (a key removed too early) is left out, as if it were not set."""
        from oauth.crypto import TokenDecryptionError

        wanted = set(techs)
        clients: dict[int, SyncroClient] = {}
        for record in self._store.list_tokens():
            if record.syncro_user_id not in wanted:
                continue
            try:
                token = self._cipher.decrypt(record.encrypted).decode("utf-8")
            except TokenDecryptionError:
                continue
            clients[record.syncro_user_id] = self._client_for(token)
        return clients
