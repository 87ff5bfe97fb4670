"""The rerank stage's parts: ``combine`` (pure), and the cross-encoder wrapper on a real model.

The model is the test cross-encoder of ``tests/reranker_model.py``: the real MiniLM architecture
and tokenizer with an untrained, seeded head. Its scores are meaningless as relevance; they pin
the code path (golden values) and show that batching does not change a score.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InvalidInputError, ModelNotFoundError
from retrieval.rerank import CrossEncoderReranker, RerankMode, RerankParams, combine

FUSE = RerankParams(mode=RerankMode.FUSE, weight=1.0, k=60)
REPLACE = RerankParams(mode=RerankMode.REPLACE)

# -- combine --------------------------------------------------------------------------------


def test_replace_orders_by_logit_and_returns_the_logits() -> None:
    order, scores = combine([1, 2, 3, 4], [0.1, 2.0, -1.0, 0.5], REPLACE)
    assert order == [1, 3, 0, 2]
    assert scores == [2.0, 0.5, 0.1, -1.0]


def test_fuse_scores_follow_the_rrf_formula() -> None:
    params = RerankParams(mode=RerankMode.FUSE, weight=2.0, k=10)
    hybrid = [1, 2, 3]
    logits = [0.0, 5.0, 1.0]  # rerank ranks: 3, 1, 2
    order, scores = combine(hybrid, logits, params)
    expected = {0: 2 / 13 + 1 / 11, 1: 2 / 11 + 1 / 12, 2: 2 / 12 + 1 / 13}
    assert order == sorted(expected, key=lambda i: -expected[i])
    assert scores == pytest.approx([expected[i] for i in order])


@pytest.mark.parametrize("params", [FUSE, REPLACE])
def test_ties_keep_the_hybrid_order_whatever_the_input_order(params: RerankParams) -> None:
    hybrid = [3, 1, 4, 2]
    order, _ = combine(hybrid, [0.5, 0.5, 0.5, 0.5], params)
    assert [hybrid[i] for i in order] == [1, 2, 3, 4]


def test_fuse_with_zero_weight_is_the_hybrid_order() -> None:
    params = RerankParams(mode=RerankMode.FUSE, weight=0.0, k=60)
    hybrid = [2, 4, 1, 3]
    order, _ = combine(hybrid, [9.0, 8.0, 7.0, 6.0], params)
    assert [hybrid[i] for i in order] == [1, 2, 3, 4]


def test_empty_input() -> None:
    assert combine([], [], FUSE) == ([], [])
    assert combine([], [], REPLACE) == ([], [])


@st.composite
def rerank_inputs(draw: st.DrawFn) -> tuple[list[int], list[float]]:
    n = draw(st.integers(min_value=1, max_value=12))
    hybrid = draw(st.permutations(list(range(1, n + 1))))
    # Few distinct values, so ties are common.
    logits = draw(
        st.lists(st.sampled_from([-2.0, -0.5, 0.0, 0.5, 1.5, 3.0]), min_size=n, max_size=n)
    )
    return list(hybrid), logits


@settings(max_examples=300, deadline=None, database=None)
@given(rerank_inputs(), st.sampled_from([0.5, 1.0, 2.0]))
def test_fuse_never_puts_an_item_behind_one_it_beats_in_both_orders(
    data: tuple[list[int], list[float]], weight: float
) -> None:
    """Pareto: if i is ahead of j in the hybrid order *and* in the reranker's order (ties in
    logit broken by hybrid rank, as ``combine`` does), fusion keeps i ahead of j. So an item
    first in both stays first. Also: a permutation, scores non-increasing, and the result does
    not depend on the order the items came in."""
    hybrid, logits = data
    params = RerankParams(mode=RerankMode.FUSE, weight=weight, k=60)
    order, scores = combine(hybrid, logits, params)
    n = len(hybrid)
    assert sorted(order) == list(range(n))
    assert scores == sorted(scores, reverse=True)
    by_rerank = sorted(range(n), key=lambda i: (-logits[i], hybrid[i]))
    rerank_rank = {i: r for r, i in enumerate(by_rerank)}
    position = {i: p for p, i in enumerate(order)}
    for i in range(n):
        for j in range(n):
            if hybrid[i] < hybrid[j] and rerank_rank[i] < rerank_rank[j]:
                assert position[i] < position[j]
    # Same items in reverse input order: the same final order of items.
    rev_order, rev_scores = combine(hybrid[::-1], logits[::-1], params)
    assert [hybrid[::-1][i] for i in rev_order] == [hybrid[i] for i in order]
    assert rev_scores == scores


def test_rerank_mode_parse_lists_the_valid_modes() -> None:
    assert RerankMode.parse("replace") is RerankMode.REPLACE
    with pytest.raises(InvalidInputError, match=r"'best'.*\['fuse', 'replace'\]") as err:
        RerankMode.parse("best")
    assert err.value.field == "rerank_mode"


# -- the cross-encoder wrapper, on the seeded test model ------------------------------------

QUERY = "what is the maximum message size"
PAIRS = [
    ("what is the maximum message size", "The maximum message size is 256 KiB."),
    ("rotate api keys", "Rotating keys every 90 days with a 24-hour grace period."),
    ("uptime", "Relay guarantees 99.95% monthly uptime."),
]
# Logits of the seed-0 test model (tests/reranker_model.py) for PAIRS, measured when written.
# A change here means the scoring path changed (activation, truncation, pair order, head).
GOLDEN = [-0.013187, 0.071046, -0.099488]


def test_golden_scores_of_the_seeded_test_model(test_reranker: CrossEncoderReranker) -> None:
    got = [test_reranker.score(q, [t])[0] for q, t in PAIRS]
    assert got == pytest.approx(GOLDEN, abs=1e-3)


def test_scores_are_raw_logits_not_probabilities(test_reranker: CrossEncoderReranker) -> None:
    """The model's default activation for one label is a sigmoid; the stage wants logits."""
    scores = test_reranker.score(QUERY, [t for _, t in PAIRS])
    assert any(s < 0 for s in scores)


def test_batch_scores_equal_one_at_a_time(test_reranker: CrossEncoderReranker) -> None:
    texts = [t for _, t in PAIRS] + [
        "A much longer passage so that the batch is padded: " + "queues and consumers " * 30,
        "",
    ]
    batch = test_reranker.score(QUERY, texts)
    single = [test_reranker.score(QUERY, [t])[0] for t in texts]
    assert batch == pytest.approx(single, abs=1e-4)
    assert test_reranker.score(QUERY, []) == []


def test_scores_depend_on_the_text(test_reranker: CrossEncoderReranker) -> None:
    a, b = test_reranker.score(QUERY, ["The maximum message size is 256 KiB.", "Invoices are PDF."])
    assert a != pytest.approx(b, abs=1e-4)


def test_test_model_is_loaded_as_untrained(
    test_reranker: CrossEncoderReranker, test_reranker_folder: Path
) -> None:
    assert test_reranker.trained is False
    assert test_reranker.name == str(test_reranker_folder)


def test_missing_model_folder_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="RAGCTX_RERANK_MODEL"):
        CrossEncoderReranker.load(str(tmp_path / "no-such-model"))
