"""Split documents into token-bounded chunks along their structure.

Markdown and HTML-derived text is first cut into sections at its headings (llama-index
``MarkdownNodeParser``); a section too long for one chunk, and any other text, goes through a
sentence-aware ``SentenceSplitter`` that counts tiktoken tokens. Each chunk keeps its heading
path, its exact character span in the document and the token count of its ``embed_text`` (title,
heading path, text), which fits the chunk budget and, when given, the dense model's input limit:
a chunk over either is split again, never truncated.

Example:
    >>> chunker = Chunker(ChunkingParams(chunk_tokens=200, overlap_tokens=30))
    >>> chunks = chunker.chunk(document)
    >>> all(document.text[c.char_start : c.char_end] == c.text for c in chunks)
    True
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import tiktoken
from llama_index.core.callbacks import CallbackManager
from llama_index.core.node_parser import MarkdownNodeParser, SentenceSplitter
from llama_index.core.schema import MetadataMode, TextNode

from core import defaults
from core.errors import InvalidInputError
from core.linear_regex import SPACE, compile_linear
from core.types import BODY_TOKEN_ENCODINGS, rendered_body
from ingest.text_spans import halve, match_at, skip_space, split_sentences, strip_span
from ingest.types import Chunk, Document

__all__ = ["Chunker", "ChunkingParams"]

if TYPE_CHECKING:
    from index.encoders import DenseEncoder

log = logging.getLogger(__name__)

SECTIONED_FORMATS = frozenset({"markdown", "html"})
_MIN_CHUNK_TOKENS = 16
_MIN_BODY_TOKENS = 8
_SPECIAL_TOKENS_ALLOWANCE = 8  # [CLS], [SEP], a SentencePiece prefix, ... with room to spare
_SHRINK = 0.9  # aim below a limit when splitting again: token counts are not additive
_LONG_TEXT_CHARS_PER_TOKEN = 5  # longer than 5 characters per budget token: split uncounted
_PATH_SEP = "\x1f"  # joins heading paths inside the Markdown parser; never in a heading
_HEADING = re.compile(r"^#+\s(.*)")
# RE2: with re, a heading of many spaces costs time quadratic in its length.
_CLOSING_HASHES = compile_linear(rf"{SPACE}+#+{SPACE}*$")


@dataclass(frozen=True, slots=True)
class ChunkingParams:
    """How to chunk: tokens per chunk (title and heading path included), overlap, encoding."""

    chunk_tokens: int = defaults.CHUNK_TOKENS
    overlap_tokens: int = defaults.CHUNK_OVERLAP
    encoding: str = defaults.CHUNK_ENCODING

    def __post_init__(self) -> None:
        if self.chunk_tokens < _MIN_CHUNK_TOKENS:
            raise InvalidInputError(
                f"chunk_tokens is {self.chunk_tokens}; it must be at least {_MIN_CHUNK_TOKENS} "
                "(200 is a good start)",
                field="chunk_tokens",
                value=self.chunk_tokens,
            )
        if not 0 <= self.overlap_tokens <= self.chunk_tokens // 2:
            raise InvalidInputError(
                f"overlap_tokens is {self.overlap_tokens}; it must be between 0 and half of "
                f"chunk_tokens ({self.chunk_tokens // 2})",
                field="overlap_tokens",
                value=self.overlap_tokens,
            )


@dataclass(frozen=True, slots=True)
class _Piece:
    """A chunk in the making: a span of the document and the header its embed_text gets."""

    start: int
    end: int
    section: tuple[str, ...]
    header: str  # title and heading path, fitted to the limits
    untitled: str  # the heading path alone, for chunks that already start with the title
    skip_title: bool

    @property
    def headers(self) -> tuple[str, str]:
        """Both headers, for checks against the model limit."""
        return self.header, self.untitled


@dataclass(frozen=True, slots=True)
class _ModelLimit:
    """The dense model's input limit and its token counter."""

    tokens: int
    count: Callable[[Sequence[str]], list[int]]

    def over(self, embeds: list[str], headers: set[str]) -> tuple[list[float], set[str]]:
        """Each embed_text's model tokens as a share of the limit, and the headers that take
        more than half of it; one call counts only the texts that could be over."""
        half = self.tokens // 2
        texts = [e for e in embeds if _may_exceed(e, self.tokens)]
        checked = sorted(h for h in headers if _may_exceed(h, half))
        if not texts and not checked:
            return [0.0] * len(embeds), set()
        counts = self.count([*texts, *checked])
        too_long = {h for h, n in zip(checked, counts[len(texts) :], strict=True) if n > half}
        by_text = dict(zip(texts, counts, strict=False))
        return [by_text.get(e, 0) / self.tokens for e in embeds], too_long

    def shortened(self, headers: set[str]) -> dict[str, str]:
        """Each header cut to half the model limit."""
        return {h: _shorten(h, lambda t: self.count([t])[0], self.tokens // 2) for h in headers}


class Chunker:
    """Split documents into chunks. Build one and use it for many documents: the parsers are
    built once (splitters lazily, one per body size), not per document.

    Args:
        params: chunk size, overlap and tiktoken encoding.
        max_model_tokens: the dense model's input limit in its own tokens, special tokens
            included (256 for all-MiniLM-L6-v2). Chunks whose embed_text exceeds it are split
            again. Give it together with ``model_token_count``.
        model_token_count: counts the model's tokens of each text in a batch.

    Raises:
        InvalidInputError: an unknown encoding, or only one of the two model arguments.
    """

    def __init__(
        self,
        params: ChunkingParams,
        *,
        max_model_tokens: int | None = None,
        model_token_count: Callable[[Sequence[str]], list[int]] | None = None,
    ) -> None:
        if (max_model_tokens is None) != (model_token_count is None):
            raise InvalidInputError(
                "give max_model_tokens and model_token_count together, or neither",
                field="max_model_tokens",
                value=max_model_tokens,
            )
        if max_model_tokens is not None and max_model_tokens < _MIN_CHUNK_TOKENS:
            raise InvalidInputError(
                f"max_model_tokens is {max_model_tokens}; it must be at least {_MIN_CHUNK_TOKENS}",
                field="max_model_tokens",
                value=max_model_tokens,
            )
        try:
            self._encoding = tiktoken.get_encoding(params.encoding)
        except ValueError as err:
            raise InvalidInputError(
                f"unknown tiktoken encoding {params.encoding!r}; use one of "
                f"{', '.join(tiktoken.list_encoding_names())}",
                field="encoding",
                value=params.encoding,
            ) from err
        self.params = params
        # The assembler packs with these counts instead of counting each candidate per request.
        self._body_encodings = {name: tiktoken.get_encoding(name) for name in BODY_TOKEN_ENCODINGS}
        self._model = (
            _ModelLimit(max_model_tokens, model_token_count)
            if max_model_tokens is not None and model_token_count is not None
            else None
        )
        self._markdown = MarkdownNodeParser(
            include_metadata=True,
            include_prev_next_rel=False,
            header_path_separator=_PATH_SEP,
            callback_manager=CallbackManager([]),
        )
        self._splitters: dict[int, SentenceSplitter] = {}

    @classmethod
    def for_encoder(cls, params: ChunkingParams, dense: DenseEncoder) -> Chunker:
        """A chunker whose chunks fit ``dense``'s input limit (counted with its tokenizer)."""
        return cls(params, max_model_tokens=dense.max_tokens, model_token_count=dense.count_tokens)

    def count_tokens(self, text: str) -> int:
        """tiktoken tokens of ``text`` in the chunker's encoding (special tokens as plain text)."""
        return len(self._encoding.encode_ordinary(text))

    def body_tokens(self, text: str) -> dict[str, int]:
        """Token counts of ``text`` as a context renders it, per ``BODY_TOKEN_ENCODINGS``."""
        body = rendered_body(text)
        return {name: len(enc.encode_ordinary(body)) for name, enc in self._body_encodings.items()}

    def chunk(self, doc: Document) -> list[Chunk]:
        """Split ``doc`` into chunks, in document order.

        Every chunk satisfies ``doc.text[chunk.char_start:chunk.char_end] == chunk.text`` and
        ``chunk.tokens <= params.chunk_tokens``. A document with any non-whitespace text gives
        at least one chunk; an empty one gives none.
        """
        text = doc.text
        if not text.strip():
            return []
        title = " ".join(doc.title.split())
        pieces: list[_Piece] = []
        sections = self._sections(doc)
        headers = self._fit_headers(title, [path for _, _, path in sections])
        for start, end, path in sections:
            header, untitled = headers[path]
            body = self.params.chunk_tokens - self.count_tokens(header + "\n")
            for s, e in self._split(text, start, end, body):
                skip = _starts_with_title(text[s:e], title)
                pieces.append(_Piece(s, e, path, header, untitled, skip))
        fitted = self._fit(text, pieces)
        return [
            Chunk(
                doc_id=doc.doc_id,
                index=i,
                text=text[piece.start : piece.end],
                char_start=piece.start,
                char_end=piece.end,
                tokens=tokens,
                section=piece.section,
                embed_text=embed,
                body_tokens=self.body_tokens(text[piece.start : piece.end]),
            )
            for i, (piece, embed, tokens) in enumerate(fitted)
        ]

    # -- sections ---------------------------------------------------------------------------

    def _sections(self, doc: Document) -> list[tuple[int, int, tuple[str, ...]]]:
        """Spans of the document's sections with their heading paths, outermost first."""
        text = doc.text
        whole = strip_span(text, 0, len(text))
        if doc.format not in SECTIONED_FORMATS:
            return [(*whole, ())]
        nodes = self._markdown.get_nodes_from_node(TextNode(text=text))
        found: list[tuple[int, int, tuple[str, ...], bool]] = []
        pos = 0
        for node in nodes:
            content = node.get_content(metadata_mode=MetadataMode.NONE)
            span = match_at(text, content, skip_space(text, pos))
            if span is None:
                # The parser only rewrites whitespace; should that change, chunk the text whole.
                log.warning("section not found in %s; chunking it without headings", doc.path)
                return [(*whole, ())]
            ancestors = tuple(
                part.strip()
                for part in str(node.metadata.get("header_path", "")).split(_PATH_SEP)
                if part.strip()
            )
            first_line, _, rest = content.partition("\n")
            match = _HEADING.match(first_line)
            heading = _CLOSING_HASHES.sub("", match.group(1)).strip() if match else ""
            path = (*ancestors, heading) if heading else ancestors
            found.append((span[0], span[1], path, match is not None and not rest.strip()))
            pos = span[1]
        sections: list[tuple[int, int, tuple[str, ...]]] = []
        carry: int | None = None
        for i, (start, end, path, heading_only) in enumerate(found):
            nxt = found[i + 1][2] if i + 1 < len(found) else None
            # A heading followed at once by a sub-heading joins the sub-section's first chunk.
            nests = nxt is not None and len(nxt) > len(path) and nxt[: len(path)] == path
            if heading_only and nests:
                carry = start if carry is None else carry
                continue
            sections.append((start if carry is None else carry, end, path))
            carry = None
        return sections

    def _fit_headers(
        self, title: str, paths: list[tuple[str, ...]]
    ) -> dict[tuple[str, ...], tuple[str, str]]:
        """Each path's (header, header without title), at most half the chunk budget."""
        fitted: dict[tuple[str, ...], tuple[str, str]] = {}
        half = self.params.chunk_tokens // 2
        for path in paths:
            if path in fitted:
                continue
            trail = " > ".join(path)
            # A path that starts with the title (a Markdown "# Title") already says it.
            shown = "" if path and path[0] == title else title
            with_title = "\n".join(part for part in (shown, trail) if part)
            fitted[path] = (
                _shorten(with_title, self.count_tokens, half),
                _shorten(trail, self.count_tokens, half),
            )
        return fitted

    # -- splitting --------------------------------------------------------------------------

    def _splitter(self, body_tokens: int) -> SentenceSplitter:
        splitter = self._splitters.get(body_tokens)
        if splitter is None:
            encode = self._encoding.encode_ordinary
            too_long = body_tokens * _LONG_TEXT_CHARS_PER_TOKEN
            over = range(body_tokens + 1)

            def tokens(text: str) -> Sequence[int]:
                # Counting is most of the chunking time. The splitter counts a text only to
                # decide whether to split it further; one this long would be split anyway,
                # and should it have fitted after all, the merge step joins its parts again.
                return over if len(text) > too_long else encode(text)

            splitter = SentenceSplitter(
                chunk_size=body_tokens,
                chunk_overlap=min(self.params.overlap_tokens, body_tokens // 2),
                tokenizer=tokens,
                paragraph_separator="\n\n",
                chunking_tokenizer_fn=split_sentences,
                callback_manager=CallbackManager([]),
                include_metadata=False,
                include_prev_next_rel=False,
            )
            self._splitters[body_tokens] = splitter
        return splitter

    def _split(self, text: str, start: int, end: int, body_tokens: int) -> list[tuple[int, int]]:
        """Spans of ``text[start:end]`` of about ``body_tokens`` tokens each, in order."""
        if body_tokens < _MIN_BODY_TOKENS:
            return halve(text, start, end)
        segment = text[start:end]
        try:
            # _split_text is split_text without its instrumentation wrapper, which binds the
            # call's signature on every call: a fifth of the chunking time on short documents.
            parts = self._splitter(body_tokens)._split_text(segment, chunk_size=body_tokens)
        except ValueError:  # "Single token exceeded chunk size": only at tiny budgets
            return halve(text, start, end)
        # Consecutive chunks either overlap or are separated by whitespace only, and each
        # starts after the one before: the next one starts in (previous start, first
        # non-space after previous end]. Taking the last place it occurs in that window is
        # the true one, or, in repetitive text, one with the same text that loses none.
        spans: list[tuple[int, int]] = []
        previous_start, previous_end = -1, 0
        for part in parts:
            latest = skip_space(segment, previous_end)
            index = segment.rfind(part, previous_start + 1, latest + len(part))
            if index < 0:
                log.warning("splitter output not found in the text; halving the span instead")
                return halve(text, start, end)
            spans.append((start + index, start + index + len(part)))
            previous_start, previous_end = index, index + len(part)
        return spans or [(start, end)]

    def _fit(self, text: str, pieces: list[_Piece]) -> list[tuple[_Piece, str, int]]:
        """Split pieces again until each embed_text fits the budget and the model limit."""
        done: dict[tuple[int, int], tuple[_Piece, str, int]] = {}
        budget = self.params.chunk_tokens
        headers_checked = False
        pending = pieces
        while pending:
            embeds = [_embed_text(text, p) for p in pending]
            tokens = [self.count_tokens(e) for e in embeds]
            over = [n / budget for n in tokens]
            if self._model is not None:
                headers = set() if headers_checked else {h for p in pending for h in p.headers}
                headers_checked = True
                model, too_long = self._model.over(embeds, headers)
                if too_long:
                    short = self._model.shortened(too_long)
                    pending = [
                        replace(
                            p,
                            header=short.get(p.header, p.header),
                            untitled=short.get(p.untitled, p.untitled),
                        )
                        for p in pending
                    ]
                    continue
                over = [max(o, m) for o, m in zip(over, model, strict=True)]
            retry: list[_Piece] = []
            for piece, embed, n, ratio in zip(pending, embeds, tokens, over, strict=True):
                key = (piece.start, piece.end)
                if ratio <= 1:
                    done.setdefault(key, (piece, embed, n))
                    continue
                body = self.count_tokens(text[piece.start : piece.end])
                parts = math.ceil(ratio / _SHRINK)
                target = min(int(body / ratio * _SHRINK), math.ceil(body / parts * 1.1), body - 1)
                spans = self._split(text, piece.start, piece.end, target)
                if spans == [key]:
                    spans = halve(text, piece.start, piece.end)
                if spans == [key]:  # one character: nothing smaller exists
                    log.warning("a chunk of %s is over the limits and cannot be split", text[:40])
                    done[key] = (piece, embed, n)
                    continue
                retry.extend(replace(piece, start=s, end=e) for s, e in spans)
            pending = retry
        return [done[key] for key in sorted(done)]


def _shorten(header: str, count: Callable[[str], int], limit: int) -> str:
    """``header`` cut (with an ellipsis) to the longest prefix of at most ``limit`` tokens."""
    if not header or count(header + "\n") <= limit:
        return header
    low, high = 0, len(header)
    while low < high:
        mid = (low + high + 1) // 2
        if count(header[:mid].rstrip() + "…\n") <= limit:
            low = mid
        else:
            high = mid - 1
    return header[:low].rstrip() + "…" if low else ""


def _may_exceed(text: str, limit: int) -> bool:
    # Every model token but the special ones covers at least one byte of the text, so a text
    # of few bytes needs no counting; most chunk headers and short records are such texts.
    return len(text.encode("utf-8")) + _SPECIAL_TOKENS_ALLOWANCE > limit


def _embed_text(text: str, piece: _Piece) -> str:
    header = piece.untitled if piece.skip_title else piece.header
    body = text[piece.start : piece.end]
    return f"{header}\n{body}" if header else body


def _starts_with_title(chunk_text: str, title: str) -> bool:
    return bool(title) and chunk_text.lstrip("# \t").startswith(title)
