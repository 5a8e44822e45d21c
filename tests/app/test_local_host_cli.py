"""`python -m local.host` as a process: it refuses bad settings in one line, serves function_app
and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import requests

from tests.conftest import app_settings_env

VALID = app_settings_env("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;")


def test_the_local_host_stops_with_one_line_on_a_bad_setting(tmp_path) -> None:
    env = {**VALID, "SYNC_WINDOW_PAST_DAYS": "lots", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "local.host", "--settings", str(tmp_path / "none.json"), "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: setting SYNC_WINDOW_PAST_DAYS is not a whole number ('lots'); a valid value looks like 60"
    ]
    assert "Traceback" not in result.stderr


def test_the_local_host_serves_function_app_and_stops_on_sigterm(tmp_path, storage_connection_string) -> None:
    env = {**os.environ, **app_settings_env(storage_connection_string)}
    process = subprocess.Popen(
        [sys.executable, "-m", "local.host", "--settings", str(tmp_path / "none.json"), "--port", "0",
         "--keys-file", str(tmp_path / "keys.json")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        assert line.startswith("Functions host: http://127.0.0.1:"), line
        base = line.split(": ", 1)[1].strip()
        assert requests.get(f"{base}/health", timeout=30).json()["status"] == "ok"
        assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
