"""HTML to Markdown-like text: headings as ``#`` lines, paragraphs, list items, table rows.

The chunker splits HTML-derived text along its ``#`` headings exactly as it splits Markdown, so
the conversion keeps h1-h6 and block boundaries and drops what is not content: scripts, styles,
comments, the head.

Content a reader of the page never sees is dropped too, before anything is rendered: it is the
classic carrier of prompt injection ("ignore previous instructions" in white-on-white text), and
what nobody can read is no evidence. Hidden means: the ``hidden`` attribute,
``aria-hidden="true"``, ``<template>``, and CSS (inline ``style`` or a ``<style>`` rule whose
selector matches) with ``display: none``, ``visibility: hidden``, ``opacity: 0``, a zero
``font-size``, ``color: transparent``, ``transform: scale(0)``, a far negative offset
(``left: -9999px``, ``text-indent: -9999px``), a zero clip rectangle, or a zero size with
``overflow: hidden``. CSS is parsed with tinycss2, so comments and escapes inside a
declaration (``display:/**/n\\one``) do not hide it from the check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import tinycss2
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
MAX_HTML_DEPTH = 200
"""Deepest element nesting converted; deeper pages are refused (rendering recurses per level)."""

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


class HtmlTooDeepError(ValueError):
    """The page nests elements deeper than :data:`MAX_HTML_DEPTH`."""


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
    """Convert an HTML page into Markdown-like text plus its title and ``ragctx:`` meta tags.

    Elements hidden from readers are left out (see the module docstring).

    Raises:
        HtmlTooDeepError: elements nest deeper than :data:`MAX_HTML_DEPTH`.
    """
    soup = BeautifulSoup(html, "html.parser")
    _check_depth(soup)
    title_tag = soup.find("title")
    title = _SPACES.sub(" ", title_tag.get_text()).strip() if title_tag is not None else ""
    meta: dict[str, str] = {}
    for tag in soup.find_all("meta"):
        name = str(tag.get("name") or "").strip().lower()
        content = tag.get("content")
        if name.startswith(META_PREFIX) and content is not None:
            meta[name.removeprefix(META_PREFIX)] = str(content)
    for tag in _hidden_tags(soup):
        tag.decompose()
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


def _check_depth(soup: BeautifulSoup) -> None:
    # Iterative: the point is to refuse a page before anything recursive walks it.
    stack: list[tuple[Tag, int]] = [(soup, 0)]
    while stack:
        tag, depth = stack.pop()
        if depth > MAX_HTML_DEPTH:
            raise HtmlTooDeepError(f"HTML elements nested deeper than {MAX_HTML_DEPTH} levels")
        stack.extend((child, depth + 1) for child in tag.children if isinstance(child, Tag))


def _hidden_tags(soup: BeautifulSoup) -> list[Tag]:
    """Every element a reader never sees, by attribute, inline style or ``<style>`` rule."""
    hidden: dict[int, Tag] = {}
    for tag in soup.find_all(True):
        if (
            tag.has_attr("hidden")
            or str(tag.get("aria-hidden", "")).strip().lower() == "true"
            or (tag.has_attr("style") and _hides(_declarations(str(tag["style"]))))
        ):
            hidden[id(tag)] = tag
    for style in soup.find_all("style"):
        for selector in _hiding_selectors(style.get_text()):
            try:
                matched = soup.select(selector)
            except Exception:  # noqa: BLE001 (soupsieve refuses selectors it cannot match)
                continue
            hidden.update((id(tag), tag) for tag in matched)
    # decompose() an outer element first: its hidden descendants go with it
    return [tag for tag in hidden.values() if not any(id(p) in hidden for p in tag.parents)]


def _declarations(css: str) -> list[tuple[str, list[Any]]]:
    """``(property, value tokens)`` of a declaration list, comments and whitespace left out."""
    out: list[tuple[str, list[Any]]] = []
    for item in tinycss2.parse_declaration_list(css, skip_comments=True, skip_whitespace=True):
        if item.type == "declaration":
            tokens = [t for t in item.value if t.type not in ("whitespace", "comment")]
            out.append((item.lower_name, tokens))
    return out


def _hiding_selectors(css: str) -> list[str]:
    """Selectors of the rules in a style sheet (and its ``@media``/``@supports``) that hide."""
    selectors: list[str] = []
    pending = list(tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True))
    while pending:
        rule = pending.pop()
        if rule.type == "qualified-rule":
            if _hides(_declarations(tinycss2.serialize(rule.content))):
                selectors.append(tinycss2.serialize(rule.prelude).strip())
        elif rule.type == "at-rule" and rule.content is not None:
            pending.extend(
                tinycss2.parse_rule_list(rule.content, skip_comments=True, skip_whitespace=True)
            )
    return [s for s in selectors if s]


# Offsets that move an element out of the viewport: anything beyond these is "off-screen".
_OFFSET_PROPERTIES = frozenset(
    {"left", "top", "right", "bottom", "text-indent", "margin-left", "margin-top", "inset"}
)
_FAR_NEGATIVE = {"px": -500.0, "pt": -375.0, "em": -30.0, "rem": -30.0, "%": -100.0}
_SIZE_PROPERTIES = frozenset({"width", "height", "max-width", "max-height"})


def _hides(declarations: list[tuple[str, list[Any]]]) -> bool:
    props = dict(declarations)
    for name, tokens in declarations:
        first = tokens[0] if tokens else None
        if first is None:
            continue
        if name == "display" and _ident(first) == "none":
            return True
        if name == "visibility" and _ident(first) in ("hidden", "collapse"):
            return True
        if name in ("opacity", "font-size") and _length(first) == 0.0:
            return True
        if name == "color" and _ident(first) == "transparent":
            return True
        if name == "transform" and _is_zero_scale(first):
            return True
        if name in _OFFSET_PROPERTIES and _far_negative(first):
            return True
        if name == "clip" and _function(first) == "rect" and _all_tiny(first.arguments):
            return True
    overflow = props.get("overflow", [])
    if overflow and _ident(overflow[0]) == "hidden":
        sizes = [props[name][0] for name in _SIZE_PROPERTIES if props.get(name)]
        return any(_is_tiny(token) for token in sizes)
    return False


def _ident(token: Any) -> str:
    return str(token.lower_value) if token.type == "ident" else ""


def _function(token: Any) -> str:
    return str(token.lower_name) if token.type == "function" else ""


def _length(token: Any) -> float | None:
    """The number of a number, percentage or dimension token; None for anything else."""
    if token.type in ("number", "percentage", "dimension"):
        return float(token.value)
    return None


def _is_tiny(token: Any) -> bool:
    value = _length(token)
    return value is not None and value <= 1.0 and getattr(token, "lower_unit", "px") == "px"


def _all_tiny(arguments: list[Any]) -> bool:
    values = [t for t in arguments if t.type in ("number", "percentage", "dimension")]
    return bool(values) and all(
        _length(t) is not None and abs(_length(t) or 0) <= 1 for t in values
    )


def _far_negative(token: Any) -> bool:
    value = _length(token)
    if value is None:
        return False
    unit = "%" if token.type == "percentage" else str(getattr(token, "lower_unit", "px"))
    return value <= _FAR_NEGATIVE.get(unit, -500.0)


def _is_zero_scale(token: Any) -> bool:
    if _function(token) not in ("scale", "scalex", "scaley", "scale3d"):
        return False
    numbers = [t for t in token.arguments if t.type in ("number", "percentage")]
    return bool(numbers) and float(numbers[0].value) == 0.0
