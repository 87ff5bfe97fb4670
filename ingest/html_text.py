"""HTML to Markdown-like text: headings as ``#`` lines, paragraphs, list items, table rows.

The chunker splits HTML-derived text along its ``#`` headings exactly as it splits Markdown, so
the conversion keeps h1-h6 and block boundaries and drops what is not content: scripts, styles,
comments, the head. markdownify renders the page; inline formatting (bold, links, inline code)
is rendered as its plain text and a table row as its cells joined by `` | ``.

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
from dataclasses import dataclass
from typing import Any

import tinycss2
from bs4 import BeautifulSoup
from bs4.element import Tag
from markdownify import ATX, MarkdownConverter

META_PREFIX = "ragctx:"
MAX_HTML_DEPTH = 200
"""Deepest element nesting converted; deeper pages are refused (rendering recurses per level)."""

_DROP = frozenset(
    {"script", "style", "noscript", "template", "head", "svg", "iframe", "object", "canvas"}
)
# Rendered as their plain text: emphasis, links, inline code, images (no text).
_PLAIN = ["a", "b", "strong", "i", "em", "code", "kbd", "samp", "del", "s", "sub", "sup", "q"]
_PLAIN += ["img", "video", "audio", "picture"]
_SPACES = re.compile(r"\s+")
_CELL_END = "\x00"  # ends a table cell until its row joins the cells


class HtmlTooDeepError(ValueError):
    """The page nests elements deeper than :data:`MAX_HTML_DEPTH`."""


@dataclass(frozen=True, slots=True)
class HtmlText:
    """What an HTML page yields: its Markdown-like text, its <title>, and ragctx meta tags."""

    text: str
    title: str
    meta: dict[str, str]  # "tenant", "groups", ... from <meta name="ragctx:..." content=...>


class _Converter(MarkdownConverter):
    """markdownify with ATX headings, ``-`` bullets, no escaping, whitespace collapsed, plain
    inline text, ``a | b`` table rows and the page's other block elements as blocks."""

    def __init__(self) -> None:
        super().__init__(
            heading_style=ATX,
            bullets="-",
            escape_asterisks=False,
            escape_underscores=False,
            escape_misc=False,
            wrap=True,  # with no width: collapses whitespace runs, newlines included
            wrap_width=None,
            strip=_PLAIN,
        )

    # markdownify calls convert_<tag>(el, text, parent_tags=...): the names are its contract.

    def _block(self, el: Tag, text: str, parent_tags: set[str]) -> str:  # noqa: ARG002
        """Like markdownify's ``<div>``: a paragraph-like block (or a space inside a heading)."""
        if "_inline" in parent_tags:
            return " " + text.strip() + " "
        return f"\n\n{text.strip()}\n\n" if text.strip() else ""

    convert_main = convert_header = convert_footer = convert_nav = convert_aside = _block
    convert_blockquote = convert_dl = convert_dt = convert_dd = convert_figure = _block
    convert_figcaption = convert_form = convert_fieldset = convert_address = _block
    convert_details = convert_summary = _block

    def convert_br(self, el: Tag, text: str, parent_tags: set[str]) -> str:  # noqa: ARG002
        return " " if "_inline" in parent_tags else "\n"

    def convert_hr(self, el: Tag, text: str, parent_tags: set[str]) -> str:  # noqa: ARG002
        return ""  # the blocks around it are apart already

    def convert_td(self, el: Tag, text: str, parent_tags: set[str]) -> str:  # noqa: ARG002
        return _SPACES.sub(" ", text).strip() + _CELL_END

    convert_th = convert_td

    def convert_tr(self, el: Tag, text: str, parent_tags: set[str]) -> str:  # noqa: ARG002
        cells = [cell.strip() for cell in text.split(_CELL_END)[:-1]]
        return " | ".join(cells) + "\n" if any(cells) else ""


_CONVERTER = _Converter()


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
    for tag in soup.find_all(_DROP):
        tag.decompose()
    text = _CONVERTER.convert_soup(soup.body if soup.body is not None else soup)
    return HtmlText(text=text.strip(), title=title, meta=meta)


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
