"""A tech saved the settings page: queue their sync at once when the save changes what is synced.

Without this, a calendar switch or two-way turned on waited for the next timer (issue 17,
defect 8). The request goes through `realtime.enqueue.request_sync`, whose "job queued" row is
what the settings page shows as a sync under way until the job starts.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from storage.errors import StorageError
from sync.job_reasons import JobReason

if TYPE_CHECKING:
    from storage.account import StorageAccount
    from storage.links import Link

log = logging.getLogger(__name__)

REASON = JobReason.SETTINGS_SAVED
# The link's fields that decide what a sync reads and writes.
SYNCED_CHOICES = ("calendar_id", "two_way", "share_private")


def changes_what_syncs(before: Link, after: Link) -> bool:
    return any(getattr(before, name) != getattr(after, name) for name in SYNCED_CHOICES)


def queue_after_save(account: StorageAccount, before: Link, after: Link) -> bool:
    """Ask for the tech's sync when ``after`` (the saved link) syncs differently from ``before``;
    True when a job was queued or one already waiting covers it. Never raises for storage: the
    save stands, and the next timer syncs the tech anyway."""
    if not changes_what_syncs(before, after):
        return False
    from realtime.enqueue import request_sync

    try:
        request_sync(account, after.syncro_user_id, REASON)
    except StorageError as error:
        log.warning("settings saved for tech %s, but no sync could be queued: %s", after.syncro_user_id, error)
        return False
    return True
