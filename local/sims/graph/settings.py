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
    # Zone of start/end when no `Prefer: outlook.timezone` is sent: "utc", or "event" (the zone
    # the event was written with). GETs answer UTC (documented, event-get); a create answers the
    # event's own zone (documented example in user-post-events; docs-contrib#8645); a PATCH
    # answers UTC (Microsoft's reply in microsoft-graph-docs#8755).
    read_zone_without_prefer: str = "utc"
    create_response_zone: str = "event"
    update_response_zone: str = "utc"
    # POST/PATCH responses ignore `Prefer: outlook.timezone` (reported: docs#8755, docs-contrib#8645).
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
    # HTML bodies come back wrapped in Exchange's <html><head><meta ...></head><body> document
    # (documented examples in user-post-events / event-get).
    wrap_html_bodies: bool = True
    # The next n requests on one event (GET/PATCH/DELETE/cancel/instances) answer a transient
    # 412 ErrorIrresolvableConflict, without any If-Match (reported; counts down).
    transient_conflict_next: int = 0
    # The next n event writes are followed by a server-side change (changeKey, etag and
    # lastModifiedDateTime move, as Exchange's own processing does), so the etag the write
    # returned is already stale (reported; counts down).
    server_touch_after_next_writes: int = 0

    # --- delta -------------------------------------------------------------------------------
    delta_default_page_size: int = 10
    # A series' occurrences are never split across pages, so pages may exceed maxpagesize (reported).
    delta_split_series_across_pages: bool = False
    # Generations of delta tokens kept per mailbox+calendar+window; older ones answer 410.
    delta_token_generations: int = 3
    # Tokens older than this on the simulator clock answer 410 (0 = never).
    delta_token_max_age_seconds: int = 7 * 24 * 3600
    delta_gone_status: int = 410
    # "SyncStateNotFound" as field reports show it; the reference doc spells "syncStateNotFound".
    delta_gone_code: str = "SyncStateNotFound"
    # Deleted occurrences get no @removed tombstone in delta (reported).
    delta_tombstone_deleted_occurrences: bool = False
    # Occurrences arrive as stubs (@odata.type, @odata.etag, id, seriesMasterId, type, start, end)
    # (reported: microsoft-graph-docs#7632, docs-contrib#34).
    delta_occurrence_stubs: bool = True
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
    # The reported delta quirks at once (DELTA_QUIRKS below): setting it True sets those fields,
    # False puts them back to their defaults; fields given in the same PATCH win.
    delta_quirks: bool = False

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
    # Notifications for one URL within this many seconds go out as one POST whose `value` holds
    # them all, at most `max_items` (documented: Graph may batch; window and size are guesses).
    notification_batch_window_seconds: float = 0.05
    notification_batch_max_items: int = 100
    # Every created or updated change is followed by this many `updated` notifications for the same
    # event (reported: one update gave three notifications, a create one `created` + three `updated`).
    extra_updated_notifications: int = 2
    # reauthorizationRequired goes to the lifecycle URL on its own this many minutes before the
    # subscription or the delegated token it was created (or last reauthorized) with expires, and
    # again every `repeat` minutes (0: once) while unanswered. Documented: sent "when the access
    # token is about to expire" or the subscription is; the docs' sample repeats every 15 minutes
    # in the last hour. The lead is a guess.
    reauthorization_challenges: bool = True
    reauthorization_lead_minutes: float = 15.0
    reauthorization_repeat_minutes: float = 15.0
    # Change notifications of a challenged subscription pause this many minutes after the first
    # unanswered challenge, or when its token expires if sooner, until the app reauthorizes or
    # renews (documented: "may continue for a while", then pauses; 0 is the strict guess).
    reauthorization_pause_after_minutes: float = 0.0
    # Changes while paused: "lost" (documented: the app must catch up with delta) or "held"
    # (delivered once reauthorized).
    reauthorization_paused_changes: str = "lost"

    # --- throttling ---------------------------------------------------------------------------
    mailbox_concurrency_limit: int = 4
    mailbox_requests_per_window: int = 10000
    mailbox_window_seconds: int = 600
    # "integer", "fractional" or "absent" (all seen in the field); "mixed" picks one of them at
    # random for every 429, so clients must cope with each (guess: the field shows all three).
    retry_after_style: str = "mixed"
    retry_after_seconds: float = 1.0
    # Under "mixed": the share of 429s that come without Retry-After (guess).
    retry_after_absent_probability: float = 0.25
    # Extra time each Graph request takes, as Graph's own latency does, so the 4-concurrent-requests
    # limit bites for clients that fan out (guess: real requests take 50-500 ms; kept at 20 ms so
    # the simulator's own tests stay quick).
    request_latency_seconds: float = 0.02

    # --- $batch -------------------------------------------------------------------------------
    batch_max_requests: int = 20
    # Independent requests of a batch run concurrently (each throttled on its own).
    batch_parallel: bool = True
    # Responses come back shuffled (Graph gives no order guarantee).
    batch_shuffle_responses: bool = True

    @classmethod
    def create(cls, **fields: Any) -> GraphSettings:
        """Settings as ``PATCH /_sim/settings`` with ``fields`` would leave the defaults:
        ``delta_quirks=True`` brings the preset, and fields given beside it win. (Not done in
        ``__post_init__``: `dataclasses.replace` runs that again on every PATCH, which put the
        preset back over a field set to its default.)"""
        return cls(**with_delta_quirks(fields))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def apply(self, changes: dict[str, Any]) -> None:
        """Change fields by name, in place (the simulator's modules share this object); unknown
        names or bad values raise ValueError and change nothing."""
        changes = with_delta_quirks(changes)
        updated = patched_settings(self, changes, choices=CHOICES)
        for name in changes:
            setattr(self, name, getattr(updated, name))


CHOICES = {
    "retry_after_style": ("integer", "fractional", "absent", "mixed"),
    "reauthorization_paused_changes": ("lost", "held"),
    "read_zone_without_prefer": ("utc", "event"),
    "create_response_zone": ("utc", "event"),
    "update_response_zone": ("utc", "event"),
}

# The documented and reported delta quirks at once (`PATCH /_sim/settings {"delta_quirks": true}`):
# replays of the previous page, an item twice in a round, changes visible only after a lag, an
# empty page with a nextLink, stubs for occurrences, no tombstone for a deleted occurrence.
# (Events leaving the window always come as @removed.)
DELTA_QUIRKS: dict[str, Any] = {
    "delta_replay_items": 1,
    "delta_duplicate_items": 1,
    "delta_visibility_lag_seconds": 2.0,
    "delta_empty_pages": 1,
    "delta_occurrence_stubs": True,
    "delta_tombstone_deleted_occurrences": False,
}


def with_delta_quirks(changes: Any) -> Any:
    """``changes`` with the preset's fields added when it turns ``delta_quirks`` on (or their
    defaults when it turns it off); fields named in ``changes`` itself win."""
    if not isinstance(changes, dict) or not isinstance(changes.get("delta_quirks"), bool):
        return changes
    defaults = GraphSettings.__dataclass_fields__
    preset = DELTA_QUIRKS if changes["delta_quirks"] else {n: defaults[n].default for n in DELTA_QUIRKS}
    return {**preset, **changes}
