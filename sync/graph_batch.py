"""Graph's ``$batch``: the steps, their answers, and the rounds that send again what was throttled.

`sync.graph.GraphClient.batch` is the entry point; this module holds what it is made of, none of
which sends a request itself: the client hands in how one round of ``$batch`` requests is sent.

Each step gets the client's ``Prefer`` and, with a body, ``Content-Type``. Unchained, the steps
of a ``$batch`` run at once, and Exchange runs only 4 requests per mailbox at a time: the others
come back 429. Chained, each ``$batch`` is one ``dependsOn`` chain in the order given, which Graph
runs one step at a time (it takes a batch fully parallel or fully sequential, nothing between); a
failed step then fails the rest of its chain with 424, unrun. Several ``$batch`` requests go at
once in lanes (threads sharing the session): chained, ``MAILBOX_CONCURRENCY`` lanes keep within
the mailbox's limit.

Steps answered 429 or 503 (and, chained, 424) are sent again in later batches, after the longest
``Retry-After`` any of them asked (or a backoff; no wait when none was throttled), within the
retry policy's waits; what is still failing then is answered as Graph last answered it. A
``$batch`` that fails as a whole answers each of its steps with that error
(``BatchResponse.raised``), so what the other lanes did is kept; only when every ``$batch``
failed is the first error raised (GraphError).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sync.client_http import RetryPolicy, parse_retry_after
from sync.errors import GraphError, GraphUnexpectedResponse
from sync.graph_errors import error_of, fields_of, header

PREFER = 'outlook.timezone="UTC", IdType="ImmutableId"'
BATCH_LIMIT = 20  # requests in one $batch
# Requests Exchange runs at once per app and mailbox (more meet 429): chained $batch requests in
# flight at once, each running one step at a time.
MAILBOX_CONCURRENCY = 4


@dataclass(frozen=True)
class BatchRequest:
    """One step of a ``$batch``: ``url`` is relative to the version (``/me/events/{id}``).
    ``id`` must be unique within the ``batch`` call."""

    id: str
    method: str
    url: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResponse:
    """The answer to one ``BatchRequest`` (matched by ``id``)."""

    id: str
    status: int
    headers: dict[str, str]
    body: Any
    raised: GraphError | None = field(default=None, compare=False)  # its whole $batch failed with this

    @property
    def ok(self) -> bool:
        return self.raised is None and 200 <= self.status < 300

    @classmethod
    def of_failed_batch(cls, request_id: str, error: GraphError) -> BatchResponse:
        """The answer of a step whose ``$batch`` failed as a whole (the step may not have run)."""
        body = {"error": {"code": error.code, "message": error.message}}
        return cls(id=request_id, status=error.status or 0, headers={}, body=body, raised=error)

    def error(self) -> GraphError | None:
        """The typed error this answer stands for, or None when it succeeded."""
        if self.raised is not None:
            return self.raised
        if self.ok:
            return None
        code, message = fields_of(self.body)
        retry_after = parse_retry_after(header(self.headers, "Retry-After"), datetime.now(UTC))
        return error_of(self.status, code, message or f"batch request {self.id}", retry_after)


# One round: each chunk as one $batch; a $batch that failed as a whole is its error.
SendRound = Callable[[list[list[BatchRequest]]], list[list[BatchResponse] | GraphError]]


def send_batched(
    requests: list[BatchRequest], *, send_round: SendRound, retry: RetryPolicy, chained: bool
) -> list[BatchResponse]:
    """The answers to ``requests`` (ids unique; in the order asked), sent 20 at a time by
    ``send_round``, as the module's docstring says: steps answered 429 or 503 (and, ``chained``,
    424) go again in later rounds within ``retry``'s waits; raises the first error only when every
    ``$batch`` failed as a whole."""
    ids = [request.id for request in requests]
    answers: dict[str, BatchResponse] = {}
    pending = list(requests)
    waited, stalled = 0.0, 0
    failures: list[GraphError] = []
    answered = False
    while pending:
        chunks = [pending[index : index + BATCH_LIMIT] for index in range(0, len(pending), BATCH_LIMIT)]
        again: list[BatchRequest] = []
        asked: list[float | None] = []
        for chunk, result in zip(chunks, send_round(chunks), strict=True):
            if isinstance(result, GraphError):
                failures.append(result)
                answers.update({r.id: BatchResponse.of_failed_batch(r.id, result) for r in chunk})
                continue
            answered = True
            for request, answer in zip(chunk, result, strict=True):
                answers[request.id] = answer
                if answer.status in (429, 503):
                    again.append(request)
                    asked.append(parse_retry_after(header(answer.headers, "Retry-After"), retry.now()))
                elif chained and answer.status == 424:
                    again.append(request)  # not run: its chain broke before it
        stalled = stalled + 1 if len(again) == len(pending) else 0
        if not again or stalled >= retry.max_attempts:
            break
        if asked:
            known = [seconds for seconds in asked if seconds is not None]
            retry_after = max(known) if known else None
            if retry_after is not None and retry_after > retry.max_wait_seconds:
                break
            wait = retry.wait_for(stalled + 1, retry_after)
            if waited + wait > retry.max_total_wait_seconds:
                break
            retry.sleep(wait)
            waited += wait
        pending = again
    if not answered and failures:
        raise failures[0]
    return [answers[request_id] for request_id in ids]


def in_lanes(
    send: Callable[[list[BatchRequest]], list[BatchResponse] | GraphError],
    chunks: list[list[BatchRequest]],
    lanes: int,
) -> list[list[BatchResponse] | GraphError]:
    """``send`` of each chunk, ``lanes`` at a time (threads), in the order of ``chunks``."""
    if lanes == 1 or len(chunks) == 1:
        return [send(chunk) for chunk in chunks]
    with ThreadPoolExecutor(max_workers=min(lanes, len(chunks)), thread_name_prefix="graph-batch") as pool:
        return list(pool.map(send, chunks))


def batch_steps(chunk: list[BatchRequest], *, chained: bool, relative: Callable[[str], str]) -> list[dict[str, Any]]:
    """The ``requests`` of one ``$batch`` body: each step with the client's ``Prefer`` and, with a
    body, ``Content-Type``; chained, each depends on the one before. ``relative`` makes a step's
    url relative to the version."""
    steps = []
    for index, request in enumerate(chunk):
        headers = {"Prefer": PREFER, **request.headers}
        step: dict[str, Any] = {"id": request.id, "method": request.method.upper(), "url": relative(request.url)}
        if chained and index:
            step["dependsOn"] = [chunk[index - 1].id]
        if request.body is not None:
            headers.setdefault("Content-Type", "application/json")
            step["body"] = request.body
        step["headers"] = headers
        steps.append(step)
    return steps


def batch_answers(body: dict[str, Any], chunk: list[BatchRequest]) -> list[BatchResponse]:
    """The answers of one ``$batch`` response body, in the order of ``chunk``.
    Raises GraphUnexpectedResponse when the body is not a full answer."""
    responses = body.get("responses")
    if not isinstance(responses, list):
        raise GraphUnexpectedResponse(200, None, "$batch answered without a responses list")
    by_id: dict[str, BatchResponse] = {}
    for answer in responses:
        if not isinstance(answer, dict) or "id" not in answer or not isinstance(answer.get("status"), int):
            raise GraphUnexpectedResponse(200, None, "a $batch response came without an id or a status")
        headers = answer.get("headers") if isinstance(answer.get("headers"), dict) else {}
        by_id[str(answer["id"])] = BatchResponse(
            id=str(answer["id"]), status=answer["status"], headers=dict(headers), body=answer.get("body")
        )
    missing = [request.id for request in chunk if request.id not in by_id]
    if missing:
        raise GraphUnexpectedResponse(200, None, f"$batch left requests unanswered: {', '.join(missing)}")
    return [by_id[request.id] for request in chunk]
