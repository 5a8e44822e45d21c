"""``POST /v1.0/$batch``: up to 20 steps, each run through the same dispatcher (so each meets auth,
throttling and injected faults on its own), answered in any order.

``dependsOn`` as Graph takes it (documented: json-batching "Batch should be either fully
sequential or fully parallel", and the known issue "Request dependencies are limited"; the 400
for anything else is reported, microsoft-graph-docs#16280): a step names at most one other
step, and the batch is one of

- parallel: no step has ``dependsOn``; the steps run at once (``batch_parallel``), so more than
  the mailbox's 4 concurrent requests meet 429s;
- serial: every step but the first depends on the step before it in the list;
- same: every step that has ``dependsOn`` names the same step (it runs first; documented:
  "requests made using this pattern will run sequentially").

Anything else (two chains side by side, a step that depends on a later one, on two steps) is a
400 ``BadRequest``. Serial and same batches run one step at a time, in list order; a step whose
dependency failed (status 400 or more, a 424 included) is not run and answers 424.

Every step that runs is counted under its route template like any request, and once more under
``STEP /v1.0/$batch``, so the HTTP requests a client made are the sum of the counters minus
the steps (``bench/sync.py`` counts that way).
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local.sims.control import SimControl
from local.sims.graph.context import GraphRequest
from local.sims.graph.dispatch import GraphDispatcher
from local.sims.graph.errors import GraphError, GraphResponse, error_body, fault_error_body
from local.sims.graph.settings import GraphSettings

METHODS = {"GET", "POST", "PATCH", "PUT", "DELETE"}
STEP_COUNTER = "STEP /v1.0/$batch"
MIXED = "Batch should be either fully sequential or fully parallel."


class BatchRunner:
    def __init__(self, dispatcher: GraphDispatcher, settings: GraphSettings, control: SimControl) -> None:
        self.dispatcher = dispatcher
        self.settings = settings
        self.control = control

    async def run(self, outer: GraphRequest) -> GraphResponse:
        steps = self._parse(outer.body)
        results: dict[str, dict[str, Any]] = {}
        if self.settings.batch_parallel and not any(s["dependsOn"] for s in steps):
            answers = await asyncio.gather(*(self._step(outer, s, results) for s in steps))
            results.update({step["id"]: answer for step, answer in zip(steps, answers, strict=True)})
        else:
            for step in steps:  # serial or same: one at a time, in list order
                results[step["id"]] = await self._step(outer, step, results)
        responses = [results[s["id"]] for s in steps]
        if self.settings.batch_shuffle_responses:
            random.shuffle(responses)
        return GraphResponse(200, {"responses": responses})

    async def _step(self, outer: GraphRequest, step: dict[str, Any], results: dict[str, dict[str, Any]]) -> dict:
        if any(results[d]["status"] >= 400 for d in step["dependsOn"]):
            body = error_body("FailedDependency", "The request could not be completed because a dependency failed.")
            return {"id": step["id"], "status": 424, "headers": {"Content-Type": "application/json"}, "body": body}
        request = self._inner_request(outer, step)
        self.control.counters.add(STEP_COUNTER)
        rule = self.control.faults.take(request.method, "/v1.0" + request.path)
        if rule is not None:
            self.control.counters.add(f"{request.method} /v1.0{request.path}")
            body = rule.body if rule.body is not None else fault_error_body(rule.status)
            return {"id": step["id"], "status": rule.status, "headers": dict(rule.headers), "body": body}
        response, template = await self.dispatcher.dispatch(request)
        self.control.counters.add(f"{request.method} {template}")
        headers = {"Content-Type": "application/json"} if response.body is not None else {}
        headers.update(response.headers)
        answer: dict[str, Any] = {"id": step["id"], "status": response.status, "headers": headers}
        if response.body is not None:
            answer["body"] = response.body
        return answer

    def _inner_request(self, outer: GraphRequest, step: dict[str, Any]) -> GraphRequest:
        parts = urlsplit(step["url"])
        path = unquote(parts.path)
        path = path if path.startswith("/") else "/" + path
        headers = {k.lower(): str(v) for k, v in step["headers"].items()}
        if outer.header("authorization") and "authorization" not in headers:
            headers["authorization"] = outer.header("authorization") or ""
        body = b""
        if "body" in step:
            body = step["body"].encode() if isinstance(step["body"], str) else json.dumps(step["body"]).encode()
        return GraphRequest(
            method=step["method"],
            path=path,
            query=dict(parse_qsl(parts.query)),
            headers=headers,
            body=body,
            base_url=outer.base_url,
        )

    def _parse(self, raw: bytes) -> list[dict[str, Any]]:
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise GraphError(400, "BadRequest", "Invalid batch payload format.") from None
        steps = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(steps, list) or not steps:
            raise GraphError(400, "BadRequest", "Invalid batch payload format.")
        if len(steps) > self.settings.batch_max_requests:
            raise GraphError(
                400,
                "BadRequest",
                f"Number of batch request steps exceeds the maximum of {self.settings.batch_max_requests}.",
            )
        checked = [self._check_step(s) for s in steps]
        ids = [s["id"] for s in checked]
        if len(set(ids)) != len(ids):
            raise GraphError(400, "BadRequest", "Batch request ids must be unique.")
        for step in checked:
            if any(d not in ids or d == step["id"] for d in step["dependsOn"]):
                raise GraphError(400, "BadRequest", f"Request id {step['id']} depends on an unknown request.")
        if not _parallel_serial_or_same(checked):
            raise GraphError(400, "BadRequest", MIXED)
        return checked

    @staticmethod
    def _check_step(step: Any) -> dict[str, Any]:
        if not isinstance(step, dict) or not isinstance(step.get("id"), str | int) or not step.get("id"):
            raise GraphError(400, "BadRequest", "Every batch request needs an id.")
        step_id = str(step["id"])
        method, url = str(step.get("method", "")).upper(), step.get("url")
        if method not in METHODS or not isinstance(url, str) or not url or url.lower().startswith("http"):
            raise GraphError(400, "BadRequest", f"Request id {step_id}: a method and a relative url are required.")
        headers = step.get("headers") or {}
        depends = step.get("dependsOn") or []
        if not isinstance(headers, dict) or not isinstance(depends, list):
            raise GraphError(400, "BadRequest", f"Request id {step_id}: invalid headers or dependsOn.")
        if "body" in step and not any(k.lower() == "content-type" for k in headers):
            raise GraphError(
                400, "BadRequest", f"Write request id : {step_id} does not contain Content-Type header or body."
            )
        checked = {
            "id": step_id,
            "method": method,
            "url": url,
            "headers": headers,
            "dependsOn": [str(d) for d in depends],
        }
        if "body" in step:
            checked["body"] = step["body"]
        return checked


def _parallel_serial_or_same(steps: list[dict[str, Any]]) -> bool:
    """Whether ``dependsOn`` follows one of the patterns Graph accepts (module docstring)."""
    ids = [step["id"] for step in steps]
    depends = [step["dependsOn"] for step in steps]
    if not any(depends):
        return True  # parallel
    if any(len(names) > 1 for names in depends):
        return False  # a step depends on one other step at most
    if all(names == [ids[index - 1]] if index else not names for index, names in enumerate(depends)):
        return True  # serial
    named = {names[0] for names in depends if names}
    first_dependant = next(index for index, names in enumerate(depends) if names)
    # same: one step named by all, listed before the first step that names it
    return len(named) == 1 and ids.index(next(iter(named))) < first_dependant
