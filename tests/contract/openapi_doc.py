"""docs/openapi.yaml read as plain data, and the HTTP routes function_app.py registers, in one shape
so the two can be compared (tests/contract/test_openapi_routes.py) and fuzzed (test_fuzz.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from local.host.functions import _indexed_functions  # get_functions() may run once per app

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# x-auth in the document -> the Functions auth level the route must be registered with.
AUTH_LEVELS = {"anonymous": "ANONYMOUS", "session": "ANONYMOUS", "function": "FUNCTION", "admin": "ADMIN"}
_PARAM = re.compile(r"\{([^}:]+)(?::([^}]+))?\}")


@dataclass(frozen=True)
class Operation:
    path: str  # as under /api, with {name} parameters and no route constraints
    method: str  # upper case
    auth: str  # the Functions auth level name


def load_document() -> dict[str, Any]:
    return yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))


def documented_operations(document: dict[str, Any]) -> set[Operation]:
    found = set()
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                found.add(Operation(path, method.upper(), AUTH_LEVELS[item[method]["x-auth"]]))
    return found


def registered_operations(app: Any) -> set[Operation]:
    """Every (path, method, auth level) of the app's HTTP functions, as the host serves them."""
    found = set()
    for function in _indexed_functions(app):
        trigger = function.get_trigger().get_dict_repr()
        if trigger.get("type") != "httpTrigger":
            continue
        path = "/api/" + _PARAM.sub(lambda m: "{" + m.group(1) + "}", trigger["route"])
        level = getattr(trigger["authLevel"], "name", str(trigger["authLevel"]))
        for method in trigger["methods"]:
            found.add(Operation(path, getattr(method, "value", str(method)).upper(), level))
    return found


def typed_route_parameters(app: Any) -> dict[tuple[str, str], str]:
    """(path, parameter) -> the route constraint (``long``...) for every constrained parameter."""
    typed = {}
    for function in _indexed_functions(app):
        trigger = function.get_trigger().get_dict_repr()
        if trigger.get("type") != "httpTrigger":
            continue
        path = "/api/" + _PARAM.sub(lambda m: "{" + m.group(1) + "}", trigger["route"])
        for match in _PARAM.finditer(trigger["route"]):
            if match.group(2):
                typed[(path, match.group(1))] = match.group(2)
    return typed


def path_parameter_schemas(document: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    """name -> schema of every path parameter declared on ``path`` (refs resolved one level)."""
    schemas = {}
    item = document["paths"][path]
    declared = list(item.get("parameters", []))
    for method in METHODS:
        declared += item.get(method, {}).get("parameters", [])
    for parameter in declared:
        if "$ref" in parameter:
            parameter = document["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
        if parameter["in"] == "path":
            schemas[parameter["name"]] = parameter["schema"]
    return schemas
