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
    "date_filter_zone": ("account", "utc"),
    "time_format": ("offset", "utc"),
    "rewrite_description": ("off", "ticket", "customer"),
}
# The record kinds numbered from ``id_start``.
ID_KINDS = ("appointments", "tickets", "customers", "users")
# Realistic starting ids: a live create returned appointment 5560138523 (above 2^32); customers
# and tickets run to tens and hundreds of millions. PATCH ``{"id_start": SMALL_IDS}`` for readable ids.
REAL_ID_START = {"appointments": 5560138000, "tickets": 104000000, "customers": 28000000, "users": 1300000}
SMALL_IDS = dict.fromkeys(ID_KINDS, 1)


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
    # The zone whose midnights bound date_from/date_to days: "account" (the reference says so,
    # unconfirmed) or "utc".
    date_filter_zone: str = "account"
    # GET /appointments items: wrapped as {"appointment": {...}} (the spec's example) or flat.
    list_items_wrapped: bool = True

    # Ids new records get: each kind counts up from here, or from past the highest id it holds
    # (seeds with explicit ids keep theirs). Defaults are realistic; see REAL_ID_START above.
    id_start: dict[str, int] = field(default_factory=lambda: dict(REAL_ID_START))

    # Responses leave out user_id, user_ids and appointment_type_id: the spec's requests accept them
    # but none of its responses shows them. GET /_sim/appointments always shows the full record.
    withhold_user_fields: bool = True
    # Times as a live account writes them, in the account's offset ("2025-04-11T15:00:53.119+02:00"),
    # or "utc" as the spec's examples ("2019-10-21T01:28:00.000Z").
    time_format: str = "offset"
    # Syncro rewrites what it is sent (seen on a real account, on in some tests): "ticket" replaces the
    # description of an appointment linked to a ticket with ticket, customer and ticket-URL details;
    # "customer" does so for any appointment with a customer (as the spec's example description
    # reads). rewrite_location fills location from the appointment type's location_type: the
    # customer's address, "In Shop", or the type's location_hard_code.
    rewrite_description: str = "off"
    rewrite_location: bool = False

    # 180 requests per minute per client IP (spec). "fixed" windows are epoch-aligned minutes as
    # Rack::Attack counts them; "sliding" counts the last 60 seconds. Syncro's 429 is taken to be
    # Rack::Attack's plain "Retry later" without Retry-After; the header is a setting.
    rate_limit_per_minute: int = 180
    rate_limit_window: str = "fixed"
    retry_after_header: bool = False

    # Validation. The spec's 422 example lists "End at can't be blank", so end_at (or an
    # appointment_duration in minutes) is required on create. PUT's schema lists start_at as
    # required (enforced by default, the stricter reading, although its 422 example answers a PUT of
    # {"summary": ""} with the summary error alone).
    end_at_required: bool = True
    put_requires_start_at: bool = True
    # A PUT is a whole-form save: booleans it omits (all_day, do_not_email, email_customer) become false.
    put_resets_omitted_booleans: bool = True
    # A POST naming no user is assigned to the token's user (inferred).
    assign_creator_when_unassigned: bool = True
    # GET /appointment_types needs Global Admin (spec); others get forbidden_status, which a live
    # account answers with 401 (as for a bad token) and the sentence in forbidden_body.
    appointment_types_require_admin: bool = True
    forbidden_status: int = 401
    # Status for a body that is not JSON although its Content-Type says so (Rails may answer 400).
    malformed_json_status: int = 422
    # Error bodies the spec does not show (the bad-token one is a guess).
    unauthorized_body: dict[str, Any] = field(default_factory=lambda: {"error": "Not Authorized"})
    forbidden_body: dict[str, Any] = field(
        default_factory=lambda: {"error": "Not authorized. Please ask account admin to update your group permissions."}
    )
    not_found_body: dict[str, Any] = field(default_factory=lambda: {"message": "Not found"})

    # Notification Center: "Appointment - Was created" goes to every URL in notification_urls;
    # "Appointment (for me) - Was created" goes to user_notification_urls[str(user_id)] for each
    # assigned user. Syncro's retry policy is unknown: none by default.
    notification_urls: list[str] = field(default_factory=list)
    user_notification_urls: dict[str, list[str]] = field(default_factory=dict)
    # The POST's "text": several lines, the first a sentence ({sentence}: "Appointment was created",
    # or "An appointment for you was created"); {event} and any appointment field may be used.
    notification_text: str = "{sentence}\n{summary}\n{start_at_label}"
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
    _check_id_start(settings.id_start)
    if settings.forbidden_status not in (401, 403):
        raise ValueError("setting 'forbidden_status' must be 401 or 403")


def _check_id_start(id_start: dict[str, Any]) -> None:
    """Every kind named, each a positive integer (a PATCH replaces the whole mapping)."""
    if set(id_start) != set(ID_KINDS) or not all(
        isinstance(value, int) and not isinstance(value, bool) and value >= 1 for value in id_start.values()
    ):
        raise ValueError(f"setting 'id_start' maps each of {', '.join(ID_KINDS)} to a positive integer")
