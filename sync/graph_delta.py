"""One ``calendarView/delta`` round of Graph: its pages read in turn and merged into one answer.

`sync.graph.GraphClient.calendar_view_delta` is the entry point; the merging is here, and the
client hands in how one page is read and how a link is checked to stay on Graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sync.errors import DeltaTokenExpired, GraphError, GraphUnexpectedResponse

MAX_PAGES = 1000  # a nextLink chain longer than this is a loop
# Codes of a delta link (or round) Graph no longer knows; any 410 counts too.
DELTA_GONE_CODES = frozenset({"syncstatenotfound", "resyncrequired", "fullsyncrequired", "syncstateinvalid"})


@dataclass(frozen=True)
class DeltaRound:
    """One finished ``calendarView/delta`` round.

    ``items`` are the events, occurrences and exceptions new or changed since the link (all of
    them in a first round), each id once with its last version; occurrences may be stubs (id,
    seriesMasterId, type, start, end): fill them with ``get_event`` or ``list_instances``.
    ``removed`` are ids Graph reports removed: deleted, or moved out of the window. Store
    ``delta_link`` as returned and start the next round from it.
    """

    items: list[dict[str, Any]]
    removed: list[str]
    delta_link: str


def read_delta_round(
    url: str, *, get_page: Callable[[str], dict[str, Any]], same_origin: Callable[[str, str], str]
) -> DeltaRound:
    """The round that starts at ``url``: ``get_page(url)`` reads a page, ``same_origin(link, what)``
    returns a link when it stays on Graph (else raises). Raises as
    `sync.graph.GraphClient.calendar_view_delta` says."""
    latest: dict[str, dict[str, Any] | None] = {}  # id -> item, or None when removed
    seen: set[str] = set()
    while True:
        if url in seen or len(seen) >= MAX_PAGES:
            raise GraphUnexpectedResponse(200, None, "the delta round's nextLinks loop without a deltaLink")
        seen.add(url)
        try:
            body = get_page(url)
        except GraphError as error:
            if error.status == 410 or (error.code or "").lower() in DELTA_GONE_CODES:
                raise DeltaTokenExpired(error.status, error.code, error.message) from error
            raise
        items = body.get("value")
        if not isinstance(items, list):
            raise GraphUnexpectedResponse(200, None, "a delta page came without a value list")
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise GraphUnexpectedResponse(200, None, "a delta item came without an id")
            latest.pop(item["id"], None)  # the last one seen wins, in the order last seen
            latest[item["id"]] = None if "@removed" in item else item
        if "@odata.deltaLink" in body:
            link = same_origin(str(body["@odata.deltaLink"]), "the deltaLink")
            return DeltaRound(
                items=[item for item in latest.values() if item is not None],
                removed=[item_id for item_id, item in latest.items() if item is None],
                delta_link=link,
            )
        next_link = body.get("@odata.nextLink")
        if not next_link:
            raise GraphUnexpectedResponse(200, None, "a delta page came with neither nextLink nor deltaLink")
        url = same_origin(str(next_link), "a nextLink")
