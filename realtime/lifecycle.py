"""``POST /api/graph/lifecycle`` and the subscription-job queue behind it.

The endpoint checks requests as the notification URL does (`realtime.notifications`: the same
handshake, the same 413/415/400, unknown subscriptions and wrong clientStates dropped with a 202)
and answers 202 at once. What each lifecycle event asks for:

- ``reauthorizationRequired``: a subscription job renews the subscription (a renewal
  reauthorizes it; one Graph no longer has is replaced), then asks for a sync, whose delta round
  catches up with whatever changed while notifications were paused;
- ``subscriptionRemoved``: a subscription job creates a new subscription, then asks for a sync;
- ``missed``: a sync is asked for at once (delta finds what the lost notifications were about).

Subscription work calls Graph (and a create makes Graph call us back to validate the URL), so it
runs from the ``subscription-jobs`` queue, never inside the webhook. `schedule_ensure` puts the
same kind of job on it when a link is made or its calendar changes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from http_answer import Answer, error_answer
from ops.logs import log_event
from realtime import SUBSCRIPTION_QUEUE
from realtime.notifications import (
    ACCEPTED,
    BadRequest,
    failure_answer,
    log_rejected,
    read_post,
    records,
    sort_items,
    validation_answer,
)
from storage.errors import NotFound
from storage.table import translated_errors
from sync.job_reasons import JobReason

if TYPE_CHECKING:
    from storage.account import StorageAccount
    from sync.subscriptions import Outcome, SubscriptionDeps

log = logging.getLogger(__name__)

REAUTHORIZATION_REQUIRED = "reauthorizationRequired"
SUBSCRIPTION_REMOVED = "subscriptionRemoved"
MISSED = "missed"


class Action(StrEnum):
    ENSURE = "ensure"  # make the tech's subscription right (new link, new calendar)
    REAUTHORIZE = "reauthorize"
    REPLACE = "replace"  # Graph removed it: create a new one


@dataclass(frozen=True)
class SubscriptionJob:
    action: Action
    syncro_user_id: int
    subscription_id: str
    requested_at: str  # ISO 8601 UTC

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SubscriptionJob:
        """Raises ValueError on anything that is not a subscription job."""
        try:
            data = json.loads(text)
            return cls(
                Action(data["action"]),
                int(data["syncro_user_id"]),
                str(data["subscription_id"]),
                str(data["requested_at"]),
            )
        except (KeyError, TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"not a subscription job: {error}") from None


class SubscriptionRetry(Exception):
    """Raised by a job to be tried again (the tech's subscriptions are being worked on elsewhere,
    or Graph failed): the host retries the message after its visibility timeout."""


def enqueue_job(account: StorageAccount, job: SubscriptionJob) -> None:
    """Raises StorageUnavailable."""
    with translated_errors(SUBSCRIPTION_QUEUE, "(send)"):
        client = account.queue(SUBSCRIPTION_QUEUE)
        client.send_message(job.to_json())


def schedule_ensure(account: StorageAccount, syncro_user_id: int) -> None:
    """Ask for the tech's subscription to be made right soon (after linking or a calendar change)
    without waiting for Graph. Raises StorageUnavailable."""
    enqueue_job(account, SubscriptionJob(Action.ENSURE, syncro_user_id, "", account.clock().isoformat()))


# -- the endpoint --------------------------------------------------------------------------------


def receive_lifecycle(
    params: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    account: StorageAccount | None = None,
    max_bytes: int | None = None,
    now: datetime | None = None,
) -> Answer:
    """Answer one POST to the lifecycle URL (see the module docstring). Never raises."""
    from realtime.enqueue import request_sync

    handshake = validation_answer(params)
    if handshake is not None:
        return handshake
    try:
        account, items = read_post(headers, body, account=account, max_bytes=max_bytes)
        for item in items:
            if not isinstance(item.get("lifecycleEvent"), str):
                raise BadRequest(
                    error_answer(400, "bad_payload", "Every lifecycle notification needs a lifecycleEvent.")
                )
        result = sort_items(items, records.lookup_many(account, {item["subscriptionId"] for item in items}).get)
        log_rejected("lifecycle", result)
        stamp = (now or account.clock()).isoformat()
        for record, item in result.accepted:
            event, tech, subscription_id = item["lifecycleEvent"], record.syncro_user_id, record.subscription_id
            log_event(
                log, "webhook.graph_lifecycle", tech=tech, job_id=None, correlation_id=subscription_id, event_name=event
            )
            if event == REAUTHORIZATION_REQUIRED:
                enqueue_job(account, SubscriptionJob(Action.REAUTHORIZE, tech, subscription_id, stamp))
            elif event == SUBSCRIPTION_REMOVED:
                records.clear()
                enqueue_job(account, SubscriptionJob(Action.REPLACE, tech, subscription_id, stamp))
            elif event == MISSED:
                request_sync(account, tech, JobReason.GRAPH_MISSED, now=now)
            else:
                log.warning("lifecycle event %r is not one we know; ignored", event)
    except Exception as error:
        return failure_answer(error, "lifecycle")
    return ACCEPTED


# -- the queue job -------------------------------------------------------------------------------


def run_subscription_job(text: str, *, deps: SubscriptionDeps | None = None) -> Outcome | None:
    """Do one subscription job, then ask for the tech's sync when the job was a lifecycle event's.

    A message that is not a subscription job is logged and dropped (None): retrying cannot make it
    readable. Raises SubscriptionRetry when the work should be tried again (another instance holds
    the tech's subscription lease, or Graph failed): the host retries after its visibility timeout,
    and after ``maxDequeueCount`` attempts the message goes to the poison queue, while the hourly
    upkeep tries again anyway. Raises StorageUnavailable."""
    import services
    from realtime.enqueue import request_sync
    from sync import subscriptions
    from sync.subscriptions import Outcome

    try:
        job = SubscriptionJob.from_json(text)
    except ValueError:
        log.error("dropped a subscription-jobs message that is not a job (%d characters)", len(text))
        return None
    deps = deps or services.subscription_deps()
    if job.action is Action.ENSURE:
        try:
            link = deps.account.links.get_link(job.syncro_user_id)
        except NotFound:  # unlinked meanwhile: whatever rows remain go too
            outcome = subscriptions.remove_for_link(job.syncro_user_id, deps=deps)
        else:
            outcome = subscriptions.ensure_for_link(link, deps=deps)
    elif job.action is Action.REAUTHORIZE:
        outcome = subscriptions.reauthorize(job.subscription_id, job.syncro_user_id, deps=deps)
    else:
        outcome = subscriptions.replace_removed(job.subscription_id, job.syncro_user_id, deps=deps)
    log.info("subscription job %s for tech %s: %s", job.action.value, job.syncro_user_id, outcome.value)
    if job.action is not Action.ENSURE and outcome is not Outcome.BUSY:
        request_sync(deps.account, job.syncro_user_id, JobReason(f"graph-{job.action.value}"))  # delta catches up
    if outcome in (Outcome.BUSY, Outcome.FAILED):
        raise SubscriptionRetry(f"subscription job {job.action.value} for tech {job.syncro_user_id}: {outcome.value}")
    return outcome
