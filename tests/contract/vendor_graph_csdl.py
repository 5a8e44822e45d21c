"""Cut the Microsoft Graph v1.0 CSDL down to the types the Graph simulator returns, and write it to
tests/contract/graph-v1.0-subset.csdl.xml with the source commit.

    python -m tests.contract.vendor_graph_csdl <msgraph-metadata checkout> <commit>

reads ``schemas/v1.0-Prod.csdl`` of github.com/microsoftgraph/msgraph-metadata at that commit
(the published v1.0 metadata, 3.4 MB) and keeps ROOTS, their base types and every complex and
enum type their structural properties reach, with annotations dropped (they hold only
documentation and capabilities, not shape). Elements are copied as they are otherwise."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

EDM = "http://docs.oasis-open.org/odata/ns/edm"
EDMX = "http://docs.oasis-open.org/odata/ns/edmx"
SOURCE = "schemas/v1.0-Prod.csdl"
TARGET = Path(__file__).resolve().parent / "graph-v1.0-subset.csdl.xml"
# The entity types the simulator returns: events (GET, calendarView, delta), calendars,
# subscriptions, the extended properties we write on events, and the signed-in user.
ROOTS = [
    "event",
    "calendar",
    "subscription",
    "singleValueLegacyExtendedProperty",
    "multiValueLegacyExtendedProperty",
    "user",  # GET /me, which the product reads at sign-in
    "changeNotificationCollection",  # what the simulator POSTs to our webhooks
]


def _types(schema: ET.Element) -> dict[str, ET.Element]:
    return {
        element.get("Name", ""): element
        for element in schema
        if element.tag in (f"{{{EDM}}}EntityType", f"{{{EDM}}}ComplexType", f"{{{EDM}}}EnumType")
    }


def _referenced(type_name: str) -> str | None:
    """``graph.x`` or ``Collection(graph.x)`` -> ``x``; Edm primitives -> None."""
    inner = type_name.removeprefix("Collection(").removesuffix(")")
    return inner.removeprefix("graph.") if inner.startswith("graph.") else None


def closure(types: dict[str, ET.Element], roots: list[str]) -> list[str]:
    wanted: list[str] = []
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in wanted:
            continue
        wanted.append(name)
        element = types[name]
        base = element.get("BaseType")
        if base:
            pending.append(base.removeprefix("graph."))
        for prop in element.findall(f"{{{EDM}}}Property"):
            target = _referenced(prop.get("Type", ""))
            if target:
                pending.append(target)
        # Derived complex types can stand where their base is declared (attendee for recipient).
        for other_name, other in types.items():
            if other.tag == f"{{{EDM}}}ComplexType" and other.get("BaseType") == f"graph.{name}":
                pending.append(other_name)
    return sorted(wanted)


def main(checkout: str, commit: str) -> None:
    raw = subprocess.run(["git", "-C", checkout, "show", f"{commit}:{SOURCE}"], check=True, capture_output=True).stdout
    root = ET.fromstring(raw)
    schema = root.find(f"{{{EDMX}}}DataServices/{{{EDM}}}Schema")
    assert schema is not None and schema.get("Namespace") == "microsoft.graph"
    types = _types(schema)
    ET.register_namespace("edmx", EDMX)
    ET.register_namespace("", EDM)
    out_root = ET.Element(f"{{{EDMX}}}Edmx", {"Version": "4.0"})
    out_schema = ET.SubElement(
        ET.SubElement(out_root, f"{{{EDMX}}}DataServices"),
        f"{{{EDM}}}Schema",
        {"Namespace": "microsoft.graph", "Alias": "graph"},
    )
    for name in closure(types, ROOTS):
        element = types[name]
        for annotation in element.findall(f".//{{{EDM}}}Annotation"):
            for parent in element.iter():
                if annotation in list(parent):
                    parent.remove(annotation)
        out_schema.append(element)
    ET.indent(out_root, space="  ")
    header = (
        f"<!-- Vendored from github.com/microsoftgraph/msgraph-metadata {SOURCE} at commit {commit}:\n"
        f"     the types {', '.join(ROOTS)} need, annotations dropped.\n"
        "     Made by tests/contract/vendor_graph_csdl.py; do not edit by hand. -->\n"
    )
    body = ET.tostring(out_root, encoding="unicode")
    TARGET.write_text('<?xml version="1.0" encoding="utf-8"?>\n' + header + body + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
