"""What the app declares: its functions read from ``app.get_functions()`` into plain specs."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local.host.routes import RouteTemplate


@dataclass(frozen=True)
class HttpFunction:
    name: str
    binding: str  # the trigger's parameter name
    route: RouteTemplate
    methods: frozenset[str] | None  # None = every method
    auth_level: str  # "anonymous", "function" or "admin"
    call: Callable[..., Any]


@dataclass(frozen=True)
class TimerFunction:
    name: str
    binding: str
    schedule: str
    run_on_startup: bool
    call: Callable[..., Any]


@dataclass(frozen=True)
class QueueFunction:
    name: str
    binding: str
    queue_name: str
    connection_setting: str
    call: Callable[..., Any]


Function = HttpFunction | TimerFunction | QueueFunction

_APP_SETTING = re.compile(r"%([^%]+)%")


def resolve_app_settings(value: str, env: Mapping[str, str]) -> str:
    """Replace ``%NAME%`` binding expressions with app settings, as the real host does."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ValueError(f"binding expression %{name}% names an app setting that is not set")
        return env[name]

    return _APP_SETTING.sub(lookup, value)


_indexed: dict[int, tuple[Any, list[Any]]] = {}


def _indexed_functions(app: Any) -> list[Any]:
    """``app.get_functions()``, once per app: azure-functions refuses to index an app twice."""
    if id(app) not in _indexed:
        _indexed[id(app)] = (app, app.get_functions())
    return _indexed[id(app)][1]


def read_functions(app: Any, env: Mapping[str, str] | None = None) -> list[Function]:
    """Specs of every function of ``app``; raises ValueError on a binding this host cannot serve."""
    env = os.environ if env is None else env
    specs: list[Function] = []
    for function in _indexed_functions(app):
        name = function.get_function_name()
        bindings = [json.loads(raw) for raw in function.get_raw_bindings()]
        trigger = next((b for b in bindings if b.get("type", "").endswith("Trigger")), None)
        if trigger is None:
            raise ValueError(f"function {name} has no trigger")
        call = function.get_user_function()
        kind = trigger["type"]
        if kind == "httpTrigger":
            methods = trigger.get("methods")
            specs.append(
                HttpFunction(
                    name=name,
                    binding=trigger["name"],
                    route=RouteTemplate(trigger.get("route") or name),
                    methods=frozenset(m.upper() for m in methods) if methods else None,
                    auth_level=str(trigger.get("authLevel", "function")).lower(),
                    call=call,
                )
            )
        elif kind == "timerTrigger":
            specs.append(
                TimerFunction(name, trigger["name"], trigger["schedule"], bool(trigger.get("runOnStartup")), call)
            )
        elif kind == "queueTrigger":
            queue = resolve_app_settings(trigger["queueName"], env)
            specs.append(
                QueueFunction(name, trigger["name"], queue, trigger.get("connection") or "AzureWebJobsStorage", call)
            )
        else:
            raise ValueError(f"function {name}: trigger type {kind} is not served by the local host")
    return specs
