"""What a technician and an admin can do with links, behind the settings page and the admin
overview: read the state of a link, choose calendar and direction, unlink, issue a new feed URL,
map a Microsoft account to a Syncro user. Storage and the services come from `services`, the
composition root under this layer."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import services
from storage.errors import ConcurrencyConflict, NotFound
from sync.job_reasons import JobReason

if TYPE_CHECKING:
    from realtime.status import BackgroundStatus, QueueStatus
    from storage.account import StorageAccount
    from storage.admin_log import AdminAction
    from storage.conflicts import ConflictRecord
    from storage.job_status import PollStatus
    from storage.links import Link
    from storage.syncro_tokens import SyncroTokenRecord
    from sync.graph import Calendar
    from sync.syncro import SyncroUser

# The settings page lists calendars from Graph; a tech who saves right after viewing should not
# cost a second Graph call, nor should reloading the page. Short enough that a new calendar shows soon.
CALENDAR_CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class LinkOverview:
    """Everything the settings page shows about one technician."""

    syncro_user_id: int
    link: Link | None
    calendars: list[Calendar] = field(default_factory=list)
    calendars_problem: str = ""  # why the list is empty, in words
    feed_issued_at: datetime | None = None
    conflicts: tuple[ConflictRecord, ...] = ()  # the latest the sync settled, newest first
    # Syncro hides appointment owners (sync.poller ownership "tokens"): the tech's own Syncro API
    # token is needed; ``syncro_token`` says when it was set (never the token itself).
    owners_hidden: bool = False
    syncro_token: SyncroTokenRecord | None = None
    # The background work for a linked tech: last job, subscription, last notification and poll.
    background: BackgroundStatus | None = None
    # Titles of the tech's own events left in a calendar no longer synced (a calendar switch):
    # they stay there, their Syncro copies stay in Syncro, and neither follows the other any more.
    released: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdminRow:
    user: SyncroUser
    link: Link | None
    override_email: str = ""
    background: BackgroundStatus | None = None  # for a linked tech
    feed_on: bool = False  # holds an active feed URL
    syncro_token: SyncroTokenRecord | None = None  # when and by whom their Syncro token was set


@dataclass(frozen=True)
class AdminOverview:
    rows: list[AdminRow]
    overrides: dict[str, int]
    unknown_override_ids: list[int] = field(default_factory=list)  # overrides naming no Syncro user
    # Syncro hides appointment owners: what that means, and the linked techs still without a token.
    ownership_note: str = ""
    without_syncro_token: frozenset[int] = frozenset()
    queue: QueueStatus | None = None  # jobs waiting and poisoned
    poll: PollStatus | None = None  # the account's last Syncro poll
    admin_log: tuple[AdminAction, ...] = ()  # the latest admin actions, newest first


class _CalendarCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[float, list[Calendar]]] = {}

    def get(self, syncro_user_id: int) -> list[Calendar] | None:
        with self._lock:
            entry = self._entries.get(syncro_user_id)
        if entry and time.monotonic() - entry[0] < CALENDAR_CACHE_SECONDS:
            return entry[1]
        return None

    def put(self, syncro_user_id: int, calendars: list[Calendar]) -> None:
        with self._lock:
            self._entries[syncro_user_id] = (time.monotonic(), calendars)

    def forget(self, syncro_user_id: int) -> None:
        with self._lock:
            self._entries.pop(syncro_user_id, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_calendars = _CalendarCache()
services.forget_on_reset(_calendars.clear)  # new settings may mean another tenant


def forget_cached_calendars(syncro_user_id: int) -> None:
    _calendars.forget(syncro_user_id)


def _link(syncro_user_id: int) -> Link | None:
    from services import storage_account

    try:
        return storage_account().links.get_link(syncro_user_id)
    except NotFound:
        return None


def calendars_of(syncro_user_id: int) -> list[Calendar]:
    """The tech's calendars, from Graph at most once a minute. Raises NeedsRelink or ServiceError."""
    from services import graph_client_for

    cached = _calendars.get(syncro_user_id)
    if cached is None:
        cached = graph_client_for(syncro_user_id).calendars()
        _calendars.put(syncro_user_id, cached)
    return cached


def linking_overview(syncro_user_id: int) -> LinkOverview:
    from oauth.tokens import NeedsRelink
    from services import storage_account, syncro_token_service
    from storage.links import LinkStatus
    from sync.errors import ServiceError
    from sync.ownership import OwnershipMode, read_ownership

    link = _link(syncro_user_id)
    calendars: list[Calendar] = []
    problem = ""
    if link is not None and link.status is not LinkStatus.NEEDS_RELINK:
        try:
            calendars = calendars_of(syncro_user_id)
        except NeedsRelink:
            link = _link(syncro_user_id)  # now marked, with the reason
        except ServiceError as error:
            problem = f"Your calendars could not be read from Microsoft 365 just now ({error}). Reload in a minute."
    feeds = [t for t in storage_account().feed_tokens.list_for_tech(syncro_user_id) if t.active]
    issued = max((t.created_at for t in feeds), default=None)
    conflicts = tuple(storage_account().conflicts.recent(syncro_user_id)) if link is not None else ()
    owners_hidden = read_ownership(storage_account().cursors) is OwnershipMode.TOKENS
    token = syncro_token_service().status(syncro_user_id)
    background = None
    released: tuple[str, ...] = ()
    if link is not None:
        from realtime.status import background_status
        from storage.mappings import MappingState

        background = background_status(storage_account(), syncro_user_id)
        rows = storage_account().mappings.list_mappings(syncro_user_id)
        released = tuple(
            str((row.base or {}).get("summary") or "An event") for row in rows if row.state is MappingState.RELEASED
        )
    return LinkOverview(
        syncro_user_id, link, calendars, problem, issued, conflicts, owners_hidden, token, background, released
    )


def needs_syncro_token(syncro_user_id: int) -> bool:
    """Whether the tech must give their own Syncro API token before their appointments can flow:
    Syncro hides owners (known from a poll, or asked now with one listing) and they have none."""
    from datetime import timedelta

    from services import storage_account, syncro_client, syncro_token_service
    from sync.errors import ServiceError
    from sync.ownership import OwnershipMode, probe_ownership, read_ownership

    if syncro_token_service().status(syncro_user_id) is not None:
        return False
    account = storage_account()
    mode = read_ownership(account.cursors)
    if mode is OwnershipMode.UNKNOWN:
        today = account.clock().date()
        try:
            page = syncro_client().list_appointments(date_from=today, date_to=today + timedelta(days=60))
        except ServiceError:
            return False  # Syncro is not answering: the poller finds out, and the page says so then
        mode = probe_ownership(account.cursors, page.items, now=account.clock())
    return mode is OwnershipMode.TOKENS


def save_link_choices(
    syncro_user_id: int, *, calendar_id: str, two_way: bool, share_private: bool = False
) -> str | None:
    """Store the tech's calendar, direction and whether private events show their details in
    Syncro; the name of a refusal, or None when saved."""
    from services import storage_account

    links = storage_account().links
    for _ in range(2):  # one retry if the sync engine updated the row meanwhile
        link = _link(syncro_user_id)
        if link is None:
            return "not_linked"
        calendar = next((c for c in calendars_of(syncro_user_id) if c.id == calendar_id and c.can_edit), None)
        if calendar is None:
            return "unknown_calendar"
        try:
            changes = {"calendar_id": calendar.id, "calendar_name": calendar.name, "two_way": two_way}
            saved = link.with_changes(**changes, share_private=share_private)
            links.update_link(saved)
            from web.settings_saved import queue_after_save

            queue_after_save(storage_account(), link, saved)  # sync now, not at the next timer
            if calendar.id != link.calendar_id:
                from realtime.lifecycle import schedule_ensure

                schedule_ensure(storage_account(), syncro_user_id)  # the subscription follows the calendar
            return None
        except ConcurrencyConflict:
            continue
    return "conflict"


def unlink(syncro_user_id: int, *, remove_outlook_events: bool) -> None:
    """Forget the tech's Microsoft token and link. With ``remove_outlook_events`` the link stays,
    marked for removal, until the sync engine has taken our [S] events out of Outlook with it."""
    from services import storage_account, token_service
    from storage.links import LinkStatus

    link = _link(syncro_user_id)
    _calendars.forget(syncro_user_id)
    if link is None:
        return
    if remove_outlook_events:
        marked = link.with_changes(
            status=LinkStatus.UNLINKING,
            remove_outlook_events=True,
            status_detail="Unlinking: removing the [S] events from Outlook, then forgetting the account.",
        )
        try:
            storage_account().links.update_link(marked)
        except ConcurrencyConflict:
            unlink(syncro_user_id, remove_outlook_events=True)
            return
        from realtime.enqueue import request_sync

        request_sync(storage_account(), syncro_user_id, JobReason.UNLINK)  # the engine removes the events now
        return
    from services import subscription_deps
    from sync.subscriptions import remove_for_link

    remove_for_link(syncro_user_id, deps=subscription_deps())  # while the token still works
    token_service().forget(syncro_user_id)
    storage_account().links.delete_link(syncro_user_id)


def new_feed_url(syncro_user_id: int) -> str:
    """Revoke the tech's feed URLs and issue a new one (`ics.feed_tokens`)."""
    from ics.feed_tokens import issue_feed_url
    from services import storage_account

    return issue_feed_url(storage_account(), syncro_user_id)


def remove_tech(syncro_user_id: int) -> None:
    """An admin releases a tech's link: unlink (their [S] events stay in Outlook), turn their feed
    URL off and end every session of theirs. Anyone matching the Syncro user may then link again."""
    from ics.feed_tokens import revoke_feed_urls
    from services import storage_account
    from storage.session_versions import tech_subject

    unlink(syncro_user_id, remove_outlook_events=False)
    revoke_feed_urls(storage_account(), syncro_user_id)
    storage_account().session_versions.bump(tech_subject(syncro_user_id))


def record_admin_action(actor: str, action: str, syncro_user_id: int | None = None, detail: str = "") -> None:
    """Add an entry to the admin log (`storage.admin_log`). Never fails the action it records:
    the action is done; a storage hiccup is logged instead."""
    import logging

    from services import storage_account
    from storage.admin_log import AdminAction
    from storage.errors import StorageError

    account = storage_account()
    try:
        account.admin_log.record(AdminAction(account.clock(), actor, action, syncro_user_id, detail))
    except StorageError:
        logging.getLogger(__name__).warning("could not record the admin action %s", action, exc_info=True)


def admin_overview() -> AdminOverview:
    from realtime.status import queue_status
    from services import storage_account, syncro_client
    from storage.job_status import JobStatusStore
    from storage.links import LinkStatus
    from storage.syncro_tokens import SyncroTokenStore
    from sync.ownership import OwnershipMode, OwnershipUnknown, read_ownership

    account = storage_account()
    users = syncro_client().users()
    links = {link.syncro_user_id: link for link in account.links.list_links()}
    overrides = account.overrides.all_overrides()
    by_user = {user_id: email for email, user_id in overrides.items()}
    poll = JobStatusStore(account).get_poll_status()
    backgrounds = _backgrounds(account, [user.id for user in users if user.id in links], poll)
    feeds = account.feed_tokens.techs_with_a_feed()
    tokens = {record.syncro_user_id: record for record in SyncroTokenStore(account).list_tokens()}
    rows = [
        AdminRow(
            user,
            links.get(user.id),
            by_user.get(user.id, ""),
            backgrounds.get(user.id),
            feed_on=user.id in feeds,
            syncro_token=tokens.get(user.id),
        )
        for user in users
    ]
    known = {user.id for user in users}
    unknown = sorted({i for i in overrides.values() if i not in known})
    queue = queue_status(account)
    log = tuple(account.admin_log.latest())
    if read_ownership(account.cursors) is not OwnershipMode.TOKENS:
        return AdminOverview(rows, overrides, unknown, queue=queue, poll=poll, admin_log=log)
    missing = frozenset(tech for tech, link in links.items() if link.status is LinkStatus.ACTIVE) - set(tokens)
    note = OwnershipUnknown(tuple(sorted(missing))).explanation
    return AdminOverview(rows, overrides, unknown, note, missing, queue=queue, poll=poll, admin_log=log)


_STATUS_READERS = 8  # two point reads per tech (subscription, waiting job): in parallel for a large team


def _backgrounds(account: StorageAccount, techs: list[int], poll: PollStatus) -> dict[int, BackgroundStatus]:
    """Each linked tech's background status: the job rows in one query, the rest read per tech."""
    from concurrent.futures import ThreadPoolExecutor

    from realtime.enqueue import pending_since
    from realtime.status import BackgroundStatus
    from storage.job_status import JobStatusStore, TechJobStatus

    jobs = {status.syncro_user_id: status for status in JobStatusStore(account).list_statuses()}

    def read(tech: int) -> BackgroundStatus:
        return BackgroundStatus(
            syncro_user_id=tech,
            job=jobs.get(tech) or TechJobStatus(tech),
            poll=poll,
            subscription=account.subscriptions.get_status(tech),
            job_waiting_since=pending_since(account, tech),
        )

    if len(techs) <= 1:
        return {tech: read(tech) for tech in techs}
    with ThreadPoolExecutor(max_workers=min(_STATUS_READERS, len(techs))) as pool:
        return dict(zip(techs, pool.map(read, techs), strict=True))


def set_override(ms_email: str, syncro_user_id: int | None) -> str | None:
    """Map a Microsoft account to a Syncro user (None removes the mapping); a problem in words, or None."""
    from services import storage_account, syncro_client

    overrides = storage_account().overrides
    if syncro_user_id is None:
        overrides.remove_override(ms_email)
        return None
    if syncro_user_id not in {user.id for user in syncro_client().users()}:
        return f"Syncro has no user with id {syncro_user_id}."
    overrides.set_override(ms_email, syncro_user_id)
    return None


def confirm_match(syncro_user_id: int, *, by: str) -> str | None:
    """An admin confirms the linked Microsoft account is this Syncro user's; the account's name,
    or None when the tech is not linked."""
    from services import storage_account

    links = storage_account().links
    for _ in range(3):  # the sync engine may write the row meanwhile
        link = _link(syncro_user_id)
        if link is None:
            return None
        try:
            links.update_link(link.with_changes(match_confirmed_by=by, match_confirmed_at=storage_account().clock()))
            return link.ms_username or link.email
        except ConcurrencyConflict:
            continue
    raise ConcurrencyConflict(f"the link of {syncro_user_id} kept changing")
