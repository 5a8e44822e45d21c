"""`infra/main.bicep` parses (pycep-parser) and passes checkov's scan with every finding explained.

checkov cannot share our virtual environment (it pins packaging<24, pytest needs >=24), so it
lives in its own, `.venv-tools/`, installed from `infra/requirements-tools.txt` and
`infra/constraints-tools.txt` by `make tools` (which `make test` runs). ``CHECKOV`` names another
checkov executable.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.bicep import ROOT, TEMPLATE, parse_template

CHECKOV = Path(os.environ.get("CHECKOV", ROOT / ".venv-tools" / "bin" / "checkov"))
SKIP_COMMENT = re.compile(r"//\s*checkov:skip=(CKV\w+):(.*)$", re.MULTILINE)

# The resources a scan must have looked at; a parse that silently dropped one would pass.
MUST_BE_SCANNED = {
    "Microsoft.Storage/storageAccounts.storage",
    "Microsoft.Storage/storageAccounts/blobServices/containers.deploymentContainer",
    "Microsoft.KeyVault/vaults.keyVault",
    "Microsoft.Web/serverfarms.plan",
    "Microsoft.Web/sites.functionApp",
}


@pytest.fixture(scope="module")
def scan() -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"checkov is not installed at {CHECKOV}: run `make tools` (make test does)")
    env = {
        **os.environ,
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",  # no network: no version look-up
        "CKV_PARSE_ERROR_FAIL": "true",
        "BC_SKIP_MAPPING": "true",
    }
    env.pop("BC_API_KEY", None)
    completed = subprocess.run(
        [str(CHECKOV), "--file", str(TEMPLATE), "--framework", "bicep", "--skip-download", "--output", "json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON report (exit {completed.returncode}):\n{completed.stderr[-3000:]}")
    assert isinstance(report, dict) and report.get("check_type") == "bicep", f"unexpected report: {str(report)[:500]}"
    return report


def test_the_template_parses_with_pycep() -> None:
    parsed = parse_template()
    resources = parsed["resources"]
    types = {spec["type"] for spec in resources.values()}
    assert {
        "Microsoft.Web/serverfarms",
        "Microsoft.Web/sites",
        "Microsoft.Storage/storageAccounts",
        "Microsoft.KeyVault/vaults",
        "Microsoft.Insights/components",
        "Microsoft.OperationalInsights/workspaces",
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "Microsoft.Authorization/roleAssignments",
    } <= types


def test_checkov_finds_nothing_unexplained(scan: dict[str, Any]) -> None:
    summary, results = scan["summary"], scan["results"]
    assert summary["parsing_errors"] == 0
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in results["failed_checks"]]
    assert not failed, "checkov findings: fix each, or skip it in the resource with a one-line reason:\n" + "\n".join(
        failed
    )
    scanned = {c["resource"] for kind in ("passed_checks", "skipped_checks") for c in results[kind]}
    assert scanned >= MUST_BE_SCANNED, f"not scanned: {sorted(MUST_BE_SCANNED - scanned)}"
    assert summary["passed"] >= 18  # 19 with the Flex-only siteConfig (ftpsState and http20Enabled out)


def test_every_suppression_has_a_reason_and_matches_a_real_finding(scan: dict[str, Any]) -> None:
    comments = SKIP_COMMENT.findall(TEMPLATE.read_text(encoding="utf-8"))
    assert comments, "the template has no checkov:skip comment at all: was the pattern changed?"
    for check_id, reason in comments:
        assert len(reason.strip()) >= 30, f"{check_id}: the reason is too short to explain anything: {reason!r}"
    skipped = scan["results"]["skipped_checks"]
    for check in skipped:
        comment = check["check_result"].get("suppress_comment", "")
        assert comment and comment != "No comment provided", f"{check['check_id']} is skipped without a reason"
    used = {c["check_id"] for c in skipped}
    written = {check_id for check_id, _ in comments}
    assert written <= used, f"skips for checks that no longer fail (remove them): {sorted(written - used)}"


def test_the_template_keeps_the_settings_an_architect_signs_off() -> None:
    """The controls the issue names, read from the parsed template itself, not from checkov's opinion."""
    resources = parse_template()["resources"]
    storage = resources["storage"]["config"]["properties"]
    assert storage["allowSharedKeyAccess"] is False
    assert storage["allowBlobPublicAccess"] is False
    assert storage["minimumTlsVersion"] == "TLS1_2"
    assert storage["supportsHttpsTrafficOnly"] is True
    vault = resources["keyVault"]["config"]["properties"]
    assert vault["enableRbacAuthorization"] is True
    site = resources["functionApp"]["config"]
    assert site["properties"]["httpsOnly"] is True
    assert site["properties"]["siteConfig"]["minTlsVersion"] == "1.2"
    assert site["identity"]["type"] == "UserAssigned"
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    scale = config["scaleAndConcurrency"]
    assert scale["maximumInstanceCount"] == "maximumInstanceCount"  # parameters, not constants
    assert scale["alwaysReady"] == "alwaysReady"
    assert scale["triggers"]["http"]["perInstanceConcurrency"] == "httpPerInstanceConcurrency"
    plan = resources["plan"]["config"]
    assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    grants = set()
    for spec in resources.values():
        if spec["type"] != "Microsoft.Authorization/roleAssignments":
            continue
        config = spec["config"].get("config", spec["config"])  # a conditional resource nests its body
        role = config["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
        grants.add((_dotted(role), config["scope"], _dotted(config["properties"]["principalId"])))
    app = "identity.properties.principalId"
    assert grants == {
        ("roles.storageBlobDataOwner", "storage", app),  # host: timer locks, keys, the deployment package
        ("roles.storageQueueDataContributor", "storage", app),  # sync jobs
        ("roles.storageTableDataContributor", "storage", app),  # all of the app's state
        ("roles.keyVaultSecretsUser", "keyVault", app),  # Key Vault references
        ("roles.monitoringMetricsPublisher", "appInsights", app),  # telemetry with Entra ID
        ("roles.keyVaultSecretsOfficer", "keyVault", "secretsOfficerPrincipalId"),  # the admin sets the secrets
    }


# What a Flex Consumption site takes in siteConfig. Newer regional stamps refuse the rest with
# ARM error 51021 ("site configuration properties ... for Flex Consumption sites is invalid"):
# ftpsState among them (FTP is off through basicPublishingCredentialsPolicies), and the other
# plans' scale and runtime settings, whose Flex equivalents are in functionAppConfig.
FLEX_SITE_CONFIG = {
    "appSettings",
    "minTlsVersion",
    "cors",
    "ipSecurityRestrictions",
    "ipSecurityRestrictionsDefaultAction",
}


def test_site_config_holds_only_what_flex_consumption_accepts() -> None:
    site_config = parse_template()["resources"]["functionApp"]["config"]["properties"]["siteConfig"]
    assert set(site_config) <= FLEX_SITE_CONFIG, (
        f"refused on Flex Consumption: {sorted(set(site_config) - FLEX_SITE_CONFIG)}"
    )


def test_scale_parameters_are_safe_in_every_region() -> None:
    """Microsoft's Flex samples declare maximumInstanceCount @minValue(40): lower values are
    refused in some regions, so the template neither defaults to nor accepts them."""
    parameters = parse_template()["parameters"]
    limits = {d["type"]: d["argument"] for d in parameters["maximumInstanceCount"]["decorators"]}
    assert limits["min_value"] >= 40 and limits["max_value"] <= 1000
    assert parameters["maximumInstanceCount"]["default"] >= limits["min_value"]
    always_ready = parameters["alwaysReadyHttpInstances"]
    assert always_ready["default"] == 0  # billed around the clock: off unless asked for


def _dotted(node: Any) -> str:
    if isinstance(node, str):
        return node
    operands = node["operator"]["operands"]
    return f"{_dotted(operands['operand_1'])}.{_dotted(operands['operand_2'])}"
