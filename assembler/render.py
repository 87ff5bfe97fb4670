"""Rule 8, render and cite: each item inside delimiters its text cannot forge, then a list.

Every part of the context (an item's header, its text, its closing delimiter, a citation line)
ends with a newline. The assembler counts the rendered context as a whole (see
``assembler.pipeline``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import datetime

from assembler.types import CitationFormat, ContextItem
from assembler.untrusted import clean, escape_delimiters, safe_xml
from core.types import rendered_body

_BACKTICK_RUNS = re.compile(r"`{3,}")
XML_FOOTER = "</source>\n"
XML_LIST_OPEN = "<citations>\n"
XML_LIST_CLOSE = "</citations>\n"
MARKDOWN_LIST_OPEN = "Citations:\n"


def _one_line(value: str) -> str:
    value = clean(value)
    if value.isprintable() and "  " not in value:  # the common case: nothing to collapse
        return value.strip()
    return " ".join(value.split())


def _attribute(value: str) -> str:
    value = _one_line(value)
    # & < > and the attribute's own quote; an apostrophe stays as it is (double-quoted values)
    value = html.escape(value, quote=False).replace('"', "&quot;")
    return escape_delimiters(value)  # the look-alike brackets


def _date(moment: datetime | None) -> str:
    return "" if moment is None else moment.date().isoformat()


def neutralize_xml(text: str) -> str:
    """Escape look-alikes of the XML delimiters (``<source``, ``</citations>`` ...) in ``text``.

    The text is normalised first (see ``assembler.untrusted``): full-width, small-form and
    other look-alike brackets, and zero-width characters inside the tag's name, are caught.
    Only those tags are touched, so code samples with other angle brackets read as written.
    """
    return safe_xml(text)


def markdown_fence(text: str) -> str:
    """A backtick fence longer than any backtick run in ``text``, so the text cannot close it."""
    if "```" not in text:
        return "```"
    return "`" * (max(len(run) for run in _BACKTICK_RUNS.findall(text)) + 1)


body = rendered_body  # the item's text as rendered: no outer whitespace, one line end


def header(item: ContextItem, fmt: CitationFormat) -> str:
    """The opening delimiter and citation header of ``item``, ending with a newline."""
    number = str(item.citation)
    section = " > ".join(item.section)
    date = _date(item.updated_at)
    flags = ",".join(item.flags)
    if fmt is CitationFormat.XML:
        attributes = [
            ("id", number),
            ("title", item.title),
            ("section", section),
            ("source", item.source),
            ("path", item.path),
            ("updated", date),
            ("flags", flags),
        ]
        shown = " ".join([f'{key}="{_attribute(value)}"' for key, value in attributes if value])
        return f"<source {shown}>\n"
    title = _one_line(item.title) or _one_line(item.doc_id)
    first = f"[{number}] {title}" + (f" — {_one_line(section)}" if section else "")
    facts = [
        ("source", item.source),
        ("path", item.path),
        ("updated", date),
        ("flags", flags),
    ]
    second = " · ".join([f"{key}: {_one_line(value)}" for key, value in facts if value])
    fence = markdown_fence(clean(item.text))
    return f"{first}\n{second}\n{fence}\n" if second else f"{first}\n{fence}\n"


def footer(item: ContextItem, fmt: CitationFormat) -> str:
    """The closing delimiter of ``item``, ending with a newline."""
    if fmt is CitationFormat.XML:
        return XML_FOOTER
    return markdown_fence(clean(item.text)) + "\n"


def rendered_text(text: str, fmt: CitationFormat) -> str:
    """``text`` as rendered inside an item's delimiters: normalised, look-alikes escaped."""
    if fmt is CitationFormat.XML:
        return body(neutralize_xml(text))
    return body(clean(text))  # the fence is chosen longer than any backtick run in the text


def safe_body(item: ContextItem, fmt: CitationFormat) -> str:
    """The item's text as rendered inside its delimiters (see :func:`rendered_text`)."""
    return rendered_text(item.text, fmt)


def citation_line(item: ContextItem, fmt: CitationFormat) -> str:
    """The item's line in the citations list, ending with a newline."""
    parts = [_one_line(item.title) or _one_line(item.doc_id)]
    if item.section:
        parts.append(_one_line(" > ".join(item.section)))
    where = item.path or item.source
    if where:
        parts.append(_one_line(where))
    date = _date(item.updated_at)
    line = f"[{item.citation}] " + " — ".join(parts) + (f" ({date})" if date else "") + "\n"
    return neutralize_xml(line) if fmt is CitationFormat.XML else line


def list_frame(fmt: CitationFormat) -> tuple[str, str]:
    """The text before and after the citations list."""
    if fmt is CitationFormat.XML:
        return XML_LIST_OPEN, XML_LIST_CLOSE
    return MARKDOWN_LIST_OPEN, ""


def render(items: Sequence[ContextItem], *, fmt: CitationFormat, include_list: bool) -> str:
    """Render numbered items and the citations list into the context text.

    Args:
        items: The items in their final order, numbered 1..n.
        fmt: The policy's ``citations.format``.
        include_list: Whether to append the citations list.

    Returns:
        The context; empty when there are no items.
    """
    if not items:
        return ""
    out: list[str] = []
    for item in items:
        out += (header(item, fmt), safe_body(item, fmt), footer(item, fmt))
    if include_list:
        opening, closing = list_frame(fmt)
        out += (opening, *(citation_line(item, fmt) for item in items), closing)
    return "".join(out)
