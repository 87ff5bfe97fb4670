"""Untrusted text to safe text: what every part of a rendered document goes through.

A document's body, title, section headings, source, path and citation line all come from the
corpus, so they are all untrusted. :func:`clean` normalises such text once (NFKC, then Unicode
format characters, category Cf, removed: zero-width joiners, bidirectional controls, tag
characters), so "＜/source＞" or "</sou\u200brce>" reach the escaping and the injection screen
as the "</source>" they would read as. :func:`escape_delimiters` then escapes every opening
bracket, ASCII or look-alike, that starts a tag named like the context's own delimiters
(``source`` and ``citations`` for retrieved chunks; ``memory``, ``tool_output``, ``document``
and ``example`` for the caller's items).
"""

from __future__ import annotations

import sys
import unicodedata
from functools import cache

from core.linear_regex import SPACE, compile_linear

# Brackets that read as "<" without being it, and that NFKC leaves alone (it already maps the
# full-width U+FF1C and the small form U+FE64 to "<").
LOOKALIKE_OPENERS = (
    "\u2039"  # single left-pointing angle quotation mark
    "\u02c2"  # modifier letter left arrowhead
    "\u1438"  # Canadian syllabics pa
    "\u27e8"  # mathematical left angle bracket
    "\u27ea"  # mathematical left double angle bracket
    "\u276c\u276e\u2770"  # medium / heavy angle bracket ornaments
    "\u29fc"  # left-pointing curved angle bracket
    "\u3008\u300a"  # CJK angle brackets
    "\u00ab"  # left-pointing double angle quotation mark
)
# RE2 (linear time; with re's lookahead, a bracket and many spaces cost time quadratic in
# them): the opener is group 1, the rest (spaces, "/", the name) is kept as group 2. The rest
# holds no opener, so consuming it hides no later tag.
DELIMITER_NAMES = ("source", "citations", "memory", "tool_output", "document", "example")
_DELIMITER_TAG = compile_linear(
    rf"(?i)([<{LOOKALIKE_OPENERS}])({SPACE}*/?{SPACE}*(?:{'|'.join(DELIMITER_NAMES)})\b)"
)


@cache
def _format_characters() -> dict[int, None]:
    """A ``str.translate`` table deleting every format character (category Cf)."""
    return {
        code: None for code in range(sys.maxunicode + 1) if unicodedata.category(chr(code)) == "Cf"
    }


def clean(text: str) -> str:
    """``text`` in NFKC with its format characters removed (ASCII text is returned as it is)."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text).translate(_format_characters())


def escape_delimiters(text: str) -> str:
    """Escape the opening bracket of every tag named like a delimiter (``<source``, ...).

    ``text`` should already be :func:`clean`. Only those tags are touched, so code samples
    with other angle brackets read as written.
    """
    if text.isascii() and "<" not in text:
        return text
    return _DELIMITER_TAG.sub(r"&lt;\2", text)


def safe_xml(text: str) -> str:
    """:func:`clean`, then :func:`escape_delimiters`: untrusted text for an XML context."""
    return escape_delimiters(clean(text))
