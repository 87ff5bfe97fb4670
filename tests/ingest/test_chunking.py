"""Chunker: structure, exact offsets (property-tested), token budgets, the model-limit guard."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import tiktoken
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import InvalidInputError
from ingest.chunking import Chunker, ChunkingParams
from ingest.types import Chunk, Document

MINILM_MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length in sentence-transformers
SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "benchdata" / "scifact" / "corpus.jsonl"

NESTED = """# Handbook

Welcome to the handbook.

## Install

### Linux

Use the package manager.

### macOS

Use brew.

```bash
# not a heading: a comment in code
brew install x
```

## Usage ##

Run it.

# Appendix

Last words.
"""


def doc(text: str, *, fmt: str = "markdown", title: str = "", doc_id: str = "d") -> Document:
    return Document(
        doc_id=doc_id, text=text, source="s", path="s/p", tenant="t", title=title, format=fmt
    )


def check_invariants(document: Document, chunks: list[Chunk], chunker: Chunker) -> None:
    """What every chunking must satisfy, whatever the text."""
    text = document.text
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert (len(chunks) >= 1) == bool(text.strip())
    covered = [False] * len(text)
    previous_start = -1
    for c in chunks:
        assert text[c.char_start : c.char_end] == c.text
        assert c.text.strip() and c.text == c.text.strip()
        assert c.char_start >= previous_start
        previous_start = c.char_start
        assert c.tokens == chunker.count_tokens(c.embed_text)
        assert c.body_tokens == {  # the assembler packs with these, uncounted
            name: len(tiktoken.get_encoding(name).encode_ordinary(c.text.strip() + "\n"))
            for name in ("cl100k_base", "o200k_base")
        }
        assert c.tokens <= chunker.params.chunk_tokens
        assert c.embed_text.endswith(c.text)
        assert c.doc_id == document.doc_id
        for i in range(c.char_start, c.char_end):
            covered[i] = True
    # no text is lost: every non-whitespace character is in some chunk
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())


# -- structure ----------------------------------------------------------------------------------


def test_nested_markdown_keeps_heading_paths_outermost_first(chunker: Chunker) -> None:
    document = doc(NESTED, title="Handbook")
    chunks = chunker.chunk(document)
    check_invariants(document, chunks, chunker)
    assert [(c.section, c.text.split("\n")[0]) for c in chunks] == [
        (("Handbook",), "# Handbook"),
        # "## Install" has no text of its own: it opens its first sub-section's chunk
        (("Handbook", "Install", "Linux"), "## Install"),
        (("Handbook", "Install", "macOS"), "### macOS"),
        (("Handbook", "Usage"), "## Usage ##"),
        (("Appendix",), "# Appendix"),
    ]
    assert "# not a heading" in chunks[2].text  # code blocks are not split at "#" lines
    # the title is not repeated when the heading path already starts with it
    assert chunks[1].embed_text.startswith("Handbook > Install > Linux\n## Install")
    assert chunks[4].embed_text.startswith("Handbook\nAppendix\n# Appendix")


def test_html_text_is_chunked_along_its_headings(chunker: Chunker) -> None:
    document = doc("# Plans\n\nTwo plans.\n\n## Team\n\n- Ten seats", fmt="html", title="Pricing")
    chunks = chunker.chunk(document)
    assert [c.section for c in chunks] == [("Plans",), ("Plans", "Team")]
    assert chunks[0].embed_text == "Pricing\nPlans\n# Plans\n\nTwo plans."


def test_plain_text_has_no_sections_and_embed_text_carries_the_title(chunker: Chunker) -> None:
    document = doc("# looks like a heading\n\nbut this is plain text.", fmt="text", title="T")
    [chunk] = chunker.chunk(document)
    assert chunk.section == ()
    assert chunk.embed_text == "T\n# looks like a heading\n\nbut this is plain text."


def test_title_is_skipped_when_the_chunk_starts_with_it(chunker: Chunker) -> None:
    [chunk] = chunker.chunk(doc("Quarterly report. Sales grew.", fmt="text", title="Quarterly"))
    assert chunk.embed_text == chunk.text


def test_empty_and_whitespace_documents_give_no_chunks(chunker: Chunker) -> None:
    assert chunker.chunk(doc("")) == []
    assert chunker.chunk(doc(" \n\t\n", fmt="text")) == []
    assert chunker.chunk(doc("#\n\n##  \n", fmt="markdown")) != []  # headings are text


def test_long_text_is_split_with_overlap_within_budget() -> None:
    chunker = Chunker(ChunkingParams(chunk_tokens=60, overlap_tokens=15))
    sentences = [
        f"Sentence number {i} talks about topic {i % 7} at some length." for i in range(60)
    ]
    document = doc(" ".join(sentences), fmt="text", title="Long")
    chunks = chunker.chunk(document)
    check_invariants(document, chunks, chunker)
    assert len(chunks) > 5
    overlaps = [a.char_end - b.char_start for a, b in zip(chunks, chunks[1:], strict=False)]
    assert all(o > 0 for o in overlaps)  # consecutive chunks share text
    assert all(c.text[0].isupper() for c in chunks)  # cut at sentence starts


def test_text_without_any_break_is_still_split_within_budget() -> None:
    chunker = Chunker(ChunkingParams(chunk_tokens=40, overlap_tokens=5))
    document = doc("x" * 3000 + " " + "日本語のテキスト" * 200, fmt="text")
    check_invariants(document, chunker.chunk(document), chunker)


def test_huge_title_and_headings_are_shortened_not_the_text() -> None:
    chunker = Chunker(ChunkingParams(chunk_tokens=50, overlap_tokens=5))
    title = "A very long title " * 40
    document = doc("# " + "Heading words " * 40 + "\n\nBody text here.", title=title)
    chunks = chunker.chunk(document)
    check_invariants(document, chunks, chunker)
    assert chunks[-1].embed_text.split("\n")[0].endswith("…")


# -- offsets and budgets, property-tested --------------------------------------------------------

_WORDS = st.one_of(
    st.sampled_from(["alpha", "beta", "Gamma", "δέλτα", "日本語", "x2", "e.g.", "#", "-", "```",
                     "<|endoftext|>", "3.14", "a,b;c", "naïve", "🙂"]),
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=8),
)  # fmt: skip
_SPACE = st.sampled_from([" ", " ", " ", "  ", "\t", "\u00a0"])


@st.composite
def _line(draw: st.DrawFn) -> str:
    words = draw(st.lists(_WORDS, min_size=0, max_size=25))
    body = ""
    for w in words:
        body += w + draw(_SPACE)
    kind = draw(st.sampled_from(["p", "p", "p", "h", "li", "fence", "blank", "sentence"]))
    if kind == "h":
        return "#" * draw(st.integers(1, 4)) + draw(st.sampled_from([" ", "\t", "  "])) + body
    if kind == "li":
        return draw(st.sampled_from(["- ", "* ", "1. "])) + body
    if kind == "fence":
        return "```"
    if kind == "blank":
        return draw(st.sampled_from(["", " ", "\t "]))
    if kind == "sentence":
        return body.strip() + ". " + body
    return body


@st.composite
def _markdownish(draw: st.DrawFn) -> str:
    lines = draw(st.lists(_line(), min_size=0, max_size=30))
    out = ""
    for line in lines:
        out += line + draw(st.sampled_from(["\n", "\n", "\n\n", "\r\n", "\n\n\n"]))
    return out


_SMALL = Chunker(ChunkingParams(chunk_tokens=40, overlap_tokens=8))
_SMALL_O200K = Chunker(ChunkingParams(chunk_tokens=32, overlap_tokens=16, encoding="o200k_base"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=_markdownish(),
    fmt=st.sampled_from(["markdown", "html", "text", "beir"]),
    title=st.one_of(st.just(""), _WORDS, st.text(min_size=1, max_size=40)),
    chunker=st.sampled_from([_SMALL, _SMALL_O200K]),
)
def test_offsets_tokens_and_coverage_hold_on_any_text(
    text: str, fmt: str, title: str, chunker: Chunker
) -> None:
    document = doc(text, fmt=fmt, title=title)
    check_invariants(document, chunker.chunk(document), chunker)


# -- the dense model's input limit ---------------------------------------------------------------

# Word-pieces per tiktoken token, measured: chemical names 1.05, numbers 1.02, Finnish 0.83,
# Polish 1.18, Russian 1.9, URLs 1.4; runs of punctuation are where they part: a table-of-contents
# leader line 4.6, a Markdown table rule 3.1, a "====" rule of 64 characters 64 (one tiktoken
# token, one word-piece per character).
_DENSE = (
    "(2S,3R)-2-amino-3-hydroxy-4-(4-nitrophenyl)butanoic acid and "
    "1,2,3,4-tetrahydro-9-aminoacridine hydrochloride at pH 7.4312 with 0.00125 mol/L NaHCO3. "
    "Быстрое развитие экономики важно для общества. Konstantynopolitańczykowianeczka.\n\n"
    "Introduction ............................ 3\nMethods ................................. 17\n"
    "|-----------|-----------|----------|\n| a | b | c |\n\n"
    "================================================================\n\n"
)


def test_guard_splits_chunks_over_the_model_limit_with_the_real_tokenizer(
    minilm_count: Callable[[Sequence[str]], list[int]],
) -> None:
    params = ChunkingParams(chunk_tokens=200, overlap_tokens=30)
    document = doc(_DENSE * 12, fmt="text", title="Hydroxy-nitrophenyl butanoic acid assays")
    unguarded = Chunker(params).chunk(document)
    guarded_chunker = Chunker(
        params, max_model_tokens=MINILM_MAX_TOKENS, model_token_count=minilm_count
    )
    guarded = guarded_chunker.chunk(document)

    unguarded_pieces = minilm_count([c.embed_text for c in unguarded])
    pieces = minilm_count([c.embed_text for c in guarded])
    ratios = [p / c.tokens for p, c in zip(pieces, guarded, strict=True)]
    print(
        f"\nword-pieces per tiktoken token on dense text: min {min(ratios):.2f} "
        f"median {statistics.median(ratios):.2f} max {max(ratios):.2f}; "
        f"word-pieces per chunk without guard max {max(unguarded_pieces)}, "
        f"with guard max {max(pieces)}; chunks {len(unguarded)} -> {len(guarded)}"
    )
    assert max(unguarded_pieces) > MINILM_MAX_TOKENS  # the text does overflow the model
    assert max(pieces) <= MINILM_MAX_TOKENS
    check_invariants(document, guarded, guarded_chunker)


def test_guard_on_scifact_sample_reports_the_ratio_distribution(
    minilm_count: Callable[[Sequence[str]], list[int]],
) -> None:
    if not SCIFACT.is_file():
        pytest.skip(f"{SCIFACT} not present (shared benchmark data)")
    chunker = Chunker(
        ChunkingParams(), max_model_tokens=MINILM_MAX_TOKENS, model_token_count=minilm_count
    )
    chunks: list[Chunk] = []
    with SCIFACT.open(encoding="utf-8") as fh:
        for _, line in zip(range(150), fh, strict=False):
            record = json.loads(line)
            chunks += chunker.chunk(
                doc(record["text"], fmt="beir", title=record["title"], doc_id=record["_id"])
            )
    pieces = minilm_count([c.embed_text for c in chunks])
    ratios = sorted(p / c.tokens for p, c in zip(pieces, chunks, strict=True))
    q = statistics.quantiles(ratios, n=20)
    print(
        f"\nSciFact 150 docs, {len(chunks)} chunks: word-pieces/tiktoken min {ratios[0]:.2f} "
        f"p5 {q[0]:.2f} median {statistics.median(ratios):.2f} p95 {q[-1]:.2f} "
        f"max {ratios[-1]:.2f}; word-pieces per chunk max {max(pieces)}"
    )
    assert max(pieces) <= MINILM_MAX_TOKENS


def test_guard_shortens_a_header_longer_than_half_the_model_limit(
    minilm_count: Callable[[Sequence[str]], list[int]],
) -> None:
    chunker = Chunker(
        ChunkingParams(chunk_tokens=200, overlap_tokens=30),
        max_model_tokens=64,
        model_token_count=minilm_count,
    )
    document = doc("Short body. " * 30, fmt="text", title="9-aminoacridine-4-carboxamide " * 10)
    chunks = chunker.chunk(document)
    check_invariants(document, chunks, chunker)
    assert max(minilm_count([c.embed_text for c in chunks])) <= 64


# -- bad usage ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"chunk_tokens": 8}, "chunk_tokens is 8; it must be at least 16"),
        ({"chunk_tokens": 100, "overlap_tokens": 60}, "between 0 and half of chunk_tokens"),
        ({"overlap_tokens": -1}, "overlap_tokens is -1"),
    ],
)
def test_bad_params_are_refused(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        ChunkingParams(**kwargs)  # type: ignore[arg-type]


def test_unknown_encoding_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInputError, match="unknown tiktoken encoding 'cl200k'.*cl100k_base"):
        Chunker(ChunkingParams(encoding="cl200k"))


def test_model_limit_needs_its_counter() -> None:
    with pytest.raises(InvalidInputError, match="together"):
        Chunker(ChunkingParams(), max_model_tokens=256)


def test_count_tokens_matches_tiktoken(chunker: Chunker) -> None:
    text = "Hello <|endoftext|> world"
    assert chunker.count_tokens(text) == len(
        tiktoken.get_encoding("cl100k_base").encode_ordinary(text)
    )
