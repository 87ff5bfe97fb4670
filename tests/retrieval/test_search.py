"""retrieval.search and fetch_documents end to end, on both store backends.

Everything is real: the corpus below goes through ``ingest.sync`` (JSON Lines sources, the real
chunker) into Qdrant Edge in a tmp folder, and into qdrant-client's in-process local mode, the
stand-in for a Qdrant server (functionally equal, far slower); the encoders are the real
all-MiniLM-L6-v2 and Edge's BM25. Two tenants hold near-identical key-rotation runbooks; groups
are ``public``, ``support`` and ``legal``. Every leg returns the whole visible corpus (it is
smaller than the leg limits), so the expected sets below are exact.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tiktoken
from pydantic import ValidationError

from core.errors import ForbiddenError, InvalidInputError, UnknownCollectionError, field_path
from core.types import (
    BODY_TOKEN_ENCODINGS,
    Candidate,
    Principal,
    ScoreKind,
    SearchFilters,
    Stage,
    rendered_body,
)
from index.schema import Filter, StoredPoint
from ingest import Chunker, ChunkingParams, SourceSpec, sync
from retrieval import (
    CrossEncoderReranker,
    RerankMode,
    RerankParams,
    RetrievalParams,
    Retrieved,
    access_filter,
    fetch_documents,
    hybrid,
    search,
)
from retrieval.hybrid import candidate_from_point
from retrieval.rerank import combine
from service.api.schemas import FiltersIn

COLLECTION = "docs"
BACKENDS = ["edge", "client-local"]  # client-local: qdrant-client local mode, the server stand-in

QUEUES_GUIDE = (
    "Messages wait in a queue until a consumer receives and acknowledges them. "
    "The maximum message size is 256 KiB; put larger payloads in object storage.\n\n"
    "Relay's default visibility timeout is 30 seconds. While it runs, other consumers do not "
    "see the message; if it expires before the acknowledgement, the message is visible again.\n\n"
    "After 5 failed receives a message moves to the dead-letter queue, where it waits for "
    "inspection and a redrive back to the source queue.\n\n"
    "Long polling waits up to 20 seconds for messages and lowers the number of empty receives."
)


def record(
    doc_id: str,
    tenant: str,
    groups: list[str],
    tags: list[str],
    updated: str,
    title: str,
    text: str,
) -> dict[str, Any]:
    """One JSON Lines record, in the field names ingest reads by default."""
    return {
        "id": doc_id,
        "tenant": tenant,
        "groups": groups,
        "tags": tags,
        "updated_at": f"{updated}T00:00:00Z",
        "title": title,
        "text": text,
    }


# source name -> records (one JSON Lines file each)
SOURCES: dict[str, list[dict[str, Any]]] = {
    "acme-runbooks": [
        record(
            "acme-keys",
            "acme",
            ["support"],
            ["runbook", "security"],
            "2026-02-10",
            "Runbook: rotating API keys",
            "To rotate an API key, run relayctl keys rotate. The old key keeps working for a "
            "24-hour grace period, then it is revoked. Rotate production keys (prefix "
            "acme_live_) every 90 days.",
        ),
        record(
            "acme-dlq",
            "acme",
            ["support"],
            ["runbook"],
            "2025-06-01",
            "Dead-letter queue triage",
            "Check the dead-letter queue size, inspect the failed messages, fix the consumer, "
            "then redrive the messages to the source queue.",
        ),
    ],
    "acme-faq": [
        record(
            "acme-faq-keys",
            "acme",
            ["public"],
            ["faq"],
            "2025-04-15",
            "Where do I find my API key?",
            "Your API key is shown once in the console under Settings. Store it in a secret "
            "manager; if you lose it, create a new one.",
        ),
        record(
            "acme-faq-uptime",
            "acme",
            ["public"],
            ["faq"],
            "2025-04-15",
            "What uptime does Relay guarantee?",
            "Relay makes a 99.95% monthly uptime commitment, with service credits below it.",
        ),
    ],
    "acme-release-notes": [
        record(
            "acme-relnotes-3-8",
            "acme",
            ["public"],
            ["release-notes"],
            "2025-02-18",
            "Release 3.8",
            "The default message retention period is 7 days. Storage metrics are in the console.",
        ),
        record(
            "acme-relnotes-4-1",
            "acme",
            ["public"],
            ["release-notes"],
            "2026-05-12",
            "Release 4.1",
            "The default message retention period is now 14 days, up from 7 days. Scheduled "
            "delivery is available.",
        ),
    ],
    "acme-guides": [
        record(
            "acme-guide-queues",
            "acme",
            ["public"],
            ["guide"],
            "2025-08-04",
            "Queues and retries",
            QUEUES_GUIDE,
        ),
    ],
    "acme-legal": [
        record(
            "acme-dpa",
            "acme",
            ["legal"],
            ["legal", "approved"],
            "2024-12-05",
            "Data processing agreement summary",
            "We notify you of a personal data breach within 48 hours of becoming aware of it. "
            "Customer data stays in the Frankfurt region (eu-central-1).",
        ),
    ],
    "acme-support": [
        record(
            "acme-webhooks",
            "acme",
            ["support"],
            ["troubleshooting"],
            "2026-03-30",
            "Webhook troubleshooting",
            "Every webhook carries an X-Relay-Signature header: an HMAC-SHA256 of the body. "
            "Verify it with the signing secret before trusting the event.",
        ),
    ],
    "globex-runbooks": [
        # Public on purpose: only the tenant condition keeps it from acme.
        record(
            "globex-keys",
            "globex",
            ["public"],
            ["runbook", "security"],
            "2026-04-22",
            "Runbook: rotating API keys",
            "To rotate an API key, run relayctl keys rotate. The old key keeps working for a "
            "72-hour grace period, then it is revoked. Rotate production keys (prefix "
            "gx_live_) every 60 days.",
        ),
    ],
    "globex-guides": [
        record(
            "globex-guide-retry",
            "globex",
            ["public"],
            ["guide"],
            "2025-10-15",
            "Retry policy",
            "Globex queues use a 90-second visibility timeout and move a message to the "
            "dead-letter queue after 10 receives.",
        ),
    ],
    "globex-legal": [
        record(
            "globex-msa",
            "globex",
            ["legal"],
            ["legal", "billing"],
            "2026-10-05",
            "MSA renewal draft",
            "Draft, not approved: we notify you of a personal data breach within 72 hours of "
            "becoming aware of it.",
        ),
    ],
}

ACME_PUBLIC = Principal("acme", (), name="acme-anonymous")
ACME_SUPPORT = Principal("acme", ("support",), name="acme-agent")
ACME_LEGAL = Principal("acme", ("legal",), name="acme-counsel")
ACME_ALL = Principal("acme", ("support", "legal"), name="acme-admin")
GLOBEX_PUBLIC = Principal("globex", (), name="globex-anonymous")

ACME_DOCS = {r["id"] for recs in SOURCES.values() for r in recs if r["tenant"] == "acme"}
KEYS_QUERY = "how do I rotate an API key and how long is the grace period?"
BREACH_QUERY = "personal data breach notification"


@dataclass(frozen=True, slots=True)
class Corpus:
    """A synced store and, per chunk id, the payload sync wrote (tenant, groups, doc_id...)."""

    backend: str
    store: Any
    encoders: Any
    payloads: dict[str, dict[str, Any]]

    def doc_of(self, chunk_id: str) -> tuple[str, str]:
        p = self.payloads[chunk_id]
        return p["tenant"], p["doc_id"]

    def chunks_of(self, tenant: str, doc_id: str) -> set[str]:
        return {
            c for c, p in self.payloads.items() if (p["tenant"], p["doc_id"]) == (tenant, doc_id)
        }

    def visible_to(self, principal: Principal) -> set[str]:
        allowed = {*principal.groups, "public"}
        return {
            c
            for c, p in self.payloads.items()
            if p["tenant"] == principal.tenant and allowed & set(p["groups"])
        }

    def run(self, query: str, principal: Principal, **kwargs: Any) -> Retrieved:
        return search(
            query,
            principal,
            collection=COLLECTION,
            store=self.store,
            encoders=self.encoders,
            **kwargs,
        )


@pytest.fixture(scope="module", params=BACKENDS)
def corpus(
    request: pytest.FixtureRequest,
    open_backend: Callable[[str], Any],
    encoders: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Corpus:
    folder = tmp_path_factory.mktemp("sources")
    specs = []
    for name, records in SOURCES.items():
        path = folder / f"{name}.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n", "utf-8")
        specs.append(SourceSpec(path, name=name, kind="jsonl", tenant_from_records=True))
    store = open_backend(request.param)
    # Small chunks, so the queues guide spans several (fetch_documents checks their order).
    chunker = Chunker(
        ChunkingParams(chunk_tokens=48, overlap_tokens=0),
        max_model_tokens=encoders.dense.max_tokens,
        model_token_count=encoders.dense.count_tokens,
    )
    report = sync(specs, collection=COLLECTION, store=store, encoders=encoders, chunker=chunker)
    assert report.failed == 0, report.problems
    payloads = {p.id: p.payload for p in store.scroll(COLLECTION)}
    return Corpus(request.param, store, encoders, payloads)


def docs(candidates: list[Candidate]) -> set[tuple[str, str]]:
    return {(c.tenant, c.doc_id) for c in candidates}


def first_doc(corpus: Corpus, chunk_ids: list[str]) -> tuple[str, str]:
    assert chunk_ids, "the list is empty"
    return corpus.doc_of(chunk_ids[0])


# -- the access filter, on every leg --------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "viewer", "hidden", "restricted"),
    [
        # another group of the same tenant
        (KEYS_QUERY, ACME_SUPPORT, ("acme", "acme-keys"), ACME_PUBLIC),
        (BREACH_QUERY, ACME_LEGAL, ("acme", "acme-dpa"), ACME_SUPPORT),
        # another tenant, with a public document
        (KEYS_QUERY, GLOBEX_PUBLIC, ("globex", "globex-keys"), ACME_SUPPORT),
        (KEYS_QUERY, GLOBEX_PUBLIC, ("globex", "globex-keys"), ACME_PUBLIC),
    ],
)
def test_access_filter_hides_what_would_rank_first_on_every_leg(
    corpus: Corpus,
    query: str,
    viewer: Principal,
    hidden: tuple[str, str],
    restricted: Principal,
) -> None:
    # A principal allowed to see the document gets it first on both legs and after fusion...
    seen = corpus.run(query, viewer)
    assert first_doc(corpus, seen.dense_ranked) == hidden
    assert first_doc(corpus, seen.bm25_ranked) == hidden
    assert (seen.candidates[0].tenant, seen.candidates[0].doc_id) == hidden

    # ...and one who is not never gets any of its chunks, on any leg.
    got = corpus.run(query, restricted)
    hidden_chunks = corpus.chunks_of(*hidden)
    assert hidden_chunks
    assert got.candidates
    assert not hidden_chunks & {c.chunk_id for c in got.candidates}
    assert not hidden_chunks & set(got.dense_ranked)
    assert not hidden_chunks & set(got.bm25_ranked)
    visible = corpus.visible_to(restricted)
    assert {c.chunk_id for c in got.candidates} <= visible
    assert set(got.dense_ranked) <= visible
    assert set(got.bm25_ranked) <= visible
    assert got.blocked == 0


def test_narrowed_principal_loses_the_dropped_groups_documents(corpus: Corpus) -> None:
    narrowed = ACME_SUPPORT.narrowed(())
    got = corpus.run(KEYS_QUERY, narrowed)
    assert ("acme", "acme-keys") not in docs(got.candidates)
    assert {c.chunk_id for c in got.candidates} == corpus.visible_to(ACME_PUBLIC)


# -- request filters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"sources": ["acme-release-notes"]}, {"acme-relnotes-3-8", "acme-relnotes-4-1"}),
        ({"sources": ["acme-legal", "acme-faq"]}, {"acme-dpa", "acme-faq-keys", "acme-faq-uptime"}),
        ({"tags": ["security", "approved"]}, {"acme-keys", "acme-dpa"}),
        (
            {"exclude_doc_ids": ["acme-guide-queues", "acme-keys"]},
            ACME_DOCS - {"acme-guide-queues", "acme-keys"},
        ),
        (
            {"updated_after": "2026-01-01T00:00:00Z"},
            {"acme-keys", "acme-relnotes-4-1", "acme-webhooks"},
        ),
        ({"updated_before": "2025-03-01T00:00:00Z"}, {"acme-dpa", "acme-relnotes-3-8"}),
        (
            {"updated_after": "2025-05-01T00:00:00+00:00", "updated_before": "2025-12-31"},
            {"acme-dlq", "acme-guide-queues"},
        ),
        ({"tags": ["runbook"], "exclude_doc_ids": ["acme-dlq"]}, {"acme-keys"}),
    ],
)
def test_request_filters_narrow_to_exactly_the_matching_documents(
    corpus: Corpus, raw: dict[str, Any], expected: set[str]
) -> None:
    filters = FiltersIn.model_validate(raw).search_filters()
    got = corpus.run("messages queue keys data release", ACME_ALL, filters=filters)
    assert {c.doc_id for c in got.candidates} == expected
    assert {c.tenant for c in got.candidates} == {"acme"}
    # The legs carry the same filter, not only the fusion.
    for chunk in [*got.dense_ranked, *got.bm25_ranked]:
        assert corpus.payloads[chunk]["doc_id"] in expected


def test_without_filters_the_principal_sees_its_whole_tenant(corpus: Corpus) -> None:
    got = corpus.run("messages queue keys data release", ACME_ALL)
    assert {c.doc_id for c in got.candidates} == ACME_DOCS
    assert {c.chunk_id for c in got.candidates} == corpus.visible_to(ACME_ALL)


# -- per-stage ranks and scores -------------------------------------------------------------


def test_stage_ranks_and_scores_are_consistent(corpus: Corpus) -> None:
    params = RetrievalParams(rrf_k=10, with_vectors=True)
    got = corpus.run("what is the maximum message size?", ACME_ALL, params=params)
    cands = got.candidates
    assert cands
    assert [c.stages[Stage.HYBRID].rank for c in cands] == list(range(1, len(cands) + 1))
    fused_scores = [c.stages[Stage.HYBRID].score for c in cands]
    assert fused_scores == sorted(fused_scores, reverse=True)
    query_vec = corpus.encoders.dense.encode(["what is the maximum message size?"])[0]
    for c in cands:
        assert c.score == c.stages[Stage.HYBRID].score
        assert c.score_kind is ScoreKind.RRF
        dense, bm25 = c.stages.get(Stage.DENSE), c.stages.get(Stage.BM25)
        assert dense is not None or bm25 is not None  # fusion only holds what a leg found
        if dense is not None:
            assert got.dense_ranked[dense.rank - 1] == c.chunk_id
        else:
            assert c.chunk_id not in got.dense_ranked
        if bm25 is not None:
            assert got.bm25_ranked[bm25.rank - 1] == c.chunk_id
            assert bm25.score > 0
        else:
            assert c.chunk_id not in got.bm25_ranked
        # RRF as Qdrant computes it: sum over legs of 1 / (k + rank - 1).
        rrf = sum(1.0 / (params.rrf_k + h.rank - 1) for h in (dense, bm25) if h is not None)
        assert c.score == pytest.approx(rrf, rel=1e-4)
        # with_vectors: the stored dense vector, unit length, whose cosine is the dense score.
        assert c.dense_vector is not None and len(c.dense_vector) == 384
        vec = np.asarray(c.dense_vector)
        assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-4)
        if dense is not None:
            assert float(vec @ query_vec) == pytest.approx(dense.score, abs=1e-4)
    assert cands[0].doc_id == "acme-guide-queues"
    assert got.stages[Stage.HYBRID].count == len(cands)
    assert got.stages[Stage.DENSE].count == len(got.dense_ranked)
    assert got.stages[Stage.BM25].count == len(got.bm25_ranked)
    assert got.stages[Stage.RERANK].active is False
    assert set(got.timings_ms) >= {"dense_encode", "bm25_encode", "store_query", "total"}


def test_dense_vectors_come_back_only_when_asked(corpus: Corpus) -> None:
    got = corpus.run("visibility timeout", ACME_PUBLIC)
    assert all(c.dense_vector is None for c in got.candidates)


def test_candidates_carry_the_payload_sync_wrote(corpus: Corpus) -> None:
    got = corpus.run("webhook signature header", ACME_SUPPORT)
    top = got.candidates[0]
    assert (top.doc_id, top.source, top.title) == (
        "acme-webhooks",
        "acme-support",
        "Webhook troubleshooting",
    )
    assert top.groups == ("support",)
    assert top.tags == ("troubleshooting",)
    assert top.updated_at == datetime(2026, 3, 30, tzinfo=UTC)
    assert "X-Relay-Signature" in top.text
    assert top.tokens > 0
    # the body counts come back as ints from both backends, so the assembler can use them
    assert top.body_tokens == {
        name: len(tiktoken.get_encoding(name).encode_ordinary(rendered_body(top.text)))
        for name in BODY_TOKEN_ENCODINGS
    }


# -- the second lock ------------------------------------------------------------------------


def leaky_filter(principal: Principal, filters: SearchFilters) -> Filter:
    """A deliberately broken builder: the request's narrowing, without tenant and groups."""
    full = access_filter(principal, filters)
    return Filter(
        must=tuple(c for c in full.must if c.key not in {"tenant", "groups"}),
        must_not=full.must_not,
    )


@pytest.fixture
def leaky(monkeypatch: pytest.MonkeyPatch) -> None:
    """Search builds its store filter with the leaky builder (the seam of the second lock)."""
    monkeypatch.setattr(hybrid, "access_filter", leaky_filter)


@pytest.mark.usefixtures("leaky")
def test_second_lock_drops_what_a_broken_filter_lets_through(corpus: Corpus) -> None:
    visible = corpus.visible_to(ACME_PUBLIC)
    invisible = set(corpus.payloads) - visible
    assert {corpus.doc_of(c) for c in invisible} >= {
        ("acme", "acme-keys"),
        ("globex", "globex-keys"),
    }

    got = corpus.run(KEYS_QUERY, ACME_PUBLIC)

    assert got.candidates
    for c in got.candidates:
        assert c.tenant == "acme"
        assert set(c.groups) & {"public"}
    assert {c.chunk_id for c in got.candidates} <= visible
    assert set(got.dense_ranked) <= visible  # the legs' id lists do not leak either
    assert set(got.bm25_ranked) <= visible
    # Every chunk is in the dense leg (the corpus is below its limit), so every invisible chunk
    # came back from the store and was stopped here.
    assert got.blocked == len(invisible) > 0
    # Ranks count only what the principal sees: no gaps where a chunk was dropped.
    assert [c.stages[Stage.HYBRID].rank for c in got.candidates] == list(
        range(1, len(got.candidates) + 1)
    )
    for c in got.candidates:
        if (hit := c.stages.get(Stage.DENSE)) is not None:
            assert got.dense_ranked[hit.rank - 1] == c.chunk_id
        if (hit := c.stages.get(Stage.BM25)) is not None:
            assert got.bm25_ranked[hit.rank - 1] == c.chunk_id
    assert got.stages[Stage.DENSE].count == len(got.dense_ranked)


@pytest.mark.usefixtures("leaky")
def test_second_lock_keeps_the_request_narrowing(corpus: Corpus) -> None:
    filters = SearchFilters(sources=("acme-faq",))
    got = corpus.run(KEYS_QUERY, ACME_PUBLIC, filters=filters)
    assert {c.doc_id for c in got.candidates} == {"acme-faq-keys", "acme-faq-uptime"}
    assert got.blocked == 0  # the leaky filter still had sources, which hid everything else


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "   \n\t "])
def test_empty_query_is_rejected_naming_the_field(corpus: Corpus, query: str) -> None:
    with pytest.raises(InvalidInputError, match="query is empty") as err:
        corpus.run(query, ACME_PUBLIC)
    assert err.value.field == "query"


def test_too_long_query_is_rejected_with_its_length_and_the_limit(corpus: Corpus) -> None:
    params = RetrievalParams(max_query_chars=100)
    with pytest.raises(InvalidInputError, match="101 characters, above the limit of 100") as err:
        corpus.run("x" * 101, ACME_PUBLIC, params=params)
    assert err.value.field == "query"
    assert corpus.run("x" * 100, ACME_PUBLIC, params=params).stages  # the limit itself is fine


def test_unknown_collection_is_named_with_the_fix(corpus: Corpus) -> None:
    with pytest.raises(UnknownCollectionError, match=r"'nope'.*docs.*ragctx ingest"):
        search("q", ACME_PUBLIC, collection="nope", store=corpus.store, encoders=corpus.encoders)
    with pytest.raises(InvalidInputError, match="invalid collection name") as err:
        search("q", ACME_PUBLIC, collection="../x", store=corpus.store, encoders=corpus.encoders)
    assert err.value.field == "collection"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"sources": "acme-faq"}, "sources"),
        ({"tags": ["faq", 3]}, "tags[1]"),
        ({"exclude_doc_ids": {"a": 1}}, "exclude_doc_ids"),
        ({"exclude_sources": [None]}, "exclude_sources[0]"),
        ({"updated_after": "yesterday"}, "updated_after"),
        ({"updated_after": "2026-13-01"}, "updated_after"),
        ({"updated_before": ["2026-01-01"]}, "updated_before"),
        ({"updated_after": "2026-02-01", "updated_before": "2026-01-01"}, "updated_before"),
        ({"sorces": ["acme-faq"]}, "sorces"),
    ],
)
def test_bad_filters_name_the_field(raw: Any, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        FiltersIn.model_validate(raw)
    assert field_path(err.value.errors()[0]["loc"]) == field


def test_filter_dates_parse_to_aware_utc() -> None:
    f = FiltersIn.model_validate(
        {"updated_after": "2026-01-01T00:00:00Z", "updated_before": "2026-02-01"}
    ).search_filters()
    assert f.updated_after == datetime(2026, 1, 1, tzinfo=UTC)
    assert f.updated_before == datetime(2026, 2, 1, tzinfo=UTC)
    assert FiltersIn().search_filters() == SearchFilters()
    assert FiltersIn.model_validate({"sources": None}).search_filters() == SearchFilters()


# -- Principal.narrowed ---------------------------------------------------------------------


def test_principal_may_narrow_its_groups() -> None:
    assert ACME_ALL.narrowed(("legal",)) == Principal("acme", ("legal",), name="acme-admin")
    assert ACME_ALL.narrowed(()).groups == ()
    assert ACME_ALL.narrowed(None) is ACME_ALL


def test_principal_may_not_widen_its_groups() -> None:
    with pytest.raises(ForbiddenError, match=r"\['legal'\] are not granted") as err:
        ACME_SUPPORT.narrowed(("support", "legal"))
    assert err.value.field == "groups"
    with pytest.raises(ForbiddenError, match="never widen"):
        ACME_PUBLIC.narrowed(("public", "support"))


# -- pinned documents -----------------------------------------------------------------------


def test_fetch_documents_returns_visible_pinned_chunks_in_order(corpus: Corpus) -> None:
    pinned = ["acme-guide-queues", "acme-dpa", "globex-keys", "acme-keys", "missing"]
    got = fetch_documents(pinned, ACME_SUPPORT, collection=COLLECTION, store=corpus.store)
    guide = [c for c in got if c.doc_id == "acme-guide-queues"]
    keys = [c for c in got if c.doc_id == "acme-keys"]
    assert len(guide) >= 3 and keys  # the small chunks split the guide
    assert len(got) == len(guide) + len(keys)  # nothing of acme-dpa (legal), globex or missing
    assert [c.doc_id for c in got] == ["acme-guide-queues"] * len(guide) + ["acme-keys"] * len(keys)
    assert [c.chunk_index for c in guide] == list(range(len(guide)))
    starts = [c.char_start for c in guide]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert all(c.tenant == "acme" and not c.stages and c.dense_vector is None for c in got)


def test_fetch_documents_shows_nothing_a_principal_may_not_see(corpus: Corpus) -> None:
    hidden = ["acme-dpa", "acme-keys", "globex-keys", "globex-msa"]
    assert fetch_documents(hidden, ACME_PUBLIC, collection=COLLECTION, store=corpus.store) == []
    assert fetch_documents([], ACME_ALL, collection=COLLECTION, store=corpus.store) == []


def test_fetch_documents_with_vectors(corpus: Corpus) -> None:
    got = fetch_documents(
        ["acme-faq-keys"],
        ACME_PUBLIC,
        collection=COLLECTION,
        store=corpus.store,
        with_vectors=True,
    )
    assert got and all(c.dense_vector is not None and len(c.dense_vector) == 384 for c in got)


# -- the rerank stage inside search ---------------------------------------------------------

RERANK_QUERY = "what happens when the visibility timeout expires?"


def test_untrained_reranker_records_scores_and_keeps_the_order(
    corpus: Corpus, test_reranker: CrossEncoderReranker
) -> None:
    params = RetrievalParams(rerank=RerankParams(top_n=4))
    plain = corpus.run(RERANK_QUERY, ACME_ALL)
    got = corpus.run(RERANK_QUERY, ACME_ALL, reranker=test_reranker, params=params)
    assert [c.chunk_id for c in got.candidates] == [c.chunk_id for c in plain.candidates]
    head, tail = got.candidates[:4], got.candidates[4:]
    logits = test_reranker.score(RERANK_QUERY, [f"{c.title}\n{c.text}" for c in head])
    assert [c.stages[Stage.RERANK].score for c in head] == pytest.approx(logits, abs=1e-4)
    ranks = [c.stages[Stage.RERANK].rank for c in head]
    assert sorted(ranks) == [1, 2, 3, 4]
    assert [head[ranks.index(r)].stages[Stage.RERANK].score for r in (1, 2, 3, 4)] == sorted(
        logits, reverse=True
    )
    assert all(c.stages.get(Stage.RERANK) is None for c in tail)
    assert all(c.score_kind is ScoreKind.RRF for c in got.candidates)
    trace = got.stages[Stage.RERANK]
    assert trace.active is False and trace.count == 4
    assert "untrained" in trace.note


def test_acting_reranker_in_replace_mode_orders_by_logits(
    corpus: Corpus, acting_test_reranker: CrossEncoderReranker
) -> None:
    params = RetrievalParams(rerank=RerankParams(top_n=5, mode=RerankMode.REPLACE))
    plain = corpus.run(RERANK_QUERY, ACME_ALL)
    got = corpus.run(RERANK_QUERY, ACME_ALL, reranker=acting_test_reranker, params=params)
    head = got.candidates[:5]
    assert {c.chunk_id for c in head} == {c.chunk_id for c in plain.candidates[:5]}
    assert [c.chunk_id for c in got.candidates[5:]] == [c.chunk_id for c in plain.candidates[5:]]
    logits = [c.stages[Stage.RERANK].score for c in head]
    assert logits == sorted(logits, reverse=True)
    assert [c.stages[Stage.RERANK].rank for c in head] == [1, 2, 3, 4, 5]
    assert [c.score for c in head] == logits
    assert all(c.score_kind is ScoreKind.RERANK for c in head)
    assert got.stages[Stage.RERANK].active is True


def test_acting_reranker_in_fuse_mode_orders_by_combine(
    corpus: Corpus, acting_test_reranker: CrossEncoderReranker
) -> None:
    rerank = RerankParams(top_n=5, mode=RerankMode.FUSE, weight=1.0, k=60)
    plain = corpus.run(RERANK_QUERY, ACME_ALL)
    got = corpus.run(
        RERANK_QUERY, ACME_ALL, reranker=acting_test_reranker, params=RetrievalParams(rerank=rerank)
    )
    before = plain.candidates[:5]
    by_id = {c.chunk_id: c for c in got.candidates}
    logits = [by_id[c.chunk_id].stages[Stage.RERANK].score for c in before]
    order, scores = combine([c.stages[Stage.HYBRID].rank for c in before], logits, rerank)
    assert [c.chunk_id for c in got.candidates[:5]] == [before[i].chunk_id for i in order]
    assert [c.score for c in got.candidates[:5]] == pytest.approx(scores)
    assert all(c.score_kind is ScoreKind.RRF for c in got.candidates)
    assert got.stages[Stage.RERANK].note == "mode=fuse"


class _TimedReranker:
    """The acting test cross-encoder, recording how long each batch it is given takes."""

    def __init__(self, inner: CrossEncoderReranker) -> None:
        self.inner, self.trained, self.name = inner, True, inner.name
        self.batches: list[tuple[int, float]] = []

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        started = time.perf_counter()
        out = self.inner.score(query, texts)
        self.batches.append((len(texts), (time.perf_counter() - started) * 1000))
        return out


def test_rerank_budget_stops_after_the_first_batch(
    corpus: Corpus, acting_test_reranker: CrossEncoderReranker
) -> None:
    timed = _TimedReranker(acting_test_reranker)
    budget = 0.01  # ms: reached by any batch, so only the first one runs
    rerank = RerankParams(top_n=6, batch_size=2, budget_ms=budget)
    plain = corpus.run(RERANK_QUERY, ACME_ALL)
    got = corpus.run(RERANK_QUERY, ACME_ALL, reranker=timed, params=RetrievalParams(rerank=rerank))
    assert [n for n, _ in timed.batches] == [2]
    trace = got.stages[Stage.RERANK]
    assert trace.count == 2 and trace.active
    assert trace.note == "mode=fuse; budget 0.01 ms reached after 2 of 6 candidates"
    # the two reranked come first; everything not reached keeps its hybrid order below
    ids = [c.chunk_id for c in got.candidates]
    assert set(ids[:2]) == {c.chunk_id for c in plain.candidates[:2]}
    assert ids[2:] == [c.chunk_id for c in plain.candidates[2:]]
    assert all(Stage.RERANK in c.stages for c in got.candidates[:2])
    assert all(Stage.RERANK not in c.stages for c in got.candidates[2:])
    # never slower than the budget plus one batch (that batch's time measured just now; the
    # slack covers the stage's bookkeeping around it)
    assert trace.ms < budget + timed.batches[0][1] + 5.0


def test_rerank_without_budget_reaches_top_n_in_batches(
    corpus: Corpus, acting_test_reranker: CrossEncoderReranker
) -> None:
    timed = _TimedReranker(acting_test_reranker)
    rerank = RerankParams(top_n=5, batch_size=2)
    got = corpus.run(RERANK_QUERY, ACME_ALL, reranker=timed, params=RetrievalParams(rerank=rerank))
    assert [n for n, _ in timed.batches] == [2, 2, 1]
    assert got.stages[Stage.RERANK].count == 5
    assert got.stages[Stage.RERANK].note == "mode=fuse"


def test_rerank_settings_reach_the_params(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pydantic import ValidationError

    from service.context import retrieval_params
    from service.settings import Settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGCTX_RERANK_BUDGET_MS", "40")
    monkeypatch.setenv("RAGCTX_RERANK_BATCH_SIZE", "8")
    rerank = retrieval_params(Settings(), top_k=10, with_vectors=False).rerank
    assert (rerank.budget_ms, rerank.batch_size) == (40.0, 8)
    monkeypatch.setenv("RAGCTX_RERANK_BUDGET_MS", "-5")
    with pytest.raises(ValidationError, match="rerank_budget_ms"):
        Settings()


def test_body_counts_of_another_shape_count_as_absent() -> None:
    # A payload written by something other than ingest (or an older ragctx): only whole,
    # non-negative int counts per encoding name are taken; the assembler counts the rest.
    def counts(raw: object) -> dict[str, int]:
        point = StoredPoint(id="p", payload={"text": "x", "body_tokens": raw})
        return dict(candidate_from_point(point, stages={}, score=0.0).body_tokens)

    assert counts({"cl100k_base": 7, "o200k_base": 6}) == {"cl100k_base": 7, "o200k_base": 6}
    assert counts({"cl100k_base": 7.0, "o200k_base": -1, "x": True, "y": "3"}) == {}
    assert counts([7, 6]) == {} and counts(None) == {} and counts("7") == {}
