"""A conversation's retrieval query (retrieval.conversation) and hybrid search over it.

The query-building tests need no model. The search tests are real end to end: the corpus of
test_search.py goes through ``ingest.sync`` into Qdrant Edge in a tmp folder (and into
qdrant-client's local mode, the server stand-in), the encoders are the real all-MiniLM-L6-v2
and Edge's BM25.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from assembler.policy_schema import ConversationRetrieval
from core.errors import InvalidInputError
from core.types import Principal, Stage
from ingest import Chunker, ChunkingParams, SourceSpec, sync
from retrieval import (
    ConversationQuery,
    QueryTurn,
    RetrievalParams,
    Retrieved,
    conversation_query,
    search,
)
from tests.retrieval.test_search import COLLECTION, SOURCES

ACME_SUPPORT = Principal("acme", ("support",), name="acme-agent")
TURNS = ["t0 first", "t1", "t2", "t3", "t4 last"]


# -- building the query (no model) -----------------------------------------------------------


def rule(previous: int = 2, decay: float = 0.5, first: bool = False) -> ConversationRetrieval:
    return ConversationRetrieval(previous_user_turns=previous, decay=decay, first_user_turn=first)


def test_last_turn_and_the_previous_ones_with_decaying_weights() -> None:
    q = conversation_query(TURNS, rule(previous=2, decay=0.5))
    assert q.indexes == (2, 3, 4)
    assert q.bm25_parts == (("t2", 0.25), ("t3", 0.5), ("t4 last", 1.0))
    assert q.dense_text == "t2\nt3\nt4 last"
    assert q.last == "t4 last"
    assert q.n_user_turns == 5
    assert q.describe() == "user turns 2, 3, 4 of 5 (0-based) with BM25 weights 0.25, 0.5, 1"


def test_no_previous_turns_is_exactly_the_last_turn() -> None:
    q = conversation_query(["earlier", "  the question  "], rule(previous=0))
    assert q.turns == (QueryTurn(index=1, text="the question", weight=1.0),)
    assert q.dense_text == "the question"


def test_first_user_turn_joins_beyond_the_window_with_the_next_weight() -> None:
    q = conversation_query(TURNS, rule(previous=1, decay=0.5, first=True))
    assert q.bm25_parts == (("t0 first", 0.25), ("t3", 0.5), ("t4 last", 1.0))
    # already inside the window: counted once, with its window weight
    q = conversation_query(TURNS[:3], rule(previous=2, decay=0.5, first=True))
    assert q.bm25_parts == (("t0 first", 0.25), ("t1", 0.5), ("t2", 1.0))
    # a one-turn conversation: the last turn is also the first, counted once
    assert conversation_query(["only"], rule(first=True)).indexes == (0,)


def test_a_window_longer_than_the_conversation_takes_every_turn() -> None:
    assert conversation_query(TURNS[:2], rule(previous=20)).indexes == (0, 1)


def test_blank_earlier_turns_are_skipped_and_do_not_use_up_the_window() -> None:
    q = conversation_query(["a", "b", "  ", "", "last"], rule(previous=2))
    assert q.indexes == (0, 1, 4)
    assert q.bm25_parts == (("a", 0.25), ("b", 0.5), ("last", 1.0))


@pytest.mark.parametrize(
    ("turns", "message"),
    [
        ([], "no user turn"),
        (["earlier", "   "], "no user turn"),
        (["x" * 5000, "and then?"], r"user turn 0 \(0-based\) is 5000 characters"),
        (["fine", "y" * 5000], "the last user turn is 5000 characters"),
        (["fine", None, "and then?"], r"user turn 1 \(0-based\) is a NoneType, not text"),
        ([{"text": "hi"}], r"user turn 0 \(0-based\) is a dict, not text"),
    ],
)
def test_bad_turns_are_refused_naming_the_turn(turns: list[Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        conversation_query(turns, rule(), max_chars=4000)


def test_one_string_is_not_a_conversation() -> None:
    with pytest.raises(TypeError, match="not one string"):
        conversation_query("and for globex?", rule())


def test_an_empty_query_cannot_be_built_by_hand() -> None:
    with pytest.raises(ValueError, match="at least the last user turn"):
        ConversationQuery((), n_user_turns=0)


# -- the weighted BM25 query vector ---------------------------------------------------------


def test_weighted_sparse_vector_is_the_sum_of_the_parts(encoders: Any) -> None:
    sparse = encoders.sparse
    single = sparse.embed_weighted([("rotate the api key", 1.0)])
    plain = sparse.embed_query("rotate the api key")
    assert (single.indices, single.values) == (plain.indices, plain.values)

    a, b = sparse.embed_query("rotate api key"), sparse.embed_query("api uptime")
    got = sparse.embed_weighted([("rotate api key", 0.5), ("api uptime", 1.0)])
    want: dict[int, float] = {}
    for vec, w in ((a, 0.5), (b, 1.0)):
        for i, v in zip(vec.indices, vec.values, strict=True):
            want[i] = want.get(i, 0.0) + w * v
    assert dict(zip(got.indices, got.values, strict=True)) == pytest.approx(want)
    assert len(set(got.indices)) == len(got.indices)
    shared = set(a.indices) & set(b.indices)
    assert shared, "the two texts share the term 'api'"
    assert all(want[i] == pytest.approx(1.5) for i in shared)


# -- hybrid search over a conversation (real encoders, real Edge store) ----------------------


@dataclass(frozen=True, slots=True)
class Corpus:
    store: Any
    encoders: Any
    chunk_doc: dict[str, str]

    def run(self, query: str | ConversationQuery, **kwargs: Any) -> Retrieved:
        return search(
            query,
            ACME_SUPPORT,
            collection=COLLECTION,
            store=self.store,
            encoders=self.encoders,
            **kwargs,
        )

    def bm25_docs(self, got: Retrieved) -> list[str]:
        return list(dict.fromkeys(self.chunk_doc[c] for c in got.bm25_ranked))


@pytest.fixture(scope="module", params=["edge", "client-local"])
def corpus(
    request: pytest.FixtureRequest,
    open_backend: Callable[[str], Any],
    encoders: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Corpus:
    """The corpus synced into Qdrant Edge, and into qdrant-client's local mode (the stand-in
    for a Qdrant server: same client calls as a server, see conftest.py)."""
    folder = tmp_path_factory.mktemp("conversation-sources")
    specs = []
    for name, records in SOURCES.items():
        path = folder / f"{name}.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n", "utf-8")
        specs.append(SourceSpec(path, name=name, kind="jsonl", tenant_from_records=True))
    store = open_backend(request.param)
    chunker = Chunker.for_encoder(ChunkingParams(), encoders.dense)
    report = sync(specs, collection=COLLECTION, store=store, encoders=encoders, chunker=chunker)
    assert report.failed == 0, report.problems
    chunk_doc = {p.id: str(p.payload["doc_id"]) for p in store.scroll(COLLECTION)}
    return Corpus(store, encoders, chunk_doc)


def test_a_one_turn_conversation_answers_as_the_string_does(corpus: Corpus) -> None:
    question = "how long is the grace period when I rotate an API key?"
    as_text = corpus.run(question)
    as_turns = corpus.run(conversation_query(["uptime?", question], rule(previous=0)))
    assert [(c.chunk_id, c.score) for c in as_turns.candidates] == [
        (c.chunk_id, c.score) for c in as_text.candidates
    ]
    assert (as_turns.dense_ranked, as_turns.bm25_ranked) == (
        as_text.dense_ranked,
        as_text.bm25_ranked,
    )
    assert as_text.conversation is None and as_text.stages[Stage.BM25].note == ""
    assert as_turns.conversation is not None and as_turns.conversation.indexes == (1,)


def test_the_bm25_leg_follows_the_earlier_turn_weighted_below_the_last(corpus: Corpus) -> None:
    turns = ["how do I rotate an API key?", "and what uptime commitment is there?"]
    last_only = corpus.bm25_docs(corpus.run(turns[-1]))
    assert "acme-keys" not in last_only  # the follow-up alone shares no word with it
    got = corpus.run(conversation_query(turns, rule(previous=1, decay=0.5)))
    both = corpus.bm25_docs(got)
    assert both[0] == "acme-faq-uptime"  # the last turn weighs most
    assert "acme-keys" in both
    assert got.stages[Stage.BM25].note == (
        "user turns 0, 1 of 2 (0-based) with BM25 weights 0.5, 1"
    )
    assert got.stages[Stage.DENSE].note == "embedded the combined text of user turns 0, 1 of 2"


def test_the_dense_text_leaves_out_old_turns_that_would_cut_off_the_question(
    corpus: Corpus,
) -> None:
    long_turn = " ".join(["the dead-letter queue redrive"] * 50)  # over 256 word-pieces
    turns = [long_turn, "how long is the grace period of a rotated API key?"]
    got = corpus.run(conversation_query(turns, rule(previous=1)))
    assert got.stages[Stage.DENSE].note == "embedded the combined text of user turns 1 of 2"
    assert got.stages[Stage.BM25].note.startswith("user turns 0, 1 of 2")
    alone = corpus.run(turns[-1])
    assert got.dense_ranked == alone.dense_ranked


def test_a_turn_over_the_query_limit_is_refused_by_search(corpus: Corpus) -> None:
    q = conversation_query(["x" * 300, "and then?"], rule(previous=1))
    with pytest.raises(InvalidInputError, match="above the limit of 100"):
        corpus.run(q, params=RetrievalParams(max_query_chars=100))


def test_the_reranker_scores_the_combined_text(corpus: Corpus, test_reranker: Any) -> None:
    turns = ["how do I rotate an API key?", "and what uptime commitment is there?"]
    query = conversation_query(turns, rule(previous=1))
    got = corpus.run(query, reranker=test_reranker)
    reranked = [c for c in got.candidates if Stage.RERANK in c.stages]
    assert reranked
    texts = [
        f"{c.title}\n{c.text}" if c.title and not c.text.startswith(c.title) else c.text
        for c in reranked
    ]
    want = test_reranker.score(query.dense_text, texts)
    assert [c.stages[Stage.RERANK].score for c in reranked] == pytest.approx(want, abs=1e-5)
    alone = test_reranker.score(turns[-1], texts)
    assert want != pytest.approx(alone, abs=1e-5)  # not the last turn's scores
