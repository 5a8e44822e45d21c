"""``POST /api/syncro/notifications/{secret}``: Syncro's Notification Center, "Appointment was created".

Syncro signs nothing, so the payload is only a hint:

- the secret in the path must equal ``SYNCRO_WEBHOOK_SECRET`` (compared as hashes, in constant
  time): otherwise 403 and nothing else happens;
- the body is Syncro's ``{"text": "...", "attributes": {<the appointment>}}``: its ``id`` is all we
  take from it (413, 415 and 400 as for Graph's webhooks);
- the appointment is read again from Syncro's API; its ``user_id``/``user_ids`` name the techs. When
  Syncro's responses leave those out (see `sync.ownership.OwnershipMode`), each linked tech's own
  listing of that day (their Syncro API token, ``mine=true``) says whose it is. The payload never
  names the owner: anyone holding the URL could otherwise copy any appointment into another
  tech's mirror and feed;
- every Syncro request comes out of the app's shared budget (`services.syncro_budget`, the
  webhooks' reserved share and the common pool) and of this instance's burst guard
  (`services.webhook_budget`): a burst beyond either (a bulk import) is answered 202 and left to
  the poller's window scan, which finds every appointment created in its window;
- for each linked tech, the appointment goes into the Syncro mirror (what the poller keeps and the
  sync engine reads, so the job finds it without waiting for the next poll) when it starts within
  the sync window, and one sync request is made (`realtime.enqueue.request_sync`); then 202 with
  counts.

An appointment already gone (404) is answered 202 with nothing queued. Syncro unreachable or
throttling us: 503 with ``Retry-After``; the poller still finds the appointment within its window.
Updates and deletions never come here (Syncro sends nothing for them): the poller finds those.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from http_answer import Answer, error_answer, json_answer
from realtime.notifications import BadRequest, read_json, service_defaults
from storage.errors import NotFound, StorageUnavailable
from sync.job_reasons import JobReason

if TYPE_CHECKING:
    from storage.account import StorageAccount
    from sync.budget import RequestBudget
    from sync.syncro import SyncroClient

log = logging.getLogger(__name__)

JOB_REASON = JobReason.SYNCRO_NOTIFICATION
MAX_SYNCRO_ID = 2**63 - 1


def secret_matches(presented: str, expected: str) -> bool:
    """Constant time, and the time does not depend on the lengths either (hashes are compared)."""
    digest = hashlib.sha256
    return bool(expected) and hmac.compare_digest(
        digest(presented.encode("utf-8")).digest(), digest(expected.encode("utf-8")).digest()
    )


def appointment_id_of(data: Any) -> int:
    """The appointment id of a Notification Center payload; raises BadRequest."""
    attributes = data.get("attributes") if isinstance(data, dict) else None
    raw = attributes.get("id") if isinstance(attributes, dict) else None
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw <= MAX_SYNCRO_ID:
        raise BadRequest(
            error_answer(400, "bad_payload", 'Expected {"attributes": {"id": <appointment id>, ...}} from Syncro.')
        )
    return raw


def receive_syncro_notification(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    account: StorageAccount | None = None,
    syncro: SyncroClient | None = None,
    expected_secret: str | None = None,
    max_bytes: int | None = None,
    now: datetime | None = None,
    budget: RequestBudget | None = None,
    owner_probe: Callable[[Mapping[str, Any], StorageAccount, RequestBudget], frozenset[int]] | None = None,
) -> Answer:
    """Answer one Notification Center POST (see the module docstring). Never raises."""
    from sync.budget import Caller, spending_as

    with spending_as(Caller.WEBHOOK):
        return _receive(
            secret,
            headers,
            body,
            account=account,
            syncro=syncro,
            expected_secret=expected_secret,
            max_bytes=max_bytes,
            now=now,
            budget=budget,
            owner_probe=owner_probe,
        )


def _receive(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    account: StorageAccount | None,
    syncro: SyncroClient | None,
    expected_secret: str | None,
    max_bytes: int | None,
    now: datetime | None,
    budget: RequestBudget | None,
    owner_probe: Callable[[Mapping[str, Any], StorageAccount, RequestBudget], frozenset[int]] | None,
) -> Answer:
    from sync.errors import SyncroBudgetExhausted, SyncroError, SyncroNotFound

    try:
        expected = expected_secret if expected_secret is not None else _configured_secret()
        if not secret_matches(secret, expected):
            log.warning("Syncro webhook called with a wrong secret")
            return error_answer(403, "forbidden", "This webhook URL is not valid.")
        account, max_bytes = service_defaults(account, max_bytes)
        payload = read_json(headers, body, max_bytes=max_bytes)
        appointment_id = appointment_id_of(payload)
        syncro = syncro or _syncro_client()
        budget = budget or _webhook_budget()
        if budget.available() < 1:  # a burst (a bulk import): the poller's window scan finds them all
            log.info("Syncro webhook: over its request budget; appointment %s is left to the poller", appointment_id)
            return _accepted(0, 0, "Many notifications at once; the next poll picks this appointment up.")
        try:
            appointment = syncro.get_appointment(appointment_id)
        except SyncroNotFound:
            return _accepted(0, 0, "The appointment no longer exists.")
        except SyncroBudgetExhausted:  # nothing was sent: the app's Syncro budget is spent for now
            log.info(
                "Syncro webhook: the shared Syncro budget is spent; appointment %s is left to the poller",
                appointment_id,
            )
            return _accepted(0, 0, "Syncro's request budget is spent for now; the next poll picks this appointment up.")
        finally:
            budget.charge(1)
        owners = _owners(appointment)
        if owners is None:  # Syncro withholds the owner fields: ask the techs' own listings
            owners = (owner_probe or _owners_by_listing)(appointment, account, budget)
        if not owners:
            log.warning(
                "Syncro webhook: appointment %s names no linked technician; the poller will judge it", appointment_id
            )
            return _accepted(0, 0, "Syncro does not say whose appointment this is; the next poll decides.")
        techs = _linked(account, owners)
        if techs and not _in_window(appointment, now or account.clock()):
            return _accepted(len(techs), 0, "The appointment is outside the sync window.")
        for tech in techs:
            _mirror(account, tech, appointment, now or account.clock())
        queued = sum(_request_sync(account, tech, now) for tech in techs)
    except BadRequest as refused:
        return refused.answer
    except SyncroError as error:
        log.warning("Syncro webhook: the appointment could not be read: %s", error)
        return error_answer(
            503, "syncro_unavailable", "Syncro did not answer; send again later.", headers={"Retry-After": "60"}
        )
    except StorageUnavailable:
        return error_answer(
            503, "storage_unavailable", "Storage did not answer; send again later.", headers={"Retry-After": "60"}
        )
    except Exception:
        log.exception("Syncro notification could not be handled")
        return error_answer(503, "unavailable", "The notification could not be handled now; send again later.")
    from ops.logs import log_event

    for tech in techs or [None]:
        log_event(
            log,
            "webhook.syncro",
            tech=tech,
            job_id=None,
            correlation_id=str(appointment_id),
            appointment=appointment_id,
            queued=queued,
        )
    return _accepted(len(techs), queued)


def _webhook_budget() -> RequestBudget:
    import services

    return services.webhook_budget()


def _owners_by_listing(
    appointment: Mapping[str, Any], account: StorageAccount, budget: RequestBudget
) -> frozenset[int]:
    """Whose appointment this is when Syncro's responses do not say: each linked tech's own listing
    (their Syncro API token, ``mine=true``) of the day it starts, one request per tech, within the
    webhook budget. Techs without a token, or past the budget, are left to the poller."""
    import services
    from storage.links import LinkStatus
    from sync.errors import SyncroBudgetExhausted, SyncroError
    from sync.poll_diff import start_day

    day = start_day(appointment, services.sync_deps().account_zone())
    if day is None:
        return frozenset()
    active = [link.syncro_user_id for link in account.links.list_links() if link.status is LinkStatus.ACTIVE]
    clients = services.syncro_token_service().clients(active)
    owners: set[int] = set()
    try:
        for tech, client in sorted(clients.items()):
            if budget.available() < 1:
                break
            try:
                page = client.list_appointments(date_from=day, date_to=day + timedelta(days=1), mine=True)
            except SyncroBudgetExhausted:
                break  # the rest are left to the poller, as past the burst guard
            except SyncroError as error:
                log.warning("Syncro webhook: tech %s's own listing failed: %s", tech, error)
                continue
            finally:
                budget.charge(1)
            if any(item.get("id") == appointment.get("id") for item in page.items):
                owners.add(tech)
    finally:
        for client in clients.values():
            client.close()
    return frozenset(owners)


def _request_sync(account: StorageAccount, tech: int, now: datetime | None) -> bool:
    from realtime.enqueue import request_sync

    return request_sync(account, tech, JOB_REASON, now=now)


def _owners(appointment: Mapping[str, Any]) -> frozenset[int] | None:
    """The techs Syncro's own answer names, or None when it withholds the owner fields. Only what
    Syncro answered counts: the payload is unsigned, so its ``user_id`` is never read."""
    from sync.ownership import owners_of

    try:
        return owners_of(appointment)
    except (TypeError, ValueError):
        return None


def _in_window(appointment: Mapping[str, Any], now: datetime) -> bool:
    from settings import get_settings
    from sync.times import parse_time

    start = parse_time(appointment.get("start_at"))
    if start is None:
        return True  # an unreadable start (or one without an offset) is the sync's to judge
    settings = get_settings()
    return now - timedelta(days=settings.window_past_days) <= start < now + timedelta(days=settings.window_future_days)


def _mirror(account: StorageAccount, tech: int, appointment: Mapping[str, Any], now: datetime) -> None:
    """Record the appointment as the poller would (`MirrorStore.put_entry` keeps a newer or the
    same version already there)."""
    from storage.mirror import MirrorEntry
    from sync.poll_diff import content_hash

    updated_at = str(appointment.get("updated_at") or "")
    digest = content_hash(appointment)
    account.mirror.put_entry(MirrorEntry(tech, int(appointment["id"]), updated_at, digest, dict(appointment), now))


def _linked(account: StorageAccount, owners: frozenset[int]) -> list[int]:
    linked = []
    for tech in sorted(owners):
        try:
            account.links.get_link(tech)
        except NotFound:
            continue
        linked.append(tech)
    return linked


def _accepted(techs: int, queued: int, detail: str = "") -> Answer:
    body = {"techs": techs, "queued": queued, **({"detail": detail} if detail else {})}
    return json_answer(body, status=202)


def _configured_secret() -> str:
    from settings import get_settings

    return get_settings().syncro_webhook_secret


def _syncro_client() -> SyncroClient:
    import services

    return services.syncro_client()
