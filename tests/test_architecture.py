"""The layers of `docs/architecture.md`, held against every product module's imports.

Pure: reads the source with `ast`, runs nothing of the app. Every import counts, the ones inside a
function or under ``TYPE_CHECKING`` too (a lazy import is still a dependency). The layers and the
allowed upward imports are read from the two marked tables of the doc, so the doc and this test
cannot drift: move a module, and one of them says so.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"

Graph = Mapping[str, set[str]]


def _shipped_excluded() -> frozenset[str]:
    """The top-level folders the deployment leaves out (`infra/publish.py`): what is left is the product."""
    spec = importlib.util.spec_from_file_location("infra_publish", ROOT / "infra" / "publish.py")
    assert spec and spec.loader
    publish = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(publish)
    return frozenset(publish.EXCLUDED_DIRS)


# -- reading the doc ----------------------------------------------------------------------------


def marked_table(text: str, name: str) -> list[list[str]]:
    """The rows (cells without backticks) of the table between ``<!-- NAME -->`` and ``<!-- /NAME -->``."""
    found = re.search(rf"<!-- {name} -->(.*?)<!-- /{name} -->", text, re.S)
    assert found, f"docs/architecture.md has no table marked <!-- {name} -->"
    rows = [line.strip().strip("|").split("|") for line in found.group(1).splitlines() if line.startswith("|")]
    return [[cell.strip().replace("`", "") for cell in row] for row in rows[2:]]  # past the header and rule


def layers_from(text: str) -> dict[str, int]:
    """Module prefix -> layer number (1 = the bottom), from the table marked ``layers``."""
    layers: dict[str, int] = {}
    for row in marked_table(text, "layers"):
        number = int(row[0].split()[0])
        for prefix in row[1].split(","):
            layers[prefix.strip()] = number
    return layers


def allowed_upward_from(text: str) -> set[tuple[str, str]]:
    """(importer, imported) pairs from the table marked ``upward``."""
    return {(row[0], row[1]) for row in marked_table(text, "upward")}


# -- reading the code ---------------------------------------------------------------------------


def product_files(root: Path = ROOT) -> dict[str, Path]:
    """Module name -> file, for every Python file the deployment ships (`infra/publish.py`)."""
    excluded = _shipped_excluded()
    tops = [entry for entry in sorted(root.iterdir()) if not entry.name.startswith(".") and entry.name not in excluded]
    paths = [top for top in tops if top.suffix == ".py"] + [
        path for top in tops if top.is_dir() and not top.is_symlink() for path in sorted(top.rglob("*.py"))
    ]
    files: dict[str, Path] = {}
    for path in paths:
        parts = path.relative_to(root).parts
        names = [*parts[:-1], path.stem] if path.stem != "__init__" else list(parts[:-1])
        files[".".join(names)] = path
    return files


def imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterable[str]:
    """Every dotted name an ``import`` or ``from ... import`` anywhere in ``tree`` names. The package
    ``__init__`` that Python runs on the way to a submodule is not counted: it is a package's face."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # `from a import b` loads the module a.b when there is one, else a (b is a name in it):
            # the caller takes the longest prefix that is a module.
            yield from (f"{source}.{alias.name}" for alias in node.names)


def import_graph(files: Mapping[str, Path]) -> dict[str, set[str]]:
    """Module -> the product modules it imports (the longest known prefix of each name)."""
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets = set()
        for name in imported_names(ast.parse(path.read_text(encoding="utf-8")), module, path.stem == "__init__"):
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def circles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def layer_of(module: str, layers: Mapping[str, int]) -> int | None:
    """The layer of the longest prefix of ``module`` that the table names."""
    name = module
    while name:
        if name in layers:
            return layers[name]
        name = name.rpartition(".")[0]
    return None


def upward_imports(graph: Graph, layers: Mapping[str, int]) -> set[tuple[str, str]]:
    return {
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if (layer_of(module, layers) or 0) < (layer_of(target, layers) or 0)
    }


def _allowed(pair: tuple[str, str], allowed: set[tuple[str, str]]) -> bool:
    """A row names a module or a package on each side (``services`` -> ``web.session``)."""
    return any(
        (pair[0] == a or pair[0].startswith(a + ".")) and (pair[1] == b or pair[1].startswith(b + "."))
        for a, b in allowed
    )


def http_responses_built(tree: ast.AST) -> list[int]:
    """The lines that build or import Azure Functions' ``HttpResponse`` (``func.HttpResponse(...)``,
    ``HttpResponse(...)``, ``from azure.functions import HttpResponse``)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = node.func
            name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", "")
            if name == "HttpResponse":
                lines.append(node.lineno)
        elif (
            isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("azure.functions")
            and any(alias.name == "HttpResponse" for alias in node.names)
        ):
            lines.append(node.lineno)
    return sorted(lines)


# Only the triggers turn an `http_answer.Answer` into an HttpResponse (`blueprints.answers`).
ANSWER_SENDERS = ("blueprints", "function_app")


# -- the checks on this tree ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(product_files())


def test_every_product_module_has_a_layer(graph: Graph, doc: str) -> None:
    layers = layers_from(doc)
    assert not [module for module in graph if layer_of(module, layers) is None], "place them in the doc's table"


def test_no_import_circle_among_product_modules(graph: Graph) -> None:
    found = circles(graph)
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(circle) for circle in found)


def test_no_upward_import_but_the_ones_the_doc_names(graph: Graph, doc: str) -> None:
    allowed = allowed_upward_from(doc)
    wrong = sorted(pair for pair in upward_imports(graph, layers_from(doc)) if not _allowed(pair, allowed))
    assert not wrong, "upward imports that docs/architecture.md does not name:\n" + "\n".join(
        f"{low} -> {high}" for low, high in wrong
    )


def test_every_allowed_upward_import_is_still_made(graph: Graph, doc: str) -> None:
    """A row of the doc's table that no import needs any more is stale: strike it."""
    made = upward_imports(graph, layers_from(doc))
    assert [pair for pair in sorted(allowed_upward_from(doc)) if not _allowed_by_some(pair, made)] == []


def _allowed_by_some(row: tuple[str, str], made: set[tuple[str, str]]) -> bool:
    return any(_allowed(pair, {row}) for pair in made)


def test_only_the_blueprints_build_an_http_response() -> None:
    """Below the triggers every HTTP answer is an `http_answer.Answer` (docs/architecture.md, "One
    answer type"): a module there that builds Azure Functions' HttpResponse is a second shape."""
    wrong = [
        f"{module}:{line}"
        for module, path in product_files().items()
        if not any(module == top or module.startswith(top + ".") for top in ANSWER_SENDERS)
        for line in http_responses_built(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert not wrong, "HttpResponse built outside blueprints (return an http_answer.Answer):\n" + "\n".join(wrong)


# -- one file name, one idea ----------------------------------------------------------------------


def shared_file_names(files: Mapping[str, Path]) -> dict[str, frozenset[str]]:
    """File name (without ``.py``) -> the modules that have it, for names two or more modules share.
    A package's ``__init__`` is its face, not a file name of its own."""
    by_name: dict[str, set[str]] = {}
    for module, path in files.items():
        if path.stem != "__init__":
            by_name.setdefault(path.stem, set()).add(module)
    return {name: frozenset(modules) for name, modules in by_name.items() if len(modules) > 1}


def same_names_from(text: str) -> dict[str, frozenset[str]]:
    """File name -> the modules the table marked ``same-names`` lets share it."""
    return {
        row[0]: frozenset(module.strip() for module in row[1].split(",")) for row in marked_table(text, "same-names")
    }


def test_no_two_product_modules_share_a_file_name_but_the_ones_the_doc_names(doc: str) -> None:
    """A shared file name is two ideas under one name unless the doc's "Names" table says why it
    is one idea at two layers; a row whose modules no longer share the name is stale."""
    shared, listed = shared_file_names(product_files()), same_names_from(doc)
    unlisted = {name: sorted(modules) for name, modules in shared.items() if listed.get(name) != modules}
    assert not unlisted, "rename one, or list the pair in docs/architecture.md (same-names) with why: " + str(unlisted)
    assert sorted(set(listed) - set(shared)) == [], "strike these rows of the doc's same-names table"


# -- the checks can fail --------------------------------------------------------------------------


def test_an_http_response_built_anywhere_is_found() -> None:
    source = (
        "import azure.functions as func\nfrom azure.functions import HttpResponse\n"
        "def f():\n    return func.HttpResponse('x', status_code=200)\n"
        "def g():\n    return HttpResponse(b'')\n"
        "def h(error):\n    return error.HttpResponseError\n"
    )
    assert http_responses_built(ast.parse(source)) == [2, 4, 6]


def test_a_lazy_import_inside_a_function_is_a_dependency(tmp_path: Path) -> None:
    (tmp_path / "low.py").write_text("def f():\n    from high import g\n    return g\n")
    (tmp_path / "high.py").write_text("import low\n\ndef g():\n    return low\n")
    files = {"low": tmp_path / "low.py", "high": tmp_path / "high.py"}
    graph = import_graph(files)
    assert graph == {"low": {"high"}, "high": {"low"}}
    assert circles(graph) == [["high", "low"]]
    assert upward_imports(graph, {"low": 1, "high": 2}) == {("low", "high")}


def test_relative_and_submodule_imports_resolve(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from . import a\n")
    (package / "a.py").write_text("from .b import thing\nfrom pkg import c\n")
    (package / "b.py").write_text("if True:\n    import pkg.c as c\n")
    (package / "c.py").write_text("")
    graph = import_graph(
        {
            name: package / f"{file}.py"
            for name, file in [("pkg", "__init__"), ("pkg.a", "a"), ("pkg.b", "b"), ("pkg.c", "c")]
        }
    )
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b", "pkg.c"}, "pkg.b": {"pkg.c"}, "pkg.c": set()}


def test_a_file_name_shared_across_packages_is_found(tmp_path: Path) -> None:
    files = {
        "a.http": tmp_path / "a" / "http.py",
        "b.http": tmp_path / "b" / "http.py",
        "a": tmp_path / "a" / "__init__.py",
    }
    files["b"] = tmp_path / "b" / "__init__.py"
    files["b.other"] = tmp_path / "b" / "other.py"
    assert shared_file_names(files) == {"http": frozenset({"a.http", "b.http"})}
    text = "<!-- same-names -->\n| file | modules | why |\n|---|---|---|\n| `http` | `a.http`, `b.http` | one idea |\n<!-- /same-names -->"
    assert same_names_from(text) == {"http": frozenset({"a.http", "b.http"})}


def test_the_tables_are_read_as_written() -> None:
    text = (
        "<!-- layers -->\n| layer | modules |\n|---|---|\n| 2 core | `sync`, `ops.health` |\n| 1 ground | `settings` |\n"
        "<!-- /layers -->\n<!-- upward -->\n| from | to | why |\n|---|---|---|\n| `settings` | `sync.x` | because |\n"
        "<!-- /upward -->\n"
    )
    layers = layers_from(text)
    assert layers == {"sync": 2, "ops.health": 2, "settings": 1}
    assert layer_of("sync.engine", layers) == 2 and layer_of("ops.logs", layers) is None
    allowed = allowed_upward_from(text)
    assert _allowed(("settings", "sync.x.y"), allowed) and not _allowed(("settings", "sync.z"), allowed)
