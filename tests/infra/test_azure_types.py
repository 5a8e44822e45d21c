"""`infra/main.bicep` against Azure's own published resource types, offline.

The types come from Azure/bicep-types-az (the definitions the Bicep compiler validates against),
cut down to the resource types the template uses by ``azure_types/vendor.py`` and vendored in
``azure_types/types.json``, from commit 1f896de2db966ad91e8f7d7d981e11d32e4f5d8d (2026-08-20)
(the file's ``source`` names it too). A misspelt property, an unpublished API version, a value
of the wrong type or outside a closed enum, a read-only property set, or a required one missing
fails here, before any deployment. Changing a resource's type or API version means running
``python3 tests/infra/azure_types/vendor.py <bicep-types-az git dir>`` again.
"""

from __future__ import annotations

from typing import Any

import pytest
from pycep import BicepParser

from tests.infra.bicep import TEMPLATE, parse_template
from tests.infra.type_check import check_template, load_types

VENDORED_COMMIT = "1f896de2db966ad91e8f7d7d981e11d32e4f5d8d"


@pytest.fixture(scope="module")
def published() -> dict[str, Any]:
    return load_types()


def test_the_vendored_types_are_azures_and_cover_exactly_the_templates_resources(published: dict[str, Any]) -> None:
    assert published["source"]["repository"] == "Azure/bicep-types-az"
    assert published["source"]["commit"] == VENDORED_COMMIT
    declared = {f"{spec['type']}@{spec['api_version']}" for spec in parse_template()["resources"].values()}
    vendored = set(published["resources"])
    assert declared <= vendored, (
        f"not vendored (new type or API version? run tests/infra/azure_types/vendor.py): {sorted(declared - vendored)}"
    )
    assert vendored <= declared, f"vendored but unused (vendor again to drop them): {sorted(vendored - declared)}"


def test_every_resource_property_and_value_matches_azures_published_types(published: dict[str, Any]) -> None:
    problems = check_template(parse_template(), published)
    assert not problems, "\n".join(problems)


# Mistakes the check must catch: (what to change in main.bicep, to what, a word of the complaint).
MISTAKES = [
    ("    httpsOnly: true\n", "    httpsOnyl: true\n", "no property 'httpsOnyl'"),
    ("Microsoft.Web/sites@2024-04-01", "Microsoft.Web/sites@2024-04-02", "not a published resource type"),
    ("    httpsOnly: true\n", "    httpsOnly: 'true'\n", "true or false expected"),
    ("        maximumInstanceCount: maximumInstanceCount", "        maximumInstanceCount: 'ten'", "integer expected"),
    ("      name: 'standard'\n", "      name: 'standerd'\n", "one of ['standard', 'premium']"),
    ("    accessTier: 'Hot'\n", "    accessTier: 'Hot'\n    primaryEndpoints: {}\n", "read-only"),
    ("    emailReceivers: [\n      {\n        name: 'admin'\n", "    emailReceivers: [\n      {\n", "required"),
    ("    groupShortName: 'calsync'", "    groupShortName: 'calsync-alerts'", "long"),
]


@pytest.mark.parametrize(("old", "new", "complaint"), MISTAKES, ids=[m[1].strip()[:30] for m in MISTAKES])
def test_a_mistake_in_the_template_is_caught(published: dict[str, Any], old: str, new: str, complaint: str) -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    assert old in text, f"the template changed; update this case: {old!r}"
    problems = check_template(BicepParser().parse(text=text.replace(old, new, 1)), published)
    assert any(complaint in problem for problem in problems), problems
