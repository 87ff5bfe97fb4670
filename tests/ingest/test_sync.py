"""Incremental sync on the real Edge store with the real encoders."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tiktoken

from core.errors import InvalidInputError
from index.edge import EdgeStore
from index.schema import Filter, MatchValue
from ingest import Chunker, ChunkingParams, Partition, SourceSpec, SyncOptions, stats, sync

C = "docs"


def write_corpus(root: Path, n: int = 6) -> Path:
    """A small folder: Markdown files with front matter and a JSONL file of records."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = "\n\n".join(
            f"## Part {j}\n\nDocument {i} paragraph {j} talks about queue {i * 7 + j} and "
            f"retention of {i + j} days. " * 3
            for j in range(3)
        )
        (root / f"doc{i}.md").write_text(
            f"---\ntitle: Doc {i}\ntenant: acme\ngroups: [support]\ntags: [t{i % 2}]\n"
            f"updated_at: 2026-0{1 + i % 9}-01T00:00:00Z\n---\n# Doc {i}\n\n{body}\n",
            encoding="utf-8",
        )
    records = [
        {
            "id": f"faq-{i}",
            "title": f"FAQ {i}",
            "text": f"Question {i}? Answer {i} about billing.",
            "tenant": "acme",
            "groups": ["public"],
        }
        for i in range(4)
    ]
    (root / "faq.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n", "utf-8")
    return root


def state(store: Any, collection: str = C) -> dict[str, dict[str, Any]]:
    """Every point id with its payload: two syncs converged iff their states are equal."""
    return {p.id: p.payload for p in store.scroll(collection)}


@pytest.fixture
def chunker(encoders: Any) -> Chunker:
    return Chunker(
        ChunkingParams(chunk_tokens=64, overlap_tokens=8),
        max_model_tokens=encoders.dense.max_tokens,
        model_token_count=encoders.dense.count_tokens,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EdgeStore]:
    s = EdgeStore(tmp_path / "store")
    yield s
    s.close()


def run(spec: SourceSpec, store: Any, encoders: Any, chunker: Chunker, **opts: Any) -> Any:
    return sync(
        [spec],
        collection=C,
        store=store,
        encoders=encoders,
        chunker=chunker,
        options=SyncOptions(batch_chunks=16, **opts),
    )


def test_first_sync_adds_everything_and_the_second_skips_it(
    tmp_path: Path, store: Any, encoders: Any, chunker: Chunker
) -> None:
    spec = SourceSpec(write_corpus(tmp_path / "src"), name="src", tenant="acme")
    first = run(spec, store, encoders, chunker)
    assert (first.added, first.updated, first.deleted, first.failed) == (10, 0, 0, 0)
    assert first.chunks_written == store.count(C) > 10
    held = stats(store, C)
    assert held.documents == 10 and held.sources == {
        "src": {"documents": 10, "chunks": held.chunks}
    }

    before = state(store)
    second = run(spec, store, encoders, chunker)
    assert (second.added, second.updated, second.unchanged, second.chunks_written) == (0, 0, 10, 0)
    assert state(store) == before


def test_changed_documents_are_replaced_and_vanished_ones_deleted(
    tmp_path: Path, store: Any, encoders: Any, chunker: Chunker
) -> None:
    src = write_corpus(tmp_path / "src")
    spec = SourceSpec(src, name="src", tenant="acme")
    run(spec, store, encoders, chunker)
    old_doc1 = {p.id for p in store.scroll(C, Filter(must=(MatchValue("doc_id", "doc1.md"),)))}

    (src / "doc1.md").write_text("---\ntitle: Doc 1\ntenant: acme\n---\nNew text.\n", "utf-8")
    text = (src / "doc2.md").read_text("utf-8").replace("tags: [t0]", "tags: [t0, extra]")
    (src / "doc2.md").write_text(text, "utf-8")  # a metadata-only change is a change
    (src / "doc3.md").unlink()

    report = run(spec, store, encoders, chunker)
    assert (report.added, report.updated, report.deleted, report.unchanged) == (0, 2, 1, 7)
    new_doc1 = list(store.scroll(C, Filter(must=(MatchValue("doc_id", "doc1.md"),))))
    assert [p.payload["text"] for p in new_doc1] == ["New text."]
    assert not old_doc1 & {p.id for p in new_doc1}
    assert store.count(C, Filter(must=(MatchValue("doc_id", "doc3.md"),))) == 0
    assert store.count(C, Filter(must=(MatchValue("tags", "extra"),))) > 0

    # and the result equals a clean run of the new source
    fresh = EdgeStore(tmp_path / "fresh")
    try:
        run(spec, fresh, encoders, chunker)
        assert state(fresh) == state(store)
    finally:
        fresh.close()


class RecordingStore:
    """Wraps a real store; after every delete, each document seen before must still exist
    unless the sync is deleting it on purpose (it vanished from the source)."""

    def __init__(self, inner: Any, must_stay: set[str]) -> None:
        self.inner = inner
        self.must_stay = must_stay
        self.ops: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def upsert(self, collection: str, points: Any) -> None:
        self.ops.append("upsert")
        self.inner.upsert(collection, points)

    def delete(self, collection: str, ids: Any) -> None:
        self.ops.append("delete")
        self.inner.delete(collection, ids)
        for doc_id in self.must_stay:
            assert self.inner.count(collection, Filter(must=(MatchValue("doc_id", doc_id),))) > 0, (
                f"{doc_id} went missing during its replacement"
            )


def test_a_reader_never_finds_a_changed_document_missing(
    tmp_path: Path, store: Any, encoders: Any, chunker: Chunker
) -> None:
    src = write_corpus(tmp_path / "src")
    spec = SourceSpec(src, name="src", tenant="acme")
    run(spec, store, encoders, chunker)
    for i in range(6):
        path = src / f"doc{i}.md"
        path.write_text(path.read_text("utf-8") + "\nA new closing paragraph.\n", "utf-8")
    recording = RecordingStore(store, must_stay={f"doc{i}.md" for i in range(6)})
    report = run(spec, recording, encoders, chunker)
    assert report.updated == 6
    assert recording.ops.index("upsert") < recording.ops.index("delete")


def test_a_document_failing_on_resync_keeps_its_previous_version(
    tmp_path: Path, store: Any, encoders: Any, chunker: Chunker
) -> None:
    src = write_corpus(tmp_path / "src")
    spec = SourceSpec(src, name="src", tenant="acme")
    run(spec, store, encoders, chunker)
    before = state(store)
    (src / "doc4.md").write_bytes(b"---\ntitle: broken\n---\n\xff\xfe not utf-8")
    lines = (src / "faq.jsonl").read_text("utf-8").splitlines()
    lines[1] = "{not json"
    (src / "faq.jsonl").write_text("\n".join(lines) + "\n", "utf-8")

    report = run(spec, store, encoders, chunker)
    assert report.failed == 2 and report.deleted == 0
    messages = " | ".join(str(p) for p in report.problems)
    assert "doc4.md" in messages and "UTF-8" in messages
    assert "faq.jsonl:2" in messages
    assert state(store) == before  # nothing lost, nothing half-written


def test_dry_run_plans_without_writing(
    tmp_path: Path, store: Any, encoders: Any, chunker: Chunker
) -> None:
    src = write_corpus(tmp_path / "src")
    spec = SourceSpec(src, name="src", tenant="acme")
    plan = run(spec, store, encoders, chunker, dry_run=True)
    assert plan.added == 10 and plan.chunks_written == 0
    assert not store.has_collection(C)
    run(spec, store, encoders, chunker)
    (src / "doc0.md").unlink()
    before = state(store)
    plan = run(spec, store, encoders, chunker, dry_run=True)
    assert [(a.action, a.doc_id) for a in plan.plan] == [("delete", "doc0.md")]
    assert state(store) == before


def test_partitions_together_equal_one_full_run(
    tmp_path: Path, store: Any, encoders: Any, chunker: Chunker
) -> None:
    src = write_corpus(tmp_path / "src", n=8)
    spec = SourceSpec(src, name="src", tenant="acme")
    owned = [sum(Partition(i, 3).owns(f"doc{j}.md") for i in range(3)) for j in range(8)]
    assert owned == [1] * 8
    for i in range(3):
        run(spec, store, encoders, chunker, partition=Partition(i, 3))
    full = EdgeStore(tmp_path / "full")
    try:
        run(spec, full, encoders, chunker)
        assert state(store) == state(full)
        # a vanished document is deleted only by the partition that owns it
        (src / "doc5.md").unlink()
        owner = next(i for i in range(3) if Partition(i, 3).owns("doc5.md"))
        others = [
            run(spec, store, encoders, chunker, partition=Partition(i, 3)).deleted
            for i in range(3)
            if i != owner
        ]
        assert others == [0, 0]
        assert run(spec, store, encoders, chunker, partition=Partition(owner, 3)).deleted == 1
    finally:
        full.close()


@pytest.mark.parametrize("text", ["1/0", "3/3", "a/b", "2"])
def test_bad_partitions_name_the_flag(text: str) -> None:
    with pytest.raises(InvalidInputError, match="partition"):
        Partition.parse(text)


def test_a_collection_built_with_other_vectors_is_refused(
    tmp_path: Path, store: Any, encoders: Any, chunker: Chunker
) -> None:
    store.create_collection(C, dense_dim=16, meta={"dense_dim": 16, "bm25": {}})
    with pytest.raises(InvalidInputError, match="dense_dim=16"):
        run(
            SourceSpec(write_corpus(tmp_path / "src"), name="src", tenant="acme"),
            store,
            encoders,
            chunker,
        )


def test_payload_carries_the_schema(
    tmp_path: Path, store: Any, encoders: Any, chunker: Chunker
) -> None:
    run(
        SourceSpec(write_corpus(tmp_path / "src", n=1), name="src", tenant="acme"),
        store,
        encoders,
        chunker,
    )
    point = next(iter(store.scroll(C, Filter(must=(MatchValue("doc_id", "doc0.md"),)))))
    p = point.payload
    assert p["tenant"] == "acme" and p["groups"] == ["support"] and p["tags"] == ["t0"]
    assert p["source"] == "src" and p["path"].endswith("doc0.md")
    assert p["updated_at"].startswith("2026-01-01")
    assert p["chunk_count"] >= 1 and p["tokens"] <= 64
    body = p["text"].strip() + "\n"
    assert p["body_tokens"] == {
        name: len(tiktoken.get_encoding(name).encode_ordinary(body))
        for name in ("cl100k_base", "o200k_base")
    }
    assert isinstance(p["section"], list)
    assert os.path.basename(p["path"]) == "doc0.md"
