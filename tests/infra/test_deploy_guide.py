"""docs/deploy.md runs as written: no step uses something an earlier step did not create.

Read as an admin would, top to bottom: every shell variable a bash block uses is set by an
earlier line of the guide (or in the same block, before); every script or file of this repository
a command runs exists; nothing needs the development environment (`.venv`, `make run`'s
dependencies); and the bash-only lines have their Windows PowerShell counterparts.
"""

from __future__ import annotations

import re

from tests.infra.bicep import ROOT

GUIDE = ROOT / "docs" / "deploy.md"
_BLOCK = re.compile(r"```(sh|bash)\n(.*?)```", re.DOTALL)
_ASSIGNED = re.compile(r"(?:^|[\s;(])([A-Z][A-Z0-9_]*)=")
_READ = re.compile(r"\bread\s+-\w+\s+\"[^\"]*\"\s+([A-Z][A-Z0-9_]*)")
_USED = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)")
_REPO_PATH = re.compile(r"(?<![\w/.-])((?:infra|docs|tests)/[\w./-]+\.(?:py|bicep|json|md))")


def _blocks() -> list[str]:
    return [body for _, body in _BLOCK.findall(GUIDE.read_text(encoding="utf-8"))]


def test_every_variable_is_set_before_it_is_used() -> None:
    known: set[str] = set()
    late = []
    for block in _blocks():
        for line in block.splitlines():
            code = line.split("  #")[0]
            for name in _USED.findall(code):
                if name not in known and not re.search(rf"(?:^|[\s;(]){name}=", code.split("$")[0]):
                    late.append(f"${name} in: {line.strip()}")
            known |= set(_ASSIGNED.findall(code)) | set(_READ.findall(code))
    assert not late, "used before the guide sets them:\n" + "\n".join(late)


def test_every_file_the_commands_name_exists_and_nothing_needs_the_dev_environment() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    for block in _blocks():
        for path in _REPO_PATH.findall(block):
            assert (ROOT / path).exists(), f"the guide runs {path}, which is not in the repository"
    assert ".venv" not in text, "the guide must not use a virtual environment nothing in it created"
    assert "make run" not in text and "make key" not in text


def test_the_guide_registers_a_single_tenant_app_with_the_admin_role() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    assert "Accounts in this organizational directory only" in text
    assert '"value": "SyncAdmin"' in text  # the manifest's appRoles entry
    assert "Users and groups > Add user/group" in text  # and its assignment to the dispatchers
    for gone in ("ADMIN_EMAILS", "adminEmails", "ALLOW_PERSONAL_ACCOUNTS", "allowPersonalAccounts", "/common"):
        assert gone not in text, f"{gone} is no longer a setting"


def test_the_bash_only_lines_have_powershell_counterparts() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    assert "## Windows PowerShell" in text
    bash, powershell = text.split("## Windows PowerShell", 1)
    for bash_only in ("read -rsp", "unset ", "python3 ", "=$(az", "make deploy", "zip -qr"):
        if bash_only in bash:
            rows = [line for line in powershell.splitlines() if line.startswith("|") and bash_only in line]
            assert rows, f"the guide uses {bash_only!r} and says nothing of it for PowerShell"
