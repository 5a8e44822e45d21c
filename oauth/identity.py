"""Who a Microsoft account is, and which Syncro user it belongs to: pure functions, no I/O.

An account is its ``oid`` + ``tid`` (`account_of`), only ever in a tenant the MSP allows (checked
before anything here runs). We find its Syncro user by the addresses that tenant vouches for (its
sign-in name first, its mail second; `microsoft_addresses`), case-insensitively, unless an admin's
override maps the account to a Syncro user explicitly (needed when the addresses differ, or when
two Syncro users share one address).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from settings import ADMIN_APP_ROLE
from sync.graph import MicrosoftUser
from sync.syncro import SyncroUser


def account_of(claims: Mapping[str, Any]) -> str | None:
    """The account's identity: ``oid.tid`` from the ID token (MSAL's home account id), lower-case;
    None when either is missing. Never an address: any tenant's admin can set ``mail``."""
    oid, tid = (str(claims.get(name) or "").strip().lower() for name in ("oid", "tid"))
    return f"{oid}.{tid}" if oid and tid else None


def is_admin(claims: Mapping[str, Any], *, admin_groups: frozenset[str]) -> bool:
    """Whether the ID token makes its account an admin: the ``SyncAdmin`` app role in ``roles``, or
    one of ``admin_groups`` in ``groups``. (A user in too many groups gets no ``groups`` claim at
    all, "group overage": they are not an admin by group; the app role has no such limit.)"""
    roles = claims.get("roles")
    if isinstance(roles, list) and ADMIN_APP_ROLE in roles:
        return True
    groups = claims.get("groups")
    return isinstance(groups, list) and any(str(group).lower() in admin_groups for group in groups)


def microsoft_addresses(claims: Mapping[str, Any], me: MicrosoftUser | None) -> list[str]:
    """The addresses to match an account of an allowed tenant by, best first: its sign-in name
    (the ID token's ``preferred_username``, else /me's ``userPrincipalName``), then its ``mail``
    as a second key. Trimmed, case kept, without repeats; empty when there is none."""
    candidates = [claims.get("preferred_username")]
    if me is not None:
        candidates += [me.user_principal_name, me.mail]
    addresses: list[str] = []
    for candidate in candidates:
        if isinstance(candidate, str) and "@" in candidate and len(candidate) <= 256:
            address = candidate.strip()
            if normalized_email(address) not in {normalized_email(a) for a in addresses}:
                addresses.append(address)
    return addresses


def normalized_email(email: str) -> str:
    """The form emails are compared and overrides keyed in: trimmed, lower-case."""
    return email.strip().lower()


class MatchOutcome(StrEnum):
    MATCHED = "matched"  # one Syncro user: by override, or the only one with this email
    NO_MATCH = "no_match"  # no Syncro user has this email and no override names the account
    AMBIGUOUS = "ambiguous"  # several Syncro users have this email: an admin must add an override
    OVERRIDE_USER_MISSING = "override_user_missing"  # the override names a Syncro user that does not exist


@dataclass(frozen=True)
class SyncroMatch:
    """The result of `match_syncro_user`: ``user`` is set exactly when ``outcome`` is MATCHED."""

    outcome: MatchOutcome
    user: SyncroUser | None = None
    via_override: bool = False
    candidates: tuple[SyncroUser, ...] = ()  # the users sharing the email, when AMBIGUOUS
    override_user_id: int | None = None  # the override's target, when one applied

    @property
    def reason(self) -> str:
        """A sentence for the technician or the admin saying why, and what to do."""
        if self.outcome is MatchOutcome.MATCHED and self.user is not None:
            how = "an admin's override" if self.via_override else "email"
            return f"Matched to Syncro user {self.user.full_name} ({self.user.id}) by {how}."
        if self.outcome is MatchOutcome.AMBIGUOUS:
            ids = ", ".join(str(user.id) for user in self.candidates)
            return (
                f"Several Syncro users share this email (ids {ids}); "
                "an admin must map this Microsoft account to one of them."
            )
        if self.outcome is MatchOutcome.OVERRIDE_USER_MISSING:
            return (
                f"An admin mapped this Microsoft account to Syncro user {self.override_user_id}, "
                "which no longer exists; the admin must correct or remove the mapping."
            )
        return (
            "No Syncro user has this email; ask an admin to set the same email in Syncro "
            "or to map this Microsoft account to a Syncro user."
        )


def match_syncro_user(
    addresses: Sequence[str],
    users: Iterable[SyncroUser],
    *,
    overrides: Mapping[str, int],
    microsoft_id: str | None = None,
) -> SyncroMatch:
    """The Syncro user for a Microsoft account of an allowed tenant.

    An override keyed by the account's object id (``microsoft_id``) or by one of its addresses
    wins over any address match, and when its Syncro user is missing the answer is
    OVERRIDE_USER_MISSING (never a fallback: the admin chose). Otherwise each address in turn
    (sign-in name, then mail): the first that one Syncro user's email equals, ignoring case and
    surrounding spaces; an address several users share is AMBIGUOUS.
    """
    users = list(users)
    keyed = {key.strip().lower(): value for key, value in overrides.items()}
    wanted = [normalized_email(address) for address in addresses if address.strip()]
    for key in (microsoft_id, *wanted):
        if key and key.strip().lower() in keyed:
            target = keyed[key.strip().lower()]
            found = next((user for user in users if user.id == target), None)
            if found is None:
                return SyncroMatch(MatchOutcome.OVERRIDE_USER_MISSING, via_override=True, override_user_id=target)
            return SyncroMatch(MatchOutcome.MATCHED, found, via_override=True, override_user_id=target)
    for address in wanted:
        same = tuple(
            {user.id: user for user in users if user.email and normalized_email(user.email) == address}.values()
        )
        if len(same) == 1:
            return SyncroMatch(MatchOutcome.MATCHED, same[0])
        if same:
            return SyncroMatch(MatchOutcome.AMBIGUOUS, candidates=same)
    return SyncroMatch(MatchOutcome.NO_MATCH)
