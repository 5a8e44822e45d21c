"""sync/job_reasons.py and sync/report.py: the enums keep the strings that queue messages, status
rows and the API's JSON already hold."""

from __future__ import annotations

import json

from storage.sync_queue import SyncJob, parse_message
from sync.job_reasons import JobReason
from sync.report import SyncReport, SyncStatus


def test_reasons_keep_their_stored_values() -> None:
    assert {reason.value for reason in JobReason} >= {
        "syncro-poll",
        "syncro-notification",
        "graph-notification",
        "graph-recheck",
        "graph-missed",
        "busy-follow-up",
        "syncro-budget-follow-up",
        "reconcile",
        "linked",
        "syncro-token",
    }


def test_a_queued_reason_reads_back_equal_to_its_member() -> None:
    job = SyncJob(7, JobReason.GRAPH_RECHECK, "2026-03-10T09:00:00+00:00")
    read = parse_message(job.to_json())
    assert read.reason == JobReason.GRAPH_RECHECK and read.reason in {JobReason.GRAPH_RECHECK}


def test_a_report_status_is_plain_text_in_json() -> None:
    report = SyncReport(7, status=SyncStatus.BUSY)
    assert json.loads(json.dumps(report.to_json()))["status"] == "busy"
    assert [status.value for status in SyncStatus] == ["synced", "not_linked", "inactive", "busy", "unlinked", "failed"]
