"""Text conversions for Dolibarr fields that cannot hold HTML. Pure functions, no I/O.

Dolibarr's REST layer passes every extrafield value through ``sanitizeVal(..., 'alphanohtml')``
(``DolibarrApi::_checkValForAPI``, see docs/dolibarr-simulator.md): tags are cut out, entities decoded, whatever
the extrafield's type. Sent as is, ``<p>Soft.</p><p>Warm.</p>`` would land as ``Soft.Warm.``. So the long
description is turned into readable text on purpose before it is sent: paragraphs and line breaks become new
lines, list items become ``- item`` lines, entities are decoded, scripts and styles are dropped.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# elements that start and end a block of text
_BLOCKS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
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
    }
)
_DROPPED = frozenset({"script", "style", "template", "head", "title", "noscript", "iframe", "object"})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_NEWLINES = re.compile(r"\n{3,}")


_PARAGRAPHS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "dl", "blockquote", "pre"}
)


class _TextParser(HTMLParser):
    """Collects text; block boundaries ask for line breaks, which are written before the next text only (so
    nested blocks do not pile up blank lines, and none lead or trail)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.dropped = 0
        self.pending = 0  # line breaks owed before the next text
        self.bullet = False

    def _break(self, count: int) -> None:
        self.pending = max(self.pending, count)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            self.dropped += 1
        elif tag == "br":
            if self.pending:
                self.pending += 1
            else:
                self.parts.append("\n")
        elif tag == "li":
            self._break(1)
            self.bullet = True
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag in _BLOCKS:
            self._break(2 if tag in _PARAGRAPHS else 1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in _DROPPED:
            self.dropped = max(0, self.dropped - 1)

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            self.dropped = max(0, self.dropped - 1)
        elif tag in _BLOCKS:
            self._break(2 if tag in _PARAGRAPHS else 1)

    def handle_data(self, data: str) -> None:
        if self.dropped:
            return
        text = data.replace("\r", " ").replace("\n", " ")
        if not text.strip():
            if self.parts and not self.pending:
                self.parts.append(" ")
            return
        if self.pending:
            if self.parts:
                self.parts.append("\n" * self.pending)
            self.pending = 0
        if self.bullet:
            self.parts.append("- ")
            text = text.lstrip()
            self.bullet = False
        self.parts.append(text)


def html_to_text(value: str) -> str:
    """HTML (a PrestaShop description) -> plain text with line breaks, entities decoded.

    ``<p>`` and headings are separated by a blank line, ``<br>`` and ``<div>`` start a new line, ``<li>``
    becomes ``- item``; runs of spaces collapse, lines are trimmed, at most one blank line in a row, no leading
    or trailing blank lines. Text without any tag comes back with its own line breaks kept.
    """
    if not value:
        return ""
    if "<" not in value and "&" not in value:
        lines = [_SPACES.sub(" ", line).strip() for line in value.replace("\r\n", "\n").split("\n")]
        return _NEWLINES.sub("\n\n", "\n".join(lines)).strip("\n")
    parser = _TextParser()
    parser.feed(value)
    parser.close()
    text = "".join(parser.parts)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _NEWLINES.sub("\n\n", "\n".join(lines)).strip("\n")
