"""A sync is scoped to (collection, tenant, source), and a document cannot leave its grant.

Real Edge store, real encoders. Each test failed on the code before the fix: a sync's scope was
the source name alone, and a document's own metadata decided its tenant and groups.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from index.edge import EdgeStore
from ingest import Chunker, SourceSpec
from tests.adversarial.ingest_helpers import C, held_docs, run_sync, write_md


def test_two_tenants_sources_of_one_name_never_touch_each_other(
    tmp_path: Path, store: EdgeStore, encoders: Any, chunker: Chunker
) -> None:
    # Same source name, same doc ids (file names), different content.
    acme = write_md(tmp_path / "acme", 4)
    globex = write_md(tmp_path / "globex", 2)
    (globex / "doc1.md").write_text("# globex 1\n\nGlobex's own words on billing.\n", "utf-8")
    run_sync([SourceSpec(acme, name="kb", tenant="acme")], store, encoders, chunker)
    acme_points = {p.id: p.payload for p in store.scroll(C)}

    report = run_sync([SourceSpec(globex, name="kb", tenant="globex")], store, encoders, chunker)

    # globex's sync saw none of acme's documents: nothing of acme's was "gone" or "changed"
    assert (report.added, report.updated, report.deleted) == (2, 0, 0)
    after = {p.id: p.payload for p in store.scroll(C)}
    assert {pid: after.get(pid) for pid in acme_points} == acme_points
    assert held_docs(store) == {("acme", "kb", f"doc{i}.md") for i in range(4)} | {
        ("globex", "kb", f"doc{i}.md") for i in range(2)
    }
    # and a re-sync of acme's source, now smaller, deletes only acme's document
    (acme / "doc3.md").unlink()
    report = run_sync([SourceSpec(acme, name="kb", tenant="acme")], store, encoders, chunker)
    assert report.deleted == 1
    assert ("globex", "kb", "doc1.md") in held_docs(store)
    assert ("acme", "kb", "doc3.md") not in held_docs(store)


def test_a_document_naming_another_tenant_fails_and_lands_nowhere(
    tmp_path: Path, store: EdgeStore, encoders: Any, chunker: Chunker
) -> None:
    src = write_md(tmp_path / "src", 2)
    (src / "move.md").write_text("---\ntenant: globex\n---\n# Moved\n\nI want out.\n", "utf-8")
    (src / "page.html").write_text(
        '<html><head><meta name="ragctx:tenant" content="globex"></head>'
        "<body><p>Me too.</p></body></html>",
        "utf-8",
    )
    (src / "recs.jsonl").write_text(
        json.dumps({"id": "r1", "text": "fine"})
        + "\n"
        + json.dumps({"id": "r2", "text": "away", "tenant": "globex"})
        + "\n",
        "utf-8",
    )
    report = run_sync([SourceSpec(src, name="src", tenant="acme")], store, encoders, chunker)

    assert report.failed == 3
    for problem in report.problems:
        assert "tenant 'globex'" in problem.message
        assert "--tenant-from-records" in problem.message
    assert [p.line for p in report.problems if p.path.endswith("recs.jsonl")] == [2]
    assert {t for t, _, _ in held_docs(store)} == {"acme"}
    assert {d for _, _, d in held_docs(store)} == {"doc0.md", "doc1.md", "r1"}


def test_a_document_cannot_widen_its_groups_beyond_the_grant(
    tmp_path: Path, store: EdgeStore, encoders: Any, chunker: Chunker
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "wide.md").write_text("---\ngroups: [support, admins]\n---\n# W\n\nWider.\n", "utf-8")
    (src / "public.md").write_text("---\ngroups: [public]\n---\n# P\n\nEveryone.\n", "utf-8")
    (src / "narrow.md").write_text("---\ngroups: [support]\n---\n# N\n\nNarrow.\n", "utf-8")
    spec = SourceSpec(src, name="src", tenant="acme", groups=("support", "sales"))
    report = run_sync([spec], store, encoders, chunker)

    failed = {Path(p.path).name: p.message for p in report.problems}
    assert set(failed) == {"wide.md", "public.md"}
    assert "['admins']" in failed["wide.md"] and "--groups" in failed["wide.md"]
    groups = {p.payload["doc_id"]: p.payload["groups"] for p in store.scroll(C)}
    assert groups == {"narrow.md": ["support"]}  # narrowing is the document's right


def test_per_record_tenancy_is_explicit_and_deletes_per_record_tenant(
    tmp_path: Path, store: EdgeStore, encoders: Any, chunker: Chunker
) -> None:
    def export(records: list[dict[str, str]]) -> Path:
        path = tmp_path / "export.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records), "utf-8")
        return path

    # a tenant's own source that happens to share the export's name
    run_sync(
        [SourceSpec(write_md(tmp_path / "own", 1), name="export", tenant="initech")],
        store,
        encoders,
        chunker,
    )
    records = [
        {"id": "a1", "text": "acme one", "tenant": "acme"},
        {"id": "a2", "text": "acme two", "tenant": "acme"},
        {"id": "g1", "text": "globex one", "tenant": "globex"},
    ]
    spec = SourceSpec(export(records), name="export", tenant="acme", tenant_from_records=True)
    report = run_sync([spec], store, encoders, chunker)
    assert (report.added, report.failed) == (3, 0)
    assert held_docs(store) == {
        ("acme", "export", "a1"),
        ("acme", "export", "a2"),
        ("globex", "export", "g1"),
        ("initech", "export", "doc0.md"),
    }

    # acme loses a2, globex vanishes from the export: only acme's deletion happens
    report = run_sync(
        [spec.model_copy(update={"path": export(records[:1])})], store, encoders, chunker
    )
    assert report.deleted == 1
    assert held_docs(store) == {
        ("acme", "export", "a1"),
        ("globex", "export", "g1"),
        ("initech", "export", "doc0.md"),
    }
    assert any("globex" in note for note in report.notes)
