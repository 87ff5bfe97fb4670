"""Rule 8, render and cite: each item inside delimiters its text cannot forge, then a list.

Every part of the context (an item's header, its text, its closing delimiter, a citation line)
ends with a newline, and the next part starts with a non-space character. tiktoken's
pre-tokenizer then splits the whole context where it splits the parts, so the parts' counts
add up to the whole's for the encodings that vouch for it (``additive_at_line_ends``: cl100k,
o200k). The assembler checks every join (``tokens.joins_cleanly``) and adds up the counts it
already took; for any other encoding, or a join that is not clean, it counts the whole context.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

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
    if "&" in value or '"' in value or "<" in value or ">" in value:
        value = value.replace("&", "&amp;").replace('"', "&quot;")
        value = value.replace("<", "&lt;").replace(">", "&gt;")
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


class Framed(Protocol):
    """What an item's header, closing delimiter and citation line show (a ``ContextItem``)."""

    @property
    def doc_id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def section(self) -> tuple[str, ...]: ...
    @property
    def text(self) -> str: ...
    @property
    def updated_at(self) -> datetime | None: ...
    @property
    def flags(self) -> tuple[str, ...]: ...


def header(item: Framed, number: str, fmt: CitationFormat) -> str:
    """The opening delimiter and citation header of ``item`` (``number`` as it will print).

    Args:
        item: The item; its own ``citation`` is ignored in favour of ``number``.
        number: The citation number's text (the packer passes a placeholder of the same width).
        fmt: The policy's ``citations.format``.

    Returns:
        The header, ending with a newline.
    """
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


def footer(item: Framed, fmt: CitationFormat) -> str:
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


def citation_line(item: Framed, number: str, fmt: CitationFormat) -> str:
    """The item's line in the citations list, ending with a newline."""
    parts = [_one_line(item.title) or _one_line(item.doc_id)]
    if item.section:
        parts.append(_one_line(" > ".join(item.section)))
    where = item.path or item.source
    if where:
        parts.append(_one_line(where))
    date = _date(item.updated_at)
    line = f"[{number}] " + " — ".join(parts) + (f" ({date})" if date else "") + "\n"
    return neutralize_xml(line) if fmt is CitationFormat.XML else line


def list_frame(fmt: CitationFormat) -> tuple[str, str]:
    """The text before and after the citations list."""
    if fmt is CitationFormat.XML:
        return XML_LIST_OPEN, XML_LIST_CLOSE
    return MARKDOWN_LIST_OPEN, ""


# Where the citation number starts in a header and in a citation line (see header and
# citation_line): frames built with a placeholder number get the real one put there.
_HEADER_NUMBER_AT = {CitationFormat.XML: len('<source id="'), CitationFormat.MARKDOWN: len("[")}
_LINE_NUMBER_AT = len("[")


def renumbered(part: str, at: int, placeholder: str, number: str) -> str:
    """``part`` (a header or citation line) with ``number`` in place of ``placeholder``."""
    if not part.startswith(placeholder, at):
        msg = f"no citation number placeholder {placeholder!r} at {at} in {part[:40]!r}"
        raise ValueError(msg)
    return part[:at] + number + part[at + len(placeholder) :]


def parts(
    items: Sequence[ContextItem],
    *,
    fmt: CitationFormat,
    include_list: bool,
    frames: Sequence[tuple[str, str]] | None = None,
    placeholder: str = "",
) -> tuple[list[str], list[int]]:
    """The context's parts in order, and where each item's body is among them.

    ``"".join(parts)`` is the context (see :func:`render`). The bodies' positions let the
    assembler reuse the counts it took while packing instead of counting the bodies again.

    Args:
        items: The items in their final order, numbered 1..n.
        fmt: The policy's ``citations.format``.
        include_list: Whether to append the citations list.
        frames: Per item, its header and citation line as built while packing, numbered
            with ``placeholder``: they get the real numbers instead of being built again.
        placeholder: The number the frames were built with.

    Returns:
        The parts (headers, bodies, footers, the citations list) and, per item, the position
        of its body in the parts.
    """
    if not items:
        return [], []
    out: list[str] = []
    bodies: list[int] = []
    lines: list[str] = []
    for index, item in enumerate(items):
        number = str(item.citation)
        if frames is None:
            out.append(header(item, number, fmt))
            if include_list:
                lines.append(citation_line(item, number, fmt))
        else:
            head, line = frames[index]
            out.append(renumbered(head, _HEADER_NUMBER_AT[fmt], placeholder, number))
            if include_list:
                lines.append(renumbered(line, _LINE_NUMBER_AT, placeholder, number))
        bodies.append(len(out))
        out += (safe_body(item, fmt), footer(item, fmt))
    if include_list:
        opening, closing = list_frame(fmt)
        out += (opening, *lines, closing)
    return out, bodies


def render(items: Sequence[ContextItem], *, fmt: CitationFormat, include_list: bool) -> str:
    """Render numbered items and the citations list into the context text.

    Args:
        items: The items in their final order, numbered 1..n.
        fmt: The policy's ``citations.format``.
        include_list: Whether to append the citations list.

    Returns:
        The context; empty when there are no items.
    """
    return "".join(parts(items, fmt=fmt, include_list=include_list)[0])
