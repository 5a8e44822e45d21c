"""Read `infra/main.bicep` with pycep-parser and evaluate the expressions the template uses.

Just enough of Bicep to render what a deployment would produce from given parameter values:
literals, parameters, variables, ``${...}`` interpolation, property access, the conditional
operator, and the functions the template calls. What only exists once Azure has created a
resource (an identity's client id, a vault's URI) comes from ``runtime``, keyed by the dotted
path the template writes (``keyVault.properties.vaultUri``). Anything else raises
``Unsupported``, so a template that grows a construct this does not know fails loudly instead
of rendering something wrong.

pycep writes a reference and a string literal alike as a plain string (``"baseUrl"`` is the
variable, ``"true"`` the text): a plain string is a reference exactly when it names a declared
parameter, variable or resource. ``test_no_literal_shadows_a_name`` keeps that unambiguous.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "main.bicep"
PARAMETERS = ROOT / "infra" / "main.parameters.json"

_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")

# What environment() returns in Azure's public cloud (the parts the template reads).
PUBLIC_CLOUD = {
    "name": "AzureCloud",
    "authentication": {"loginEndpoint": "https://login.microsoftonline.com/"},
    "suffixes": {"storage": "core.windows.net"},
}


class Unsupported(Exception):
    """The template uses a construct this evaluator does not know."""


def parse_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return BicepParser().parse(text=path.read_text(encoding="utf-8"))


def parameter_file_values(path: Path = PARAMETERS) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    return {name: entry["value"] for name, entry in document["parameters"].items()}


def fake_unique_string(*parts: str) -> str:
    """Like Bicep's uniqueString: 13 lower-case letters and digits, stable for the same input."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "".join(alphabet[b % 32] for b in digest[:13])


class Template:
    """One parsed template evaluated with one set of parameter values."""

    def __init__(
        self,
        parsed: dict[str, Any],
        parameters: Mapping[str, Any],
        *,
        runtime: Mapping[str, Any],
        resource_group: Mapping[str, str],
        tenant_id: str,
        cloud: Mapping[str, Any] = PUBLIC_CLOUD,
    ) -> None:
        self.parsed = parsed
        self._given = dict(parameters)
        self._runtime = dict(runtime)
        self._resource_group = dict(resource_group)
        self._tenant_id = tenant_id
        self._cloud = dict(cloud)
        self._variables: dict[str, Any] = {}
        self._locals: list[dict[str, Any]] = []  # loop variables, innermost last
        unknown = set(self._given) - set(self.parameter_names)
        if unknown:
            raise KeyError(f"parameters the template does not declare: {sorted(unknown)}")

    # --- names ---------------------------------------------------------------------------

    @cached_property
    def parameter_names(self) -> set[str]:
        return set(self.parsed.get("parameters", {}))

    @cached_property
    def variable_names(self) -> set[str]:
        return set(self.parsed.get("variables", {}))

    @cached_property
    def resource_names(self) -> set[str]:
        return set(self.parsed.get("resources", {}))

    def is_name(self, text: str) -> bool:
        if any(text in frame for frame in self._locals):
            return True
        return text in self.parameter_names or text in self.variable_names or text in self.resource_names

    # --- values --------------------------------------------------------------------------

    def parameter(self, name: str) -> Any:
        if name in self._given:
            return self._given[name]
        default = self.parsed["parameters"][name].get("default")
        if default is None:
            raise KeyError(f"parameter {name} has no default and was not given")
        return self.evaluate(default)

    def variable(self, name: str) -> Any:
        if name not in self._variables:
            self._variables[name] = self.evaluate(self.parsed["variables"][name]["value"])
        return self._variables[name]

    def resource(self, name: str) -> dict[str, Any]:
        return self.parsed["resources"][name]["config"]

    def output(self, name: str) -> Any:
        return self.evaluate(self.parsed["outputs"][name]["value"])

    def reference(self, path: list[Any]) -> Any:
        """``name`` or ``name.a.b``: a parameter, a variable, or a resource's property."""
        head, rest = path[0], path[1:]
        scope = next((frame for frame in reversed(self._locals) if head in frame), None)
        if isinstance(head, dict):  # a function call's value, e.g. environment()
            value = self.evaluate(head)
        elif scope is not None:
            value = scope[head]
        elif head in self.parameter_names:
            value = self.parameter(head)
        elif head in self.variable_names:
            value = self.variable(head)
        elif head in self.resource_names:
            dotted = ".".join(path)
            if dotted in self._runtime:
                return self._runtime[dotted]
            if rest == ["name"]:
                return self.evaluate(self.resource(head)["name"])
            if rest == ["id"]:
                return f"/resourceGroups/{self._resource_group['name']}/providers/{head}"
            raise Unsupported(f"{dotted} is only known once Azure created {head}: pass it in runtime")
        else:
            raise Unsupported(f"unknown name {head!r}")
        for key in rest:
            value = value[key]
        return value

    def evaluate(self, node: Any) -> Any:
        if isinstance(node, bool | int | float) or node is None:
            return node
        if isinstance(node, str):
            if self.is_name(node):
                return self.reference([node])
            return _INTERPOLATION.sub(lambda m: str(self._inner(m.group(1))), node)
        if isinstance(node, list):
            return [self.evaluate(item) for item in node]
        if isinstance(node, dict):
            if set(node) == {"operator"}:
                return self._operator(node["operator"])
            if set(node) == {"function"}:
                return self._function(node["function"])
            if set(node) == {"loop_type", "condition", "config"}:
                return self._loop(node)
            return {key: self.evaluate(value) for key, value in node.items()}
        raise Unsupported(f"node {node!r}")

    def _inner(self, expression: str) -> Any:
        expression = expression.strip()
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", expression):
            raise Unsupported(f"interpolation ${{{expression}}}: only names and property paths")
        return self.reference(expression.split("."))

    def _loop(self, node: dict[str, Any]) -> list[Any]:
        loop = node["loop_type"]
        if loop["type"] not in ("object", "array") or node["condition"] is not None:
            raise Unsupported(f"loop {loop}")
        detail = loop["detail"]
        if loop["type"] == "object":
            items = [{"key": key, "value": value} for key, value in self.reference([detail["object_name"]]).items()]
        else:
            items = list(self.reference([detail["array_name"]]))
        results = []
        for item in items:
            self._locals.append({detail["item_name"]: item})
            try:
                results.append(self.evaluate(node["config"]))
            finally:
                self._locals.pop()
        return results

    def _accessor_path(self, node: Any) -> list[str]:
        if isinstance(node, str):
            return [node]
        if "function" in node:  # environment().a.b: the function's value stands for the head
            return [node]
        operator = node.get("operator", {})
        if operator.get("type") != "property_accessor":
            raise Unsupported(f"property access on {node!r}")
        operands = operator["operands"]
        return self._accessor_path(operands["operand_1"]) + self._accessor_path(operands["operand_2"])

    def _operator(self, operator: dict[str, Any]) -> Any:
        kind, operands = operator["type"], operator["operands"]
        if kind == "conditional":
            chosen = "true_value" if self.evaluate(operands["condition"]) else "false_value"
            return self.evaluate(operands[chosen])
        if kind == "property_accessor":
            return self.reference(self._accessor_path({"operator": operator}))
        if kind in ("logical_not", "not"):
            return not self.evaluate(operands["bool_value"])
        if kind in ("equals", "not_equals"):
            same = self.evaluate(operands["operand_1"]) == self.evaluate(operands["operand_2"])
            return same if kind == "equals" else not same
        raise Unsupported(f"operator {kind}")

    def _function(self, function: dict[str, Any]) -> Any:
        kind = function["type"]
        args = [self.evaluate(value) for value in function.get("parameters", {}).values()]
        if kind == "resource_group":
            return self._resource_group[function["property_name"]]
        if kind in ("subscription", "tenant"):
            # pycep writes tenant().tenantId's property as "[Token('STRING', 'tenantId')]"
            if "tenantId" not in str(function.get("property_name")):
                raise Unsupported(f"{kind}().{function.get('property_name')}")
            return self._tenant_id
        if kind == "environment":
            return self._cloud[function["property_name"]]
        simple = {
            "unique_string": lambda *a: fake_unique_string(*[x for x in a if x is not None]),
            "take": lambda value, count: value[:count],
            "to_lower": lambda value: value.lower(),
            "empty": lambda value: not value,
            "string": _string,
            "concat": lambda *a: [x for part in a for x in part] if isinstance(a[0], list) else "".join(a),
            "union": lambda *a: {k: v for part in a for k, v in part.items()},
        }
        if kind not in simple:
            raise Unsupported(f"function {kind}")
        return simple[kind](*args)


def _string(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Unsupported(f"string({value!r}): Bicep writes True/False and JSON for objects; not needed so far")
    return str(value)
