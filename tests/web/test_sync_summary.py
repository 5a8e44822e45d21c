"""What "Sync now" tells the tech, in one sentence."""

from __future__ import annotations

from sync.engine import SyncReport
from web.tech_actions import sync_summary


def test_the_summary_names_what_changed_on_each_side() -> None:
    report = SyncReport(1, created={"syncro": 1, "outlook": 2}, deleted={"syncro": 0, "outlook": 1})
    assert sync_summary(report) == "Synced: 2 created in Outlook, 1 created in Syncro, 1 deleted in Outlook."


def test_nothing_to_do_busy_and_skipped_items_are_said_plainly() -> None:
    assert sync_summary(SyncReport(1)) == "Synced: both calendars already agreed."
    assert "already running" in sync_summary(SyncReport(1, status="busy"))
    skipped = SyncReport(1, skipped=[{"side": "outlook", "id": "x", "reason": "no start"}])
    assert sync_summary(skipped).endswith("1 item(s) could not be read and were left alone.")
    assert (
        sync_summary(SyncReport(1, status="inactive", detail="sign in again")) == "The sync did not run: sign in again."
    )
