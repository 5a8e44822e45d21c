"""The Syncro simulator's settings: every behaviour the spec leaves open is one of these.

Defaults follow the spec's letter where it speaks, and the stricter reading where it does not,
so a product that passes against the simulator does not rely on kindness the real API may lack.
Read with ``GET /_sim/settings``; change at run time with ``PATCH /_sim/settings``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from local.sims.control import patched_settings

# Fields whose value must be one of a few words.
CHOICES: dict[str, tuple[str, ...]] = {
    "rate_limit_window": ("fixed", "sliding"),
    "date_filter": ("start", "overlap"),
    "list_order": ("start_at", "-start_at", "id"),
}


@dataclass(frozen=True)
class SyncroSettings:
    # Pagination of GET /appointments. The spec's list example shows no ``meta``; Syncro's other
    # lists carry one. Turning it off makes clients stop at an empty page instead.
    per_page: int = 25
    list_meta: bool = True
    # "Required permission: Appointments - View All": a user seeded without it sees only their own.
    # Appointments are listed in this order (unconfirmed; "start_at" ascending by default).
    list_order: str = "start_at"
    # date_from/date_to: the spec says "start after"/"start before" the date, so "start" filters on
    # start_at; "overlap" keeps any appointment overlapping the range. date_to is exclusive by the
    # spec's words ("start before the date"); true includes the whole date_to day.
    date_filter: str = "start"
    date_to_inclusive: bool = False

    # 180 requests per minute per client IP (spec). "fixed" windows are epoch-aligned minutes as
    # Rack::Attack counts them; "sliding" counts the last 60 seconds. Syncro's 429 is taken to be
    # Rack::Attack's plain "Retry later" without Retry-After; the header is a setting.
    rate_limit_per_minute: int = 180
    rate_limit_window: str = "fixed"
    retry_after_header: bool = False

    # Validation. The spec's 422 example lists "End at can't be blank", so end_at (or an
    # appointment_duration in minutes) is required on create. PUT's schema lists start_at as required, but its
    # 422 example answers a PUT of {"summary": ""} with the summary error alone, so it is not enforced.
    end_at_required: bool = True
    put_requires_start_at: bool = False
    # A POST naming no user is assigned to the token's user (inferred).
    assign_creator_when_unassigned: bool = True
    # GET /appointment_types needs Global Admin (spec); others get 403.
    appointment_types_require_admin: bool = True
    # Status for a body that is not JSON although its Content-Type says so (Rails may answer 400).
    malformed_json_status: int = 422
    # Error bodies the spec does not show.
    unauthorized_body: dict[str, Any] = field(default_factory=lambda: {"error": "Not Authorized"})
    forbidden_body: dict[str, Any] = field(default_factory=lambda: {"error": "Not Authorized for this action"})
    not_found_body: dict[str, Any] = field(default_factory=lambda: {"error": "Not found"})

    # Notification Center: "Appointment - Was created" goes to every URL in notification_urls;
    # "Appointment (for me) - Was created" goes to user_notification_urls[str(user_id)] for each
    # assigned user. Syncro's retry policy is unknown: none by default.
    notification_urls: list[str] = field(default_factory=list)
    user_notification_urls: dict[str, list[str]] = field(default_factory=dict)
    notification_text: str = "{event}: {summary} - {start_at_label}"
    notification_delay_seconds: float = 0.0
    notification_retries: int = 0
    notification_retry_delay_seconds: float = 1.0
    notification_timeout_seconds: float = 5.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def patched(self, changes: Any) -> SyncroSettings:
        """A copy with ``changes`` applied; raises ValueError naming the first bad field."""
        updated = patched_settings(self, changes, choices=CHOICES)
        _check_specific(updated)
        return updated


def _check_specific(settings: SyncroSettings) -> None:
    """What the generic checks cannot know about Syncro's settings."""
    if settings.per_page < 1:
        raise ValueError("setting 'per_page' must be at least 1")
    if not all(isinstance(url, str) for url in settings.notification_urls):
        raise ValueError("setting 'notification_urls' must be a list of URLs")
    if not all(
        isinstance(urls, list) and all(isinstance(url, str) for url in urls)
        for urls in settings.user_notification_urls.values()
    ):
        raise ValueError("setting 'user_notification_urls' maps user ids to lists of URLs")
