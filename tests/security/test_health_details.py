"""Issue 16, low item: ``GET /api/health`` is anonymous, so it says only whether the app is up.
Version, counts, Syncro user ids and the reason for a failure (which names settings) need the
function key (``GET /api/health/details``)."""

from __future__ import annotations

import requests

from local.host import FunctionHost
from tests.conftest import app_settings_env


def test_anonymous_health_is_the_status_alone(
    served_app: FunctionHost, storage_connection_string, use_app_settings
) -> None:
    use_app_settings(app_settings_env(storage_connection_string))
    response = requests.get(f"{served_app.url}/api/health", timeout=30)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_anonymous_health_of_a_broken_app_names_no_setting(
    served_app: FunctionHost, storage_connection_string, use_app_settings
) -> None:
    use_app_settings(app_settings_env(storage_connection_string, CONFLICT_POLICY="coin-toss"))
    response = requests.get(f"{served_app.url}/api/health", timeout=30)
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    assert "CONFLICT_POLICY" not in response.text


def test_the_details_need_the_function_key(
    served_app: FunctionHost, storage_connection_string, use_app_settings
) -> None:
    use_app_settings(app_settings_env(storage_connection_string))
    url = f"{served_app.url}/api/health/details"
    assert requests.get(url, timeout=30).status_code == 401
    assert requests.get(url, headers={"x-functions-key": "not-the-key"}, timeout=30).status_code == 401
    answer = requests.get(url, headers={"x-functions-key": served_app.keys.function_key}, timeout=30)
    assert answer.status_code == 200
    assert set(answer.json()) == {"status", "version", "storage", "counts", "syncro"}


def test_a_key_on_the_anonymous_route_shows_nothing_more(
    served_app: FunctionHost, storage_connection_string, use_app_settings
) -> None:
    use_app_settings(app_settings_env(storage_connection_string))
    answer = requests.get(
        f"{served_app.url}/api/health", headers={"x-functions-key": served_app.keys.function_key}, timeout=30
    )
    assert answer.json() == {"status": "ok"}
