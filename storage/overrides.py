"""Overrides: an admin's explicit mapping of a Microsoft account to a Syncro user.

Linking matches a technician's Microsoft account to a Syncro user by email (`oauth.identity`);
when the emails differ, or two Syncro users share one, an admin maps the account here. Keys are
the Microsoft account's lower-case email (or its object id); values are Syncro user ids, stored
as decimal strings (`storage.ids`) so ids above 2^32 round-trip.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.ids import id_from_property, id_property
from storage.keys import decode_key, encode_key

if TYPE_CHECKING:
    from storage.table import Tables

_PARTITION = "override"


def override_key(ms_email: str) -> str:
    """The form an override is keyed by: trimmed, lower-case. Raises ValueError when empty."""
    key = ms_email.strip().lower()
    if not key:
        raise ValueError("an override needs the Microsoft account's email")
    return key


class OverrideStore:
    """Rows ``override / <encoded lower-case email>`` holding ``syncro_user_id``. One writer (the
    admin) sets and removes them, so writes are upserts: the last one wins."""

    def __init__(self, account: Tables) -> None:
        self._table = account.table("overrides")
        self._clock = account.clock

    def set_override(self, ms_email: str, syncro_user_id: int) -> None:
        """Map the Microsoft account to ``syncro_user_id``, replacing any earlier mapping."""
        key = override_key(ms_email)
        self._table.upsert(
            {
                "PartitionKey": _PARTITION,
                "RowKey": encode_key(key),
                "ms_email": key,
                "syncro_user_id": id_property(syncro_user_id),
                "updated_at": self._clock(),
            }
        )

    def get_override(self, ms_email: str) -> int:
        """The Syncro user id the account is mapped to; raises NotFound when it is not."""
        entity, _ = self._table.get(_PARTITION, encode_key(override_key(ms_email)))
        return id_from_property(entity["syncro_user_id"])

    def remove_override(self, ms_email: str) -> None:
        """Remove the mapping; succeeds when there is none."""
        self._table.delete(_PARTITION, encode_key(override_key(ms_email)))

    def all_overrides(self) -> dict[str, int]:
        """Every mapping: lower-case email (or object id) -> Syncro user id."""
        return {
            decode_key(entity["RowKey"]): id_from_property(entity["syncro_user_id"])
            for entity, _ in self._table.partition(_PARTITION, select=["RowKey", "syncro_user_id"])
        }
