"""HTTP triggers: an ASGI app that routes ``/{routePrefix}/...`` to the app's HTTP functions."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from local.host.config import HostConfig
from local.host.context import arguments, invoke
from local.host.functions import HttpFunction
from local.host.logs import invocation

log = logging.getLogger("host.http")


@dataclass(frozen=True)
class HostKeys:
    """Keys for ``function`` and ``admin`` routes, as in Azure: a function key opens function
    routes, the master key opens everything."""

    function_key: str
    master_key: str

    def allows(self, auth_level: str, presented: str | None) -> bool:
        if auth_level == "anonymous":
            return True
        if not presented:
            return False
        is_master = hmac.compare_digest(presented.encode(), self.master_key.encode())
        if auth_level == "admin":
            return is_master
        return is_master or hmac.compare_digest(presented.encode(), self.function_key.encode())


class BodyTooLarge(Exception):
    pass


def _json(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    body = json.dumps({"error": error, "message": message}).encode()
    return status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, body


class HttpTriggers:
    """The ASGI app: route, check method, key and size, invoke, pass the response through."""

    def __init__(self, functions: Sequence[HttpFunction], config: HostConfig, keys: HostKeys) -> None:
        self.functions = list(functions)
        self.config = config
        self.keys = keys
        self.prefix = "/" + config.route_prefix.strip("/") if config.route_prefix.strip("/") else ""

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        status, headers, body, label = await self._handle(scope, receive)
        await send({"type": "http.response.start", "status": status, "headers": _encode_headers(headers)})
        await send({"type": "http.response.body", "body": body if scope["method"] != "HEAD" else b""})
        # The route template, never the path: paths carry secrets (feed tokens, webhook secrets).
        log.info(
            "%s %s -> %d",
            scope["method"],
            label,
            status,
            extra={"status": status, "ms": round((time.perf_counter() - started) * 1000, 1)},
        )

    async def _handle(self, scope: dict, receive: Callable) -> tuple[int, dict, bytes, str]:
        method = scope["method"].upper()
        raw_path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if not (raw_path == self.prefix or raw_path.startswith(self.prefix + "/")):
            return (*_json(404, "not_found", "No function is registered for this path."), "(no route)")
        relative = raw_path[len(self.prefix) :].lstrip("/")
        matches = [(fn, params) for fn in self.functions if (params := fn.route.match(relative)) is not None]
        if not matches:
            return (*_json(404, "not_found", "No function is registered for this path."), "(no route)")
        chosen = next(((fn, p) for fn, p in matches if fn.methods is None or method in fn.methods), None)
        if chosen is None:
            allowed = sorted({m for fn, _ in matches for m in (fn.methods or ())})
            message = f"{method} is not allowed here; use {', '.join(allowed)}."
            return (*_json(405, "method_not_allowed", message, {"Allow": ", ".join(allowed)}), "(method)")
        function, route_params = chosen
        label = f"/{self.prefix.strip('/')}/{function.route.template}".replace("//", "/")
        query = _query(scope)
        request_headers = _headers(scope)
        presented = request_headers.get("x-functions-key") or query.get("code")
        if not self.keys.allows(function.auth_level, presented):
            return (
                *_json(401, "unauthorized", "This endpoint needs a valid function key (?code= or x-functions-key)."),
                label,
            )
        try:
            body = await _read_body(receive, request_headers, self.config.max_request_body_bytes)
        except BodyTooLarge:
            limit = self.config.max_request_body_bytes
            return (*_json(413, "payload_too_large", f"The request body is larger than {limit} bytes."), label)
        request = func.HttpRequest(
            method=method,
            url=_url(scope, request_headers),
            headers=request_headers,
            params=query,
            route_params=route_params,
            body=body,
        )
        return (*await self._invoke(function, request), label)

    async def _invoke(self, function: HttpFunction, request: func.HttpRequest) -> tuple[int, dict, bytes]:
        with invocation(function.name) as invocation_id:
            kwargs = arguments(function.call, function.binding, request, invocation_id, function.name)
            try:
                async with asyncio.timeout(self.config.function_timeout):  # no task per request, unlike wait_for
                    result = await invoke(function.call, kwargs)
            except TimeoutError:
                log.error("function timed out after %.0f s", self.config.function_timeout)
                return 500, {}, b""
            except Exception:
                # The real host answers 500 with an empty body; the app must not let this happen.
                log.exception("function raised")
                return 500, {}, b""
        return _response(result)


def _response(result: Any) -> tuple[int, dict, bytes]:
    if isinstance(result, func.HttpResponse):
        headers = dict(result.headers.items())
        if not any(k.lower() == "content-type" for k in headers) and result.mimetype:
            textual = result.mimetype.startswith("text/") or result.mimetype.endswith("json")
            headers["Content-Type"] = f"{result.mimetype}; charset={result.charset}" if textual else result.mimetype
        return result.status_code, headers, result.get_body() or b""
    if result is None:
        return 204, {}, b""
    if isinstance(result, str | bytes):
        data = result.encode() if isinstance(result, str) else result
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, data
    raise TypeError(f"an HTTP function returned {type(result).__name__}, not an HttpResponse")


async def _read_body(receive: Callable, headers: dict[str, str], limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _headers(scope: dict) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        name, text = key.decode("latin-1").lower(), value.decode("latin-1")
        headers[name] = f"{headers[name]}, {text}" if name in headers else text
    return headers


def _query(scope: dict) -> dict[str, str]:
    from urllib.parse import parse_qsl

    query = scope.get("query_string", b"").decode("latin-1")
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(key, value)  # the first value wins, as in the Python worker
    return params


def _url(scope: dict, headers: dict[str, str]) -> str:
    host = headers.get("host") or "{}:{}".format(*scope.get("server", ("localhost", 80)))
    raw_path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}{raw_path}" + (f"?{query}" if query else "")


def _encode_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items()]
