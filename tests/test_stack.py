"""`make run`'s stack as a process: it comes up, honours the stack.json contract, serves the demo,
and stops everything it started on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msal
import requests

from local import demo
from local.sims.identity import msal_session

ROOT = Path(__file__).resolve().parent.parent
CONTRACT_KEYS = {
    "host", "function_key", "identity", "graph", "syncro", "syncro_token", "ca_bundle", "storage", "users",
}  # fmt: skip


def _children(pid: int) -> list[int]:
    result = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in result.stdout.split()]


def test_stack_starts_serves_the_demo_and_stops_cleanly(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "STACK_STATE_DIR": str(tmp_path),
        "FUNCTIONS_HTTP_PORT": "0",
        "AZURITE_BLOB_PORT": "0",
        "AZURITE_QUEUE_PORT": "0",
        "AZURITE_TABLE_PORT": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "local.stack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stack_file = tmp_path / "stack.json"
    banner: list[str] = []  # the lines read before the end, for the output checks below
    try:
        deadline = time.monotonic() + 90
        while not stack_file.exists():
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "stack.json never appeared"
            time.sleep(0.2)
        stack = json.loads(stack_file.read_text())
        assert set(stack) == CONTRACT_KEYS
        assert set(stack["identity"]) == {"authority", "client_id", "client_secret", "tenant_id"}
        assert stack["graph"].endswith("/v1.0") and stack["syncro"].endswith("/api/v1")
        assert oct(stack_file.stat().st_mode & 0o777) == "0o600"
        users = stack["users"]
        assert len(users) >= 3 and sum(u["personal"] for u in users) == 1
        assert all(set(u) == {"email", "password", "syncro_user_id", "personal", "linked", "role"} for u in users)
        assert [u["email"] for u in users if u["role"] == "admin"] == [demo.DISPATCHER.sign_in]

        health = requests.get(f"{stack['host']}/api/health", timeout=30)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        details = requests.get(
            f"{stack['host']}/api/health/details", headers={"x-functions-key": stack["function_key"]}, timeout=30
        )
        assert details.status_code == 200 and details.json()["storage"]["reachable"]

        # The demo linked its first tech at start-up through the product's own pages (two-way on).
        assert [u["linked"] for u in users] == [True] + [False] * (len(users) - 1)
        links = requests.get(
            f"{stack['host']}/api/admin/links", headers={"x-functions-key": stack["function_key"]}, timeout=30
        ).json()["links"]
        assert [(link["syncro_user_id"], link["status"], link["two_way"]) for link in links] == [
            (users[0]["syncro_user_id"], "active", True)
        ]

        # A demo tech acts in Outlook: MSAL's password grant, then Graph with that token.
        # stack.json's authority is the product's, bound to the demo tenant: MSAL uses it as it is.
        authority = stack["identity"]["authority"]
        assert authority.endswith("/" + stack["identity"]["tenant_id"])
        session = msal_session(authority.rsplit("/", 1)[0], stack["ca_bundle"])
        app = msal.ConfidentialClientApplication(
            stack["identity"]["client_id"],
            client_credential=stack["identity"]["client_secret"],
            authority=authority,
            http_client=session,
            instance_discovery=False,
        )
        tech = next(u for u in users if not u["personal"])
        token = app.acquire_token_by_username_password(tech["email"], tech["password"], scopes=["Calendars.ReadWrite"])
        assert "access_token" in token, token.get("error_description")
        calendars = session.get(
            f"{stack['graph']}/me/calendars", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=30
        )
        assert calendars.status_code == 200
        assert any(c["isDefaultCalendar"] for c in calendars.json()["value"])

        # As in real tenants, a sign-in name is not always the mailbox's address: the demo has a tech
        # whose mail differs from the UPN that stack.json gives as "email".
        mailboxes = []
        for work_tech in (u for u in users if not u["personal"] and u["role"] == "tech"):
            token = app.acquire_token_by_username_password(
                work_tech["email"], work_tech["password"], scopes=["User.Read"]
            )
            me = session.get(
                f"{stack['graph']}/me", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=30
            ).json()
            assert me["userPrincipalName"] == work_tech["email"]
            mailboxes.append(me)
        assert any(me["mail"] and me["mail"].lower() != me["userPrincipalName"].lower() for me in mailboxes)

        # The dispatcher's token reads the demo appointments: ids above 2^32, as on a live account,
        # and, as there, without user ids, so who holds each is read from the simulator's record.
        appointments = session.get(
            f"{stack['syncro']}/appointments",
            headers={"Authorization": f"Bearer {stack['syncro_token']}"},
            timeout=30,
        ).json()["appointments"]
        assert appointments and all(a["appointment"]["id"] > 2**32 for a in appointments)
        assert not any("user_ids" in a["appointment"] for a in appointments)
        syncro_sim = stack["syncro"].removesuffix("/api/v1")
        records = session.get(f"{syncro_sim}/_sim/appointments", timeout=30).json()
        assert any(tech["syncro_user_id"] in r["user_ids"] for r in records["appointments"])

        # Within a minute of the banner, the linked tech's Syncro appointments are in his Outlook
        # calendar and in his feed (the banner prints its URL), with no button pressed.
        feed_url = ""
        while not feed_url:
            assert time.monotonic() < deadline + 60, "the banner never printed the feed URL"
            line = process.stdout.readline()
            banner.append(line)
            if "calendar feed: " in line:
                feed_url = line.split("calendar feed: ", 1)[1].strip()
        alex_token = app.acquire_token_by_username_password(tech["email"], tech["password"], scopes=["Calendars.Read"])
        first_sync = time.monotonic() + 60
        while True:
            events = session.get(
                f"{stack['graph']}/me/events",
                headers={"Authorization": f"Bearer {alex_token['access_token']}"},
                timeout=30,
            ).json()["value"]
            feed = requests.get(feed_url, timeout=30).text
            if any(e["subject"].startswith("[S] ") for e in events) and "SUMMARY:" in feed:
                break
            assert time.monotonic() < first_sync, "the linked tech's appointments did not arrive within a minute"
            time.sleep(1)
    finally:
        children = _children(process.pid)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
        output = "".join(banner) + output
    assert process.returncode == 0, output
    assert "Settings page: http://127.0.0.1:" in output
    time.sleep(0.5)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], "a child outlived the stack"
