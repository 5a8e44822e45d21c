"""The health report behind ``GET /api/health``: version, storage reachability and counts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storage import StorageAccount


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    body: dict[str, Any]


def check_health(version: str, open_storage: Callable[[], StorageAccount]) -> HealthReport:
    """Ask storage for the counts; any failure (configuration included) makes the report unhealthy
    with a reason a person can act on."""
    from settings import SettingsError
    from storage import StorageError

    try:
        account = open_storage()
        counts = {
            "links": account.links.count(),
            "subscriptions": account.subscriptions.count(),
            "queue_depth": account.sync_queue.depth(),
            "poison_depth": account.sync_queue.poison_depth(),
        }
    except SettingsError as error:
        return _unhealthy(version, f"configuration: {error}")
    except StorageError as error:
        return _unhealthy(version, f"storage unreachable: {error}")
    return HealthReport(True, {"status": "ok", "version": version, "storage": {"reachable": True}, "counts": counts})


def _unhealthy(version: str, reason: str) -> HealthReport:
    body = {"status": "unavailable", "version": version, "storage": {"reachable": False}, "reason": reason}
    return HealthReport(False, body)
