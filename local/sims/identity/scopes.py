"""Scope strings as MSAL sends them, turned into what the token says.

MSAL sends e.g. ``"https://graph.microsoft.com/Calendars.ReadWrite User.Read openid profile offline_access"``.
Graph is the default resource of the v2 endpoint, so a bare scope name is a Graph scope. AAD answers with
Graph scopes in their canonical spelling, whatever case the client used.
"""

from __future__ import annotations

from dataclasses import dataclass

GRAPH_PREFIXES = ("https://graph.microsoft.com/", "00000003-0000-0000-c000-000000000000/")
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")

# Graph delegated permissions the simulator knows, canonical spelling. Unknown names are refused
# with AADSTS70011 as AAD does for a scope the resource does not expose.
GRAPH_SCOPES = (
    "Calendars.Read",
    "Calendars.ReadBasic",
    "Calendars.ReadWrite",
    "Calendars.Read.Shared",
    "Calendars.ReadWrite.Shared",
    "User.Read",
    "User.ReadBasic.All",
    "Mail.Read",
    "Mail.Send",
    "MailboxSettings.Read",
    "MailboxSettings.ReadWrite",
)
_CANONICAL = {name.lower(): name for name in GRAPH_SCOPES}
# What ".default" grants: the permissions an app registration of this project is configured with.
DEFAULT_APP_SCOPES = ("Calendars.ReadWrite", "User.Read")


class ScopeError(ValueError):
    """A scope names an unknown resource (``resource``) or an unknown Graph permission (``scope``)."""

    def __init__(self, *, scope: str, resource: str | None = None) -> None:
        super().__init__(scope)
        self.scope = scope
        self.resource = resource


@dataclass(frozen=True)
class RequestedScopes:
    """A scope parameter split into Graph permissions and OpenID Connect scopes."""

    graph: tuple[str, ...]
    oidc: tuple[str, ...]

    @property
    def offline_access(self) -> bool:
        return "offline_access" in self.oidc

    @property
    def openid(self) -> bool:
        return "openid" in self.oidc

    def all(self) -> list[str]:
        return [*self.graph, *self.oidc]


def parse_scopes(raw: str) -> RequestedScopes:
    """Split and normalise a scope parameter; raises ScopeError for scopes AAD would refuse."""
    graph: list[str] = []
    oidc: list[str] = []
    for item in raw.split():
        lowered = item.lower()
        if lowered in OIDC_SCOPES:
            _add(oidc, lowered)
            continue
        name = _strip_graph_prefix(item)
        if name == ".default":
            for scope in DEFAULT_APP_SCOPES:
                _add(graph, scope)
            continue
        canonical = _CANONICAL.get(name.lower())
        if canonical is None:
            if "/" in name or ":" in name:
                raise ScopeError(scope=item, resource=item.rsplit("/", 1)[0])
            raise ScopeError(scope=item)
        _add(graph, canonical)
    return RequestedScopes(graph=tuple(graph), oidc=tuple(oidc))


def _strip_graph_prefix(item: str) -> str:
    for prefix in GRAPH_PREFIXES:
        if item.lower().startswith(prefix):
            return item[len(prefix) :]
    return item


def _add(target: list[str], scope: str) -> None:
    if scope not in target:
        target.append(scope)
