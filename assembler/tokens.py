"""Token counting: the protocol the assembler needs and a tiktoken implementation.

The assembler never loads an encoding itself: the caller builds a counter once (for the model
encoding it targets) and passes it in, so ``assemble`` stays pure and cheap to call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from core.errors import InvalidInputError

if TYPE_CHECKING:
    import tiktoken


class TokenCounter(Protocol):
    """Counts tokens the way the caller's model will."""

    @property
    def name(self) -> str:
        """The encoding's name, reported in the pack (e.g. ``cl100k_base``)."""
        ...

    def count(self, text: str) -> int:
        """Return the exact number of tokens in ``text``."""
        ...


@runtime_checkable
class TokenSlicer(TokenCounter, Protocol):
    """A counter that can also cut text at token boundaries (tiktoken's can)."""

    def encode(self, text: str) -> list[int]:
        """The tokens of ``text``."""
        ...

    def decode(self, tokens: list[int]) -> str:
        """The text of ``tokens`` (a split multi-byte character becomes U+FFFD)."""
        ...


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

    def encode(self, text: str) -> list[int]:
        """The tokens of ``text``, special-token text as plain text."""
        return list(self.encoding.encode_ordinary(text))

    def decode(self, tokens: list[int]) -> str:
        """The text of ``tokens``."""
        return str(self.encoding.decode(tokens))


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
            "internet set RAGCTX_TIKTOKEN_CACHE_DIR (or TIKTOKEN_CACHE_DIR) to a folder that holds "
            "its BPE file"
        )
        raise InvalidInputError(msg, field="encoding", value=encoding_name) from err
    return TiktokenCounter(encoding)


SHIPPED_ENCODINGS = ("cl100k_base", "o200k_base")


def encoding_for_model(model: str) -> str:
    """The tiktoken encoding of an OpenAI model name (``gpt-4o`` → ``o200k_base``).

    Raises:
        InvalidInputError: tiktoken does not know the model, or maps it to an encoding this
            service does not ship.
    """
    import tiktoken  # noqa: PLC0415  (kept out of `import assembler`, which must stay light)

    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        name = None
    if name not in SHIPPED_ENCODINGS:
        msg = (
            f"no known token encoding for model {model!r}; name an OpenAI model (gpt-4o, "
            "gpt-4.1, gpt-5, gpt-4, gpt-3.5-turbo) or pass encoding (cl100k_base or o200k_base) "
            "instead: for other models, pick the closer one and leave some budget spare"
        )
        raise InvalidInputError(msg, field="model", value=model)
    return name
