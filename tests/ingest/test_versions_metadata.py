"""Version metadata at ingest: ``series`` + ``version`` and ``supersedes`` in every format.

They reach ``Document.metadata`` in one form (strings, and a list of ids), the stored payload
and ``Candidate.metadata`` (real Edge store, real encoders); a wrong form is that document's
problem, naming the file and the key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from index.edge import EdgeStore
from ingest import Chunker, ChunkingParams, SourceSpec, SyncOptions, sync
from retrieval.hybrid import candidate_from_point
from tests.ingest.test_sources import read_all, write


def markdown(front: str, body: str = "# Notes\n\nRetention is 14 days.\n") -> str:
    return f"---\n{front}---\n{body}"


def test_markdown_front_matter_declares_series_version_and_supersedes(tmp_path: Path) -> None:
    write(
        tmp_path / "4.1.md",
        markdown('doc_id: rn-4-1\nseries: relnotes\nversion: "4.10"\nsupersedes: [rn-3-8]\n'),
    )
    write(tmp_path / "4.2.md", markdown("doc_id: rn-4-2\nseries: relnotes\nversion: 4\n"))
    docs, problems = read_all(SourceSpec(tmp_path))
    assert problems == []
    by_id = {doc.doc_id: doc for doc in docs}
    assert by_id["rn-4-1"].metadata == {
        "series": "relnotes",
        "version": "4.10",
        "supersedes": ["rn-3-8"],
    }
    assert by_id["rn-4-2"].metadata == {"series": "relnotes", "version": "4"}  # int written out


def test_html_meta_tags_declare_versions_with_comma_separated_supersedes(tmp_path: Path) -> None:
    write(
        tmp_path / "page.html",
        """<html><head><meta name="ragctx:doc_id" content="api-v2">
        <meta name="ragctx:series" content="api-guide"><meta name="ragctx:version" content="2.0">
        <meta name="ragctx:supersedes" content="api-v1, api-v1-beta"></head>
        <body><p>Use the v2 API.</p></body></html>""",
    )
    [doc] = read_all(SourceSpec(tmp_path))[0]
    assert doc.metadata == {
        "series": "api-guide",
        "version": "2.0",
        "supersedes": ["api-v1", "api-v1-beta"],
    }


def test_jsonl_and_beir_records_declare_versions(tmp_path: Path) -> None:
    records = [{"id": "a2", "text": "two", "series": "s", "version": 2, "supersedes": "a1"}]
    write(tmp_path / "r.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    [doc] = read_all(SourceSpec(tmp_path / "r.jsonl"))[0]
    assert doc.metadata == {"series": "s", "version": "2", "supersedes": ["a1"]}

    beir = tmp_path / "beir"
    meta = {"series": "s", "version": "1.5", "supersedes": ["b0"]}
    write(beir / "corpus.jsonl", json.dumps({"_id": "b1", "text": "x", "metadata": meta}) + "\n")
    write(beir / "queries.jsonl", json.dumps({"_id": "q", "text": "x"}) + "\n")
    [doc] = read_all(SourceSpec(beir))[0]
    assert doc.metadata == meta


@pytest.mark.parametrize(
    ("front", "words"),
    [
        ('version: "4.1"\n', ["version '4.1' comes without series", "add series"]),
        ("series: relnotes\n", ["series 'relnotes' comes without version"]),
        ("series: relnotes\nversion: 4.10\n", ["version has the number 4.1", '"4.10"']),
        ("series: relnotes\nversion: true\n", ["version has value True"]),
        ("series: [a, b]\nversion: '1'\n", ["series has value ['a', 'b']"]),
        ("series: ''\nversion: '1'\n", ["series is empty"]),
        ("supersedes: {a: 1}\n", ["supersedes has value {'a': 1}", "list of document ids"]),
        ("supersedes: 38\n", ["supersedes has value 38", "list of document ids"]),
        ("supersedes: [[a]]\n", ["supersedes holds ['a']"]),
        ("doc_id: x\nsupersedes: [x]\n", ["supersedes names the document itself ('x')"]),
    ],
)
def test_bad_version_metadata_is_a_problem_naming_file_and_key(
    tmp_path: Path, front: str, words: list[str]
) -> None:
    write(tmp_path / "bad.md", markdown(front))
    write(tmp_path / "good.md", markdown("doc_id: good\n"))
    docs, problems = read_all(SourceSpec(tmp_path))
    assert [doc.doc_id for doc in docs] == ["good"]  # the other document still goes in
    [problem] = problems
    assert problem.path.endswith("/bad.md")
    for word in words:
        assert word in problem.message, problem.message
    assert "fix the value in the file" in problem.message


def test_bad_version_metadata_in_records_names_the_line(tmp_path: Path) -> None:
    lines = [
        {"id": "ok", "text": "fine"},
        {"id": "r2", "text": "two", "version": "2"},
        {"id": "r3", "text": "three", "supersedes": 3},
    ]
    write(tmp_path / "r.jsonl", "".join(json.dumps(r) + "\n" for r in lines))
    docs, problems = read_all(SourceSpec(tmp_path / "r.jsonl"))
    assert [doc.doc_id for doc in docs] == ["ok"]
    assert [(p.line, p.doc_id) for p in problems] == [(2, "r2"), (3, "r3")]
    assert "version '2' comes without series" in problems[0].message
    assert "supersedes has value 3" in problems[1].message

    beir = tmp_path / "beir"
    meta = {"series": "s", "version": 1.5}
    write(beir / "corpus.jsonl", json.dumps({"_id": "b1", "text": "x", "metadata": meta}) + "\n")
    write(beir / "queries.jsonl", json.dumps({"_id": "q", "text": "x"}) + "\n")
    docs, problems = read_all(SourceSpec(beir))
    assert docs == []
    [problem] = problems
    assert (problem.line, problem.doc_id) == (1, "b1")
    assert "version has the number 1.5" in problem.message


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EdgeStore]:
    s = EdgeStore(tmp_path / "store")
    yield s
    s.close()


def test_version_metadata_reaches_the_payload_and_the_candidate(
    tmp_path: Path, store: EdgeStore, encoders: Any
) -> None:
    src = tmp_path / "src"
    write(
        src / "4.1.md",
        markdown("doc_id: rn-4-1\nseries: relnotes\nversion: '4.1'\nsupersedes: rn-3-8\n"),
    )
    report = sync(
        [SourceSpec(src, tenant="acme")],
        collection="docs",
        store=store,
        encoders=encoders,
        chunker=Chunker(ChunkingParams(chunk_tokens=64, overlap_tokens=8)),
        options=SyncOptions(),
    )
    assert not report.problems
    [point] = list(store.scroll("docs"))
    candidate = candidate_from_point(point, stages={}, score=1.0)
    expected = {"series": "relnotes", "version": "4.1", "supersedes": ["rn-3-8"]}
    assert point.payload["metadata"] == expected
    assert candidate.metadata == expected
