"""Linking, timed on the local stack (simulators over TLS, Azurite, the local host, in this process):

- the sign-in round trip a tech makes: /api/oauth/start -> Microsoft's sign-in page -> password
  posted -> /api/oauth/callback -> the settings page, as one browser session would;
- GET /api/settings for a signed-in tech (its calendars cached briefly, as the page does);
- the settings page's template render alone.

Prints medians and 95th percentiles.

    .venv/bin/python bench/linking.py [--rounds 30] [--renders 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local import demo
from local.azurite import start_azurite
from local.inprocess import start_product
from local.tls import make_tls_files


def _summary(label: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"{label:<44} median {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms   (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--renders", type=int, default=200)
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        azurite = start_azurite()
        stack.callback(azurite.stop)
        product = start_product(stack, tls=make_tls_files(Path(tmp)), storage=azurite.connection_string)
        tech = demo.TECHS[0]

        rounds = []
        for _ in range(args.rounds):
            session = product.browser()
            started = time.perf_counter()
            page = product.sign_in(session, tech.sign_in)
            rounds.append(time.perf_counter() - started)
            assert page.status_code == 200, page.text[:300]
        print(_summary("sign-in round trip (start -> settings page)", rounds[1:]))
        print(f"{'  first one (consent page, new link)':<44} {rounds[0] * 1000:7.1f} ms")

        renders = []
        session.get(f"{product.host_url}/api/settings")  # fills the calendar cache
        for _ in range(args.renders):
            started = time.perf_counter()
            assert session.get(f"{product.host_url}/api/settings").status_code == 200
            renders.append(time.perf_counter() - started)
        print(_summary("GET /api/settings (signed in, over HTTP)", renders))

        from web import pages, settings_views
        from web.links import linking_overview

        overview = linking_overview(tech.syncro_user_id)
        templates = []
        for _ in range(args.renders):
            started = time.perf_counter()
            pages.render_settings(settings_views.settings_view(overview, csrf_token="x" * 43))
            templates.append(time.perf_counter() - started)
        print(_summary("settings page template render (in-process)", templates))


if __name__ == "__main__":
    main()
