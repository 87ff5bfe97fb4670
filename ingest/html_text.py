"""HTML to Markdown-like text: headings as ``#`` lines, paragraphs, list items, table rows.

The chunker splits HTML-derived text along its ``#`` headings exactly as it splits Markdown, so
the conversion keeps h1-h6 and block boundaries and drops what is not content: scripts, styles,
comments, the head.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bs4 import BeautifulSoup
from bs4.element import (
    Comment,
    Declaration,
    Doctype,
    NavigableString,
    PageElement,
    ProcessingInstruction,
    Tag,
)

META_PREFIX = "ragctx:"

_DROP = frozenset(
    {"script", "style", "noscript", "template", "head", "svg", "iframe", "object", "canvas"}
)
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = frozenset(
    {
        "p", "div", "section", "article", "main", "header", "footer", "nav", "aside",
        "blockquote", "ul", "ol", "dl", "dt", "dd", "table", "thead", "tbody", "tfoot",
        "figure", "figcaption", "form", "fieldset", "address", "details", "summary", "hr",
        "body", "html",
    }
)  # fmt: skip
_SKIPPED_STRINGS = (Comment, Declaration, Doctype, ProcessingInstruction)
_SPACES = re.compile(r"\s+")
_LINE_BREAK = "\x00"  # stands for <br> until whitespace is collapsed


@dataclass(frozen=True, slots=True)
class HtmlText:
    """What an HTML page yields: its Markdown-like text, its <title>, and ragctx meta tags."""

    text: str
    title: str
    meta: dict[str, str]  # "tenant", "groups", ... from <meta name="ragctx:..." content=...>


@dataclass(slots=True)
class _Writer:
    """Collects blocks. Items of one list and rows of one table are joined by one newline, the
    rest by two; a block's kind says which list or table it belongs to."""

    blocks: list[tuple[str, str]] = field(default_factory=list)  # (kind, text)
    inline: list[str] = field(default_factory=list)
    inline_kind: str = "p"
    prefix: str = ""

    def flush(self) -> None:
        text = _SPACES.sub(" ", "".join(self.inline)).replace(_LINE_BREAK, "\n")
        text = "\n".join(line.strip() for line in text.split("\n")).strip()
        if text:
            self.blocks.append((self.inline_kind, self.prefix + text))
        self.inline = []
        self.inline_kind = "p"
        self.prefix = ""

    def block(self, kind: str, text: str) -> None:
        self.flush()
        if text.strip():
            self.blocks.append((kind, text))

    def start(self, kind: str, prefix: str = "") -> None:
        self.flush()
        self.inline_kind = kind
        self.prefix = prefix

    def result(self) -> str:
        self.flush()
        parts: list[str] = []
        previous = ""
        for kind, text in self.blocks:
            if parts:
                tight = kind == previous and kind.startswith(("li:", "tr:"))
                parts.append("\n" if tight else "\n\n")
            parts.append(text)
            previous = kind
        return "".join(parts)


def html_to_text(html: str) -> HtmlText:
    """Convert an HTML page into Markdown-like text plus its title and ``ragctx:`` meta tags."""
    soup = BeautifulSoup(html, "html.parser")
    title_tag = soup.find("title")
    title = _SPACES.sub(" ", title_tag.get_text()).strip() if title_tag is not None else ""
    meta: dict[str, str] = {}
    for tag in soup.find_all("meta"):
        name = str(tag.get("name") or "").strip().lower()
        content = tag.get("content")
        if name.startswith(META_PREFIX) and content is not None:
            meta[name.removeprefix(META_PREFIX)] = str(content)
    writer = _Writer()
    root = soup.body if soup.body is not None else soup
    _render(root, writer, depth=0)
    return HtmlText(text=writer.result(), title=title, meta=meta)


def _render(node: Tag | BeautifulSoup, out: _Writer, *, depth: int) -> None:
    for child in node.children:
        if isinstance(child, _SKIPPED_STRINGS):
            continue
        if isinstance(child, NavigableString):
            out.inline.append(str(child))
            continue
        if isinstance(child, Tag):
            _render_tag(child, out, depth=depth)


def _render_tag(tag: Tag, out: _Writer, *, depth: int) -> None:
    name = tag.name.lower()
    if name in _DROP:
        return
    if name in _HEADINGS:
        heading = _SPACES.sub(" ", _inline_text(tag)).strip()
        if heading:
            out.block("h", "#" * _HEADINGS[name] + " " + heading)
        return
    if name == "br":
        out.inline.append(_LINE_BREAK)
        return
    if name == "pre":
        code = tag.get_text().strip("\n")
        if code.strip():
            out.block("pre", "```\n" + code + "\n```")
        return
    if name == "li":
        parent = tag.parent
        ordered = isinstance(parent, Tag) and parent.name == "ol"
        marker = f"{_item_number(tag)}. " if ordered else "- "
        out.start(f"li:{id(parent)}", "  " * depth + marker)
        _render(tag, out, depth=depth + 1)
        out.flush()
        return
    if name == "tr":
        cells = [
            _SPACES.sub(" ", _inline_text(cell)).strip()
            for cell in tag.find_all(["td", "th"], recursive=False)
        ]
        table = next((p for p in tag.parents if p.name == "table"), None)
        out.block(f"tr:{id(table)}", " | ".join(cells))
        return
    if name in _BLOCKS:
        out.flush()
        _render(tag, out, depth=depth)
        out.flush()
        return
    _render(tag, out, depth=depth)


def _inline_text(tag: Tag) -> str:
    parts: list[str] = []
    for piece in tag.descendants:
        if (
            isinstance(piece, NavigableString)
            and not isinstance(piece, _SKIPPED_STRINGS)
            and not _inside_dropped(piece, tag)
        ):
            parts.append(str(piece))
    return "".join(parts)


def _inside_dropped(piece: PageElement, stop: Tag) -> bool:
    parent = piece.parent
    while parent is not None and parent is not stop:
        if parent.name in _DROP:
            return True
        parent = parent.parent
    return False


def _item_number(item: Tag) -> int:
    return 1 + sum(
        1 for sibling in item.previous_siblings if isinstance(sibling, Tag) and sibling.name == "li"
    )
