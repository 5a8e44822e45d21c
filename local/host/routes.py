"""Route templates as the Functions host understands them (ASP.NET attribute routing, the parts
Functions apps use): ``{name}``, optional ``{name?}``, constraints ``{id:int}``, ``{*rest}``,
and literal text around parameters in a segment (``{token}.ics``). Matching ignores case in
literals, as ASP.NET does."""

from __future__ import annotations

import re
from urllib.parse import unquote

_PARAMETER = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+)(?:\(([^)]*)\))?)?(\?)?\}")

# The constraints Functions documents, as the text they accept.
# ASP.NET parses ``int`` as Int32 and ``long`` as Int64: a value out of range does not match
# (so ``{id:int}`` 404s for a real Syncro id such as 5560138523 in Azure; use ``long``).
_INTEGER_RANGES = {"int": 2**31, "long": 2**63}
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"(?i:true|false)",
    "alpha": r"[A-Za-z]+",
    "guid": r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}",
    "double": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
    "datetime": r"\d{4}-\d{2}-\d{2}(?:T[0-9:.]+Z?)?",
}


class RouteTemplate:
    """A compiled route template; `match` returns the route parameters or None."""

    def __init__(self, template: str) -> None:
        self.template = template.strip("/")
        self._regex = re.compile("^" + self._compile(self.template) + "$")
        self._integer_limits = {
            found.group(2): _INTEGER_RANGES[found.group(3)]
            for found in _PARAMETER.finditer(self.template)
            if found.group(3) in _INTEGER_RANGES
        }

    @staticmethod
    def _compile(template: str) -> str:
        pattern = ""
        for index, segment in enumerate(template.split("/") if template else []):
            pattern += _segment_pattern(segment, leading_slash=index > 0)
        return pattern

    def match(self, path: str) -> dict[str, str] | None:
        """Parameters of ``path`` (relative to the route prefix, no leading slash), percent-decoded."""
        found = self._regex.match(path.strip("/"))
        if found is None:
            return None
        values = {name: unquote(value) for name, value in found.groupdict().items() if value is not None}
        for name, limit in self._integer_limits.items():
            if name in values and not -limit <= int(values[name]) < limit:
                return None
        return values

    def __repr__(self) -> str:
        return f"RouteTemplate({self.template!r})"


def _segment_pattern(segment: str, *, leading_slash: bool) -> str:
    parts: list[str] = []
    position = 0
    optional_alone = False
    for found in _PARAMETER.finditer(segment):
        parts.append(f"(?i:{re.escape(segment[position : found.start()])})" if found.start() > position else "")
        catch_all, name, constraint, argument, optional = found.groups()
        if catch_all:
            value = ".*"
        elif constraint in _CONSTRAINTS:
            value = _CONSTRAINTS[constraint]
        elif constraint == "minlength":
            value = f"[^/]{{{argument},}}"
        elif constraint == "maxlength":
            value = f"[^/]{{1,{argument}}}"
        elif constraint == "length":
            value = f"[^/]{{{argument}}}"
        elif constraint == "regex":
            value = argument
        elif constraint is None:
            value = "[^/]+"
        else:
            raise ValueError(f"route constraint {constraint!r} is not supported by the local host")
        group = f"(?P<{name}>{value})"
        whole_segment = found.start() == 0 and found.end() == len(segment)
        if optional and whole_segment:
            optional_alone = True
        parts.append(f"{group}?" if optional and not whole_segment else group)
        position = found.end()
    if position < len(segment):
        parts.append(f"(?i:{re.escape(segment[position:])})")
    body = "".join(parts)
    if optional_alone:  # "/{name?}": the slash goes too when the parameter is absent
        return f"(?:/{body})?" if leading_slash else f"(?:{body})?"
    return ("/" if leading_slash else "") + body
