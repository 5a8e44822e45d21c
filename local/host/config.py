"""The parts of ``host.json`` the local host honours, and ``local.settings.json``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def parse_timespan(value: str | int | float) -> float:
    """Seconds in a .NET TimeSpan ``[d.]hh:mm:ss[.fff]`` (as host.json writes durations)."""
    if isinstance(value, int | float):
        return float(value)
    found = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)", value.strip())
    if not found:
        raise ValueError(f"{value!r} is not a TimeSpan like 00:05:00")
    days, hours, minutes, seconds = found.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(frozen=True)
class HostConfig:
    """Host behaviour; defaults are the real host's defaults."""

    route_prefix: str = "api"
    function_timeout: float = 300.0
    queue_batch_size: int = 16
    queue_new_batch_threshold: int | None = None  # None: batch_size / 2, as the real host
    queue_max_polling_interval: float = 60.0
    queue_visibility_timeout: float = 0.0
    queue_max_dequeue_count: int = 5
    queue_message_encoding: str = "base64"
    max_request_body_bytes: int = 1024 * 1024

    @property
    def new_batch_threshold(self) -> int:
        if self.queue_new_batch_threshold is not None:
            return self.queue_new_batch_threshold
        return max(self.queue_batch_size // 2, 0)

    @classmethod
    def from_host_json(cls, path: Path, **overrides: Any) -> HostConfig:
        data = json.loads(path.read_text())
        extensions = data.get("extensions", {})
        queues = extensions.get("queues", {})
        values: dict[str, Any] = {
            "route_prefix": extensions.get("http", {}).get("routePrefix", "api"),
            "function_timeout": parse_timespan(data.get("functionTimeout", "00:05:00")),
            "queue_batch_size": int(queues.get("batchSize", 16)),
            "queue_new_batch_threshold": queues.get("newBatchThreshold"),
            "queue_max_polling_interval": parse_timespan(queues.get("maxPollingInterval", "00:01:00")),
            "queue_visibility_timeout": parse_timespan(queues.get("visibilityTimeout", "00:00:00")),
            "queue_max_dequeue_count": int(queues.get("maxDequeueCount", 5)),
            "queue_message_encoding": str(queues.get("messageEncoding", "base64")).lower(),
        }
        values.update(overrides)
        return cls(**values)


def read_local_settings(path: Path) -> dict[str, str]:
    """The ``Values`` of a local.settings.json (strings only, as the real host passes them)."""
    data = json.loads(path.read_text())
    values = data.get("Values", {})
    if not isinstance(values, dict):
        raise ValueError(f"{path}: Values must be an object")
    return {str(k): str(v) for k, v in values.items()}
