"""Microsoft Graph's own v1.0 schema (the vendored CSDL subset, see vendor_graph_csdl.py) and a
checker of JSON answers against it: every property must be declared on the type (or a base type)
with a value of the declared EDM type; ``@odata.*`` annotations are left alone. Open complex
types (``resourceData``) take any property; open entity types (``event``) do not, so that a
property the simulator invents shows (the test lists the ones live Graph really sends).

Pure: `Model.problems(value, type)` returns what is wrong as readable strings, one per property,
each with its JSON path."""

from __future__ import annotations

import base64
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUBSET = Path(__file__).resolve().parent / "graph-v1.0-subset.csdl.xml"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
# ODataV4 JSON format: DateTimeOffset is RFC 3339 with a zone; Graph writes up to 7 fractional digits.
_DATETIME_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?$")
_INTEGERS = {"Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Byte", "Edm.SByte"}


@dataclass(frozen=True)
class Prop:
    type: str  # "Edm.String", "graph.location", "Collection(graph.attendee)"
    nullable: bool
    navigation: bool = False


@dataclass
class TypeDef:
    name: str
    kind: str  # EntityType | ComplexType | EnumType
    base: str | None = None
    props: dict[str, Prop] = field(default_factory=dict)
    members: set[str] = field(default_factory=set)
    flags: bool = False
    open: bool = False  # OpenType: dynamic properties allowed


@dataclass
class Model:
    commit: str
    types: dict[str, TypeDef]

    def all_props(self, name: str) -> dict[str, Prop]:
        """The type's properties with its base types' (the base's first, as Graph orders them)."""
        chain = []
        current: str | None = name
        while current:
            chain.append(self.types[current])
            current = self.types[current].base
        merged: dict[str, Prop] = {}
        for type_def in reversed(chain):
            merged.update(type_def.props)
        return merged

    def structural(self, name: str) -> set[str]:
        return {n for n, p in self.all_props(name).items() if not p.navigation}

    def problems(self, value: Any, type_name: str, path: str = "$") -> list[str]:
        """What in ``value`` does not fit ``type_name`` (``event``, ``Collection(graph.x)``...)."""
        if type_name.startswith("Collection("):
            inner = type_name[len("Collection(") : -1]
            if not isinstance(value, list):
                return [f"{path}: expected a JSON array of {inner}, got {_kind(value)}"]
            return [p for i, item in enumerate(value) for p in self._one(item, inner, f"{path}[{i}]", nullable=False)]
        return self._one(value, type_name, path, nullable=True)

    def _one(self, value: Any, type_name: str, path: str, *, nullable: bool) -> list[str]:
        if value is None:
            return [] if nullable else [f"{path}: null where {type_name} may not be null"]
        if type_name.startswith("Edm."):
            return [] if _primitive_ok(value, type_name) else [f"{path}: {value!r} is not an {type_name}"]
        type_def = self.types.get(type_name.removeprefix("graph."))
        if type_def is None:
            return [f"{path}: type {type_name} is not in the vendored schema"]
        if type_def.kind == "EnumType":
            return self._enum(value, type_def, path)
        if not isinstance(value, dict):
            return [f"{path}: expected a JSON object ({type_def.name}), got {_kind(value)}"]
        declared = value.get("@odata.type")
        if isinstance(declared, str):  # a derived type stands where its base is declared
            derived = declared.lstrip("#").removeprefix("microsoft.graph.")
            if derived in self.types:
                type_def = self.types[derived]
        props = self.all_props(type_def.name)
        found = []
        for key, item in value.items():
            if key.startswith("@") or "@" in key:
                continue  # instance annotations (@odata.etag, calendar@odata.navigationLink)
            prop = props.get(key)
            if prop is None and type_def.open and type_def.kind == "ComplexType":
                continue  # a dynamic property of an open complex type (resourceData)
            if prop is None:
                found.append(f"{path}.{key}: not a property of {type_def.name} in Graph v1.0")
                continue
            found += self._prop(item, prop, f"{path}.{key}")
        return found

    def _prop(self, value: Any, prop: Prop, path: str) -> list[str]:
        if prop.type.startswith("Collection("):
            if value is None:
                return [] if prop.nullable else [f"{path}: null where a collection may not be null"]
            return self.problems(value, prop.type, path)
        return self._one(value, prop.type, path, nullable=prop.nullable)

    def _enum(self, value: Any, type_def: TypeDef, path: str) -> list[str]:
        if not isinstance(value, str):
            return [f"{path}: expected a {type_def.name} member name, got {_kind(value)}"]
        names = [part.strip() for part in value.split(",")] if type_def.flags else [value]
        bad = [n for n in names if n not in type_def.members]
        return [f"{path}: {value!r} is not a {type_def.name} ({sorted(type_def.members)})"] if bad else []


def _kind(value: Any) -> str:
    return type(value).__name__


def _primitive_ok(value: Any, edm: str) -> bool:
    if edm == "Edm.String":
        return isinstance(value, str)
    if edm == "Edm.Boolean":
        return isinstance(value, bool)
    if edm in _INTEGERS:
        return isinstance(value, int) and not isinstance(value, bool)
    if edm in ("Edm.Double", "Edm.Single", "Edm.Decimal"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if not isinstance(value, str):
        return False
    if edm == "Edm.DateTimeOffset":
        return bool(_DATETIME_OFFSET.match(value))
    if edm == "Edm.Date":
        return bool(_DATE.match(value))
    if edm == "Edm.TimeOfDay":
        return bool(_TIME.match(value))
    if edm == "Edm.Guid":
        try:
            uuid.UUID(value)
        except ValueError:
            return False
        return True
    if edm == "Edm.Binary":
        try:
            base64.b64decode(value, validate=True)
        except ValueError:
            return False
        return True
    return True  # other primitives (Edm.Duration, streams) do not occur in these types


def load_model(path: Path = SUBSET) -> Model:
    text = path.read_text(encoding="utf-8")
    commit = re.search(r"at commit ([0-9a-f]{40})", text)
    root = ET.fromstring(text.encode("utf-8"))
    types: dict[str, TypeDef] = {}
    for element in root.iter():
        kind = element.tag.removeprefix(EDM)
        if kind not in ("EntityType", "ComplexType", "EnumType"):
            continue
        type_def = TypeDef(
            element.get("Name", ""), kind, (element.get("BaseType") or "").removeprefix("graph.") or None
        )
        type_def.flags = element.get("IsFlags") == "true"
        type_def.open = element.get("OpenType") == "true"
        for child in element:
            tag = child.tag.removeprefix(EDM)
            if tag == "Member":
                type_def.members.add(child.get("Name", ""))
            elif tag in ("Property", "NavigationProperty"):
                nullable = child.get("Nullable", "true") != "false"
                type_def.props[child.get("Name", "")] = Prop(
                    child.get("Type", ""), nullable, tag == "NavigationProperty"
                )
        types[type_def.name] = type_def
    return Model(commit.group(1) if commit else "", types)
