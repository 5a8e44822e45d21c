"""Session versions: one counter per person that every session cookie carries a copy of.

A cookie is good only while its copy equals the stored counter (`web.session`), so bumping the
counter ends every session issued before, in every browser at once: sign-out, unlink and an
admin's "remove" do that. A person is a technician (``tech:<Syncro id>``, whichever Microsoft
account signs in for them) or an admin who is no technician (``account:<oid>.<tid>``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.errors import NotFound
from storage.keys import encode_key

if TYPE_CHECKING:
    from storage.account import StorageAccount
    from storage.table import Entity

_PARTITION = "version"
_ATTEMPTS = 8  # a bump races only with another bump of the same person


def tech_subject(syncro_user_id: int) -> str:
    return f"tech:{syncro_user_id}"


def account_subject(ms_account_id: str) -> str:
    return f"account:{ms_account_id.lower()}"


class SessionVersionStore:
    """Rows ``version / <subject>`` holding ``version`` (a whole number; 0 when there is no row)."""

    def __init__(self, account: StorageAccount) -> None:
        self._table = account.table("sessionversions")
        self._clock = account.clock

    def current(self, subject: str) -> int:
        try:
            entity, _ = self._table.get(_PARTITION, encode_key(subject))
        except NotFound:
            return 0
        return int(entity.get("version", 0))

    def bump(self, subject: str) -> int:
        """Add one to the subject's counter (ending its earlier sessions); the new value."""
        key = encode_key(subject)

        def next_version(current: Entity | None) -> tuple[Entity, int]:
            version = int((current or {}).get("version", 0)) + 1
            return self._entity(key, version), version

        return self._table.update(_PARTITION, key, next_version, attempts=_ATTEMPTS)[0]

    def _entity(self, key: str, version: int) -> dict[str, object]:
        return {"PartitionKey": _PARTITION, "RowKey": key, "version": version, "bumped_at": self._clock()}
