"""The alert rules in `infra/main.bicep` reach a person and point at a fix that exists.

Each rule is rendered from the template (tests/infra/bicep.py) and checked for what would make it
useless in Azure: a phrase its query looks for that the app no longer writes (the rule would
never fire), a section of docs/deploy.md it names that is gone, an action group that mails
nobody. The app's own messages are produced here by the app's code, not copied.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.infra.bicep import ROOT, Template, parameter_file_values, parse_template

RUNTIME = {"appInsights.id": "/subscriptions/s/resourceGroups/rg-sync/providers/Microsoft.Insights/components/appi"}
RESOURCE_GROUP = {"name": "rg-sync", "id": "/subscriptions/s/resourceGroups/rg-sync", "location": "westeurope"}

# The failures issue 19 says an admin must hear about, by rule key.
REQUIRED = {"jobs-set-aside", "graph-subscriptions", "relink", "function-errors", "syncro-429"}


def _poisoned_job_line(caplog: pytest.LogCaptureFixture) -> str:
    from realtime.jobs import Delivery, _log
    from storage.sync_queue import SyncJob

    now = datetime.now(UTC)
    with caplog.at_level(logging.INFO, logger="realtime.jobs"):
        _log(Delivery(b"{}", "m1", 5), SyncJob(5560138523, "reconcile", now.isoformat()), "poisoned", now, now)
    return caplog.records[-1].getMessage()


def _syncro_throttled(caplog: pytest.LogCaptureFixture) -> str:
    from sync.errors import SyncroThrottled

    return str(SyncroThrottled(429, None, "GET /api/v1/appointments"))


def _source(path: str) -> Callable[[pytest.LogCaptureFixture], str]:
    return lambda caplog: (ROOT / path).read_text(encoding="utf-8")


# Where each phrase a query looks for comes from: the app's code producing it, or (for the
# Functions host's own line) the reason it is trusted.
WITNESSES: dict[str, Callable[[pytest.LogCaptureFixture], str]] = {
    "sync job poisoned": _poisoned_job_line,
    "subscription work for tech": _source("sync/subscriptions.py"),
    "needs to link again": _source("oauth/tokens.py"),
    "Syncro answered 429": _syncro_throttled,
    # Azure WebJobs queue extension, QueueProcessor.CopyMessageToPoisonQueueAsync: "Message has
    # reached MaxDequeueCount of {0}. Moving message to queue '{1}'." (a warning, category
    # Host.Triggers.Queue, kept by host.json's default level).
    "Moving message to queue": lambda caplog: "Moving message to queue 'sync-jobs-poison'.",
}


@pytest.fixture(scope="module")
def deployment() -> Template:
    return Template(
        parse_template(),
        parameter_file_values(),
        runtime=RUNTIME,
        resource_group=RESOURCE_GROUP,
        tenant_id="72f988bf-0000-0000-0000-000000000000",
    )


@pytest.fixture(scope="module")
def rules(deployment: Template) -> list[dict[str, Any]]:
    return deployment.evaluate(deployment.resource("alerts"))


def _phrases(query: str) -> list[str]:
    """The phrases a query requires (``has "x"``, ``startswith "x"``; not ``!startswith``)."""
    return re.findall(r'(?<![!\w])(?:startswith|has) "([^"]+)"', query)


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_the_rules_cover_every_failure_an_admin_must_act_on(deployment: Template) -> None:
    keys = {rule["key"] for rule in deployment.variable("alertRules")}
    assert keys == REQUIRED


def test_every_rule_mails_the_alert_address_and_watches_the_apps_telemetry(
    deployment: Template, rules: list[dict[str, Any]]
) -> None:
    group = deployment.resource("actionGroup")
    receivers = deployment.evaluate(group["properties"]["emailReceivers"])
    assert [r["emailAddress"] for r in receivers] == [parameter_file_values()["alertEmail"]]
    assert len(deployment.evaluate(group["properties"]["groupShortName"])) <= 12  # Azure's limit
    group_id = deployment.reference(["actionGroup", "id"])
    for rule in rules:
        properties = rule["properties"]
        assert properties["scopes"] == [RUNTIME["appInsights.id"]], rule["name"]
        assert properties["actions"]["actionGroups"] == [group_id], rule["name"]
        assert properties["enabled"] is True
        assert properties["criteria"]["allOf"][0]["query"].split("|")[0].strip() in {"traces", "requests"}


def test_every_rule_names_a_section_of_the_guide_that_exists(rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        doc = rule["properties"]["actions"]["customProperties"]["fix"]
        assert doc == rule["properties"]["description"]
        path, _, anchor = doc.partition("#")
        text = (ROOT / path).read_text(encoding="utf-8")
        anchors = {_slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}
        assert anchor in anchors, f"{rule['name']}: {doc} names no heading of {path}"


def test_every_phrase_a_rule_looks_for_is_one_the_app_writes(
    rules: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    for rule in rules:
        for phrase in _phrases(rule["properties"]["criteria"]["allOf"][0]["query"]):
            assert phrase in WITNESSES, f"{rule['name']} looks for {phrase!r}: add where it comes from to WITNESSES"
            assert phrase in WITNESSES[phrase](caplog), f"{rule['name']}: nothing writes {phrase!r} any more"
