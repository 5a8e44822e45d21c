"""The small pieces several pages share: a button-styled link, a value to copy, a notice line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActionLink:
    """A button-styled link to follow (GET), e.g. "Sign in again"."""

    label: str
    href: str


@dataclass(frozen=True)
class CopyField:
    """A value shown in a read-only field with a Copy button, for the tech to pass on."""

    label: str
    value: str
    hint: str
    link_label: str | None = None  # also offer the value as a link (http(s) values only) with this text


@dataclass(frozen=True)
class Notice:
    """One line at the top of a page saying what happened: ``done`` (a change was made), ``warning``
    (something will not work until the person acts) or ``problem`` (it did not work). Each kind has
    its own words before the text and its own border, so colour is never the only difference."""

    kind: str  # "done", "warning" or "problem"
    text: str

    @property
    def label(self) -> str:
        return {"done": "Done:", "warning": "Warning:", "problem": "Problem:"}.get(self.kind, "Note:")


def notice(value: Notice | str | None) -> Notice | None:
    """A handler's notice; a plain string is a confirmation (``done``)."""
    if value is None or isinstance(value, Notice):
        return value
    return Notice("done", value) if value else None
