"""The naive packer of the eval's context stage, and the assembler against it.

The context stage's scorer over both is tested in ``test_context_stage.py``.
"""

from __future__ import annotations

import pytest

from assembler.tokens import TiktokenCounter, tiktoken_counter
from eval.naive_packer import naive_pack, relevant_share
from tests.assembler.builders import candidate, pack, words


@pytest.fixture(scope="module")
def counter() -> TiktokenCounter:
    return tiktoken_counter("cl100k_base")


SIZES = [60, 700, 60, 80, 400, 60, 120, 60, 300, 60]


def ranked_list(sizes: list[int] = SIZES) -> list:
    """Relevant chunks behind a large irrelevant one: the case where naive packing stalls."""
    return [
        candidate(f"c{rank}", doc_id=f"d{rank}", text=words(size, f"w{rank}"), score=10 - rank)
        for rank, size in enumerate(sizes)
    ]


def test_naive_stops_at_the_first_chunk_that_does_not_fit(counter) -> None:
    naive = naive_pack(ranked_list(), budget=512, counter=counter)
    assert [item.chunk_id for item in naive.items] == ["c0"]
    assert {drop.reason.value for drop in naive.dropped} == {"over_budget"}
    assert len(naive.dropped) == 9
    assert naive.tokens == counter.count(naive.context) <= 512


@pytest.mark.parametrize("budget", [512, 1024, 2048])
def test_assembler_keeps_at_least_as_many_relevant_documents(counter, budget: int) -> None:
    candidates = ranked_list()
    relevant = {"d0", "d2", "d3", "d5", "d7", "d9"}
    ours = relevant_share(pack(candidates, counter, budget=budget), relevant)
    naive = relevant_share(naive_pack(candidates, budget=budget, counter=counter), relevant)
    assert ours >= naive
    if budget == 512:
        assert ours > naive


def test_relevant_share_edges() -> None:
    assert relevant_share(naive_pack([], budget=10, counter=_NoCounter()), set()) == 0.0


class _NoCounter:
    name = "none"

    def count(self, text: str) -> int:
        return len(text.split())
