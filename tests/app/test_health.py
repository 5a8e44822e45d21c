"""GET /api/health/details through the local host, with the real function_app (what anonymous
callers of /api/health see: tests/security/test_health_details.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import requests

from local.azurite import free_port
from local.host import FunctionHost
from storage.sync_queue import SyncJob
from tests.conftest import app_settings_env


def _details(host: FunctionHost, **kwargs) -> requests.Response:
    """The details need the function key (anonymous callers get the status only)."""
    return requests.get(f"{host.url}/api/health/details", headers={"x-functions-key": host.keys.function_key}, **kwargs)


def test_health_reports_version_storage_and_counts(served_app, storage_connection_string, use_app_settings) -> None:
    use_app_settings(app_settings_env(storage_connection_string))
    import services

    account = services.storage_account()
    account.sync_queue.enqueue(SyncJob(7, "admin", datetime.now(UTC).isoformat()))
    account.sync_queue.enqueue(SyncJob(8, "admin", datetime.now(UTC).isoformat()))

    response = _details(served_app, timeout=30)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["version"] == "0.1.0"
    assert body["storage"] == {"reachable": True}
    assert body["counts"] == {"links": 0, "subscriptions": 0, "queue_depth": 2, "poison_depth": 0}
    assert response.headers["Cache-Control"] == "no-store"


def test_health_details_show_the_shared_syncro_budget_and_who_waited(
    served_app, storage_connection_string, use_app_settings
) -> None:
    use_app_settings(app_settings_env(storage_connection_string))
    import services
    from sync.budget import Caller, spending_as
    from sync.errors import SyncroBudgetExhausted

    budget = services.syncro_budget()
    with spending_as(Caller.WEBHOOK):  # the webhook takes the whole minute, then is refused
        try:
            while True:
                budget.acquire()
        except SyncroBudgetExhausted:
            pass

    syncro = _details(served_app, timeout=30).json()["syncro"]["budget"]

    assert syncro["limit"] == 150 and syncro["window_seconds"] == 64
    assert syncro["callers"]["webhook"]["used"] == 150  # nobody else asked: their reserves were lent
    assert syncro["callers"]["webhook"]["refused_recently"] >= 1 and syncro["callers"]["webhook"]["last_refused_at"]
    assert syncro["callers"]["poll"] == {"used": 0, "reserved": 37, "refused_recently": 0, "last_refused_at": None}


def test_health_is_503_with_a_reason_when_storage_is_down(served_app, use_app_settings) -> None:
    dead = free_port()
    connection = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"TableEndpoint=http://127.0.0.1:{dead}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{dead}/devstoreaccount1;"
    )
    use_app_settings(app_settings_env(connection))

    response = _details(served_app, timeout=60)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["reason"].startswith("storage unreachable")
    assert "AccountKey" not in response.text


def test_health_is_503_naming_a_bad_setting(served_app, storage_connection_string, use_app_settings) -> None:
    use_app_settings(app_settings_env(storage_connection_string, CONFLICT_POLICY="coin-toss"))
    response = _details(served_app, timeout=30)
    assert response.status_code == 503
    assert response.json()["reason"].startswith("configuration: setting CONFLICT_POLICY is 'coin-toss'")


def test_health_only_answers_get(served_app) -> None:
    response = requests.post(f"{served_app.url}/api/health", timeout=30)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
