"""Linear-time regular expressions (RE2) for untrusted text: ingested files, requests, policies.

Python's ``re`` backtracks, so a pattern such as ``(a+)+$`` or even ``\\s+#+\\s*$`` can take
time exponential or quadratic in the text's length. RE2 matches in time linear in the text,
whatever the pattern; it refuses what needs backtracking (backreferences, lookaround).

RE2's ``\\s``, ``\\w``, ``\\d`` and ``\\b`` are ASCII; :data:`SPACE` is the class of exactly the
characters Python's ``\\s`` matches in a ``str``, for patterns ported from ``re``.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import re2

__all__ = ["SPACE", "LinearPattern", "compile_linear", "error", "literal", "reason"]

# Python's str \s: ASCII white space, \v, the separators \x1c-\x1f and \x85, and Unicode Z*.
SPACE = r"[\s\v\x1c-\x1f\x85\p{Z}]"

error = re2.error

# RE2 logs every refused pattern to stderr; the callers raise errors that say it.
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False


class Match(Protocol):
    """The part of a match object the callers use."""

    def group(self, index: int = 0) -> str:
        """The text of group ``index``."""

    def start(self, index: int = 0) -> int:
        """Where group ``index`` starts."""

    def end(self, index: int = 0) -> int:
        """Where group ``index`` ends."""


def _encodable(text: str) -> str:
    # RE2 works on UTF-8; a lone surrogate (JSON allows "\ud800") cannot be encoded. Replace
    # it with U+FFFD: one code point for one, so match positions stay those of ``text``.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(c) < 0xE000 else c for c in text)
    return text


class LinearPattern:
    """An RE2 pattern with ``search``, ``match`` and ``sub`` like ``re.Pattern``'s."""

    __slots__ = ("_regexp", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._regexp: Any = re2.compile(pattern, _OPTIONS)

    def search(self, text: str) -> Match | None:
        """The first match anywhere in ``text``, or None."""
        return cast("Match | None", self._regexp.search(_encodable(text)))

    def match(self, text: str) -> Match | None:
        """A match at the start of ``text``, or None."""
        return cast("Match | None", self._regexp.match(_encodable(text)))

    def fullmatch(self, text: str) -> Match | None:
        """A match of the whole of ``text``, or None."""
        return cast("Match | None", self._regexp.fullmatch(_encodable(text)))

    def sub(self, replacement: str, text: str) -> str:
        """``text`` with every match replaced by ``replacement`` (``\\1`` names a group)."""
        return cast(str, self._regexp.sub(replacement, _encodable(text)))

    def subn(self, replacement: str, text: str) -> tuple[str, int]:
        """:meth:`sub`, and how many matches it replaced."""
        return cast("tuple[str, int]", self._regexp.subn(replacement, _encodable(text)))


def reason(err: Exception) -> str:
    """RE2's reason for refusing a pattern, as text (it comes as bytes)."""
    first = err.args[0] if err.args else err
    return first.decode(errors="replace") if isinstance(first, bytes) else str(first)


def literal(text: str) -> str:
    """``text`` as a pattern matching it literally (also inside a character class).

    Every character but ASCII letters and digits is written ``\\x{hex}``, which RE2 reads the
    same everywhere (``re.escape``'s ``\\ `` for a space is an error in RE2).
    """
    return "".join(c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):X}}}" for c in text)


def compile_linear(pattern: str) -> LinearPattern:
    """Compile ``pattern`` with RE2.

    Raises:
        error: RE2 refuses the pattern (bad syntax, a backreference, a lookaround).
    """
    return LinearPattern(pattern)
