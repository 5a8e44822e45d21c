"""Plain text <-> HTML for Outlook event bodies (stdlib ``html.parser`` only).

``text_to_html`` writes text so that ``html_to_text`` gives it back exactly, whatever it holds
(spaces, tabs, blank lines, ``<``, ``&``), also after Exchange wraps it in its
``<html><head><meta …></head><body>…</body></html>`` document: the text sits in one
``white-space:pre-wrap`` block, characters escaped, line breaks as ``<br>``, URLs as links whose
text is the URL.

``html_to_text`` reads any HTML the way a browser's ``innerText`` would, simplified: the head,
styles, scripts and comments are dropped; ``<br>`` is a line break and block elements (``<p>``,
``<div>``, ``<li>``, ``<tr>``, headings…) start new lines; whitespace collapses outside
``<pre>`` and ``white-space:pre…`` blocks (inside them it is kept as written); entities are
decoded; a link reads as ``text (url)``, or just the URL when its text is the URL or empty.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

__all__ = ["html_to_text", "text_to_html"]

_URL = re.compile(r"https?://[^\s<>\"'()\[\]{}]+[^\s<>\"'()\[\]{}.,;:!?]", re.IGNORECASE)
# What browsers collapse (ASCII whitespace only; U+00A0 and other spaces are content).
_COLLAPSIBLE = re.compile(r"[ \t\n\r\f]+")
_PRE_STYLE = re.compile(r"white-space\s*:\s*(pre|pre-wrap|break-spaces)\b", re.IGNORECASE)

_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    ]
)
_HIDDEN = frozenset(("head", "style", "script", "title", "template"))
_VOID = frozenset(
    ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"]
)


def text_to_html(text: str) -> str:
    """``text`` as an HTML fragment that reads back (also wrapped by Exchange) as ``text``."""
    if not text:
        return ""
    parts: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        parts.append(_escape_text(text[position : match.start()]))
        url = match.group(0)
        parts.append(f'<a href="{html.escape(url, quote=True)}">{_escape_text(url)}</a>')
        position = match.end()
    parts.append(_escape_text(text[position:]))
    return f'<div style="white-space:pre-wrap">{"".join(parts)}</div>'


def _escape_text(text: str) -> str:
    # No raw line breaks in the markup: Exchange's own CRLFs around the body must stay formatting.
    return html.escape(text, quote=False).replace("\n", "<br>")


def html_to_text(markup: str) -> str:
    """The text a reader sees in ``markup`` (see the module docstring for the rules)."""
    if not markup:
        return ""
    reader = _TextReader()
    reader.feed(markup)
    reader.close()
    return reader.text()


class _TextReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._out: list[str] = []
        self._stack: list[tuple[str, bool]] = []  # open elements: (tag, keeps whitespace)
        self._hidden = 0
        self._pending_break = False  # a block boundary: a line break before any further text
        self._soft_space = False  # the last character out is a collapsed space (dropped at line ends)
        self._links: list[tuple[str, int]] = []  # open <a>: (href, index of its first part in _out)

    # -- state ------------------------------------------------------------------------------

    def _preformatted(self) -> bool:
        return any(keeps for _tag, keeps in self._stack)

    def _at_line_start(self) -> bool:
        return self._pending_break or not self._out or self._out[-1].endswith("\n")

    def _emit(self, text: str) -> None:
        if self._pending_break:
            self._pending_break = False
            if self._out and not self._out[-1].endswith("\n"):
                self._out.append("\n")
        self._out.append(text)

    def _line_break(self) -> None:
        self._drop_soft_space()
        self._pending_break = False
        self._out.append("\n")

    def _block_boundary(self) -> None:
        self._drop_soft_space()
        if self._out and not self._out[-1].endswith("\n"):
            self._pending_break = True

    def _drop_soft_space(self) -> None:
        if self._soft_space and self._out and self._out[-1].endswith(" "):
            self._out[-1] = self._out[-1][:-1]
        self._soft_space = False

    # -- parser callbacks -------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
            return
        if self._hidden:
            return
        if tag == "br":
            self._line_break()
            return
        if tag in _BLOCKS:
            self._block_boundary()
        if tag == "a":
            href = next((value or "" for name, value in attrs if name == "href"), "")
            self._links.append((href.strip(), len(self._out)))
        if tag not in _VOID:
            style = next((value or "" for name, value in attrs if name == "style"), "")
            self._stack.append((tag, tag in ("pre", "textarea") or bool(_PRE_STYLE.search(style))))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/>, <div/>: a self-closed element opens and closes at once.
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
            return
        if self._hidden:
            return
        if tag == "br":  # "</br>" is read as <br> by browsers
            self._line_break()
            return
        for index in range(len(self._stack) - 1, -1, -1):
            if self._stack[index][0] == tag:
                del self._stack[index:]
                break
        if tag == "a" and self._links:
            self._close_link(*self._links.pop())
        if tag in _BLOCKS:
            self._block_boundary()

    def _close_link(self, href: str, first: int) -> None:
        shown = "".join(self._out[first:])
        if not href or href.lower().startswith(("javascript:", "#")):
            return
        label = shown.strip()
        if not label:
            self._emit(href)
        elif label != href and label != href.removeprefix("mailto:"):
            self._emit(f" ({href})")
        self._soft_space = False

    def handle_data(self, data: str) -> None:
        if self._hidden or not data:
            return
        if self._preformatted():
            self._soft_space = False
            self._emit(data)
            return
        text = _COLLAPSIBLE.sub(" ", data)
        if text.startswith(" ") and (self._at_line_start() or self._soft_space):
            text = text[1:]
        if not text:
            return
        soft = text.endswith(" ")
        # Outside preformatted text a no-break space is layout: Outlook writes an empty line as
        # "<p>&nbsp;</p>", which reads as an empty line.
        text = text.replace("\u00a0", " ")
        if not text.strip(" ") and self._at_line_start():
            text, soft = "", False
        self._emit(text)
        self._soft_space = soft

    def text(self) -> str:
        self._drop_soft_space()
        return "".join(self._out)
