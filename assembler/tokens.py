"""Token counting: the protocol the assembler needs and a tiktoken implementation.

The assembler never loads an encoding itself: the caller builds a counter once (for the model
encoding it targets) and passes it in, so ``assemble`` stays pure and cheap to call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from index.errors import InvalidInputError

if TYPE_CHECKING:
    import tiktoken

# Python's str.split() also splits on these ASCII separators, which tiktoken's pre-tokenizer does
# not treat as whitespace; they are replaced by a letter before counting words (see lower_bound).
_NON_UNICODE_SPACES = str.maketrans({"\x1c": "x", "\x1d": "x", "\x1e": "x", "\x1f": "x"})


class TokenCounter(Protocol):
    """Counts tokens the way the caller's model will.

    ``lower_bound`` must never exceed ``count`` for the same text; it lets the packer skip a
    chunk that cannot fit without the (slower) exact count. Returning 0 is always correct.
    """

    @property
    def name(self) -> str:
        """The encoding's name, reported in the pack (e.g. ``cl100k_base``)."""
        ...

    def count(self, text: str) -> int:
        """Return the exact number of tokens in ``text``."""
        ...

    def lower_bound(self, text: str, *, enough: int) -> int:
        """Return a cheap number <= ``count(text)``; may stop early once it reaches ``enough``."""
        ...


def word_lower_bound(text: str, *, enough: int) -> int:
    """A lower bound on the tiktoken token count of ``text``: its whitespace-separated words.

    Every tiktoken encoding (gpt2 to o200k_base) first splits text with a regex whose pieces hold
    whitespace only at their start or end, and a token never spans two pieces; so each word
    (a maximal run of non-whitespace) starts at least one piece and one token. Counting a prefix
    is still a lower bound, which keeps this cheap when ``enough`` is small.

    Args:
        text: The text to bound.
        enough: The caller only needs to know whether the count reaches this number.

    Returns:
        A number that is never above the text's true token count.
    """
    if "\x1c" in text or "\x1d" in text or "\x1e" in text or "\x1f" in text:
        text = text.translate(_NON_UNICODE_SPACES)
    # English averages ~6 characters a word; 12 per wanted word makes one prefix pass usually
    # enough, and the full text is split only when the prefix falls short.
    prefix_chars = 12 * max(enough, 1) + 16
    if len(text) > prefix_chars:
        words = len(text[:prefix_chars].split())
        if words >= enough:
            return words
    return len(text.split())


@dataclass(frozen=True, slots=True)
class TiktokenCounter:
    """A ``TokenCounter`` over one tiktoken encoding. Build it with :func:`tiktoken_counter`."""

    encoding: tiktoken.Encoding

    @property
    def name(self) -> str:
        """The encoding's name, e.g. ``cl100k_base``."""
        return str(self.encoding.name)

    def count(self, text: str) -> int:
        """Return the number of tokens in ``text``; special-token text counts as plain text."""
        return len(self.encoding.encode_ordinary(text))

    def lower_bound(self, text: str, *, enough: int) -> int:
        """Return a word-count lower bound on ``count(text)`` (see :func:`word_lower_bound`)."""
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
