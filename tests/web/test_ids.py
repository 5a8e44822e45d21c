"""One reader for a Syncro user id sent as text: the same spellings pass or fail everywhere."""

import pytest

from web.ids import MAX_SYNCRO_ID, syncro_user_id_from


@pytest.mark.parametrize("raw", ["1", "4294967297", str(MAX_SYNCRO_ID)])
def test_plain_ascii_digits_in_range_are_ids(raw: str) -> None:
    assert syncro_user_id_from(raw) == int(raw)


@pytest.mark.parametrize(
    "raw",
    ["", "0", "-5", "+5", " 5", "5 ", "5_0", "٣", "1e3", str(MAX_SYNCRO_ID + 1), "9" * 40],
)
def test_anything_else_is_refused(raw: str) -> None:
    assert syncro_user_id_from(raw) is None
