"""Issue 16: secrets in URL paths. The Syncro webhook's secret is the whole credential of an
anonymous URL, so it must be unguessable (at least 128 bits), and neither it nor an ICS feed
token may appear in our log lines or the local host's access log (docs/security.md, "Secrets in
URLs: what is recorded where")."""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from settings import MIN_WEBHOOK_SECRET_BITS, SettingsError, load_settings, secret_bits
from tests.conftest import app_settings_env

pytest_plugins = ["tests.realtime.webhook_support"]

STORAGE = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"


# -- SYNCRO_WEBHOOK_SECRET: at least 128 bits ---------------------------------------------------------


@pytest.mark.parametrize(
    "weak",
    [
        "x",
        "webhook-secret-value",  # 20 url-safe characters: at most 120 bits
        "0123456789" * 3,  # 30 digits: about 100 bits
        secrets.token_hex(15),  # 30 hex digits: 120 bits
        secrets.token_urlsafe(15),  # 20 characters
    ],
    ids=["x", "20-urlsafe", "30-digits", "30-hex", "20-random-urlsafe"],  # fixed: xdist workers must agree
)
def test_a_webhook_secret_under_128_bits_is_refused_saying_what_to_run(weak: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(app_settings_env(STORAGE, SYNCRO_WEBHOOK_SECRET=weak))
    message = str(refused.value)
    assert "SYNCRO_WEBHOOK_SECRET" in message and "128 bits" in message and "make key" in message
    assert weak not in message  # the value itself is never echoed


@pytest.mark.parametrize("unsafe", ["a/" * 40, "secret%2F" * 10, "with space " * 10, "q?x=" * 20])
def test_a_webhook_secret_that_is_not_a_clean_path_segment_is_refused(unsafe: str) -> None:
    with pytest.raises(SettingsError, match="other than letters, digits"):
        load_settings(app_settings_env(STORAGE, SYNCRO_WEBHOOK_SECRET=unsafe))


@pytest.mark.parametrize(
    "strong",
    [
        secrets.token_urlsafe(16),  # 22 characters: 132 bits
        secrets.token_urlsafe(32),
        secrets.token_hex(16),  # 32 hex digits: 128 bits
        base64.urlsafe_b64encode(os.urandom(32)).decode(),  # what `make key` prints
    ],
    ids=["22-urlsafe", "43-urlsafe", "32-hex", "make-key"],  # fixed: xdist workers must agree
)
def test_a_random_secret_of_128_bits_or_more_is_taken(strong: str) -> None:
    assert load_settings(app_settings_env(STORAGE, SYNCRO_WEBHOOK_SECRET=strong)).syncro_webhook_secret == strong
    assert secret_bits(strong) >= MIN_WEBHOOK_SECRET_BITS


# -- files on this machine that hold the URL secrets and keys -------------------------------------------


@pytest.fixture
def no_chmod_after(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A umask that makes new files world-readable, and chmod calls that do nothing: the file's
    mode must come from its creation, with no moment at 0644 in between."""
    monkeypatch.setattr(Path, "chmod", lambda self, mode, **kwargs: None)
    monkeypatch.setattr(os, "chmod", lambda *args, **kwargs: None)
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_stack_json_is_created_0600(tmp_path: Path, no_chmod_after: None) -> None:
    from local.stack import write_private_json

    path = tmp_path / ".local" / "stack.json"
    write_private_json(path, {"function_key": "k", "syncro_token": "t"})
    assert _mode(path) == 0o600
    assert json.loads(path.read_text())["function_key"] == "k"


def test_a_world_readable_stack_json_from_before_is_replaced_by_a_0600_one(
    tmp_path: Path, no_chmod_after: None
) -> None:
    from local.stack import write_private_json

    path = tmp_path / "stack.json"
    path.write_text("{}")
    assert _mode(path) == 0o644
    write_private_json(path, {"function_key": "new"})
    assert _mode(path) == 0o600 and json.loads(path.read_text()) == {"function_key": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["stack.json"]  # no temporary file left behind


def test_the_local_hosts_key_file_is_created_0600(
    tmp_path: Path, no_chmod_after: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from local.host.__main__ import _keys

    monkeypatch.delenv("LOCAL_FUNCTION_KEY", raising=False)
    monkeypatch.delenv("LOCAL_MASTER_KEY", raising=False)
    keys = _keys(tmp_path / "keys.json")
    assert _mode(tmp_path / "keys.json") == 0o600
    assert json.loads((tmp_path / "keys.json").read_text())["function_key"] == keys.function_key


# -- what the host and our own log lines record of a secret URL ----------------------------------------


def test_host_json_keeps_request_paths_out_of_application_insights() -> None:
    """With extended HTTP info on (the default), the host's request telemetry records each
    request's URL path, feed token and webhook secret included (docs/security.md)."""
    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())
    options = host["logging"]["applicationInsights"]["httpAutoCollectionOptions"]
    assert options["enableHttpTriggerExtendedInfoCollection"] is False


def _everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    standard = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
    lines = []
    for record in caplog.records:
        extra = {key: value for key, value in record.__dict__.items() if key not in standard}
        lines.append(f"{record.name} {record.getMessage()} {extra} {record.exc_text or ''}")
    return "\n".join(lines)


def test_no_log_line_carries_a_feed_token_or_the_webhook_secret(
    realtime_stack: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.realtime.webhook_support import ALEX, syncro_hook, syncro_payload

    stack = realtime_stack
    admin = {"x-functions-key": stack.product.function_key}
    secret = stack.product.env["SYNCRO_WEBHOOK_SECRET"]
    caplog.set_level(logging.INFO)

    issued = requests.post(f"{stack.url}/api/admin/feeds/{ALEX.syncro_user_id}", headers=admin, timeout=30)
    assert issued.status_code == 201, issued.text
    feed_url = issued.json()["url"]
    token = feed_url.rsplit("/", 1)[1].removesuffix(".ics")
    assert (
        requests.get(feed_url.replace(stack.product.env["PUBLIC_BASE_URL"], stack.url), timeout=30).status_code == 200
    )
    wrong_token = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert requests.get(f"{stack.url}/api/ics/{wrong_token}.ics", timeout=30).status_code == 404
    assert stack.post_json(syncro_hook(stack), syncro_payload(987654321098)).status_code == 202
    assert stack.post(syncro_hook(stack), b"{", headers={"Content-Type": "application/json"}).status_code == 400
    wrong_secret = secrets.token_urlsafe(32)
    assert stack.post_json(syncro_hook(stack, wrong_secret), syncro_payload(1)).status_code == 403
    requests.delete(f"{stack.url}/api/admin/feeds/{ALEX.syncro_user_id}", headers=admin, timeout=30)

    logged = _everything_logged(caplog)
    assert "GET /api/ics/{token}.ics -> 200" in logged  # the host's access log: the route template
    assert "POST /api/syncro/notifications/{secret} -> 403" in logged
    for value in (token, wrong_token, secret, wrong_secret):
        assert value not in logged
