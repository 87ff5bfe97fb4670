"""Token counting: the tiktoken counter the assembler is handed."""

from __future__ import annotations

import pytest

from assembler.tokens import (
    tiktoken_counter,
)
from core.errors import InvalidInputError


def test_counter_names_its_encoding(counter, o200k) -> None:
    assert counter.name == "cl100k_base"
    assert counter.count("hello world") == 2
    assert o200k.name == "o200k_base"
    assert counter.count("") == 0


def test_special_token_text_counts_as_plain_text(counter) -> None:
    # A chunk quoting "<|endoftext|>" is text to the model, not a control token (and no error).
    assert counter.count("<|endoftext|>") > 1


def test_unknown_encoding_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInputError, match=r"unknown token encoding 'cl200k'.*cl100k_base"):
        tiktoken_counter("cl200k")
