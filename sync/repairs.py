"""Writes the planner never asks for: an origin tag the tech deleted or doubled, and a
Syncro-born event's customer and ticket header gone stale (`tag_repairs`). Pure."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sync.actions import MEETING_PREFIX, Action, UpdateOn
from sync.executor import Snapshot
from sync.inputs import Inputs
from sync.mapping import SyncroContext, context_lines, shown_context, tag_intact
from sync.model import Side


def tag_repairs(
    inputs: Inputs,
    snapshot: Snapshot,
    actions: list[Action],
    *,
    two_way: bool,
    syncro_web_url: str | None = None,
    zone: ZoneInfo | None = None,
) -> list[UpdateOn]:
    """Writes that put back an origin tag the tech deleted or doubled (``[S]`` on a Syncro-born
    event in Outlook; ``[O]`` on an Outlook-born appointment in Syncro, two-way only), and, given
    ``syncro_web_url`` and ``zone``, that bring a Syncro-born event's customer and ticket header
    up to date (the dispatcher linked another ticket, the customer moved). Tags and the header
    are not content, so the planner never sees them; only pairs in sync that no action touches,
    one write each."""
    busy = {getattr(action, "pair_key", None) for action in actions}
    syncro = {item.id: item for item in inputs.syncro}
    outlook = {item.id: item for item in inputs.outlook}
    repairs: list[UpdateOn] = []
    for pair in inputs.pairs:
        passive = pair.released or pair.key.startswith(MEETING_PREFIX)  # nothing syncs through these
        if pair.key in busy or passive or pair.syncro_id is None or pair.outlook_id is None:
            continue
        s, o = syncro.get(pair.syncro_id), outlook.get(pair.outlook_id)
        if s is None or o is None or (s.version, o.version) != (pair.syncro_version, pair.outlook_version):
            continue
        if pair.origin is Side.SYNCRO:
            event = snapshot.outlook[o.id]
            stale = not tag_intact(str(event.get("subject") or ""), Side.SYNCRO)
            if not stale and syncro_web_url is not None and zone is not None:
                context = SyncroContext.from_syncro(snapshot.syncro[s.id], syncro_web_url=syncro_web_url)
                stale = shown_context(event) != context_lines(s.content, context, zone=zone)
            if stale:
                repairs.append(UpdateOn(Side.OUTLOOK, o.id, o.content, o.version, pair.key, in_sync_with=s.version))
        elif two_way and not tag_intact(str(snapshot.syncro[s.id].get("summary") or ""), Side.OUTLOOK):
            repairs.append(UpdateOn(Side.SYNCRO, s.id, s.content, s.version, pair.key, in_sync_with=o.version))
    return repairs
