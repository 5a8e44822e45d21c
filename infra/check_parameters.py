"""Refuse a deployment whose parameters still hold the shipped placeholders, before Azure sees it.

    python3 infra/check_parameters.py infra/main.parameters.json [name=value ...]

The extra ``name=value`` arguments are the ones you also pass to ``az deployment group create
--parameters`` (they override the file, as there). Exit 0 and silence when the values are
usable; otherwise exit 2 with one line per problem. `make deploy` and docs/deploy.md, step 3,
run it. Standard library only: it runs with the python3 of Cloud Shell or any machine.

Bicep can check lengths and lists of allowed values but not "this is the all-zero GUID from the
example", so the checks Bicep cannot express live here.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_NIL_GUID = "00000000-0000-0000-0000-000000000000"
_SUBDOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_EMAIL = re.compile(r"[^@\s,;]+@[^@\s,;]+\.[A-Za-z]{2,}")
# Reserved for examples (RFC 2606 / RFC 6761): never a real mailbox.
_EXAMPLE_DOMAINS = re.compile(r"(^|\.)(example|example\.com|example\.net|example\.org|invalid|test)$", re.IGNORECASE)
_PLACEHOLDER_SUBDOMAINS = {"yoursubdomain", "subdomain", "example"}
# Tenants that are not a directory: a sign-in there is not bound to the MSP's tenant.
_MULTI_TENANT = {"common", "organizations", "consumers"}


def problems(values: Mapping[str, Any]) -> list[str]:
    """Every reason these parameter values would deploy something that cannot work; [] if none."""
    found: list[str] = []
    client_id = str(values.get("msClientId", ""))
    if not _GUID.fullmatch(client_id) or client_id == _NIL_GUID:
        found.append(
            f"msClientId is {client_id!r}: put the Application (client) ID of your app registration "
            "(Entra admin center > App registrations > Overview), docs/deploy.md step 1"
        )
    subdomain = str(values.get("syncroSubdomain", ""))
    if subdomain.lower() in _PLACEHOLDER_SUBDOMAINS or not _SUBDOMAIN.fullmatch(subdomain):
        found.append(
            f"syncroSubdomain is {subdomain!r}: put your Syncro subdomain, the 'acme' of https://acme.syncromsp.com "
            "(lower-case letters, digits and hyphens)"
        )
    email = str(values.get("alertEmail", ""))
    domain = email.rpartition("@")[2]
    if not _EMAIL.fullmatch(email) or _EXAMPLE_DOMAINS.search(domain):
        found.append(f"alertEmail is {email!r}: put the mailbox that should get the alerts (docs/deploy.md, Alerts)")
    found += _tenant_problems(values)
    for name in ("allowedTenantIds", "adminGroupIds"):
        for item in _items(values.get(name, "")):
            if not _GUID.fullmatch(item) or item == _NIL_GUID:
                found.append(f"{name} holds {item!r}, which is not a GUID (comma-separated GUIDs, or empty)")
    officer = str(values.get("secretsOfficerPrincipalId", ""))
    if officer and (not _GUID.fullmatch(officer) or officer == _NIL_GUID):
        found.append(
            f"secretsOfficerPrincipalId is {officer!r}: an object id (az ad signed-in-user show --query id -o tsv)"
        )
    return found


def _tenant_problems(values: Mapping[str, Any]) -> list[str]:
    if "signInTenantId" not in values:
        return []  # the template's default: the tenant of the subscription deployed to
    tenant = str(values["signInTenantId"])
    if tenant.lower() in _MULTI_TENANT:
        if tenant.lower() == "organizations" and _items(values.get("allowedTenantIds", "")):
            return []
        return [
            f"signInTenantId is {tenant!r}: sign-in must be bound to your tenant (its Directory (tenant) ID); "
            "'organizations' only together with allowedTenantIds, never 'common' or 'consumers'"
        ]
    if not _GUID.fullmatch(tenant) or tenant == _NIL_GUID:
        return [f"signInTenantId is {tenant!r}: the Directory (tenant) ID, a GUID (az account show --query tenantId)"]
    return []


def _items(raw: Any) -> list[str]:
    return [part.strip() for part in str(raw or "").split(",") if part.strip()]


def load(path: Path, overrides: list[str]) -> dict[str, Any]:
    """The parameters file's values with ``name=value`` overrides applied, as az applies them."""
    document = json.loads(path.read_text(encoding="utf-8"))
    values = {name: entry.get("value") for name, entry in document.get("parameters", {}).items()}
    for override in overrides:
        name, separator, value = override.partition("=")
        if not separator or not name:
            raise ValueError(f"{override!r} is not name=value")
        values[name] = value
    return values


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        values = load(Path(args[0]), args[1:])
    except (OSError, ValueError) as error:
        print(f"cannot read the parameters: {error}", file=sys.stderr)
        return 2
    found = problems(values)
    for problem in found:
        print(f"{args[0]}: {problem}", file=sys.stderr)
    return 2 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
