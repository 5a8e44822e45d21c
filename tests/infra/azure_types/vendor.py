"""Cut Azure's published Bicep type definitions down to the resource types infra/main.bicep uses.

    python3 tests/infra/azure_types/vendor.py /path/to/bicep-types-az/.git [commit]

Reads ``generated/**/types.json`` of the Azure/bicep-types-az repository (what the Bicep compiler
itself checks templates against) straight from its git objects, keeps each ``type@apiVersion``
the template declares with every type it refers to, drops the descriptions, and writes
``types.json`` beside this script with the repository and commit it came from. Run it again after
changing a resource's type or API version; tests/infra/test_azure_types.py says when to.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
OUTPUT = HERE / "types.json"
REPOSITORY = "Azure/bicep-types-az"


def _git(git_dir: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir, *args], check=True, capture_output=True, text=True).stdout


def declared_types() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from tests.infra.bicep import parse_template

    resources = parse_template()["resources"].values()
    return sorted({f"{spec['type']}@{spec['api_version']}" for spec in resources})


def _renumber(types: list[dict[str, Any]], roots: list[int]) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """The types reachable from ``roots``, renumbered in the order found, descriptions dropped."""
    order: dict[int, int] = {}
    pending = list(roots)
    while pending:
        index = pending.pop(0)
        if index in order:
            continue
        order[index] = len(order)
        pending.extend(_refs(types[index]))

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"$ref"}:
                return {"$ref": f"#/{order[int(node['$ref'].removeprefix('#/'))]}"}
            # A description is text; a property *named* description is a dict, and stays.
            return {k: rewrite(v) for k, v in node.items() if not (k == "description" and isinstance(v, str))}
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        return node

    return [rewrite(types[index]) for index in order], order


def _refs(node: Any) -> list[int]:
    if isinstance(node, dict):
        if set(node) == {"$ref"}:
            return [int(node["$ref"].removeprefix("#/"))]
        return [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def vendor(git_dir: str, commit: str) -> dict[str, Any]:
    files = _git(git_dir, "ls-tree", "-r", "--name-only", commit, "generated").splitlines()
    vendored: list[dict[str, Any]] = []
    resources: dict[str, str] = {}
    sources: dict[str, str] = {}
    for wanted in declared_types():
        name, version = wanted.split("@")
        namespace = name.split("/")[0].lower()
        candidates = [f for f in files if f.endswith(f"/{namespace}/{version}/types.json")]
        for path in candidates:
            types = json.loads(_git(git_dir, "show", f"{commit}:{path}"))
            found = [i for i, t in enumerate(types) if t.get("$type") == "ResourceType" and t["name"] == wanted]
            if found:
                kept, order = _renumber(types, found)
                offset = len(vendored)
                vendored.extend(_shift(t, offset) for t in kept)
                resources[wanted] = f"#/{order[found[0]] + offset}"
                sources[wanted] = path
                break
        else:
            raise SystemExit(f"{wanted}: not in {REPOSITORY}@{commit} (misspelt type or unpublished API version?)")
    vendored, resources = _deduplicate(vendored, resources)
    return {
        "source": {"repository": REPOSITORY, "commit": commit, "files": sources},
        "resources": resources,
        "types": vendored,
    }


def _deduplicate(types: list[dict[str, Any]], resources: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Merge identical types (every file repeats StringType, SystemData, ...) until none are left."""
    while True:
        first: dict[str, int] = {}
        target: dict[int, int] = {}
        for index, node in enumerate(types):
            key = json.dumps(node, sort_keys=True)
            target[index] = first.setdefault(key, index)
        if all(index == kept for index, kept in target.items()):
            return types, resources
        survivors = sorted(set(target.values()))
        number = {old: new for new, old in enumerate(survivors)}

        def point(ref: str, number: dict[int, int] = number, target: dict[int, int] = target) -> str:
            return f"#/{number[target[int(ref.removeprefix('#/'))]]}"

        types = [_rewrite_refs(types[index], point) for index in survivors]
        resources = {name: point(ref) for name, ref in resources.items()}


def _rewrite_refs(node: Any, point: Any) -> Any:
    if isinstance(node, dict):
        if set(node) == {"$ref"}:
            return {"$ref": point(node["$ref"])}
        return {key: _rewrite_refs(value, point) for key, value in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(item, point) for item in node]
    return node


def _shift(node: Any, offset: int) -> Any:
    if isinstance(node, dict):
        if set(node) == {"$ref"}:
            return {"$ref": f"#/{int(node['$ref'].removeprefix('#/')) + offset}"}
        return {key: _shift(value, offset) for key, value in node.items()}
    if isinstance(node, list):
        return [_shift(item, offset) for item in node]
    return node


def _one_type_a_line(document: dict[str, Any]) -> str:
    """Compact, yet a re-vendoring shows in a diff as the types that changed."""

    def dump(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), sort_keys=True)

    types = ",\n".join(f"  {dump(node)}" for node in document["types"])
    return (
        f'{{"source": {dump(document["source"])},\n"resources": {dump(document["resources"])},\n'
        f'"types": [\n{types}\n]}}\n'
    )


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    git_dir = argv[0]
    commit = _git(git_dir, "rev-parse", argv[1] if len(argv) > 1 else "HEAD").strip()
    document = vendor(git_dir, commit)
    OUTPUT.write_text(_one_type_a_line(document), encoding="utf-8")
    print(f"{OUTPUT}: {len(document['resources'])} resource types, {len(document['types'])} types from {commit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
