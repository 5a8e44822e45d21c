"""The health report behind ``GET /api/health``: status only for anonymous callers; version,
storage reachability, counts, Syncro ownership and the shared Syncro budget for callers allowed
the details."""

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


def check_health(version: str, open_storage: Callable[[], StorageAccount], *, show_details: bool) -> HealthReport:
    """Ask storage for the counts; any failure (configuration included) makes the report unhealthy
    with a reason a person can act on. Without ``show_details`` the body is the status alone: the
    version, counts, Syncro user ids and the reason (which names settings) are for the admin."""
    report = _full_report(version, open_storage)
    if show_details:
        return report
    return HealthReport(report.healthy, {"status": report.body["status"]})


def _full_report(version: str, open_storage: Callable[[], StorageAccount]) -> HealthReport:
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
        syncro = {**_syncro_ownership(account), "budget": _syncro_budget(account)}
    except SettingsError as error:
        return _unhealthy(version, f"configuration: {error}")
    except StorageError as error:
        return _unhealthy(version, f"storage unreachable: {error}")
    body = {"status": "ok", "version": version, "storage": {"reachable": True}, "counts": counts, "syncro": syncro}
    return HealthReport(True, body)


def _syncro_ownership(account: StorageAccount) -> dict[str, Any]:
    """Whether Syncro's responses say whom an appointment belongs to (the poller finds out on its
    first poll), and in words what that means when they do not (`sync.ownership.OwnershipUnknown`)."""
    from storage.links import LinkStatus
    from storage.syncro_tokens import SyncroTokenStore
    from sync.ownership import OwnershipMode, OwnershipUnknown, read_ownership

    mode = read_ownership(account.cursors)
    answer: dict[str, Any] = {"ownership": mode.value}
    if mode is OwnershipMode.TOKENS:
        active = {link.syncro_user_id for link in account.links.list_links() if link.status is LinkStatus.ACTIVE}
        tokened = {record.syncro_user_id for record in SyncroTokenStore(account).list_tokens()}
        missing = tuple(sorted(active - tokened))
        answer["note"] = OwnershipUnknown(missing).explanation
        answer["techs_without_token"] = [str(tech) for tech in missing]
    return answer


def _syncro_budget(account: StorageAccount) -> dict[str, Any]:
    """The app's shared Syncro budget now: requests granted in the last 64 s, per caller, and who
    was refused lately (`sync.budget.BudgetStatus`)."""
    import time

    from settings import get_settings
    from storage.syncro_budget import SyncroBudgetStore
    from sync.budget import Limits, status_of

    ledger, _ = SyncroBudgetStore(account).read()
    return status_of(ledger, Limits.of(get_settings().sync.requests_per_minute), time.time()).to_json()


def _unhealthy(version: str, reason: str) -> HealthReport:
    body = {"status": "unavailable", "version": version, "storage": {"reachable": False}, "reason": reason}
    return HealthReport(False, body)
