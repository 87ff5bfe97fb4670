"""BEIR-format evaluation datasets: load one, checksum it, cut a fixed subset of it.

A BEIR folder holds ``corpus.jsonl`` (``{"_id", "title", "text", "metadata"}``),
``queries.jsonl`` (``{"_id", "text"}``) and ``qrels/<split>.tsv`` (a header, then
``query-id<TAB>corpus-id<TAB>score``). Only queries with at least one judgment above zero are
evaluated, as trec_eval and ranx do.

Example:
    >>> data = load_dataset(Path("../shared/benchdata/scifact"))
    >>> len(data.queries), data.documents
    (300, 5183)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError
from eval.report import DatasetInfo

__all__ = ["EvalDataset", "load_dataset", "subset"]

CORPUS = "corpus.jsonl"
QUERIES = "queries.jsonl"


@dataclass(frozen=True, slots=True)
class EvalDataset:
    """A BEIR dataset's test queries and judgments; the corpus stays on disk for ingest.

    ``checksum`` is the sha256 over the three files' own sha256 sums (``files``), so two
    reports on the same data carry the same checksum wherever the folder lives.
    """

    name: str
    path: Path
    split: str
    queries: Mapping[str, str]  # query id -> text, judged queries only, in file order
    qrels: Mapping[str, Mapping[str, int]]  # query id -> doc id -> relevance (> 0 only)
    documents: int
    checksum: str
    files: Mapping[str, str] = field(default_factory=dict)  # relative path -> sha256

    def info(self) -> DatasetInfo:
        """What a report records about the dataset."""
        return DatasetInfo(
            name=self.name,
            path=str(self.path),
            split=self.split,
            sha256=self.checksum,
            files=dict(self.files),
            documents=self.documents,
            queries=len(self.queries),
            judgments=sum(len(r) for r in self.qrels.values()),
        )

    def describe(self) -> dict[str, Any]:
        """:meth:`info` as JSON-ready data."""
        return self.info().model_dump(mode="json")

    def first_queries(self, n: int) -> EvalDataset:
        """The same dataset with only its first ``n`` judged queries (all when ``n`` is 0)."""
        if not n:
            return self
        keep = list(self.queries)[:n]
        return replace(
            self,
            queries={q: self.queries[q] for q in keep},
            qrels={q: self.qrels[q] for q in keep},
        )


def load_dataset(path: Path, *, name: str | None = None, split: str = "test") -> EvalDataset:
    """Read a BEIR folder's queries and judgments for ``split``, and checksum its files.

    Args:
        path: the folder holding corpus.jsonl, queries.jsonl and qrels/<split>.tsv.
        name: the dataset's name in reports and collection names; default the folder name.
        split: which qrels file to read.

    Returns:
        The dataset, with every judged query that has a relevant document.

    Raises:
        InvalidInputError: a missing file, a malformed line, or a judged query without text.
    """
    path = Path(path)
    qrels_rel = f"qrels/{split}.tsv"
    for rel in (CORPUS, QUERIES, qrels_rel):
        if not (path / rel).is_file():
            raise InvalidInputError(
                f"{(path / rel).as_posix()} does not exist: {path.as_posix()!r} is not a BEIR "
                f"dataset folder with a {split!r} split; pass a folder holding {CORPUS}, "
                f"{QUERIES} and {qrels_rel}",
                field="dataset",
                value=str(path),
            )
    qrels = _read_qrels(path / qrels_rel)
    texts = _read_queries(path / QUERIES, wanted=set(qrels))
    missing = sorted(set(qrels) - set(texts))
    if missing:
        raise InvalidInputError(
            f"{(path / qrels_rel).as_posix()} judges queries missing from {QUERIES}: "
            f"{missing[:5]}; use the queries file that belongs to these qrels",
            field="dataset",
            value=str(path),
        )
    files = {rel: _sha256(path / rel) for rel in (CORPUS, QUERIES, qrels_rel)}
    combined = hashlib.sha256(
        "".join(f"{rel}\t{digest}\n" for rel, digest in sorted(files.items())).encode()
    ).hexdigest()
    with (path / CORPUS).open("rb") as fh:
        documents = sum(1 for line in fh if line.strip())
    return EvalDataset(
        name=name or path.resolve().name,
        path=path,
        split=split,
        queries={qid: texts[qid] for qid in texts},
        qrels=qrels,
        documents=documents,
        checksum=combined,
        files=files,
    )


def subset(
    source: Path,
    dest: Path,
    *,
    queries: int = 40,
    other_docs: int = 200,
    split: str = "test",
    seed: str = "ragctx-ci",
) -> Path:
    """Write a small, fixed BEIR dataset cut from ``source`` into ``dest``; return ``dest``.

    It holds the first ``queries`` judged queries (in queries.jsonl order), every document
    they judge, and ``other_docs`` other documents: the first by sha256 of ``seed`` and the
    document id. The same arguments always give byte-identical files, so a baseline measured
    on a subset stays comparable. Corpus lines are copied as they are, in source order.

    Raises:
        InvalidInputError: ``source`` is not a BEIR folder, or the counts are not positive.
    """
    if queries < 1 or other_docs < 0:
        raise InvalidInputError(
            f"subset needs queries >= 1 and other_docs >= 0, got {queries} and {other_docs}",
            field="subset",
            value=(queries, other_docs),
        )
    full = load_dataset(source, split=split)
    chosen = list(full.queries)[:queries]
    judged = {doc for qid in chosen for doc in full.qrels[qid]}
    source = Path(source)
    lines: list[tuple[str, bytes]] = []
    with (source / CORPUS).open("rb") as fh:
        for line in fh:
            if line.strip():
                lines.append((str(json.loads(line)["_id"]), line))
    others = sorted(
        (doc_id for doc_id, _ in lines if doc_id not in judged),
        key=lambda d: hashlib.sha256(f"{seed}\x1f{d}".encode()).hexdigest(),
    )[:other_docs]
    keep = judged | set(others)
    dest = Path(dest)
    (dest / "qrels").mkdir(parents=True, exist_ok=True)
    with (dest / CORPUS).open("wb") as out:
        for doc_id, line in lines:
            if doc_id in keep:
                out.write(line if line.endswith(b"\n") else line + b"\n")
    with (dest / QUERIES).open("w", encoding="utf-8") as out:
        for qid in chosen:
            out.write(json.dumps({"_id": qid, "text": full.queries[qid], "metadata": {}}) + "\n")
    with (dest / "qrels" / f"{split}.tsv").open("w", encoding="utf-8") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        for qid in chosen:
            for doc_id, rel in sorted(full.qrels[qid].items()):
                out.write(f"{qid}\t{doc_id}\t{rel}\n")
    return dest


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").split("\t")
            if number == 1 and parts[:1] == ["query-id"]:
                continue
            if not line.strip():
                continue
            if len(parts) != 3:
                raise InvalidInputError(
                    f"{path.as_posix()}:{number}: expected query-id<TAB>corpus-id<TAB>score, "
                    f"got {line.strip()!r}; fix the line or regenerate the qrels file",
                    field="qrels",
                    value=str(path),
                )
            try:
                rel = int(float(parts[2]))
            except ValueError as err:
                raise InvalidInputError(
                    f"{path.as_posix()}:{number}: score {parts[2]!r} is not a number",
                    field="qrels",
                    value=str(path),
                ) from err
            if rel > 0:
                qrels.setdefault(parts[0], {})[parts[1]] = rel
    if not qrels:
        raise InvalidInputError(
            f"{path.as_posix()} holds no judgment above 0; nothing can be evaluated",
            field="qrels",
            value=str(path),
        )
    return qrels


def _read_queries(path: Path, *, wanted: set[str]) -> dict[str, str]:
    texts: dict[str, str] = {}
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                qid, text = str(record["_id"]), record["text"]
            except (ValueError, KeyError, TypeError) as err:
                raise InvalidInputError(
                    f"{path.as_posix()}:{number}: expected a JSON object with _id and text "
                    f"({err}); fix the line",
                    field="queries",
                    value=str(path),
                ) from err
            if qid in wanted and isinstance(text, str) and text.strip():
                texts[qid] = text
    return texts


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
