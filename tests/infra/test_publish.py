"""infra/publish.py stages exactly the app: everything it imports, nothing of the local stack,
the tests or local secrets, and requirements pinned by constraints.txt for the remote build."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.bicep import ROOT

_spec = importlib.util.spec_from_file_location("infra_publish", ROOT / "infra" / "publish.py")
assert _spec is not None and _spec.loader is not None
publish = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(publish)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return publish.stage(tmp_path_factory.mktemp("stage") / "app")


def _function_names(cwd: Path) -> list[str]:
    script = "import json, function_app; print(json.dumps(sorted(f.get_function_name() for f in function_app.app.get_functions())))"
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_the_package_holds_no_development_files_or_secrets(package: Path) -> None:
    top = {path.name for path in package.iterdir()}
    assert {"function_app.py", "host.json", "requirements.txt", "constraints.txt", "settings.py"} <= top
    assert not top & {"tests", "local", "bench", "docs", "infra", "node_modules", "Makefile", "local.settings.json"}
    assert not [p for p in package.rglob("*") if p.name.startswith(".") or p.name == "__pycache__"]
    assert "-c constraints.txt" in (package / "requirements.txt").read_text(encoding="utf-8").splitlines()


def test_the_package_indexes_the_same_functions_as_the_project(package: Path) -> None:
    assert _function_names(package) == _function_names(ROOT)


def test_every_module_the_package_imports_is_in_it(package: Path) -> None:
    """Imports inside functions too (most of ours are lazy): a missing one would fail only in Azure."""
    ours = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    ours |= {p.stem for p in ROOT.glob("*.py")}
    missing = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in ours and not ((package / top).is_dir() or (package / f"{top}.py").exists()):
                    missing.add(f"{source.relative_to(package)} imports {name}")
    assert not missing, sorted(missing)


def _fake_func(directory: Path, version: str) -> Path:
    """A ``func`` on PATH that answers ``--version`` and records any other call with its cwd."""
    log = directory / "calls.txt"
    script = directory / "func"
    script.write_text(
        f'#!/bin/sh\nif [ "$1" = "--version" ]; then echo "{version}"; exit 0; fi\necho "$PWD $*" >> "{log}"\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    return log


def _run_publish(tmp_path: Path, version: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    log = _fake_func(tmp_path, version)
    completed = subprocess.run(
        ["python3", str(ROOT / "infra" / "publish.py"), "calsync-acme"],
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return completed, log


def test_an_old_core_tools_is_refused_before_anything_is_published(tmp_path: Path) -> None:
    completed, log = _run_publish(tmp_path, "4.0.5455")
    assert completed.returncode == 2
    assert "4.0.5530 or newer" in completed.stderr and "Traceback" not in completed.stderr
    assert not log.exists()


def test_publish_runs_with_the_systems_python3_and_hands_the_staged_copy_to_core_tools(tmp_path: Path) -> None:
    """No virtual environment: the guide's `python3 infra/publish.py` works on a bare machine."""
    completed, log = _run_publish(tmp_path, "4.0.7030")
    assert completed.returncode == 0, completed.stderr
    cwd, _, arguments = log.read_text(encoding="utf-8").strip().partition(" ")
    assert arguments == "azure functionapp publish calsync-acme --python"
    assert Path(cwd).name == "app" and Path(cwd).resolve() != ROOT  # the staged copy, not the project
