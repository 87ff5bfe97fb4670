"""Token counting: the tiktoken counter and the lower bound the packer prunes with."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assembler.tokens import tiktoken_counter, word_lower_bound
from index.errors import InvalidInputError

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
