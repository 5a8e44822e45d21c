"""The admin overview and its forms: every Syncro user and their link, the Microsoft-account
mappings, releasing a tech's link, one action for one tech (the overview's cards), a tech's
recycle bin. For a signed-in admin (the SyncAdmin role or an admin group at sign-in); each action
is written to the admin log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from http_answer import Answer
from web.flash import flash_from, redirect_with_note
from web.http import WebRequest, page, redirect
from web.page_guards import admin_post_guard, admin_session, error_page, guarded
from web.page_parts import Notice
from web.routes import ADMIN_BIN_PATH, ADMIN_PATH
from web.tech_actions import save_syncro_token, sync_now

if TYPE_CHECKING:
    from web.admin_views import RecycleBinView
    from web.session import Session


@guarded
def admin_page(request: WebRequest) -> Answer:
    from services import token_cipher
    from web import admin_views, pages
    from web.flash import read_note
    from web.links import admin_overview

    session, refused = admin_session(request)
    if refused:
        return refused
    assert session is not None
    note, feed = read_note(token_cipher(), request.cookie)
    view = admin_views.admin_view(
        admin_overview(),
        csrf_token=session.csrf_token,
        flash=note or flash_from(request.query),
        signed_in_as=session.ms_email,
        new_feed_url=feed,
    )
    return page(200, pages.render_admin(view))


@guarded
def admin_overrides(request: WebRequest) -> Answer:
    from web.links import record_admin_action, set_override

    admin, refused = admin_post_guard(request)
    if refused:
        return refused
    assert admin is not None
    email = request.form.get("ms_email", "").strip()
    raw_id = request.form.get("syncro_user_id", "").strip()
    if not email or "@" not in email or len(email) > 256:
        return error_page("bad_request", status=400, detail="Enter the Microsoft account's email address.")
    if raw_id and _tech_id(raw_id) is None:
        return error_page("bad_request", status=400, detail="A Syncro user id is a whole number.")
    problem = set_override(email, _tech_id(raw_id))
    if problem:
        return error_page("bad_request", status=400, detail=problem)
    action = "override" if raw_id else "override_removed"
    record_admin_action(_actor(admin), action, _tech_id(raw_id), detail=email)
    return redirect(f"{ADMIN_PATH}?saved=1")


@guarded
def admin_remove(request: WebRequest) -> Answer:
    """An admin releases a tech's link (so another account may link), turns their feed off and
    signs them out everywhere."""
    from web.links import record_admin_action, remove_tech

    admin, refused = admin_post_guard(request)
    if refused:
        return refused
    assert admin is not None
    tech = _tech_id(request.form.get("syncro_user_id", ""))
    if tech is None:
        return error_page("bad_request", status=400, detail="A Syncro user id is a whole number.")
    remove_tech(tech)
    record_admin_action(_actor(admin), "remove", tech)
    return redirect(f"{ADMIN_PATH}?removed=1")


def _tech_id(raw: str) -> int | None:
    """A Syncro user id from a form or query field: ASCII digits only (no sign, spaces or other
    scripts' digits, which int() would take), in range; None otherwise."""
    from web.ids import syncro_user_id_from

    return syncro_user_id_from(raw.strip())


def _actor(session: Session) -> str:
    """Who did an admin action, for the admin log: the account's sign-in name and its ids."""
    return f"{session.ms_email} (Microsoft account {session.account})"


# --- the admin's actions for one tech (the overview's cards) ------------------------------------

_ADMIN_ACTIONS = ("sync", "issue_feed", "revoke_feed", "set_token", "clear_token", "restore", "confirm_match")


@guarded
def admin_tech(request: WebRequest) -> Answer:
    """One action of the admin overview for one tech: ``action`` and ``syncro_user_id`` in the form."""
    admin, refused = admin_post_guard(request)
    if refused:
        return refused
    assert admin is not None
    action = request.form.get("action", "")
    tech = _tech_id(request.form.get("syncro_user_id", ""))
    if action not in _ADMIN_ACTIONS:
        return error_page("bad_request", status=400, detail="That is not an action of the admin overview.")
    if tech is None:
        return error_page("bad_request", status=400, detail="A Syncro user id is a whole number.")
    outcome = _ADMIN_HANDLERS[action](admin, tech, request.form)
    if outcome.happened:  # a refused action changed nothing: nothing to log
        from web.links import record_admin_action

        record_admin_action(_actor(admin), action, tech, detail=outcome.detail)
    target = outcome.target or f"{ADMIN_PATH}#card-{tech}"
    return redirect_with_note(target, outcome.note, feed_url=outcome.feed_url)


@dataclass(frozen=True)
class _Outcome:
    """What one admin action did: the notice for the page, a detail for the admin log, a feed URL
    to show once, where to go (default: the tech's card). ``happened`` False: refused, unchanged."""

    note: Notice
    detail: str = ""
    feed_url: str = ""
    target: str = ""
    happened: bool = True


def _refused(text: str, target: str = "") -> _Outcome:
    return _Outcome(Notice("problem", text), target=target, happened=False)


def _admin_sync(admin: Session, tech: int, form: Mapping[str, str]) -> _Outcome:
    note, status = sync_now(tech)
    if status is None:
        return _refused(note.text)
    return _Outcome(note, detail=status)


def _admin_issue_feed(admin: Session, tech: int, form: Mapping[str, str]) -> _Outcome:
    from ics.feed_tokens import issue_feed_url
    from services import storage_account

    url = issue_feed_url(storage_account(), tech)
    note = Notice("done", "A new feed URL is at the top of this page; the old one stopped working.")
    return _Outcome(note, feed_url=f"{tech} {url}", target=ADMIN_PATH)


def _admin_revoke_feed(admin: Session, tech: int, form: Mapping[str, str]) -> _Outcome:
    from ics.feed_tokens import revoke_feed_urls
    from services import storage_account

    revoked = revoke_feed_urls(storage_account(), tech)
    return _Outcome(Notice("done", "The feed URL is off: apps subscribed to it get nothing now."), f"{revoked} revoked")


def _admin_set_token(admin: Session, tech: int, form: Mapping[str, str]) -> _Outcome:
    refused = save_syncro_token(tech, form.get("token", ""), set_by="admin")
    if refused:
        return _refused(refused[1])
    return _Outcome(Notice("done", "Their Syncro API token is saved: their appointments arrive within a minute."))


def _admin_clear_token(admin: Session, tech: int, form: Mapping[str, str]) -> _Outcome:
    from services import syncro_token_service

    syncro_token_service().forget(tech)
    words = "Their Syncro API token is cleared: their appointments are not read until one is set."
    return _Outcome(Notice("warning", words))


def _admin_restore(admin: Session, tech: int, form: Mapping[str, str]) -> _Outcome:
    from services import sync_deps
    from storage.errors import NotFound
    from storage.recycle_bin import is_entry_id
    from sync.recycle import restore_entry

    bin_page = f"{ADMIN_BIN_PATH}?syncro_user_id={tech}"
    entry = form.get("entry", "")
    if not is_entry_id(entry):
        return _refused("No such recycle-bin entry for this technician.", bin_page)
    try:
        restore_entry(tech, entry, deps=sync_deps())
    except NotFound:
        return _refused("No such recycle-bin entry for this technician (restored already?).", bin_page)
    note = Notice("done", "Restored: it is back where it was deleted, with every field it had.")
    return _Outcome(note, detail=entry, target=bin_page)


def _admin_confirm_match(admin: Session, tech: int, form: Mapping[str, str]) -> _Outcome:
    from web.links import confirm_match

    account = confirm_match(tech, by=admin.ms_email)
    if account is None:
        return _refused("That technician is not linked (any more): there is no match to confirm.")
    return _Outcome(Notice("done", f"Confirmed: {account} is this technician's Microsoft account."), account)


_ADMIN_HANDLERS = {
    "sync": _admin_sync,
    "issue_feed": _admin_issue_feed,
    "revoke_feed": _admin_revoke_feed,
    "set_token": _admin_set_token,
    "clear_token": _admin_clear_token,
    "restore": _admin_restore,
    "confirm_match": _admin_confirm_match,
}


@guarded
def admin_bin(request: WebRequest) -> Answer:
    """A tech's recycle bin, for an admin, with a Restore button per entry."""
    from services import token_cipher
    from web import pages
    from web.flash import read_note

    admin, refused = admin_session(request)
    if refused:
        return refused
    assert admin is not None
    tech = _tech_id(request.query.get("syncro_user_id", ""))
    if tech is None:
        return error_page("bad_request", status=400, detail="A Syncro user id is a whole number.")
    note, _ = read_note(token_cipher(), request.cookie)
    view = _recycle_bin_view(tech, admin, note)
    return page(200, pages.render_recycle_bin(view))


def _recycle_bin_view(tech: int, admin: Session, note: Notice | None) -> RecycleBinView:
    from services import storage_account, syncro_client
    from web.admin_views import BinEntry, RecycleBinView

    account = storage_account()
    name = next((u.full_name for u in syncro_client().users() if u.id == tech), "Syncro user")
    entries = tuple(
        BinEntry(
            entry_id=e.entry_id,
            what=str((e.content or {}).get("summary") or "an appointment"),
            where="Syncro" if e.side == "syncro" else "Outlook",
            deleted_at=e.deleted_at,
            reason=e.reason or "deleted on the other side",
        )
        for e in account.recycle_bin.list_entries(tech)
    )
    return RecycleBinView(
        tech=f"{name} (#{tech})",
        syncro_user_id=str(tech),
        entries=entries,
        now=account.clock(),
        signed_in_as=admin.ms_email,
        csrf_token=admin.csrf_token,
        flash=note,
    )
