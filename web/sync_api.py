"""Admin endpoints of the sync engine (function key): sync a tech now, list and restore the
recycle bin. Thin: each parses its input, calls one function of `sync.engine`, answers JSON."""

from __future__ import annotations

from typing import Any

import azure.functions as func

from web.responses import error_response, json_response

_MAX_ID = 2**63 - 1  # the route's ``long`` constraint


def _tech(raw_id: str) -> int | None:
    try:
        value = int(raw_id)
    except ValueError:
        return None
    return value if 0 < value <= _MAX_ID else None


def _bad_id() -> func.HttpResponse:
    return error_response(400, "bad_syncro_user_id", "The Syncro user id must be a positive whole number.")


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


def sync_now(raw_id: str, *, poll: bool = True) -> func.HttpResponse:
    """``POST /api/admin/sync/{id}``: poll Syncro, sync that tech, answer the report."""
    from settings import SettingsError
    from storage.errors import StorageUnavailable
    from sync.engine import default_deps, sync_tech
    from sync.errors import ServiceError

    tech = _tech(raw_id)
    if tech is None:
        return _bad_id()
    try:
        deps = default_deps()
        polled: dict[str, Any] = {}
        if poll:
            try:
                polled = _poll_first(deps)
            except ServiceError as error:
                polled = {"error": str(error)}
        report = sync_tech(tech, deps=deps)
    except SettingsError as error:
        return error_response(503, "misconfigured", str(error))
    except StorageUnavailable:
        return error_response(503, "storage_unavailable", "Table Storage did not answer; try again shortly.")
    status = 404 if report.status == "not_linked" else 200
    return json_response({**report.to_json(), "poll": polled}, status=status)


def list_recycle_bin(raw_id: str) -> func.HttpResponse:
    """``GET /api/admin/recycle-bin/{id}``: what the sync deleted for that tech, newest first."""
    from services import storage_account
    from settings import SettingsError
    from storage.errors import StorageUnavailable

    tech = _tech(raw_id)
    if tech is None:
        return _bad_id()
    try:
        entries = storage_account().recycle_bin.list_entries(tech)
    except SettingsError as error:
        return error_response(503, "misconfigured", str(error))
    except StorageUnavailable:
        return error_response(503, "storage_unavailable", "Table Storage did not answer; try again shortly.")
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


def restore(raw_id: str, entry_id: str) -> func.HttpResponse:
    """``POST /api/admin/recycle-bin/{id}/{entry}/restore``: re-create it where it was deleted."""
    from settings import SettingsError
    from storage.errors import NotFound, StorageUnavailable
    from sync.engine import default_deps, restore_entry
    from sync.errors import ServiceError

    tech = _tech(raw_id)
    if tech is None:
        return _bad_id()
    try:
        restored = restore_entry(tech, entry_id, deps=default_deps())
    except NotFound:
        return error_response(404, "not_found", "No such recycle-bin entry for this technician.")
    except ServiceError as error:
        return error_response(502, "service_error", str(error))
    except SettingsError as error:
        return error_response(503, "misconfigured", str(error))
    except StorageUnavailable:
        return error_response(503, "storage_unavailable", "Table Storage did not answer; try again shortly.")
    return json_response({"syncro_user_id": str(tech), "entry": entry_id, "restored": restored})
