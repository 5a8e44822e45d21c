"""What every simulator shares: a movable clock, fault injection, request counters, and the
``/_sim/...`` control surface tests use to drive them.

Control routes (on every simulator):
- ``GET  /_sim/counters``            -> ``{"counters": {"GET /v1.0/me": 3, ...}}`` (per route template)
- ``DELETE /_sim/counters``          -> reset counters
- ``POST /_sim/faults``              -> add a rule ``{"method": "GET", "path": "regex", "status": 503,
                                        "headers": {...}, "body": {...}, "times": 1}`` (times 0 = forever);
                                        or a timeout ``{"method", "path", "timeout": "before"|"after",
                                        "delay_seconds": 35, "times"}``: the answer is held
                                        ``delay_seconds`` (past a client's read timeout), either
                                        instead of the work (``before``: nothing done, then 504) or
                                        after the work was done (``after``: the real answer, late)
- ``DELETE /_sim/faults``            -> remove every rule
- ``GET  /_sim/clock``               -> ``{"now": iso, "offset_seconds": n}``
- ``POST /_sim/clock``               -> ``{"advance_seconds": n}`` moves the (shared) clock forward
- ``POST /_sim/reset``               -> the simulator's own reset (data, faults, counters)
- ``POST /_sim/seed``                -> the simulator's own seed format
Simulators add their own ``/_sim/...`` routes beside these.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Settings = TypeVar("Settings")


def patched_settings(
    settings: Settings, changes: Any, *, choices: Mapping[str, Collection[Any]] | None = None
) -> Settings:
    """A copy of a simulator's settings dataclass with ``changes`` (field name -> value) applied,
    as ``PATCH /_sim/settings`` asks. Raises ValueError naming the first unknown field or bad
    value, and then nothing changes.

    A value must have its field's type (an integer is taken for a float; true/false never stands
    for a number), numbers are never negative, and a field in ``choices`` takes one of those.
    """
    if not isinstance(changes, dict):
        raise ValueError("settings must be a JSON object")
    current = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    checked = {}
    for name, value in changes.items():
        if name not in current:
            raise ValueError(f"unknown setting {name!r}")
        checked[name] = _checked_setting(name, value, current[name], (choices or {}).get(name))
    return dataclasses.replace(settings, **checked)


def _checked_setting(name: str, value: Any, current: Any, allowed: Collection[Any] | None) -> Any:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(current, bool):
        ok, wanted = isinstance(value, bool), "true or false"
    elif isinstance(current, float):
        ok, wanted, value = is_number, "a number", float(value) if is_number else value
    elif isinstance(current, int):
        ok, wanted = is_number and isinstance(value, int), "an integer"
    else:
        ok, wanted = isinstance(value, type(current)), f"a {type(current).__name__}"
    if not ok:
        raise ValueError(f"setting {name!r} must be {wanted}")
    if is_number and value < 0:
        raise ValueError(f"setting {name!r} must not be negative")
    if allowed is not None and value not in allowed:
        raise ValueError(f"setting {name!r} must be one of {', '.join(map(str, allowed))}")
    return value


class SimClock:
    """Real time plus an offset that tests move forward, so expiry is tested without sleeping.

    One clock object is shared by the simulators of one stack, so a token issued by the
    identity simulator expires at the same moment for the Graph simulator.
    """

    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def timestamp(self) -> float:
        return self.now().timestamp()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)

    def reset(self) -> None:
        with self._lock:
            self._offset = timedelta()

    @property
    def offset_seconds(self) -> float:
        return self._offset.total_seconds()


@dataclass
class FaultRule:
    """Answer requests matching ``method`` and ``path`` (a regex searched in the path) with ``status``."""

    method: str
    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    times: int = 1  # 0 = every time until cleared
    # A timeout instead of a status: "before" the service acts (nothing done) or "after" (done,
    # answer late); the answer is held this long, past the client's read timeout.
    timeout: str = ""
    delay_seconds: float = 35.0

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method.upper())) and re.search(self.path, path) is not None


class FaultInjector:
    """Rules added through ``/_sim/faults``; the first matching rule answers instead of the simulator."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, method: str, path: str) -> FaultRule | None:
        """The rule that answers this request, consuming one of its uses."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    if rule.times > 0:
                        rule.times -= 1
                        if rule.times == 0:
                            self._rules.remove(rule)
                    return rule
        return None


class RequestCounters:
    """Requests received, keyed ``"METHOD /route/template"``."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


@dataclass
class SimControl:
    """The control state of one simulator."""

    clock: SimClock = field(default_factory=SimClock)
    faults: FaultInjector = field(default_factory=FaultInjector)
    counters: RequestCounters = field(default_factory=RequestCounters)


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", None) or request.url.path


class ControlMiddleware:
    """ASGI middleware: counts every non-control request and answers injected faults."""

    def __init__(self, app: Any, control: SimControl, fault_body: Callable[[FaultRule], Any]) -> None:
        self.app = app
        self.control = control
        self.fault_body = fault_body

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim/"):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        rule = self.control.faults.take(method, path)
        if rule is not None and rule.timeout == "after":
            await self._late(rule, scope, receive, send)
            return
        if rule is not None:
            if rule.timeout == "before":
                await asyncio.sleep(rule.delay_seconds)
            self.control.counters.add(f"{method} {path}")
            body = rule.body if rule.body is not None else self.fault_body(rule)
            content = body if isinstance(body, str) else json.dumps(body)
            media = "text/plain" if isinstance(body, str) else "application/json"
            response = Response(content, status_code=rule.status, headers=rule.headers, media_type=media)
            await response(scope, receive, send)
            return

        async def counting_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                template = getattr(route, "path", None) or path
                self.control.counters.add(f"{method} {template}")
            await send(message)

        await self.app(scope, receive, counting_send)

    async def _late(self, rule: FaultRule, scope: dict, receive: Callable, send: Callable) -> None:
        """The work is done and its answer held back ``delay_seconds``: what a client whose read
        timed out meets (it cannot know the work was done)."""
        held: list[dict] = []

        async def hold(message: dict) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                self.control.counters.add(f"{scope['method']} {getattr(route, 'path', None) or scope['path']}")
            held.append(message)

        await self.app(scope, receive, hold)
        await asyncio.sleep(rule.delay_seconds)
        for message in held:
            await send(message)


def control_routes(
    control: SimControl,
    *,
    reset: Callable[[], None],
    seed: Callable[[Any], Any],
) -> list[Route]:
    """The shared ``/_sim/...`` routes; ``reset`` and ``seed`` are the simulator's own."""

    async def counters(request: Request) -> Response:
        if request.method == "DELETE":
            control.counters.clear()
            return Response(status_code=204)
        return JSONResponse({"counters": control.counters.snapshot()})

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            control.faults.clear()
            return Response(status_code=204)
        try:
            spec = await request.json()
            timeout = str(spec.get("timeout") or "")
            if timeout not in ("", "before", "after"):
                raise ValueError(f"timeout must be 'before' or 'after', not {timeout!r}")
            rule = FaultRule(
                method=str(spec.get("method", "*")).upper(),
                path=str(spec["path"]),
                status=int(spec["status"] if not timeout else spec.get("status", 504)),
                headers={str(k): str(v) for k, v in (spec.get("headers") or {}).items()},
                body=spec.get("body"),
                times=int(spec.get("times", 1)),
                timeout=timeout,
                delay_seconds=float(spec.get("delay_seconds", 35.0)),
            )
            if not 0 <= rule.delay_seconds <= 600:
                raise ValueError("delay_seconds must be between 0 and 600")
            re.compile(rule.path)
        except (ValueError, KeyError, TypeError, AttributeError, re.error) as error:
            return JSONResponse({"error": f"bad fault rule: {error}"}, status_code=400)
        control.faults.add(rule)
        return JSONResponse({"added": rule.__dict__}, status_code=201)

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            try:
                control.clock.advance(float((await request.json())["advance_seconds"]))
            except (ValueError, KeyError, TypeError) as error:
                return JSONResponse({"error": f"expected {{'advance_seconds': n}}: {error}"}, status_code=400)
        return JSONResponse({"now": control.clock.now().isoformat(), "offset_seconds": control.clock.offset_seconds})

    async def do_reset(request: Request) -> Response:
        reset()
        control.faults.clear()
        control.counters.clear()
        return Response(status_code=204)

    async def do_seed(request: Request) -> Response:
        try:
            payload = await request.json()
        except ValueError:
            return JSONResponse({"error": "seed body must be JSON"}, status_code=400)
        try:
            result = seed(payload)
        except (ValueError, KeyError, TypeError) as error:
            return JSONResponse({"error": f"bad seed: {error}"}, status_code=400)
        return JSONResponse(result if result is not None else {"seeded": True})

    return [
        Route("/_sim/counters", counters, methods=["GET", "DELETE"]),
        Route("/_sim/faults", faults, methods=["POST", "DELETE"]),
        Route("/_sim/clock", clock, methods=["GET", "POST"]),
        Route("/_sim/reset", do_reset, methods=["POST"]),
        Route("/_sim/seed", do_seed, methods=["POST"]),
    ]
