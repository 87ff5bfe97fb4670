"""Collections written before the tenant was part of point ids keep working (read-correctly).

The old store is made by the old code path itself: the sync with ``point_id`` swapped for
``index.schema.legacy_point_id`` (the schema-1 formula), on the real Edge store.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from index.edge import EdgeStore
from index.schema import legacy_point_id, point_id
from ingest import SourceSpec
from tests.adversarial.ingest_helpers import C, held_docs, run_sync, small_chunker, write_md


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EdgeStore]:
    s = EdgeStore(tmp_path / "store")
    yield s
    s.close()


def test_a_store_with_old_ids_resyncs_converges_and_stays_tenant_scoped(
    tmp_path: Path, store: EdgeStore, encoders: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunker = small_chunker(encoders)
    src = write_md(tmp_path / "src", 3)
    spec = SourceSpec(src, name="kb", tenant="acme")
    with monkeypatch.context() as patch:
        patch.setattr(
            importlib.import_module("ingest.sync"),
            "point_id",
            lambda _tenant, *rest: legacy_point_id(*rest),
            raising=True,
        )
        run_sync([spec], store, encoders, chunker)
    old = {p.id: p.payload for p in store.scroll(C)}
    assert all(
        pid == legacy_point_id("kb", p["doc_id"], p["doc_hash"], p["chunk_index"])
        for pid, p in old.items()
    )

    # the new code reads the old points as they are: nothing re-embedded, nothing duplicated
    report = run_sync([spec], store, encoders, chunker)
    assert (report.unchanged, report.added, report.updated, report.deleted) == (3, 0, 0, 0)
    assert {p.id for p in store.scroll(C)} == set(old)

    # a changed document moves to the new ids, its old points go; a vanished one is deleted
    (src / "doc0.md").write_text("# doc 0\n\nRewritten.\n", "utf-8")
    (src / "doc2.md").unlink()
    report = run_sync([spec], store, encoders, chunker)
    assert (report.updated, report.deleted, report.unchanged) == (1, 1, 1)
    now = {p.id: p.payload for p in store.scroll(C)}
    doc0 = {pid: p for pid, p in now.items() if p["doc_id"] == "doc0.md"}
    assert doc0 and all(
        pid == point_id("acme", "kb", "doc0.md", p["doc_hash"], p["chunk_index"])
        for pid, p in doc0.items()
    )
    assert {pid for pid, p in now.items() if p["doc_id"] == "doc1.md"} == {
        pid for pid, p in old.items() if p["doc_id"] == "doc1.md"
    }

    # another tenant's source of the same name leaves the old points alone
    run_sync([SourceSpec(write_md(tmp_path / "g", 1), name="kb", tenant="globex")], store,
             encoders, chunker)  # fmt: skip
    assert ("acme", "kb", "doc1.md") in held_docs(store)
