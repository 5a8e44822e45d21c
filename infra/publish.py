"""Publish the app to its Function App: stage exactly what runs in Azure, then hand it to Core Tools.

    python3 infra/publish.py <function-app-name>          # stage in a temp dir, then publish
    python3 infra/publish.py --stage-only build/package   # only stage (to look at it, or zip it)

Standard library only, so any Python 3.11 runs it (Cloud Shell's python3 included); no virtual
environment is needed. Publishing needs Azure Functions Core Tools 4.0.5530 or newer (the first
that publishes to Flex Consumption); an older ``func`` is refused with that message.

The project folder also holds the local stack, tests, node_modules and virtual environments,
which `func azure functionapp publish` would otherwise upload. Staging copies the app without
them (and never local.settings.json), and makes the staged requirements.txt honour
constraints.txt, so the remote build installs the same versions as the tests ran with.
docs/deploy.md, steps 5 and "Upgrade", use this.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MINIMUM_CORE_TOOLS = (4, 0, 5530)

# Never shipped: development, tests, the local stack, tooling, and anything with local secrets.
EXCLUDED_DIRS = frozenset({"tests", "local", "bench", "docs", "infra", "node_modules", "tmp_notes", "__pycache__"})
EXCLUDED_FILES = frozenset(
    {
        "Makefile",
        "README.md",
        "package.json",
        "package-lock.json",
        "pyproject.toml",
        "requirements-dev.txt",
        "local.settings.json",
        "local.settings.example.json",
    }
)


def _ignored(directory: str, names: list[str]) -> set[str]:
    top = Path(directory).resolve() == ROOT

    def excluded(name: str) -> bool:
        if name.startswith(".") or name.endswith((".pyc", ".pyo")) or name == "__pycache__":
            return True  # dot-files (.venv, .git, .local, .env ...) and bytecode, at any depth
        if not top:
            return False
        return name in EXCLUDED_FILES or (name in EXCLUDED_DIRS and (Path(directory) / name).is_dir())

    return {name for name in names if excluded(name)}


def stage(destination: Path) -> Path:
    """Copy the app into ``destination`` (which must not exist yet) and return it."""
    shutil.copytree(ROOT, destination, ignore=_ignored)
    requirements = destination / "requirements.txt"
    text = requirements.read_text(encoding="utf-8").rstrip("\n")
    requirements.write_text(f"{text}\n-c constraints.txt\n", encoding="utf-8")
    return destination


def core_tools_problem(version_output: str) -> str | None:
    """Why the ``func --version`` output names a Core Tools that cannot publish here; None if it can."""
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", version_output)
    wanted = ".".join(map(str, MINIMUM_CORE_TOOLS))
    if match is None:
        return (
            f"could not read the Core Tools version from {version_output.strip()[:80]!r}; {wanted} or newer is needed"
        )
    found = tuple(int(part) for part in match.groups())
    if found < MINIMUM_CORE_TOOLS:
        return (
            f"Azure Functions Core Tools {match.group(0)} cannot publish to Flex Consumption: "
            f"install {wanted} or newer (docs/deploy.md, Before you start)"
        )
    return None


def publish(app_name: str) -> int:
    func = shutil.which("func")
    if func is None:
        print("Azure Functions Core Tools (func) is not on PATH; see docs/deploy.md, step 5.", file=sys.stderr)
        return 2
    version = subprocess.run([func, "--version"], capture_output=True, text=True, timeout=60, check=False)
    problem = core_tools_problem(version.stdout or version.stderr)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="calsync-package-") as scratch:
        package = stage(Path(scratch) / "app")
        return subprocess.call([func, "azure", "functionapp", "publish", app_name, "--python"], cwd=package)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app_name", nargs="?", help="the Function App's name (deployment output functionAppName)")
    parser.add_argument("--stage-only", type=Path, metavar="DIR", help="copy the app into DIR and stop")
    args = parser.parse_args(argv)
    if args.stage_only is not None:
        print(stage(args.stage_only))
        return 0
    if not args.app_name:
        parser.error("name the Function App, or pass --stage-only DIR")
    return publish(args.app_name)


if __name__ == "__main__":
    raise SystemExit(main())
