"""Which Syncro user a Microsoft account belongs to: pure functions, no I/O.

A technician signs in with Microsoft; we find their Syncro user by email, case-insensitively,
unless an admin's override maps the Microsoft account to a Syncro user explicitly (needed when
the two emails differ, or when two Syncro users share one address).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sync.graph import MicrosoftUser
from sync.syncro import SyncroUser


class NoMicrosoftEmail(ValueError):
    """Raised when neither /me nor the id_token names an address for the account."""


def microsoft_email(me: MicrosoftUser | None, id_token_claims: Mapping[str, Any]) -> str:
    """The address to match a Microsoft account by: ``mail`` from /me, else its
    ``userPrincipalName``, else the id_token's ``preferred_username``; trimmed, case kept.

    ``me`` is None when /me could not be read. Raises NoMicrosoftEmail when none is there.
    """
    candidates = [me.mail, me.user_principal_name] if me is not None else []
    candidates.append(id_token_claims.get("preferred_username"))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    raise NoMicrosoftEmail("the Microsoft account has no mail, user principal name or preferred_username")


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
    email: str,
    users: Iterable[SyncroUser],
    *,
    overrides: Mapping[str, int],
    microsoft_id: str | None = None,
) -> SyncroMatch:
    """The Syncro user for a Microsoft account.

    An override keyed by the account's object id (``microsoft_id``) or by its lower-case email
    wins over any email match, and when its Syncro user is missing the answer is
    OVERRIDE_USER_MISSING (never a fallback to email: the admin chose). Otherwise the user whose
    email equals ``email`` ignoring case and surrounding spaces; several such users are AMBIGUOUS.
    """
    users = list(users)
    wanted = normalized_email(email)
    keyed = {key.strip().lower(): value for key, value in overrides.items()}
    for key in (microsoft_id, wanted):
        if key and key.strip().lower() in keyed:
            target = keyed[key.strip().lower()]
            found = next((user for user in users if user.id == target), None)
            if found is None:
                return SyncroMatch(MatchOutcome.OVERRIDE_USER_MISSING, via_override=True, override_user_id=target)
            return SyncroMatch(MatchOutcome.MATCHED, found, via_override=True, override_user_id=target)
    same = tuple(
        {user.id: user for user in users if user.email and wanted and normalized_email(user.email) == wanted}.values()
    )
    if len(same) == 1:
        return SyncroMatch(MatchOutcome.MATCHED, same[0])
    if same:
        return SyncroMatch(MatchOutcome.AMBIGUOUS, candidates=same)
    return SyncroMatch(MatchOutcome.NO_MATCH)
