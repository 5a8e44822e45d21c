"""What a tech's settings page and the admin's overview both do for one tech: ask for a sync,
sync now and say what it did, keep a Syncro API token Syncro accepts, and count the attempts
that cost a call to Syncro or a whole sync."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sync.job_reasons import JobReason
from web.page_parts import Notice

if TYPE_CHECKING:
    from sync.engine import SyncDeps, SyncReport

log = logging.getLogger(__name__)

# Each check of a Syncro token costs a call to Syncro, each "Sync now" a whole sync: a person
# needs a few in a row at most, a script hammering the form gets a polite refusal. A token that
# Syncro accepts starts the count afresh: the limit is on wrong guesses.
TOKEN_CHECKS = (5, timedelta(minutes=10))
SYNC_NOW_CLICKS = (4, timedelta(minutes=1))
TOO_MANY_TOKEN_CHECKS = "Too many tokens were checked in the last few minutes. Wait ten minutes, then paste it again."
TOO_MANY_SYNCS = (
    "Sync now was pressed several times in the last minute; the sync runs on its own too. Try again in a minute."
)


TOKEN_UNCHECKED = "Syncro could not check the token just now. Try again in a minute."


def allowed(key: str, rule: tuple[int, timedelta]) -> bool:
    from services import storage_account

    limit, window = rule
    return storage_account().rate_limits.allow(key, limit=limit, window=window)


def forget_attempts(key: str) -> None:
    from services import storage_account

    storage_account().rate_limits.forget(key)


def first_sync(syncro_user_id: int, reason: str) -> None:
    """Ask for the tech's sync now (a new link, a new Syncro token), so appointments arrive in
    seconds, not at the next timer; should storage fail, the timers sync them instead."""
    from realtime.enqueue import request_sync
    from services import storage_account
    from storage.errors import StorageError

    try:
        request_sync(storage_account(), syncro_user_id, reason)
    except StorageError as error:
        log.warning("could not ask for the first sync of tech %s: %s", syncro_user_id, error)


def record_sync_now(deps: SyncDeps, report: SyncReport) -> None:
    """The status section shows "Sync now" like any job (last sync, skipped items); best effort:
    the sync itself is done, and the page still says what it did."""
    from realtime.jobs import record_report
    from storage.job_status import JobStatusStore

    try:
        record_report(JobStatusStore(deps.storage), report, reason=JobReason.SYNC_NOW, at=deps.clock())
    except Exception:
        log.warning("could not record the sync-now of tech %s", report.syncro_user_id, exc_info=True)


def sync_summary(report: SyncReport) -> str:
    """One sentence a tech understands for what "Sync now" did."""
    if report.status == "busy":
        return "A sync for you is already running; its changes show in a few seconds."
    if report.status != "synced":
        return f"The sync did not run: {report.detail or report.status}."
    parts = [
        f"{count} {verb} in {place}"
        for verb, counts in (("created", report.created), ("updated", report.updated), ("deleted", report.deleted))
        for side, place in (("outlook", "Outlook"), ("syncro", "Syncro"))
        if (count := counts.get(side, 0))
    ]
    done = "Synced: " + ", ".join(parts) + "." if parts else "Synced: both calendars already agreed."
    if report.skipped:
        done += f" {len(report.skipped)} item(s) could not be read and were left alone."
    return done


def sync_now(syncro_user_id: int) -> tuple[Notice, str | None]:
    """Sync the tech now and record it like any job: what it did in one sentence, and the sync's
    status (None: pressed too often within `SYNC_NOW_CLICKS`, so nothing ran)."""
    from services import sync_deps
    from sync.engine import sync_tech

    if not allowed(f"sync-now:{syncro_user_id}", SYNC_NOW_CLICKS):
        return Notice("problem", TOO_MANY_SYNCS), None
    deps = sync_deps()
    report = sync_tech(syncro_user_id, deps=deps, series_check=True)  # a person asked: check everything
    record_sync_now(deps, report)
    kind = "done" if report.status in ("synced", "busy") else "problem"
    return Notice(kind, sync_summary(report)), report.status


def save_syncro_token(syncro_user_id: int, token: str, *, set_by: str) -> tuple[int, str] | None:
    """Check ``token`` with Syncro and keep it, then ask for the tech's sync. None when saved; else
    the HTTP status and the problem in words: 429 too many checks (`TOKEN_CHECKS`), 400 Syncro
    refused it, 503 Syncro did not answer."""
    from services import syncro_token_service
    from sync.errors import ServiceError
    from sync.syncro_tokens import SyncroTokenRejected

    if not allowed(f"syncro-token:{syncro_user_id}", TOKEN_CHECKS):
        return 429, TOO_MANY_TOKEN_CHECKS
    try:
        syncro_token_service().save(syncro_user_id, token, set_by=set_by)
    except SyncroTokenRejected as error:
        return 400, str(error)
    except ServiceError:
        return 503, TOKEN_UNCHECKED
    forget_attempts(f"syncro-token:{syncro_user_id}")  # the limit is on guesses, not on the tech's own token
    first_sync(syncro_user_id, JobReason.SYNCRO_TOKEN)
    return None
