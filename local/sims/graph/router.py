"""Path templates of the Graph API and the handlers that answer them.

Routes are registered once under ``/me/...``; ``/users/{user}/...`` reaches the same handler with
the user in ``params["user"]``. The matched template (``/v1.0/users/{user}/events/{id}``) names
the request in the simulator's counters.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from local.sims.graph.context import Ctx
from local.sims.graph.errors import GraphError, GraphResponse

_FUNCTION_PARENS = re.compile(r"\(\)(?=/|$)")
Handler = Callable[[Ctx], GraphResponse | Awaitable[GraphResponse]]


@dataclass
class RouteSpec:
    method: str
    template: str
    handler: Handler
    access: str  # "read" | "write" | "user" | "subscriptions" | "none"
    pattern: re.Pattern[str]


@dataclass
class Match:
    route: RouteSpec
    params: dict[str, str]
    template: str  # as counted, with a /users/{user} prefix when used


def _compile(template: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(f"^{regex}/?$", re.IGNORECASE)


class GraphRouter:
    def __init__(self) -> None:
        self.routes: list[RouteSpec] = []

    def add(self, method: str, template: str, handler: Handler, access: str) -> None:
        self.routes.append(RouteSpec(method, template, handler, access, _compile(template)))

    def match(self, method: str, path: str) -> Match:
        """The route for ``path``; 400 for an unknown segment, 405 for a known path and wrong method."""
        # OData function calls may carry empty parentheses: /calendarView/delta() is /calendarView/delta.
        path, user, prefix = _split_user(_FUNCTION_PARENS.sub("", path))
        found_path = False
        for route in self.routes:
            matched = route.pattern.match(path)
            if matched is None:
                continue
            found_path = True
            if route.method == method:
                params = dict(matched.groupdict())
                if user is not None:
                    params["user"] = user
                template = prefix + (route.template[3:] if prefix else route.template)
                return Match(route, params, template)
        if found_path:
            raise GraphError(405, "BadRequest", "Specified HTTP method is not allowed for the request target.")
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{self._bad_segment(path)}'.")

    def _bad_segment(self, path: str) -> str:
        segments = [s for s in path.split("/") if s]
        for count in range(1, len(segments) + 1):
            prefix = "/" + "/".join(segments[:count])
            if not any(_prefix_matches(r.template, prefix) for r in self.routes):
                return segments[count - 1]
        return segments[-1] if segments else ""


def _prefix_matches(template: str, prefix: str) -> bool:
    template_parts = [s for s in template.split("/") if s]
    parts = [s for s in prefix.split("/") if s]
    if len(parts) > len(template_parts):
        return False
    return all(t.startswith("{") or t.lower() == p.lower() for t, p in zip(template_parts, parts, strict=False))


def _split_user(path: str) -> tuple[str, str | None, str]:
    """``/users/x/events`` -> (``/me/events``, ``x``, ``/users/{user}``)."""
    parts = path.split("/", 3)
    if len(parts) >= 3 and parts[1].lower() == "users" and parts[2]:
        rest = "/" + parts[3] if len(parts) > 3 else ""
        return "/me" + rest, parts[2], "/users/{user}"
    return path, None, ""
