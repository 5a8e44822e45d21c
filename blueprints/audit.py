"""Every admin action by function key goes into the admin log (`storage.admin_log`), as the
signed-in admin's page actions do (`web.admin_handlers`).

A function key has no name the worker can see, so the actor is the key's fingerprint (the first
8 hex digits of its SHA-256): enough to tell keys apart in the log, useless for calling us.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

import azure.functions as func

from web.ids import syncro_user_id_from

Handler = Callable[[func.HttpRequest], func.HttpResponse]


def key_actor(req: func.HttpRequest) -> str:
    key = req.headers.get("x-functions-key") or req.params.get("code") or ""
    if not key:
        return "function key"
    return f"function key {hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def audited(action: str | Callable[[func.HttpRequest], str]) -> Callable[[Handler], Handler]:
    """Record the route's action for the tech in its ``syncro_user_id`` once it has succeeded
    (a refused request changed nothing, so it is not an action)."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(req: func.HttpRequest) -> func.HttpResponse:
            response = handler(req)
            if response.status_code < 400:
                from web.links import record_admin_action

                tech = syncro_user_id_from(req.route_params.get("syncro_user_id", ""))
                name = action(req) if callable(action) else action
                record_admin_action(key_actor(req), name, tech)
            return response

        return run

    return wrap
