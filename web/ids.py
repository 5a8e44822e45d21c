"""Reading a Syncro user id from text a person or a browser sent (a route segment, a form field,
our own cookie): one reader, so every endpoint takes and refuses the same spellings."""

from __future__ import annotations

# Syncro ids are positive and exceed 2**32; the routes' ``long`` constraint bounds them at 2**63.
MAX_SYNCRO_ID = 2**63 - 1


def syncro_user_id_from(raw: str) -> int | None:
    """The Syncro user id ``raw`` spells, or None unless it is ASCII digits only (no sign, spaces
    or other scripts' digits, which ``int()`` would take) naming a positive id in range."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(MAX_SYNCRO_ID)):
        return None
    value = int(raw)
    return value if 0 < value <= MAX_SYNCRO_ID else None
