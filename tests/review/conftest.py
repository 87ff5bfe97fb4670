"""Review console fixtures: a real server (uvicorn on 127.0.0.1) over the sample corpus plus one
acme document whose text is an XSS payload, the service tests' keys plus two reviewer keys, and
traces recorded by real ``POST /v1/context`` calls."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from index.edge import EdgeStore
from ingest import Chunker, ChunkingParams, SourceSpec, sync
from service.auth import ApiKey, hash_key
from service.runtime import Models
from tests.service.conftest import (  # noqa: F401  (fixtures, used by name)
    COLLECTION,
    Running,
    auth,
    key_of,
    loader_of,
    make_settings,
    models,
    running_server,
    sample_store_template,
    write_keys,
    write_policies,
)

if TYPE_CHECKING:
    from eval import EvalReport

XSS = '<script>alert("pwned")</script><img src=x onerror="alert(2)">'
XSS_QUESTION = "How do I rotate widget tokens? <script>alert(1)</script>"
REVIEWERS = {"reviewer-acme": "acme", "reviewer-globex": "globex"}
# The policy diff's candidate: the test policies' default, but the XSS document excluded.
CANDIDATE_POLICY = 'name: candidate\nversion: "1"\nexclude:\n  doc_ids: [xss-widget-tokens]\n'


def write_review_keys(path: Path) -> None:
    """The service tests' keys and one reviewer key per sample tenant."""
    write_keys(
        path,
        [
            ApiKey(id=name, sha256=hash_key(key_of(name)), tenant=tenant, groups=(), review=True)
            for name, tenant in REVIEWERS.items()
        ],
    )


def add_xss_document(store_path: Path, folder: Path, encoders: Any) -> None:
    """One acme document (jsonl, like the sample FAQ) whose text carries an XSS payload."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "id": "xss-widget-tokens",
        "title": "Rotating widget tokens",
        "text": f"To rotate widget tokens {XSS} open Settings > Widget tokens and press Rotate.",
        "tenant": "acme",
        "groups": ["public"],
    }
    (folder / "xss.jsonl").write_text(json.dumps(doc) + "\n", "utf-8")
    store = EdgeStore(store_path)
    try:
        chunker = Chunker(
            ChunkingParams(chunk_tokens=200, overlap_tokens=30),
            max_model_tokens=encoders.dense.max_tokens,
            model_token_count=encoders.dense.count_tokens,
        )
        spec = SourceSpec(path=folder, name="xss", tenant="acme", groups=("public",))
        report = sync(
            [spec], collection=COLLECTION, store=store, encoders=encoders, chunker=chunker
        )
        assert report.failed == 0, report.problems
    finally:
        store.close()


@dataclass
class ReviewSetup:
    server: Running
    acme_trace: str  # the XSS question; the XSS document among its candidates
    globex_trace: str
    reports: Path  # the server's RAGCTX_REPORTS_DIR

    @contextmanager
    def reviewer(self, name: str = "reviewer-acme") -> Iterator[httpx.Client]:
        """A client logged in to the console with a reviewer key (the cookie it set)."""
        with self.server.client(follow_redirects=False) as client:
            r = client.post("/review/login", data={"key": key_of(name)})
            assert r.status_code == 303, r.text
            yield client


def record(server: Running, key: str, query: str) -> str:
    with server.client() as c:
        r = c.post("/v1/context", json={"query": query, "budget_tokens": 600}, headers=auth(key))
    assert r.status_code == 200, r.text
    trace_id: str = r.json()["trace"]["trace_id"]
    return trace_id


@pytest.fixture(scope="module")
def review(
    sample_store_template: Path,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
    models: Models,  # noqa: F811
) -> Iterator[ReviewSetup]:
    work = tmp_path_factory.mktemp("review")
    store = work / "qdrant"
    shutil.copytree(sample_store_template, store)
    add_xss_document(store, work / "xss-docs", models.encoders)
    write_review_keys(work / "keys.toml")
    (write_policies(work / "policies") / "candidate.yaml").write_text(CANDIDATE_POLICY, "utf-8")
    reports = work / "reports"  # empty until a test runs the eval code into it
    with running_server(
        lambda port: make_settings(store, work, port=port, reports_dir=reports),
        loader_of(models),
    ) as run:
        acme = record(run, "acme-eng", XSS_QUESTION)
        globex = record(run, "globex-all", "How do I rotate API keys?")
        assert run.runtime.traces is not None and run.runtime.traces.flush(10)
        yield ReviewSetup(server=run, acme_trace=acme, globex_trace=globex, reports=reports)


TOY_DOCS = {
    "d1": ("Aspirin", "Aspirin lowers the risk of heart attacks in adults over fifty."),
    "d2": ("Coffee", "Coffee drinking is linked to a lower risk of type 2 diabetes."),
    "d3": ("Sleep", "Short sleep is associated with obesity and insulin resistance."),
}
TOY_QUERIES = {"1": "does aspirin prevent heart attacks", "2": "coffee and diabetes risk"}


def _toy_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(
            json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in TOY_DOCS.items()
        )
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in TOY_QUERIES.items())
    )
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n2\td2\t1\n")
    return root


def file_eval_runs(reports: Path, loaded: Models, work: Path, *, name: str) -> list[EvalReport]:
    """Two real runs of the eval code on a tiny BEIR folder (the second incremental), filed
    into ``reports`` as ``ragctx eval`` files them; the reports."""
    from eval import EvalParams, load_dataset, run, write_run
    from retrieval.types import RetrievalParams

    data = load_dataset(_toy_beir(work / "toy"), name=name)
    chunker = Chunker(
        ChunkingParams(chunk_tokens=64, overlap_tokens=8),
        max_model_tokens=loaded.encoders.dense.max_tokens,
        model_token_count=loaded.encoders.dense.count_tokens,
    )
    store = EdgeStore(work / "eval-store")
    params = EvalParams(retrieval=RetrievalParams(dense_limit=10, bm25_limit=10, rrf_k=60))
    try:
        runs = [
            run(
                data,
                store=store,
                encoders=loaded.encoders,
                chunker=chunker,
                reranker=None,
                params=params,
            )
            for _ in range(2)
        ]
    finally:
        store.close()
    for report in runs:
        write_run(report, reports)
    return runs
