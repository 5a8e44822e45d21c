"""Run-time settings of the Graph simulator: every behaviour Microsoft only *reportedly* shows, and
every limit tests want to move, is a field here (``GET``/``PATCH /_sim/settings``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from local.sims.control import patched_settings


@dataclass
class GraphSettings:
    # --- time ---------------------------------------------------------------------------------
    # POST/PATCH responses come back in UTC whatever `Prefer: outlook.timezone` says (reported).
    write_response_honours_prefer_timezone: bool = False
    # Accept IANA names (the targets of the Windows table) in Prefer and in start/end timeZone.
    accept_iana_time_zones: bool = True

    # --- events ------------------------------------------------------------------------------
    # A second POST with an already used transactionId returns the existing event (unconfirmed).
    transaction_id_dedupe: bool = True
    # Status the create answers for such a duplicate (201 like a create, or 200).
    transaction_id_duplicate_status: int = 201
    # Page size of event lists and calendarView when neither $top nor odata.maxpagesize is given.
    default_page_size: int = 10
    # DELETE of an attendee's copy of a cancelled meeting: 204, or 403/410 as reported.
    cancelled_attendee_copy_delete_status: int = 204

    # --- delta -------------------------------------------------------------------------------
    delta_default_page_size: int = 10
    # A series' occurrences are never split across pages, so pages may exceed maxpagesize (reported).
    delta_split_series_across_pages: bool = False
    # Generations of delta tokens kept per mailbox+calendar+window; older ones answer 410.
    delta_token_generations: int = 3
    # Tokens older than this on the simulator clock answer 410 (0 = never).
    delta_token_max_age_seconds: int = 7 * 24 * 3600
    delta_gone_status: int = 410
    delta_gone_code: str = "syncStateNotFound"
    # Deleted occurrences get no @removed tombstone in delta (reported).
    delta_tombstone_deleted_occurrences: bool = False
    # Occurrences arrive as stubs (id, seriesMasterId, type, start, end) (reported).
    delta_occurrence_stubs: bool = False
    # Each page after the first repeats this many items of the previous page (reported replays).
    delta_replay_items: int = 0
    # The same item appears twice on a page this many times per round (reported duplicates).
    delta_duplicate_items: int = 0
    # This many empty pages (each with a nextLink) come before the last page of a round.
    delta_empty_pages: int = 0
    # Changes become visible to delta only this many seconds (simulator clock) after they happen,
    # so a notification can arrive before delta shows its change (reported).
    delta_visibility_lag_seconds: float = 0.0
    # deltaLinks for /users/{id}/calendarView/delta come back as /users/{id}/calendar/calendarView/delta.
    delta_link_via_calendar_segment: bool = False

    # --- subscriptions and notifications ------------------------------------------------------
    subscription_max_lifetime_minutes: int = 10080
    subscription_min_lifetime_minutes: int = 45
    subscriptions_per_mailbox: int = 1000
    validation_timeout_seconds: float = 10.0
    validation_require_text_plain: bool = True
    allow_http_loopback_notification_urls: bool = True
    # Listing subscriptions shows clientState as null (reported).
    list_subscriptions_hides_client_state: bool = True
    # `/me/events` covers only the default calendar (reported); True: every calendar.
    me_events_covers_all_calendars: bool = False
    notification_timeout_seconds: float = 3.0
    notification_delay_seconds: float = 0.0
    # Each notification POST is sent this many times (Graph delivers at least once).
    notification_copies: int = 1
    # Pending notifications are sent newest first.
    notification_reorder: bool = False
    notification_drop_probability: float = 0.0
    # The next n notifications are dropped (counts down).
    notification_drop_next: int = 0
    # Failed deliveries (non-2xx, timeout) are retried after this many seconds, at most this often.
    # Graph's real values are ~10 minutes for up to 4 hours; short here so tests stay fast.
    notification_retry_interval_seconds: float = 0.2
    notification_max_attempts: int = 5
    # Slow endpoints: once a URL has had `min_count` notifications, if `delay_ratio` of them took
    # longer than `slow_seconds` Graph delays its notifications by `delay_seconds` (10 min for real);
    # at `drop_ratio` it drops them.
    notification_slow_seconds: float = 2.9
    notification_slow_min_count: int = 100
    notification_slow_delay_ratio: float = 0.10
    notification_slow_drop_ratio: float = 0.15
    notification_slow_delay_seconds: float = 600.0
    # A delivery given up (attempts exhausted) or dropped is followed by a `missed` lifecycle
    # notification when the subscription has a lifecycle URL (unconfirmed timing: off by default).
    lifecycle_missed_after_failures: bool = False
    # Lifecycle notifications also carry `organizationId` and an empty `resource` (reported).
    lifecycle_include_organization_id: bool = True

    # --- throttling ---------------------------------------------------------------------------
    mailbox_concurrency_limit: int = 4
    mailbox_requests_per_window: int = 10000
    mailbox_window_seconds: int = 600
    # "integer", "fractional" or "absent" (all seen in the field).
    retry_after_style: str = "integer"
    retry_after_seconds: float = 1.0
    # Extra time each Graph request takes, so concurrency limits can be met on loopback.
    request_latency_seconds: float = 0.0

    # --- $batch -------------------------------------------------------------------------------
    batch_max_requests: int = 20
    # Independent requests of a batch run concurrently (each throttled on its own).
    batch_parallel: bool = True
    # Responses come back shuffled (Graph gives no order guarantee).
    batch_shuffle_responses: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def apply(self, changes: dict[str, Any]) -> None:
        """Change fields by name, in place (the simulator's modules share this object); unknown
        names or bad values raise ValueError and change nothing."""
        updated = patched_settings(self, changes, choices=CHOICES)
        for name in changes:
            setattr(self, name, getattr(updated, name))


CHOICES = {"retry_after_style": ("integer", "fractional", "absent")}
