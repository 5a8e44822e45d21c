"""Admin endpoints of the sync engine (function key): sync a tech now, list and restore the
recycle bin. Thin: each parses its input, calls one function of `sync.engine`, answers JSON."""

from __future__ import annotations

from typing import Any

import azure.functions as func

from web.responses import (
    bad_syncro_user_id,
    error_response,
    json_response,
    syncro_user_id_from,
    unavailable_as_503,
)


def _poll_first(deps: Any) -> dict[str, Any]:
    """One Syncro poll for every active link before the sync, so what changed in Syncro is seen."""
    from storage.links import LinkStatus
    from sync.budget import RequestBudget
    from sync.poller import poll_once

    storage = deps.storage
    techs = [link.syncro_user_id for link in storage.links.list_links() if link.status is LinkStatus.ACTIVE]
    report = poll_once(
        client=deps.syncro,
        mirror=storage.mirror,
        cursors=storage.cursors,
        queue=storage.sync_queue,
        budget=RequestBudget(),
        clock=deps.clock,
        techs=techs,
        zone=deps.account_zone(),
        past_days=deps.past_days,
        future_days=deps.future_days,
    )
    return {
        "requests": report.requests_made,
        "changed_techs": [str(t) for t in report.changed_techs],
        "ownership": report.ownership.value,
        "ownership_note": report.ownership_unknown.explanation if report.ownership_unknown else "",
    }


@unavailable_as_503
def sync_now(raw_id: str, *, poll: bool = True) -> func.HttpResponse:
    """``POST /api/admin/sync/{id}``: poll Syncro, sync that tech, answer the report."""
    from sync.engine import default_deps, sync_tech
    from sync.errors import ServiceError

    tech = syncro_user_id_from(raw_id)
    if tech is None:
        return bad_syncro_user_id()
    deps = default_deps()
    polled: dict[str, Any] = {}
    if poll:
        try:
            polled = _poll_first(deps)
        except ServiceError as error:
            polled = {"error": str(error)}
    report = sync_tech(tech, deps=deps)
    status = 404 if report.status == "not_linked" else 200
    return json_response({**report.to_json(), "poll": polled}, status=status)


@unavailable_as_503
def list_recycle_bin(raw_id: str) -> func.HttpResponse:
    """``GET /api/admin/recycle-bin/{id}``: what the sync deleted for that tech, newest first."""
    from services import storage_account

    tech = syncro_user_id_from(raw_id)
    if tech is None:
        return bad_syncro_user_id()
    entries = storage_account().recycle_bin.list_entries(tech)
    return json_response(
        {
            "syncro_user_id": str(tech),
            "entries": [
                {
                    "entry": e.entry_id,
                    "side": e.side,
                    "original_id": e.original_id,
                    "origin": e.origin,
                    "deleted_at": e.deleted_at.isoformat(),
                    "reason": e.reason,
                    "content": e.content,
                }
                for e in entries
            ],
        }
    )


@unavailable_as_503
def restore(raw_id: str, entry_id: str) -> func.HttpResponse:
    """``POST /api/admin/recycle-bin/{id}/{entry}/restore``: re-create it where it was deleted."""
    from storage.errors import NotFound
    from sync.engine import default_deps, restore_entry
    from sync.errors import ServiceError

    tech = syncro_user_id_from(raw_id)
    if tech is None:
        return bad_syncro_user_id()
    try:
        restored = restore_entry(tech, entry_id, deps=default_deps())
    except NotFound:
        return error_response(404, "not_found", "No such recycle-bin entry for this technician.")
    except ServiceError as error:
        return error_response(502, "service_error", str(error))
    return json_response({"syncro_user_id": str(tech), "entry": entry_id, "restored": restored})
