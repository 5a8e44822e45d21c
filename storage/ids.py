"""External ids (Syncro's) as table properties: decimal strings, so any size round-trips.

azure-data-tables sends a bare Python ``int`` as Edm.Int32 and refuses anything from 2^31 up
(``TypeError ... too large to be cast to type EdmType.INT32``), and it reads Edm.Int64 back as
an ``EntityProperty`` tuple rather than an ``int``. Real Syncro ids are already above 2^32
(an appointment created in 2025 got 5560138523), so every Syncro id we store is written as a
decimal string and read back as an ``int``. Partition and row keys were strings already.
"""

from __future__ import annotations

from typing import Any


def id_property(value: int) -> str:
    """The table property for a Syncro id."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"a Syncro id is a whole number, not {type(value).__name__} {value!r}")
    return str(value)


def optional_id_property(value: int | None) -> str | None:
    return None if value is None else id_property(value)


def id_from_property(value: Any) -> int:
    """A Syncro id as stored: a decimal string, or (rows written before ids were strings, or by
    hand in Storage Explorer) an Int32 or an Int64 ``EntityProperty``."""
    raw = getattr(value, "value", value)  # EntityProperty(value, edm_type) for Edm.Int64
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ValueError(f"not a stored Syncro id: {value!r}")
    return int(raw)


def optional_id_from_property(value: Any) -> int | None:
    return None if value is None else id_from_property(value)
