"""The sync-job queue: one message asks for one technician to be synced (`SyncJob`), or for
several to be (`FanOut`, which the queue job turns into one `SyncJob` each).

Messages are base64 JSON, as the Functions queue trigger decodes them by default. Delivery is
at least once, so a job must be safe to run twice (the engine is idempotent; the lease
serialises).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from storage.table import translated_errors

if TYPE_CHECKING:
    from storage.table import Queues


@dataclass(frozen=True)
class SyncJob:
    syncro_user_id: int
    reason: str  # "graph-notification", "syncro-notification", "reconcile", "admin", ...
    requested_at: str  # ISO 8601 UTC
    # A Graph recheck's place in its schedule (1 = the first); 0 for every other job. Written only
    # when set, so other jobs' messages read as before (`realtime.jobs.next_recheck`).
    attempt: int = 0

    def to_json(self) -> str:
        data = asdict(self)
        if not self.attempt:
            del data["attempt"]
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SyncJob:
        """The job in ``text`` (a message's decoded content). Raises ValueError on anything that
        is not a sync job."""
        try:
            data = json.loads(text)
            attempt = int(data.get("attempt", 0))
            return cls(int(data["syncro_user_id"]), str(data["reason"]), str(data["requested_at"]), attempt)
        except (AttributeError, KeyError, TypeError, ValueError) as error:  # JSONDecodeError is a ValueError
            raise ValueError(f"not a sync job: {error}") from None


@dataclass(frozen=True)
class FanOut:
    """Sync requests for several techs in one message. The notification webhook answers a burst
    naming many techs with one storage call by sending this; the queue job asks for each tech's
    own (coalesced) `SyncJob`, so every tech is still synced by a job of its own."""

    syncro_user_ids: tuple[int, ...]
    reason: str
    requested_at: str  # ISO 8601 UTC

    def to_json(self) -> str:
        return json.dumps(
            {"syncro_user_ids": list(self.syncro_user_ids), "reason": self.reason, "requested_at": self.requested_at},
            separators=(",", ":"),
        )


# 1,000 ids of 13 digits are about 14 KB of JSON: well inside a queue message (64 KB in base64).
FAN_OUT_LIMIT = 1000


def parse_message(text: str) -> SyncJob | FanOut:
    """The job or fan-out in ``text`` (a message's decoded content). Raises ValueError on anything
    else, including a tech id that is not positive."""
    try:
        data = json.loads(text)
        if isinstance(data, dict) and "syncro_user_ids" in data:
            ids = data["syncro_user_ids"]
            if not isinstance(ids, list) or not ids:
                raise ValueError("syncro_user_ids must be a list of ids")
            message: SyncJob | FanOut = FanOut(
                tuple(int(i) for i in ids), str(data["reason"]), str(data["requested_at"])
            )
            techs = message.syncro_user_ids
        else:
            message = SyncJob.from_json(text)
            techs = (message.syncro_user_id,)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"not a sync job: {error}") from None
    if min(techs) <= 0:
        raise ValueError("not a sync job: a tech id must be positive")
    return message


PEEK_LIMIT = 32  # the most messages one peek returns


class SyncQueue:
    def __init__(self, account: Queues) -> None:
        self._account = account
        self.name = account.sync_queue_name

    def enqueue(self, job: SyncJob | FanOut, *, delay_seconds: int = 0) -> None:
        """Send ``job`` (visible after ``delay_seconds``). Raises StorageError."""
        with translated_errors(self.name, "(send)"):
            client = self._account.queue(self.name)
            client.send_message(job.to_json(), visibility_timeout=delay_seconds or None)

    def depth(self) -> int:
        """Approximate number of messages waiting (Azure's own estimate)."""
        with translated_errors(self.name, "(properties)"):
            return self._account.queue(self.name).get_queue_properties().approximate_message_count

    def poison_depth(self) -> int:
        with translated_errors(self.name, "(properties)"):
            return self._account.queue(f"{self.name}-poison").get_queue_properties().approximate_message_count

    def peek_jobs(self, *, poison: bool = False, limit: int = PEEK_LIMIT) -> list[SyncJob]:
        """Up to ``limit`` (at most 32, Azure's peek limit) jobs at the front of the queue, or of its
        poison queue, without taking them; messages that are not sync jobs are left out. For the
        settings page and the admin overview ("jobs waiting", "poisoned"): a sample, not a count."""
        from azure.core.exceptions import DecodeError

        name = f"{self.name}-poison" if poison else self.name
        try:
            with translated_errors(name, "(peek)"):
                messages = self._account.queue(name).peek_messages(max_messages=max(1, min(limit, PEEK_LIMIT)))
        except DecodeError:
            return []  # a message that is not base64 (poisoned for that reason): no sample to show
        jobs = []
        for message in messages:
            try:
                parsed = parse_message(message.content)
            except ValueError:
                continue
            if isinstance(parsed, FanOut):  # each tech it names is waiting (or set aside) too
                jobs += [SyncJob(tech, parsed.reason, parsed.requested_at) for tech in parsed.syncro_user_ids]
            else:
                jobs.append(parsed)
        return jobs
