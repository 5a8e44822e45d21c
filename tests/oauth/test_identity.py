"""Which Syncro user a Microsoft account is: the address we take, and the match (pure, no I/O)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from oauth.identity import MatchOutcome, account_of, is_admin, match_syncro_user, microsoft_addresses
from sync.graph import MicrosoftUser
from sync.syncro import SyncroUser

OID = "aaaaaaaa-0000-0000-0000-000000000001"
TINA = SyncroUser(id=1_300_102, email="Tina@Acme.test", full_name="Tina Tech")
JOE = SyncroUser(id=1_300_101, email="joe@acme.test", full_name="Joe Doe")
BIG = SyncroUser(id=5_560_138_523, email="big@acme.test", full_name="Bea Big")
NO_MAIL = SyncroUser(id=7, email=None, full_name="No Mail")
USERS = [JOE, TINA, BIG, NO_MAIL]


def me(mail: str | None, upn: str = "tt@contoso.onmicrosoft.example") -> MicrosoftUser:
    return MicrosoftUser(id=OID, user_principal_name=upn, mail=mail, display_name="Tina Tech")


# -- the account and its addresses -----------------------------------------------------------------


def test_the_account_is_its_object_id_and_tenant_never_an_address() -> None:
    claims = {"oid": OID.upper(), "tid": "T-1", "preferred_username": "x@y", "email": "a@b"}
    assert account_of(claims) == f"{OID}.t-1"
    assert account_of({"tid": "t", "preferred_username": "x@y"}) is None
    assert account_of({"oid": OID}) is None


def test_the_sign_in_name_comes_first_then_mail() -> None:
    addresses = microsoft_addresses({"preferred_username": "Tina.T@Acme.test"}, me("Tina@Acme.test"))
    assert addresses == ["Tina.T@Acme.test", "tt@contoso.onmicrosoft.example", "Tina@Acme.test"]


def test_without_the_claim_the_user_principal_name_then_mail() -> None:
    assert microsoft_addresses({}, me(" tina@acme.test ", upn=" Tina.T@Acme.test ")) == [
        "Tina.T@Acme.test",
        "tina@acme.test",
    ]


def test_repeats_and_blanks_are_dropped() -> None:
    assert microsoft_addresses({"preferred_username": "T@acme.test"}, me("t@ACME.test", upn="  ")) == ["T@acme.test"]


def test_no_address_anywhere_is_empty() -> None:
    assert microsoft_addresses({"name": "Tina"}, None) == []


def test_admins_are_the_app_role_or_an_admin_group_never_an_address() -> None:
    group = "0f0e0d0c-0000-4000-8000-000000000001"
    assert is_admin({"roles": ["SyncAdmin"]}, admin_groups=frozenset())
    assert is_admin({"groups": [group.upper()]}, admin_groups=frozenset({group}))
    assert not is_admin({"roles": ["Reader"], "groups": [group]}, admin_groups=frozenset())
    assert not is_admin({"roles": "SyncAdmin"}, admin_groups=frozenset())  # not a list: not Entra's shape
    assert not is_admin(
        {"email": "dana@contoso.example", "preferred_username": "dana@contoso.example"}, admin_groups=frozenset()
    )


def test_the_sign_in_name_wins_over_a_mail_that_matches_someone_else() -> None:
    match = match_syncro_user(["joe@acme.test", "tina@acme.test"], USERS, overrides={})
    assert match.user == JOE


def test_mail_is_the_second_key() -> None:
    match = match_syncro_user(["tt@contoso.onmicrosoft.example", "Tina@acme.test"], USERS, overrides={})
    assert match.user == TINA


# -- the match ------------------------------------------------------------------------------------


def test_email_matches_ignoring_case_and_spaces() -> None:
    match = match_syncro_user(["  tina@ACME.test "], USERS, overrides={})
    assert (match.outcome, match.user, match.via_override) == (MatchOutcome.MATCHED, TINA, False)
    assert "by email" in match.reason


def test_no_user_with_the_email() -> None:
    match = match_syncro_user(["nobody@acme.test"], USERS, overrides={})
    assert (match.outcome, match.user) == (MatchOutcome.NO_MATCH, None)
    assert "ask an admin" in match.reason


def test_two_users_with_one_email_are_ambiguous() -> None:
    twin = SyncroUser(id=1_300_999, email="TINA@acme.test", full_name="Tina Twin")
    match = match_syncro_user(["tina@acme.test"], [*USERS, twin], overrides={})
    assert (match.outcome, match.user) == (MatchOutcome.AMBIGUOUS, None)
    assert set(match.candidates) == {TINA, twin}
    assert "1300102" in match.reason and "1300999" in match.reason


def test_the_same_user_listed_twice_is_not_ambiguous() -> None:
    assert match_syncro_user(["tina@acme.test"], [TINA, TINA], overrides={}).user == TINA


def test_an_email_override_wins_over_the_email_match() -> None:
    match = match_syncro_user(["Tina@Acme.test"], USERS, overrides={"tina@acme.test": BIG.id})
    assert (match.outcome, match.user, match.via_override) == (MatchOutcome.MATCHED, BIG, True)
    assert "override" in match.reason


def test_an_override_by_object_id_wins_over_one_by_email() -> None:
    overrides = {OID.upper(): JOE.id, "tina@acme.test": BIG.id}
    match = match_syncro_user(["tina@acme.test"], USERS, overrides=overrides, microsoft_id=OID)
    assert (match.user, match.via_override) == (JOE, True)


def test_an_override_resolves_an_ambiguity() -> None:
    twin = SyncroUser(id=1_300_999, email="tina@acme.test", full_name="Tina Twin")
    match = match_syncro_user(["tina@acme.test"], [TINA, twin], overrides={"tina@acme.test": twin.id})
    assert match.user == twin


def test_an_override_to_a_missing_user_never_falls_back_to_email() -> None:
    match = match_syncro_user(["tina@acme.test"], USERS, overrides={"tina@acme.test": 999})
    assert (match.outcome, match.user, match.override_user_id) == (MatchOutcome.OVERRIDE_USER_MISSING, None, 999)
    assert "999" in match.reason


def test_users_without_email_never_match_a_blank_address() -> None:
    assert match_syncro_user(["  "], [NO_MAIL], overrides={}).outcome is MatchOutcome.NO_MATCH


# -- properties ------------------------------------------------------------------------------------

ASCII_EMAILS = st.builds(
    lambda local, domain: f"{local}@{domain}.test",
    st.text("abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=20),
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12),
)


def recased(email: str, flips: list[bool]) -> str:
    return "".join(c.upper() if flip else c for c, flip in zip(email, flips + [False] * len(email), strict=False))


@given(
    ASCII_EMAILS, st.lists(st.booleans(), max_size=40), st.lists(st.booleans(), max_size=40), st.text(" \t", max_size=2)
)
def test_matching_ignores_case_on_either_side(email: str, stored: list[bool], asked: list[bool], pad: str) -> None:
    user = SyncroUser(id=5_560_138_523, email=recased(email, stored), full_name="Any")
    match = match_syncro_user([pad + recased(email, asked) + pad], [JOE, user], overrides={})
    if email == JOE.email:  # two users now share Joe's address
        assert match.outcome is MatchOutcome.AMBIGUOUS
    else:
        assert match.user == user


@given(ASCII_EMAILS, st.lists(st.booleans(), max_size=40))
def test_override_keys_match_in_any_case(email: str, flips: list[bool]) -> None:
    match = match_syncro_user([recased(email, flips)], USERS, overrides={email: BIG.id})
    assert (match.user, match.via_override) == (BIG, True)


@given(ASCII_EMAILS, ASCII_EMAILS)
def test_a_different_address_never_matches(email: str, other: str) -> None:
    if email.lower() != other.lower():
        user = SyncroUser(id=1, email=other, full_name="Other")
        assert match_syncro_user([email], [user], overrides={}).outcome is MatchOutcome.NO_MATCH
