"""Token counting: the tiktoken counter and the lower bound the packer prunes with."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assembler.tokens import (
    TiktokenCounter,
    ascii_gap_bound,
    ascii_piece_bound,
    joins_cleanly,
    tiktoken_counter,
    word_lower_bound,
)
from core.errors import InvalidInputError

odd_text = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Z", "Cc", "Cf", "M")),
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(odd_text, st.integers(min_value=0, max_value=400))
def test_word_bound_never_exceeds_the_tiktoken_count(counter, o200k, text, enough) -> None:
    bound = word_lower_bound(text, enough=enough)
    assert bound <= counter.count(text)
    assert bound <= o200k.count(text)


ascii_text = st.lists(
    st.sampled_from([*"ab1 .-'/<>\n\t\r\x0b\x0c\x1c\x1f", "  ", " \n ", "ai", "word"]),
    max_size=120,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(ascii_text, st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=80))
def test_ascii_gap_bound_never_exceeds_the_tiktoken_count(
    counter, o200k, text, end, enough
) -> None:
    # The cheap bound the packer rejects most candidates with, on every ASCII whitespace mix.
    bound = ascii_gap_bound(text, end=end)
    assert bound <= counter.count(text)
    assert bound <= o200k.count(text)
    words = word_lower_bound(text, enough=enough)
    assert words <= counter.count(text)
    assert words <= o200k.count(text)


# Letters, digit runs, contractions (o200k keeps "'s" with its word), camelCase, punctuation
# next to letters and digits, and the parts of a citation header.
piece_text = st.lists(
    st.sampled_from(
        [
            *"aZ09 .,-_'\"=<>/&;:#()[]\n\t",
            "'s",
            "'ll",
            "'RE",
            "it's",
            "don't",
            "camelCase",
            "HTTPServer",
            "1234567",
            "v3.14",
            "2025-09-12",
            '="',
            '">\n',
            "&gt;",
            "doc-000.md",
        ]
    ),
    max_size=120,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(piece_text, st.integers(min_value=0, max_value=400))
def test_ascii_piece_bound_never_exceeds_the_tiktoken_count(counter, o200k, text, enough) -> None:
    # The bound the packer refuses a chunk by its citation header with (cl100k and o200k only).
    assert ascii_piece_bound(text) <= counter.count(text)
    assert ascii_piece_bound(text) <= o200k.count(text)
    assert counter.lower_bound(text, enough=enough) <= counter.count(text)
    assert o200k.lower_bound(text, enough=enough) <= o200k.count(text)


def test_ascii_piece_bound_is_tight_on_citation_headers(counter) -> None:
    header = (
        '<source id="12" title="Release notes" section="Queues &gt; Retention" '
        'source="acme/release-notes" path="acme/release-notes/v4.2.md" updated="2025-09-12">\n'
    )
    words = word_lower_bound(header, enough=1000)
    pieces = ascii_piece_bound(header)
    assert words <= 10 < 25 <= pieces <= counter.count(header)
    assert counter.lower_bound(header, enough=1000) == pieces


def test_lower_bound_of_other_encodings_stays_the_word_bound() -> None:
    # gpt2/r50k keep a run of digits in one piece, so the piece bound does not hold for them.
    # Their BPE files are not on this offline machine: a stand-in carries only the name, which
    # is all that lower_bound reads.
    r50k = TiktokenCounter(SimpleNamespace(name="r50k_base"))  # type: ignore[arg-type]
    text = "12345678901234567890 1234567890"
    assert r50k.lower_bound(text, enough=100) == word_lower_bound(text, enough=100) == 2
    assert ascii_piece_bound(text) == 11


@pytest.mark.parametrize("text", [".\n//\n//", "/\n//", "x.\r\n/a \n/b", "a.\n\n/" * 30])
def test_word_bound_where_o200k_runs_on_over_line_breaks(counter, o200k, text) -> None:
    # o200k's punctuation pieces take line breaks and "/" along: ".\n//\n//" is one token.
    for enough in (0, 1, 5, 100):
        assert word_lower_bound(text, enough=enough) <= o200k.count(text)
        assert word_lower_bound(text, enough=enough) <= counter.count(text)


def test_ascii_gap_bound_is_tight_on_prose() -> None:
    prose = " ".join(["word"] * 100)
    assert ascii_gap_bound(prose, end=len(prose)) == 98  # 99 gaps, less the one for the ends
    assert word_lower_bound(prose, enough=50) >= 50


def test_word_bound_on_ascii_file_separators(counter) -> None:
    # str.split() splits on \x1c-\x1f, tiktoken does not treat them as spaces.
    text = "!\x1c!\x1d!\x1e!\x1f!"
    assert word_lower_bound(text, enough=10) <= counter.count(text)


def test_counter_names_its_encoding(counter) -> None:
    assert counter.name == "cl100k_base"
    assert counter.count("hello world") == 2
    assert counter.lower_bound("hello world", enough=1) >= 1


def test_unknown_encoding_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInputError, match=r"unknown token encoding 'cl200k'.*cl100k_base"):
        tiktoken_counter("cl200k")


non_space = st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Cf", "M")).filter(
    lambda char: not char.isspace()
)


@settings(max_examples=300, deadline=None)
@given(odd_text, non_space, non_space.filter(lambda char: char != "/"), odd_text)
def test_counts_add_up_across_clean_line_ends(counter, o200k, head, last, first, tail) -> None:
    # The claim behind additive_at_line_ends, which lets the assembler skip the final count.
    before, after = f"{head}{last}\n", f"{first}{tail}"
    assert joins_cleanly([before, after])
    for encoding in (counter, o200k):
        assert encoding.additive_at_line_ends
        assert encoding.count(before + after) == encoding.count(before) + encoding.count(after)


@settings(max_examples=300, deadline=None)
@given(
    odd_text,
    st.sampled_from(['="', "[", "\n["]),
    st.integers(min_value=0, max_value=99_999),
    st.integers(min_value=0, max_value=99_999),
    st.sampled_from(['"', "]", '" ', "] "]),
    odd_text,
)
def test_a_number_between_punctuation_tokenizes_on_its_own(
    counter, o200k, head, opening, number, other, closing, tail
) -> None:
    # The second claim of additive_at_line_ends: citation numbers can be swapped after
    # counting (the frames are counted with a placeholder number, rendered with the real one).
    def framed(value: int) -> str:
        return f"{head}{opening}{value}{closing}{tail}"

    for encoding in (counter, o200k):
        swapped = encoding.count(framed(number)) - encoding.count(framed(other))
        assert swapped == encoding.count(str(number)) - encoding.count(str(other))


def test_a_slash_after_a_line_end_is_not_a_clean_join(o200k) -> None:
    # o200k's pattern keeps "/" with the punctuation and newline before it (``[\r\n/]*``).
    before, after = 'x">\n', "/usr/bin"
    assert o200k.count(before + after) != o200k.count(before) + o200k.count(after)
    assert not joins_cleanly([before, after])


@pytest.mark.parametrize(
    ("parts", "clean"),
    [
        (["<a>\n", "", "text\n", "</a>\n"], True),  # empty parts join nothing
        (["a\n", " b\n"], False),  # whitespace after the line end
        (["a \n", "b\n"], False),  # whitespace before it
        (["a", "b\n"], False),  # no line end
        (["\n", "b\n"], False),  # a bare line end
        (["only one part, any ending"], True),
    ],
)
def test_joins_cleanly(parts, clean) -> None:
    assert joins_cleanly(parts) is clean
