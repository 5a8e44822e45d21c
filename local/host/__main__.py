"""``python -m local.host``: serve function_app.py locally, like ``func start``.

Reads ``local.settings.json`` (its ``Values`` become app settings; variables already in the
environment win), validates the app's settings (one line and exit code 2 if one is bad),
and runs until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from local.host.config import HostConfig, read_local_settings
from local.host.http import HostKeys
from local.host.logs import configure_logging
from local.host.runtime import FunctionHost, generate_keys

log = logging.getLogger("host")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.host", description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument("--port", type=int, default=int(os.environ.get("FUNCTIONS_HTTP_PORT", "7071")))
    parser.add_argument("--settings", default="local.settings.json", help="local settings file (optional)")
    parser.add_argument("--host-json", default="host.json")
    parser.add_argument("--keys-file", default=".local/host-keys.json", help="where generated keys are written")
    return parser.parse_args(argv)


def _load_app(reference: str) -> object:
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute or "app")


def _keys(keys_file: Path) -> HostKeys:
    """Keys from LOCAL_FUNCTION_KEY / LOCAL_MASTER_KEY, else fresh ones written to ``keys_file`` (never logged)."""
    function_key, master_key = os.environ.get("LOCAL_FUNCTION_KEY"), os.environ.get("LOCAL_MASTER_KEY")
    if function_key and master_key:
        return HostKeys(function_key, master_key)
    keys = generate_keys()
    from local.private_files import write_private_text

    write_private_text(keys_file, json.dumps({"function_key": keys.function_key, "master_key": keys.master_key}))
    return keys


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    configure_logging()
    settings_file = Path(args.settings)
    if settings_file.exists():
        for name, value in read_local_settings(settings_file).items():
            os.environ.setdefault(name, value)

    from settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    config = HostConfig.from_host_json(Path(args.host_json), max_request_body_bytes=settings.max_request_body_bytes)
    host = FunctionHost(_load_app(args.app), config=config, keys=_keys(Path(args.keys_file)), port=args.port)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        url = host.start()
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    log.info("functions host listening", extra={"url": f"{url}/{config.route_prefix}"})
    print(f"Functions host: {url}/{config.route_prefix}", flush=True)
    stopping.wait()
    log.info("stopping")
    host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
