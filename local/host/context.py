"""The ``context`` argument a function may declare, and how arguments are passed."""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

import azure.functions as func


class InvocationContext(func.Context):
    """What the real worker passes as ``context: func.Context``."""

    def __init__(self, invocation_id: str, function_name: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return ""

    @property
    def thread_local_storage(self) -> threading.local:
        return threading.local()

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


def arguments(call: Callable[..., Any], binding: str, value: Any, invocation_id: str, name: str) -> dict[str, Any]:
    """Keyword arguments for ``call``: the trigger value by its binding name, and ``context`` if declared."""
    kwargs: dict[str, Any] = {binding: value}
    if _wants_context(call):
        kwargs["context"] = InvocationContext(invocation_id, name)
    return kwargs


@functools.cache
def _wants_context(call: Callable[..., Any]) -> bool:
    """Whether ``call`` declares ``context`` (read once per function: a signature costs ~50 µs)."""
    return "context" in inspect.signature(call).parameters


async def invoke(call: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Run a function as the Python worker does: coroutines on the loop, the rest on a thread."""
    if inspect.iscoroutinefunction(call):
        return await call(**kwargs)
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(call, **kwargs)


def call_sync(call: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Call a sync or async function from a plain thread (timers, queue workers)."""
    if inspect.iscoroutinefunction(call):
        return asyncio.run(call(**kwargs))
    return call(**kwargs)
