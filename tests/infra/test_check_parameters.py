"""infra/check_parameters.py refuses the shipped placeholders before a deployment starts.

The parameters file ships an all-zero client id, a placeholder Syncro subdomain and an example
mailbox; a deployment with any of them left in would come up unable to sign anyone in, reach
Syncro, or tell anyone. The check runs here as the admin runs it (python3, the real file).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tests.infra.bicep import PARAMETERS, ROOT, parameter_file_values, parse_template

SCRIPT = ROOT / "infra" / "check_parameters.py"
FILLED = [
    "msClientId=0d7b2a52-1c1e-4c7b-9f55-6f0a3c2f1e11",
    "syncroSubdomain=contoso-msp",
    "alertEmail=ops@contoso-msp.com",
]
TENANT = "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"


def run(*overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(PARAMETERS), *overrides],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def problems(**values: Any) -> list[str]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_parameters", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    base = dict(item.split("=", 1) for item in FILLED)
    return module.problems({**base, **values})


def test_the_shipped_parameters_file_is_refused_naming_each_placeholder() -> None:
    completed = run()
    assert completed.returncode == 2
    for name in ("msClientId", "syncroSubdomain", "alertEmail"):
        assert name in completed.stderr
    assert "Traceback" not in completed.stderr


def test_the_file_with_real_values_passes_silently() -> None:
    completed = run(*FILLED)
    assert (completed.returncode, completed.stdout, completed.stderr) == (0, "", "")


def test_the_placeholders_are_those_the_parameters_file_ships() -> None:
    """If the file's placeholders change, the check must still know them."""
    shipped = parameter_file_values()
    assert problems(msClientId=shipped["msClientId"])
    assert problems(syncroSubdomain=shipped["syncroSubdomain"])
    assert problems(alertEmail=shipped["alertEmail"])
    required = {name for name, spec in parse_template()["parameters"].items() if spec.get("default") is None}
    assert required <= {"msClientId", "syncroSubdomain", "alertEmail"}, "a new required parameter: check it too"


@pytest.mark.parametrize(
    ("values", "word"),
    [
        ({"msClientId": "not-a-guid"}, "msClientId"),
        ({"syncroSubdomain": "https://acme.syncromsp.com"}, "syncroSubdomain"),
        ({"alertEmail": "someone"}, "alertEmail"),
        ({"alertEmail": "admin@example.com"}, "alertEmail"),
        ({"signInTenantId": "common"}, "signInTenantId"),
        ({"signInTenantId": "organizations"}, "signInTenantId"),
        ({"signInTenantId": "00000000-0000-0000-0000-000000000000"}, "signInTenantId"),
        ({"adminGroupIds": f"{TENANT},admins"}, "adminGroupIds"),
        ({"secretsOfficerPrincipalId": "me@contoso-msp.com"}, "secretsOfficerPrincipalId"),
    ],
)
def test_a_value_that_cannot_work_is_refused_by_name(values: dict[str, str], word: str) -> None:
    found = problems(**values)
    assert len(found) == 1 and word in found[0], found


def test_multitenant_sign_in_is_accepted_only_with_the_tenants_it_allows() -> None:
    assert problems(signInTenantId="organizations", allowedTenantIds=TENANT) == []
    assert problems(signInTenantId=TENANT) == []


def test_a_malformed_override_is_a_message_not_a_traceback() -> None:
    completed = run("msClientId")
    assert completed.returncode == 2
    assert "not name=value" in completed.stderr and "Traceback" not in completed.stderr
