"""Check a parsed Bicep template against Azure's published resource type definitions.

The definitions are those the Bicep compiler checks against (Azure/bicep-types-az, vendored for
the types we use in ``azure_types/types.json``, with the commit they came from). For each
resource: its ``type@apiVersion`` must be published, and every property it sets must be one its
type declares (writable, not read-only), every required one present, and every value written
as a literal, or allowed for a parameter by ``@allowed``/``@minValue``/``@maxValue``, must be of
the declared type (string, int, bool, one of an enum's values, within a length or range).
Expressions only known at deployment (``storage.id``, ``'${baseName}-x'``) are not evaluated,
but the properties they are assigned to are still checked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TYPES = Path(__file__).resolve().parent / "azure_types" / "types.json"

# Bicep's own keywords in a resource body: not properties of the resource's type.
_BICEP_KEYWORDS = {"parent", "scope", "dependsOn"}
_FLAG_REQUIRED, _FLAG_READ_ONLY = 1, 2
_EXPRESSION_KEYS = ({"operator"}, {"function"}, {"loop_type", "condition", "config"})


def load_types(path: Path = TYPES) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class TypeChecker:
    published: dict[str, Any]
    parameters: dict[str, Any]  # the template's parameter declarations (pycep)
    names: set[str]  # every parameter, variable, resource and output name: references, not literals
    problems: list[str] = field(default_factory=list)

    def check_template(self, parsed: dict[str, Any]) -> list[str]:
        for name, spec in parsed["resources"].items():
            self.check_resource(name, spec)
        return self.problems

    def check_resource(self, name: str, spec: dict[str, Any]) -> None:
        wanted = f"{spec['type']}@{spec['api_version']}"
        ref = self.published["resources"].get(wanted)
        if ref is None:
            self.problems.append(f"{name}: {wanted} is not a published resource type and API version")
            return
        body = spec["config"]
        while isinstance(body, dict) and "config" in body and ("condition" in body or "loop_type" in body):
            body = body["config"]  # `= if (...) {...}` and `= [for ...: {...}]` wrap the body
        resource_type = self._type({"$ref": ref})
        body = {key: value for key, value in body.items() if key not in _BICEP_KEYWORDS}
        self.check(body, resource_type["body"], name)

    # --- values against types -------------------------------------------------------------

    def check(self, node: Any, ref: dict[str, str], path: str) -> None:
        kind = self._type(ref)
        if self._is_expression(node):
            self._check_parameter(node, ref, path)
            return
        handler = getattr(self, f"_check_{kind['$type']}", None)
        if handler is None:
            raise ValueError(f"{path}: type {kind['$type']} is not known to this checker")
        handler(node, kind, path)

    def _check_ObjectType(self, node: Any, kind: dict[str, Any], path: str) -> None:
        if not isinstance(node, dict):
            self.problems.append(f"{path}: {kind.get('name', 'an object')} expected, not {node!r}")
            return
        properties = kind.get("properties", {})
        for key, value in node.items():
            where = f"{path}.{key}"
            if key in properties:
                declared = properties[key]
                if declared.get("flags", 0) & _FLAG_READ_ONLY:
                    self.problems.append(f"{where}: read-only in {kind.get('name')}; Azure sets it")
                    continue
                self.check(value, declared["type"], where)
            elif "additionalProperties" in kind:
                self.check(value, kind["additionalProperties"], where)
            else:
                self.problems.append(f"{where}: {kind.get('name')} has no property {key!r}")
        for key, declared in properties.items():
            flags = declared.get("flags", 0)
            if flags & _FLAG_REQUIRED and not flags & _FLAG_READ_ONLY and key not in node:
                self.problems.append(f"{path}.{key}: required by {kind.get('name')}, not set")

    def _check_DiscriminatedObjectType(self, node: Any, kind: dict[str, Any], path: str) -> None:
        if not isinstance(node, dict):
            self.problems.append(f"{path}: {kind.get('name')} expected, not {node!r}")
            return
        tag = node.get(kind["discriminator"])
        if not isinstance(tag, str) or tag not in kind["elements"]:
            self.problems.append(f"{path}.{kind['discriminator']}: one of {sorted(kind['elements'])}, not {tag!r}")
            return
        element = self._type(kind["elements"][tag])
        merged = {**element, "properties": {**kind.get("baseProperties", {}), **element.get("properties", {})}}
        self._check_ObjectType(node, merged, path)

    def _check_ArrayType(self, node: Any, kind: dict[str, Any], path: str) -> None:
        if not isinstance(node, list):
            self.problems.append(f"{path}: an array expected, not {node!r}")
            return
        for index, item in enumerate(node):
            self.check(item, kind["itemType"], f"{path}[{index}]")

    def _check_StringLiteralType(self, node: Any, kind: dict[str, Any], path: str) -> None:
        if node != kind["value"]:
            self.problems.append(f"{path}: must be {kind['value']!r}, not {node!r}")

    def _check_StringType(self, node: Any, kind: dict[str, Any], path: str) -> None:
        if not isinstance(node, str):
            self.problems.append(f"{path}: a string expected, not {node!r}")
            return
        if "${" in node:
            return  # interpolated: its length and shape are only known at deployment
        if len(node) < kind.get("minLength", 0) or len(node) > kind.get("maxLength", len(node)):
            self.problems.append(f"{path}: {node!r} is not {kind.get('minLength', 0)}-{kind.get('maxLength')} long")
        pattern = kind.get("pattern")
        if pattern and _python_pattern(pattern) and not re.search(_python_pattern(pattern), node):
            self.problems.append(f"{path}: {node!r} does not match {pattern}")

    def _check_IntegerType(self, node: Any, kind: dict[str, Any], path: str) -> None:
        if isinstance(node, bool) or not isinstance(node, int):
            self.problems.append(f"{path}: an integer expected, not {node!r}")
            return
        low, high = kind.get("minValue"), kind.get("maxValue")
        if (low is not None and node < low) or (high is not None and node > high):
            self.problems.append(f"{path}: {node} is outside {low}..{high}")

    def _check_BooleanType(self, node: Any, kind: dict[str, Any], path: str) -> None:
        if not isinstance(node, bool):
            self.problems.append(f"{path}: true or false expected, not {node!r}")

    def _check_AnyType(self, node: Any, kind: dict[str, Any], path: str) -> None:
        return

    def _check_UnionType(self, node: Any, kind: dict[str, Any], path: str) -> None:
        attempts = []
        for element in kind["elements"]:
            trial = TypeChecker(self.published, self.parameters, self.names)
            trial.check(node, element, path)
            if not trial.problems:
                return
            attempts.extend(trial.problems)
        literals = [
            self._type(e).get("value") for e in kind["elements"] if self._type(e)["$type"] == "StringLiteralType"
        ]
        if literals and all(self._type(e)["$type"] == "StringLiteralType" for e in kind["elements"]):
            self.problems.append(f"{path}: one of {literals}, not {node!r}")
        else:
            self.problems.append(f"{path}: matches none of its union's types ({'; '.join(attempts[:3])})")

    # --- parameters and expressions --------------------------------------------------------

    def _check_parameter(self, node: Any, ref: dict[str, str], path: str) -> None:
        """A property set straight from a parameter: every value the parameter allows must fit."""
        if not (isinstance(node, str) and node in self.parameters):
            return
        declaration = self.parameters[node]
        decorators = {d["type"]: d.get("argument") for d in declaration.get("decorators", [])}
        values = list(decorators.get("allowed") or [])
        if declaration["type"] == "int":
            values += [decorators[bound] for bound in ("min_value", "max_value") if bound in decorators]
        for value in values:
            self.check(value, ref, f"{path} (parameter {node} = {value!r})")

    def _is_expression(self, node: Any) -> bool:
        if isinstance(node, str):
            return node in self.names
        return isinstance(node, dict) and set(node) in _EXPRESSION_KEYS

    def _type(self, ref: dict[str, str]) -> dict[str, Any]:
        return self.published["types"][int(ref["$ref"].removeprefix("#/"))]


def _python_pattern(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except re.error:
        return None  # a .NET-only construct: the service checks it
    return pattern


def check_template(parsed: dict[str, Any], published: dict[str, Any] | None = None) -> list[str]:
    names = set()
    for section in ("parameters", "variables", "resources", "outputs"):
        names |= set(parsed.get(section, {}))
    checker = TypeChecker(published or load_types(), parsed.get("parameters", {}), names)
    return checker.check_template(parsed)
