"""BEIR folders: loading, checksums, errors naming the path, the fixed CI subset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import InvalidInputError
from eval.datasets import load_dataset, subset


def write_beir(root: Path, docs: int = 6) -> Path:
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w") as fh:
        for i in range(docs):
            fh.write(json.dumps({"_id": f"d{i}", "title": f"T{i}", "text": f"text {i}"}) + "\n")
    with (root / "queries.jsonl").open("w") as fh:
        for i in range(4):
            fh.write(json.dumps({"_id": str(i), "text": f"question {i}"}) + "\n")
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n0\td0\t1\n0\td1\t2\n2\td3\t1\n3\td4\t0\n"
    )
    return root


def test_loads_judged_queries_and_checksums_the_files(tmp_path: Path) -> None:
    data = load_dataset(write_beir(tmp_path / "toy"))
    assert data.name == "toy"
    assert list(data.queries) == ["0", "2"]  # query 3 has only a 0 judgment
    assert data.qrels == {"0": {"d0": 1, "d1": 2}, "2": {"d3": 1}}
    assert data.documents == 6
    assert set(data.files) == {"corpus.jsonl", "queries.jsonl", "qrels/test.tsv"}
    assert data.checksum == load_dataset(tmp_path / "toy").checksum
    assert data.describe()["judgments"] == 3


def test_missing_qrels_is_an_error_naming_the_path(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "toy")
    (root / "qrels" / "test.tsv").unlink()
    with pytest.raises(InvalidInputError, match=r"toy/qrels/test\.tsv does not exist"):
        load_dataset(root)


def test_a_malformed_qrels_line_names_file_and_line(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "toy")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n0 d0 1\n")
    with pytest.raises(InvalidInputError, match=r"test\.tsv:2"):
        load_dataset(root)


def test_subset_is_fixed_and_keeps_every_judged_document(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "toy", docs=30)
    one = subset(root, tmp_path / "a", queries=1, other_docs=5)
    two = subset(root, tmp_path / "b", queries=1, other_docs=5)
    for rel in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        assert (one / rel).read_bytes() == (two / rel).read_bytes()
    data = load_dataset(one)
    assert list(data.queries) == ["0"]
    ids = [json.loads(line)["_id"] for line in (one / "corpus.jsonl").read_text().splitlines()]
    assert {"d0", "d1"} <= set(ids)
    assert len(ids) == 7
    other = subset(root, tmp_path / "c", queries=1, other_docs=5, seed="another")
    assert (other / "corpus.jsonl").read_bytes() != (one / "corpus.jsonl").read_bytes()
