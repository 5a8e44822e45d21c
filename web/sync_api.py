"""Admin endpoints of the sync engine (function key): sync a tech now, list and restore the
recycle bin. Thin: each parses its input, calls one function of `sync.engine`, answers JSON."""

from __future__ import annotations

from typing import Any

from http_answer import Answer, error_answer, json_answer
from web.ids import syncro_user_id_from
from web.responses import bad_syncro_user_id, unavailable_as_503


def _poll_first(deps: Any) -> dict[str, Any]:
    """The poll timer's own run before the sync (`realtime.timers.poll_now`), so what changed in
    Syncro is seen: under the poll's singleton lease (a poll the timer is running is not raced, it
    is waited for) and recorded in the poll status the pages show."""
    from realtime.timers import poll_now

    run = poll_now(deps.storage)
    if run is None:
        return {"error": "a Syncro poll was already running and did not end within 10 seconds; the sync went ahead"}
    if run.report is None:
        return {"error": run.error}
    report = run.report
    return {
        "requests": report.requests_made,
        "changed_techs": [str(t) for t in report.changed_techs],
        "ownership": report.ownership.value,
        "ownership_note": report.ownership_unknown.explanation if report.ownership_unknown else "",
    }


def _is_linked(deps: Any, tech: int) -> bool:
    from storage.errors import NotFound

    try:
        deps.storage.links.get_link(tech)
    except NotFound:
        return False
    return True


@unavailable_as_503
def sync_now(raw_id: str, *, poll: bool = True) -> Answer:
    """``POST /api/admin/sync/{id}``: poll Syncro, sync that tech, answer the report."""
    from services import sync_deps
    from sync.engine import sync_tech

    tech = syncro_user_id_from(raw_id)
    if tech is None:
        return bad_syncro_user_id()
    deps = sync_deps()
    if not _is_linked(deps, tech):
        # Refused before any work: the poll writes its cursors, and a 404 must change nothing.
        return json_answer(sync_tech(tech, deps=deps).to_json() | {"poll": {}}, status=404)
    polled = _poll_first(deps) if poll else {}
    report = sync_tech(tech, deps=deps, series_check=True)  # an admin asked: check everything
    status = 404 if report.status == "not_linked" else 200
    return json_answer({**report.to_json(), "poll": polled}, status=status)


@unavailable_as_503
def list_recycle_bin(raw_id: str) -> Answer:
    """``GET /api/admin/recycle-bin/{id}``: what the sync deleted for that tech, newest first."""
    from services import storage_account

    tech = syncro_user_id_from(raw_id)
    if tech is None:
        return bad_syncro_user_id()
    entries = storage_account().recycle_bin.list_entries(tech)
    return json_answer(
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
def restore(raw_id: str, entry_id: str) -> Answer:
    """``POST /api/admin/recycle-bin/{id}/{entry}/restore``: re-create it where it was deleted."""
    from services import sync_deps
    from storage.errors import NotFound
    from storage.recycle_bin import is_entry_id
    from sync.errors import ServiceError
    from sync.recycle import restore_entry

    tech = syncro_user_id_from(raw_id)
    if tech is None:
        return bad_syncro_user_id()
    if not is_entry_id(entry_id):
        return error_answer(404, "not_found", "No such recycle-bin entry for this technician.")
    try:
        restored = restore_entry(tech, entry_id, deps=sync_deps())
    except NotFound:
        return error_answer(404, "not_found", "No such recycle-bin entry for this technician.")
    except ServiceError as error:
        return error_answer(502, "service_error", str(error))
    return json_answer({"syncro_user_id": str(tech), "entry": entry_id, "restored": restored})


@unavailable_as_503
def set_syncro_token(raw_id: str, body: bytes) -> Answer:
    """``PUT /api/admin/syncro-tokens/{id}`` with ``{"token": "..."}``: keep that tech's own Syncro
    API token (checked with Syncro first), for when Syncro hides appointment owners."""
    from services import syncro_token_service
    from sync.errors import ServiceError
    from sync.syncro_tokens import SyncroTokenRejected
    from web.json_body import UnreadableJson, parse_json_body

    tech = syncro_user_id_from(raw_id)
    if tech is None:
        return bad_syncro_user_id()
    example = 'Send a JSON object like {"token": "<the tech\'s Syncro API token>"}.'
    try:
        data = parse_json_body(body or b"null")
    except UnreadableJson as error:
        return error_answer(400, "bad_request", f"{error} {example}")
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token.strip():
        return error_answer(400, "bad_request", example)
    try:
        record = syncro_token_service().save(tech, token, set_by="admin")
    except SyncroTokenRejected as error:
        return error_answer(400, "token_rejected", str(error))
    except ServiceError as error:
        return error_answer(502, "service_error", f"Syncro could not check the token: {error}")
    set_at = record.set_at.isoformat() if record.set_at else None
    return json_answer({"syncro_user_id": str(tech), "set_at": set_at, "set_by": record.set_by})


@unavailable_as_503
def forget_syncro_token(raw_id: str) -> Answer:
    """``DELETE /api/admin/syncro-tokens/{id}``: forget that tech's Syncro API token."""
    from services import syncro_token_service

    tech = syncro_user_id_from(raw_id)
    if tech is None:
        return bad_syncro_user_id()
    if not syncro_token_service().forget(tech):
        return error_answer(404, "not_found", "No Syncro API token is stored for this technician.")
    return Answer(204)
