"""Token counting: the protocol the assembler needs and a tiktoken implementation.

The assembler never loads an encoding itself: the caller builds a counter once (for the model
encoding it targets) and passes it in, so ``assemble`` stays pure and cheap to call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from core.errors import InvalidInputError
from core.linear_regex import compile_linear

if TYPE_CHECKING:
    import tiktoken

# Python's str.split() also splits on these ASCII separators, which tiktoken's pre-tokenizer does
# not treat as whitespace; they are replaced by a letter before counting words (see lower_bound).
_NON_UNICODE_SPACES = str.maketrans({"\x1c": "x", "\x1d": "x", "\x1e": "x", "\x1f": "x"})
# o200k keeps line breaks inside a punctuation piece when "/" follows them (see word_lower_bound).
# RE2: with re, a long run of line breaks not followed by "/" costs time quadratic in it.
_BREAKS_BEFORE_SLASH = compile_linear(r"[\r\n]+/")


class TokenCounter(Protocol):
    """Counts tokens the way the caller's model will.

    ``lower_bound`` must never exceed ``count`` for the same text; it lets the packer skip a
    chunk that cannot fit without the (slower) exact count. Returning 0 is always correct.
    """

    @property
    def name(self) -> str:
        """The encoding's name, reported in the pack (e.g. ``cl100k_base``)."""
        ...

    @property
    def additive_at_line_ends(self) -> bool:
        """Whether counts add up across a line end: ``count(a + b) == count(a) + count(b)``.

        Claimed only for ``a`` ending with a non-space character and ``"\\n"`` and ``b``
        starting with a character that is neither whitespace nor ``"/"`` (see
        :func:`joins_cleanly`). True also claims that a run of ASCII digits between
        punctuation is split into pieces of its own, so that a citation number's tokens can
        be swapped for another's. False is always correct: the assembler then counts the
        whole rendered context once more instead of adding up the counts of its parts.
        """
        ...

    def count(self, text: str) -> int:
        """Return the exact number of tokens in ``text``."""
        ...

    def lower_bound(self, text: str, *, enough: int) -> int:
        """Return a cheap number <= ``count(text)``; may stop early once it reaches ``enough``."""
        ...


# Encodings whose pre-tokenizer always splits after a line end that follows a non-space
# character and precedes a non-space character other than "/": cl100k's pattern ends a piece
# there (``[\r\n]*+``, ``\s++$`` / ``\s*[\r\n]``), o200k's too unless "/" follows
# (``[\r\n/]*``). BPE never merges across pieces, so counts add up. Both patterns also put
# digits only in ``\p{N}{1,3}`` pieces, so a number between punctuation tokenizes the same
# whatever surrounds it. Only encodings whose claims tests/assembler/test_tokens.py checks
# (with hypothesis) are named; any other encoding gets the final full count.
ADDITIVE_ENCODINGS = frozenset({"cl100k_base", "o200k_base"})


def joins_cleanly(parts: Sequence[str]) -> bool:
    """Whether every join between consecutive non-empty ``parts`` is a clean line end.

    Clean: the part before ends with a non-space character and ``"\\n"``; the part after
    starts with a character that is neither whitespace nor ``"/"``. Where every join is clean,
    an encoding with ``additive_at_line_ends`` counts the joined text as the sum of the parts.
    """
    previous: str | None = None
    for part in parts:
        if not part:
            continue
        if previous is not None:
            if len(previous) < 2 or previous[-1] != "\n" or previous[-2].isspace():
                return False
            if part[0].isspace() or part[0] == "/":
                return False
        previous = part
    return True


# ASCII whitespace other than the space, as tiktoken's patterns see it (Unicode White_Space:
# \x1c-\x1f are not, although str.split() splits on them).
_ASCII_BREAKS = ("\n", "\t", "\r", "\x0b", "\x0c")
# Prose averages about six characters a word: a prefix this many characters per word needed
# usually settles the bound without reading the rest of the text.
_PREFIX_CHARS_PER_WORD = 8
# Up to this length the piece bound (two full passes) costs about what the word bound does.
_PIECE_BOUND_CHARS = 400


def ascii_gap_bound(text: str, *, end: int) -> int:
    """A lower bound on the tiktoken count of ASCII ``text`` from ``text[:end]``, in C loops.

    Every tiktoken pattern puts a space inside a piece only at the piece's start or in a
    piece of whitespace alone, so a run of whitespace that holds a space, between two
    non-whitespace characters, separates two pieces: ``count >= such runs + 1``. A stretch of
    ``k`` spaces holds ``k // 2`` non-overlapping double spaces, so ``spaces - 2 * doubles``
    counts the stretches of odd length; a run with ``m`` other whitespace characters has at
    most ``m + 1`` stretches, so each run adds at most 1 to ``spaces - 2 * doubles -
    others``, and a run without a space adds nothing (line breaks alone may sit inside an
    o200k piece, see :func:`word_lower_bound`). A leading and a trailing run may not be
    interior, hence the ``- 1`` (two runs lost, one piece gained). A prefix's interior runs
    are the text's. No strings are built, unlike ``split``.

    Args:
        text: ASCII text (the caller checks ``isascii()``).
        end: Look at ``text[:end]`` only.

    Returns:
        A number never above the text's token count (it may be negative).
    """
    runs = text.count(" ", 0, end) - 2 * text.count("  ", 0, end)
    if "\n" in text or "\t" in text or "\r" in text or "\x0b" in text or "\x0c" in text:
        runs -= sum(text.count(char, 0, end) for char in _ASCII_BREAKS)
    return runs - 1


def word_lower_bound(text: str, *, enough: int) -> int:
    """A lower bound on the tiktoken token count of ``text``: its whitespace-separated words.

    Every tiktoken encoding (gpt2 to o200k_base) first splits text with a regex whose pieces hold
    whitespace only at their start or end, and a token never spans two pieces; so each word
    (a maximal run of non-whitespace) starts at least one piece and one token. One exception:
    o200k's punctuation pieces run on over line breaks into ``/`` (``[\\r\\n/]*``: ``".\\n//"``
    is one token), so line breaks right before a ``/`` are not taken as a word boundary.
    Counting stops once ``enough + 1`` words are seen, which keeps this cheap when ``enough``
    is small.

    Args:
        text: The text to bound.
        enough: The caller only needs to know whether the count reaches this number.

    Returns:
        A number that is never above the text's true token count.
    """
    if text.isascii():
        bound = ascii_gap_bound(text, end=_PREFIX_CHARS_PER_WORD * (enough + 2))
        if bound >= enough:
            return bound
    if "\x1c" in text or "\x1d" in text or "\x1e" in text or "\x1f" in text:
        text = text.translate(_NON_UNICODE_SPACES)
    if "\n/" in text or "\r/" in text:
        text = _BREAKS_BEFORE_SLASH.sub("/", text)
    # split() stops after ``enough`` splits: the pieces are disjoint and each holds at least
    # one word, so their number is a lower bound on the words, exact up to ``enough + 1``.
    return len(text.split(None, max(enough, 0)))


_ASCII = [chr(code) for code in range(128)]
# Letters stay (as "a"), apostrophes go (see ascii_piece_bound), everything else separates.
_LETTER_RUNS = str.maketrans(
    {char: ("a" if char.isalpha() else None if char == "'" else " ") for char in _ASCII}
)
_DIGIT_RUNS = str.maketrans({char: (char if char.isdigit() else " ") for char in _ASCII})


def ascii_piece_bound(text: str) -> int:
    """A lower bound on the cl100k_base or o200k_base count of ASCII ``text``: its pieces.

    Both encodings' pre-tokenizers put letters only in pieces of one letter run each (an
    optional non-letter, non-digit character, then letters, in o200k maybe a contraction such
    as ``'s`` after them) and digits only in pieces of one to three digits (``\\p{N}{1,3}``).
    So, with apostrophes removed (which joins the runs that a contraction links), every
    maximal run of letters starts at least one piece, and a run of ``n`` digits fills at least
    ``ceil(n / 3)`` more; a token never spans two pieces. Tighter than the word count on text
    dense in punctuation and numbers (citation headers: about half the count, against a sixth).
    Not for other encodings (gpt2's pattern keeps whole digit runs together).

    Args:
        text: ASCII text (the caller checks ``isascii()``).

    Returns:
        A number never above the text's token count in cl100k_base or o200k_base.
    """
    letters = len(text.translate(_LETTER_RUNS).split())
    return letters + sum((len(run) + 2) // 3 for run in text.translate(_DIGIT_RUNS).split())


@dataclass(frozen=True, slots=True)
class TiktokenCounter:
    """A ``TokenCounter`` over one tiktoken encoding. Build it with :func:`tiktoken_counter`."""

    encoding: tiktoken.Encoding

    @property
    def name(self) -> str:
        """The encoding's name, e.g. ``cl100k_base``."""
        return str(self.encoding.name)

    @property
    def additive_at_line_ends(self) -> bool:
        """True for the encodings in ``ADDITIVE_ENCODINGS`` (cl100k_base, o200k_base)."""
        return self.name in ADDITIVE_ENCODINGS

    def count(self, text: str) -> int:
        """Return the number of tokens in ``text``; special-token text counts as plain text."""
        return len(self.encoding.encode_ordinary(text))

    def lower_bound(self, text: str, *, enough: int) -> int:
        """Return a lower bound on ``count(text)``, cheap for ``text`` of many tokens.

        Short ASCII text in cl100k or o200k: its pieces (:func:`ascii_piece_bound`, tight
        on punctuation and numbers, as in citation headers); otherwise its words
        (:func:`word_lower_bound`, which reads only as far as ``enough`` words need).
        """
        if len(text) <= _PIECE_BOUND_CHARS and text.isascii() and self.name in ADDITIVE_ENCODINGS:
            return ascii_piece_bound(text)
        return word_lower_bound(text, enough=enough)


def tiktoken_counter(encoding_name: str) -> TiktokenCounter:
    """Load a tiktoken encoding and wrap it as a ``TokenCounter``.

    tiktoken downloads an encoding's BPE file on first use; offline machines set
    ``TIKTOKEN_CACHE_DIR`` to a folder that already holds it (the caller's job, not this one's).

    Args:
        encoding_name: A tiktoken encoding, e.g. ``cl100k_base`` or ``o200k_base``.

    Returns:
        A counter to pass to ``assemble(..., counter=...)``.

    Raises:
        InvalidInputError: The encoding is unknown, or its BPE file cannot be loaded.

    Example:
        >>> counter = tiktoken_counter("cl100k_base")
        >>> counter.count("hello world")
        2
    """
    import tiktoken  # noqa: PLC0415  (kept out of `import assembler`, which must stay light)

    known = tiktoken.list_encoding_names()
    if encoding_name not in known:
        msg = (
            f"unknown token encoding {encoding_name!r}; use one of {', '.join(known)} "
            "(the encoding of the model that will read the context)"
        )
        raise InvalidInputError(msg, field="encoding", value=encoding_name)
    try:
        encoding = tiktoken.get_encoding(encoding_name)
    except (OSError, ValueError) as err:
        msg = (
            f"cannot load the tiktoken encoding {encoding_name!r}: {err}; on a machine without "
            "internet set TIKTOKEN_CACHE_DIR to a folder that holds its BPE file"
        )
        raise InvalidInputError(msg, field="encoding", value=encoding_name) from err
    return TiktokenCounter(encoding)
