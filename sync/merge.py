"""Three-way merge of one appointment edited on both sides, field by field against the last
synced content (the ancestor)."""

from __future__ import annotations

from dataclasses import replace

from sync.model import FIELDS, Appointment, Side

# The units a merge decides one by one. Start, end and all-day are one unit: a start taken from
# one side and an end from the other can make an appointment nobody made (or one that ends
# before it starts).
UNITS: tuple[tuple[str, ...], ...] = (("summary",), ("description",), ("location",), ("start", "end", "all_day"))
assert sorted(f for unit in UNITS for f in unit) == sorted(FIELDS), "UNITS must cover model.FIELDS"


def _unit(appointment: Appointment, unit: tuple[str, ...]) -> tuple[object, ...]:
    return tuple(getattr(appointment, name) for name in unit)


def merge(
    base: Appointment | None, syncro: Appointment, outlook: Appointment, *, winner: Side
) -> tuple[Appointment, tuple[str, ...]]:
    """Merge the two sides against ``base``; returns the result and the conflicting fields.

    A unit changed on one side only takes that change; changed on both to the same value takes
    it; changed on both to different values is a conflict and takes ``winner``'s value. Without a
    base every unit the sides disagree on is a conflict.
    """
    merged = syncro
    conflicts: list[str] = []
    for unit in UNITS:
        mine, theirs = _unit(syncro, unit), _unit(outlook, unit)
        if mine == theirs:
            continue
        ancestor = _unit(base, unit) if base is not None else None
        if mine == ancestor:
            take = theirs
        elif theirs == ancestor:
            take = mine
        else:
            conflicts.extend(unit)
            take = mine if winner is Side.SYNCRO else theirs
        merged = replace(merged, **dict(zip(unit, take, strict=True)))
    return merged, tuple(conflicts)
