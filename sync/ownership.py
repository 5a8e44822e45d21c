"""Whose an appointment is: ``user_id``/``user_ids`` name its technicians (`owners_of`).

Syncro's documented responses never show those fields. The first page that holds appointments
tells: with the fields, one account-wide listing serves every tech (`OwnershipMode.FIELDS`);
without them (`OwnershipMode.TOKENS`), each tech's own listing (``mine=true``, with that tech's
API token) is read instead, and the poll's report carries `OwnershipUnknown` so health and the
admin overview can say so. The decision is kept in the ``syncropoll/ownership`` cursor
(`read_ownership`, `probe_ownership`); delete that row to probe again. Read by the poller, the
Syncro webhook, linking (`web.links`) and health (`ops.health`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sync.poll_cursors import read_cursor, save_cursor

if TYPE_CHECKING:
    from storage.cursors import CursorStore

OWNERSHIP_KEY = "ownership"
USER_FIELDS = ("user_id", "user_ids")


class OwnershipMode(StrEnum):
    UNKNOWN = "unknown"  # no appointment listed yet, so nobody knows whether Syncro shows owners
    FIELDS = "fields"  # responses carry user_id/user_ids: one account-wide listing serves all techs
    TOKENS = "tokens"  # the fields are withheld: each tech's own listing with their API token


def _not_polled(lead: str, techs: tuple[int, ...], aside: str, until: str) -> str:
    """The sentence naming techs whose appointments are not polled, and what makes them polled."""
    names = ", ".join(str(tech) for tech in techs)
    return (
        f" {lead} Syncro user(s) {names}{aside}: their appointments are not polled {until} or an admin sets it "
        "on their card in the admin overview (Syncro: their user menu > Profile/Password > API Tokens)."
    )


@dataclass(frozen=True)
class OwnershipUnknown:
    """Syncro's responses do not say whom an appointment belongs to; shown in health and on the
    admin overview as `explanation`."""

    techs_without_token: tuple[int, ...] = ()
    techs_token_refused: tuple[int, ...] = ()  # Syncro refused their token this run (revoked, deleted)

    @property
    def explanation(self) -> str:
        text = (
            "Syncro's API does not say which technician an appointment belongs to (its responses leave out "
            "user_id and user_ids), so each technician's appointments are read with that technician's own "
            "Syncro API token."
        )
        if self.techs_without_token:
            until = "until they add one (the second step of linking, or their settings page)"
            text += _not_polled("No API token is set for", self.techs_without_token, "", until)
        if self.techs_token_refused:
            aside = " (revoked or deleted in Syncro)"
            text += _not_polled(
                "Syncro refused the API token of",
                self.techs_token_refused,
                aside,
                "until they set a new one on their settings page",
            )
        return text


def owners_of(appointment: Mapping[str, Any]) -> frozenset[int] | None:
    """The Syncro user ids an appointment is assigned to, or None when Syncro left both fields out."""
    if not any(name in appointment for name in USER_FIELDS):
        return None
    owners: set[int] = set()
    single = appointment.get("user_id")
    if single is not None and not isinstance(single, bool):
        owners.add(int(single))
    for value in appointment.get("user_ids") or ():
        if value is not None and not isinstance(value, bool):
            owners.add(int(value))
    return frozenset(owners)


def read_ownership(cursors: CursorStore) -> OwnershipMode:
    """What the poller has found out about Syncro's owner fields (for health and the admin overview)."""
    row = read_cursor(cursors, OWNERSHIP_KEY)
    try:
        return OwnershipMode(row.value) if row else OwnershipMode.UNKNOWN
    except ValueError:
        return OwnershipMode.UNKNOWN


def probe_ownership(cursors: CursorStore, items: list[dict[str, Any]], *, now: datetime) -> OwnershipMode:
    """What one account-wide page says about the owner fields, recorded as the poller records it
    (linking asks before the first poll has run, to know whether a tech needs their own token).
    An empty page says nothing: UNKNOWN, and nothing is recorded."""
    if not items:
        return read_ownership(cursors)
    found = OwnershipMode.TOKENS if all(owners_of(item) is None for item in items) else OwnershipMode.FIELDS
    save_cursor(cursors, read_cursor(cursors, OWNERSHIP_KEY), OWNERSHIP_KEY, found.value, now)
    return found
