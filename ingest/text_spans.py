"""Character spans in a text: sentences, stripping, whitespace-tolerant matching, halving.

The chunker's offsets rest on these: every span they return indexes the text it was given.
"""

from __future__ import annotations

import re

# Sentence ends, and line breaks before a list item, table row or heading.
_SENTENCE_BREAK = re.compile(
    r"[.!?\u3002\uff01\uff1f][\"'\u201d\u2019)\]]*\s+|\n(?=[ \t]*(?:[-*+]|\d+[.)]|\||#{1,6})[ \t])"
)


def split_sentences(text: str) -> list[str]:
    """Sentences with their trailing whitespace, so that they join back into ``text``."""
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_BREAK.finditer(text):
        if match.end() > start:
            pieces.append(text[start : match.end()])
            start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` narrowed past whitespace at both ends (empty if it is all whitespace)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def skip_space(text: str, pos: int) -> int:
    """The first position at or after ``pos`` that is not whitespace (or the text's end)."""
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def match_at(text: str, piece: str, pos: int) -> tuple[int, int] | None:
    """The span of ``piece`` in ``text`` starting at ``pos``; whitespace inside may differ
    (the Markdown parser writes a heading's ``#\t`` as ``# ``)."""
    if text.startswith(piece, pos):
        return pos, pos + len(piece)
    words = piece.split()
    if not words:
        return None
    match = re.compile(r"\s+".join(map(re.escape, words))).match(text, pos)
    return (match.start(), match.end()) if match else None


def halve(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Two halves of a span, cut at the whitespace nearest its middle (or at the middle)."""
    if end - start <= 1:
        return [(start, end)]
    middle = (start + end) // 2
    cut = None
    for offset in range(0, (end - start) // 2):
        for i in (middle - offset, middle + offset):
            if start < i < end and text[i].isspace():
                cut = i
                break
        if cut is not None:
            break
    if cut is None:
        cut = middle
    halves = [strip_span(text, start, cut), strip_span(text, cut, end)]
    return [(s, e) for s, e in halves if e > s]
