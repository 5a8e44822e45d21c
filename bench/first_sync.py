"""A new technician's first sync, timed on the local stack with the queue trigger and timers
running as `make run` runs them (simulators over TLS, Azurite, the local host, this process):
from the moment linking's last step (the tech's own Syncro token) is submitted to the moment their
Syncro appointment is in their Outlook calendar, with no button pressed. Syncro hides owners, as
live Syncro most likely does. Each trial is a new tech with one appointment in two days' time.

Prints the median, 95th percentile and worst of ``--trials`` links (the page promises a minute).

    .venv/bin/python bench/first_sync.py [--trials 10]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local import demo
from local.azurite import start_azurite
from local.inprocess import Product, start_product
from local.tls import make_tls_files

FIRST_ID = 1_700_000


def _new_tech(product: Product, n: int) -> tuple[str, str, str]:
    """A tech known to Microsoft, Graph and Syncro, with their own Syncro token and one appointment;
    (sign-in name, Syncro token, the appointment's title)."""
    upn, syncro_id, title = f"bench.tech{n}@contoso.example", FIRST_ID + n, f"Bench visit {n}"
    users = product.sim("identity").seed(
        {"users": [{"upn": upn, "password": product.secrets.password, "name": f"Bench Tech {n}"}]}
    )["users"]
    product.sim("graph").seed(demo.graph_seed(users, now=datetime.now(UTC)))
    token = secrets.token_hex(20)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    product.sim("syncro").seed(
        {
            "users": [{"id": syncro_id, "email": upn, "full_name": f"Bench Tech {n}", "group": "Techs"}],
            "tokens": [{"token": token, "user_id": syncro_id}],
            "appointments": [
                {
                    "id": demo.FIRST_APPOINTMENT_ID + 10_000 + n,
                    "summary": title,
                    "start_at": start.isoformat().replace("+00:00", "Z"),
                    "end_at": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
                    "user_id": syncro_id,
                    "user_ids": [syncro_id],
                }
            ],
        }
    )
    return upn, token, title


def _in_outlook(product: Product, upn: str, title: str) -> bool:
    graph = product.sim("graph")
    oid = next(m.oid for m in graph.store.mailboxes.values() if (m.upn or "").lower() == upn.lower())
    return any(str(e.get("subject")) == f"[S] {title}" for e in graph.stored_events(oid))


def _one_link(product: Product, n: int, *, timeout: float = 120.0) -> float:
    from local.formwalk import follow, submit

    upn, token, title = _new_tech(product, n)
    session = product.browser()
    step = product.sign_in(session, upn, syncro_token=False)
    assert "/api/settings/syncro-token" in step.url, step.url  # Syncro hides owners: linking asks
    started = time.monotonic()
    settled = follow(session, submit(session, step, form_id="syncro-token", fields={"token": token}))
    assert settled.status_code == 200, settled.text[:300]
    while not _in_outlook(product, upn, title):
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"tech {n}: the appointment did not reach Outlook in {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        azurite = start_azurite()
        stack.callback(azurite.stop)
        product = start_product(stack, tls=make_tls_files(Path(tmp)), storage=azurite.connection_string, background={})
        seconds = [_one_link(product, n) for n in range(args.trials)]
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(
        f"first sync (token submitted -> appointment in Outlook): median {statistics.median(ordered):.2f} s   "
        f"p95 {p95:.2f} s   worst {ordered[-1]:.2f} s   (n={len(ordered)})"
    )


if __name__ == "__main__":
    main()
