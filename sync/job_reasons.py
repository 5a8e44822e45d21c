"""Why a technician's sync job was queued (`storage.sync_queue.SyncJob.reason`).

Named here, in the core, because every layer that queues a sync names its reason: the poller
(core), the webhooks, timers and jobs (shell) and the settings page (shell). The values are what
queue messages and job-status rows hold (``last_job_reason``), so they never change; a message
read back carries a plain string, which compares equal to its member.
"""

from __future__ import annotations

from enum import StrEnum


class JobReason(StrEnum):
    # Syncro changed
    SYNCRO_POLL = "syncro-poll"  # the poller saw the tech's appointments change (`sync.poller`)
    SYNCRO_NOTIFICATION = "syncro-notification"  # Syncro's webhook announced a new appointment
    # Outlook changed: these syncs (and the reconcile's) expand series again (`realtime.jobs`)
    GRAPH_NOTIFICATION = "graph-notification"  # a Graph change notification (`realtime.notifications`)
    GRAPH_RECHECK = "graph-recheck"  # a notification's change was not in delta yet: look again
    GRAPH_MISSED = "graph-missed"  # Graph said notifications were missed (`realtime.lifecycle`)
    GRAPH_REAUTHORIZE = "graph-reauthorize"  # a subscription reauthorized: delta catches up
    GRAPH_REPLACE = "graph-replace"  # a subscription Graph removed was replaced: delta catches up
    # Retries of the job's own
    BUSY_FOLLOW_UP = "busy-follow-up"  # another instance held the tech's lease
    BUDGET_FOLLOW_UP = "syncro-budget-follow-up"  # the shared Syncro budget ran out
    # The timers, the settings page and the admin
    RECONCILE = "reconcile"  # the periodic reconciliation (`realtime.timers`)
    LINKED = "linked"  # a new link: its first sync
    SYNCRO_TOKEN = "syncro-token"  # a new Syncro API token: a first sync too
    SETTINGS_SAVED = "settings-saved"  # a save changed what syncs
    UNLINK = "unlink"  # an unlink: the engine removes the events now
    SYNC_NOW = "sync-now"  # "Sync now" on the settings page (run inline, recorded with this reason)
