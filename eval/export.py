"""Eval sets made of real requests: judged traces written as a BEIR folder.

:func:`export_from_traces` reads a tenant's traces that carry feedback and writes, into one
folder, what :func:`eval.load_dataset` reads and ``ragctx eval`` runs:

- ``queries.jsonl``: one query per judged trace with at least one relevant document; the
  query id is the trace id. Traces recorded without their text (RAGCTX_TRACE_TEXT off) are
  skipped and counted.
- ``qrels/test.tsv``: the judgments, per document. A chunk judgment counts for its document
  (through the trace's own candidates, else the store). ``relevant`` and ``missing`` (a
  document the answer should have had) score 1, ``not_relevant`` 0. A feedback entry with the
  verdict ``accepted`` and no judgments counts every packed document as relevant (pinned ones
  excepted: the policy put them there, retrieval did not). When a trace has several feedback
  entries (of the verdicts asked for), they are applied oldest first: the newest judgment of
  a document wins.
- ``corpus.jsonl``: every current document of the tenant in the collection, its text rebuilt
  from its chunks in chunk order (the chunks' character offsets remove their overlap).
- ``export-report.json``: what was exported, skipped and deleted.

A judged document that the collection no longer holds is *reported* (in the result, the
report file, and by the CLI), and left out of the qrels: a judgment that no run can retrieve
would only lower recall. A query left without any relevant document is reported too, and so
is a document whose id holds a tab or a line break (no BEIR qrels line can name it).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import InvalidInputError

if TYPE_CHECKING:
    from index import Store
    from service.traces import TraceStore

__all__ = [
    "DeletedJudgment",
    "ExportResult",
    "export_from_traces",
    "parse_since",
    "parse_verdicts",
]

VERDICTS: tuple[str, ...] = ("accepted", "edited", "rejected")
REPORT = "export-report.json"
MAX_TRACES = 100_000  # per verdict; more must be cut with --since
_RELATIVE = re.compile(r"^\s*(\d+)\s*([dh])\s*$")
_UNWRITABLE = re.compile(r"[\t\r\n]")  # no TSV line can hold such an id
_SCORES = {"relevant": 1, "missing": 1, "not_relevant": 0}
_DOC_FIELDS = ("doc_id", "doc_hash", "title", "chunk_index", "chunk_count", "char_start", "text")


@dataclass(frozen=True, slots=True)
class DeletedJudgment:
    """A judged document that the collection no longer holds (or a chunk no one can place)."""

    trace_id: str
    label: str
    doc_id: str | None = None
    chunk_id: str | None = None


@dataclass(slots=True)
class ExportResult:
    """What :func:`export_from_traces` wrote and what it left out, with the reasons."""

    out: str
    tenant: str
    collection: str
    traces: int = 0  # judged traces matched by the filters
    queries: int = 0
    judgments: int = 0  # qrels lines (scores 0 and 1)
    relevant: int = 0  # qrels lines with score 1
    documents: int = 0
    no_text: list[str] = field(default_factory=list)  # trace ids recorded without query text
    no_relevant: list[str] = field(default_factory=list)  # trace ids left without a relevant doc
    deleted: list[DeletedJudgment] = field(default_factory=list)
    unwritable: list[str] = field(default_factory=list)  # doc ids with a tab or line break

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_since(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """``7d`` / ``12h`` (before now) or an ISO 8601 date or time (naive is UTC).

    Raises:
        InvalidInputError: anything else, or a time in the future.
    """
    if value is None:
        return None
    now = now or datetime.now(UTC)
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return now - (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidInputError(
            f"--since {value!r} is neither a number of days or hours (7d, 12h) nor an ISO 8601 "
            "date or time (2026-12-01, 2026-12-01T09:00:00Z)",
            field="since",
            value=value,
        ) from exc
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    if at > now:
        raise InvalidInputError(
            f"--since {value!r} is in the future (now is {now.isoformat()}); no trace can match",
            field="since",
            value=value,
        )
    return at


def parse_verdicts(values: Sequence[str]) -> tuple[str, ...]:
    """The verdicts asked for (all three when none is); an unknown one is a usage error."""
    unknown = [v for v in values if v not in VERDICTS]
    if unknown:
        raise InvalidInputError(
            f"--verdict {', '.join(map(repr, unknown))}: use one of {', '.join(VERDICTS)}",
            field="verdict",
            value=list(values),
        )
    return tuple(dict.fromkeys(values)) or VERDICTS


def check_out(out: Path, *, force: bool) -> None:
    """Refuse a file, or a non-empty folder unless ``force``."""
    if out.exists() and not out.is_dir():
        raise InvalidInputError(
            f"--out {str(out)!r} is a file; pass a folder (new or empty)", field="out"
        )
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InvalidInputError(
            f"--out {str(out)!r} is not empty; pass a new or empty folder, or --force to "
            "overwrite the export files in it",
            field="out",
        )


def judged_traces(
    traces: TraceStore,
    *,
    tenant: str | None,
    since: datetime | None,
    verdicts: Sequence[str],
    collection: str | None,
) -> list[dict[str, Any]]:
    """The traces with feedback of one of ``verdicts``, oldest first, each keeping only that
    feedback; one tenant and one collection (which must be named when the traces hold more)."""
    found: dict[str, dict[str, Any]] = {}
    for verdict in verdicts:
        rows = traces.list(
            tenant, since=since, collection=collection, verdict=verdict, limit=MAX_TRACES
        )
        if len(rows) >= MAX_TRACES:
            raise InvalidInputError(
                f"more than {MAX_TRACES} traces with verdict {verdict!r} match; narrow them "
                "with --since or --collection",
                field="since",
            )
        for row in rows:
            found[row["id"]] = row
    selected = []
    for row in sorted(found.values(), key=lambda r: (r["created_at"], r["id"])):
        feedback = [f for f in row["feedback"] if f["verdict"] in verdicts]
        if feedback:
            selected.append({**row, "feedback": feedback})
    scope = ", ".join(
        part
        for part in (
            f"tenant {tenant!r}" if tenant else "",
            f"collection {collection!r}" if collection else "",
            f"since {since.isoformat()}" if since else "",
            f"verdict {'/'.join(verdicts)}",
        )
        if part
    )
    if not selected:
        raise InvalidInputError(
            f"no trace with feedback matches ({scope}); check the filters, RAGCTX_TRACE_DB, "
            "and that feedback was posted (POST /v1/feedback)",
            field="traces",
        )
    for key, flag in (("tenant", "--tenant"), ("collection", "--collection")):
        names = sorted({str(r[key]) for r in selected})
        if len(names) > 1:
            raise InvalidInputError(
                f"the judged traces ({scope}) span {len(names)} {key}s ({', '.join(names)}); "
                f"an eval set holds one: pass {flag}",
                field=key,
            )
    return selected


def current_documents(store: Store, collection: str, tenant: str) -> dict[str, dict[str, str]]:
    """The tenant's documents in ``collection``: doc id -> ``{"title", "text"}``, the text
    rebuilt from the chunks of the document's complete version."""
    from index.payload import TENANT
    from index.schema import Filter, MatchValue

    versions: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    flt = Filter(must=(MatchValue(TENANT, tenant),))
    for point in store.scroll(collection, flt, fields=_DOC_FIELDS):
        p = point.payload
        versions.setdefault((str(p["doc_id"]), str(p.get("doc_hash", ""))), []).append(p)
    docs: dict[str, dict[str, str]] = {}
    for (doc_id, _hash), chunks in sorted(versions.items()):
        chunks.sort(key=lambda c: int(c.get("chunk_index", 0)))
        complete = len(chunks) == int(chunks[0].get("chunk_count", len(chunks)) or len(chunks))
        if doc_id in docs and not complete:
            continue  # a version half-written by a running sync: keep the complete one
        docs[doc_id] = {"title": str(chunks[0].get("title", "")), "text": _rebuild(chunks)}
    return docs


def _rebuild(chunks: Iterable[Mapping[str, Any]]) -> str:
    """The document's text from its chunks: each is ``text[char_start:char_end]``, and
    neighbours overlap; a gap (never written by ingest) becomes one space."""
    text = ""
    for c in chunks:
        start, body = int(c.get("char_start", len(text))), str(c.get("text", ""))
        if start >= len(text):
            text += (" " if start > len(text) and text else "") + body
        else:
            text += body[len(text) - start :]
    return text


def _is_point_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _chunk_docs(trace: Mapping[str, Any]) -> dict[str, str]:
    """chunk id -> doc id, as the trace recorded them (every stage, the pack, the drops)."""
    seen: dict[str, str] = {}
    stages = trace.get("stages") or {}
    pack = trace.get("pack") or {}
    lists: list[Any] = [s.get("candidates", []) for s in stages.values() if isinstance(s, dict)]
    lists += [stages.get("pinned"), pack.get("items"), pack.get("dropped")]
    for items in lists:
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict) and item.get("chunk_id") and item.get("doc_id"):
                seen[str(item["chunk_id"])] = str(item["doc_id"])
    return seen


def _labels(trace: Mapping[str, Any], resolve: dict[str, str | None]) -> dict[str, str]:
    """doc id -> label of one trace: its feedback oldest first, the newest judgment winning;
    a chunk judgment resolved through ``resolve`` (None: unplaceable, left to the caller)."""
    labels: dict[str, str] = {}
    for fb in sorted(trace["feedback"], key=lambda f: (f["created_at"], f["id"])):
        entry: dict[str, str] = {}
        for j in fb["judgments"]:
            doc = j.get("doc_id") or resolve.get(str(j.get("chunk_id")))
            if doc is None:
                continue
            label = str(j["label"])
            # Within one entry a document is relevant when any of its chunks is.
            if entry.get(doc) not in ("relevant", "missing"):
                entry[doc] = label
        if fb["verdict"] == "accepted" and not fb["judgments"]:
            for item in (trace.get("pack") or {}).get("items", []):
                if not item.get("pinned"):
                    entry[str(item["doc_id"])] = "relevant"
        labels.update(entry)
    return labels


def export_from_traces(
    traces: TraceStore,
    store: Store,
    out: Path,
    *,
    tenant: str | None = None,
    since: datetime | None = None,
    verdicts: Sequence[str] = VERDICTS,
    collection: str | None = None,
    force: bool = False,
) -> ExportResult:
    """Write the judged traces matching the filters as a BEIR folder ``out`` (see the module).

    Raises:
        InvalidInputError: ``out`` is a file or not empty (without ``force``), no judged trace
            matches, the traces span several tenants or collections, the collection is not in
            the store, or no trace is left with a relevant current document.
    """
    verdicts = parse_verdicts(verdicts)
    out = Path(out)
    check_out(out, force=force)
    selected = judged_traces(
        traces, tenant=tenant, since=since, verdicts=verdicts, collection=collection
    )
    tenant, collection = str(selected[0]["tenant"]), str(selected[0]["collection"])
    if not store.has_collection(collection):
        raise InvalidInputError(
            f"the judged traces are of collection {collection!r}, which the store does not "
            f"hold (it holds: {', '.join(store.collections()) or 'none'}); point RAGCTX_QDRANT_"
            "PATH / RAGCTX_QDRANT_URL at the store that served them",
            field="collection",
            value=collection,
        )
    current = current_documents(store, collection, tenant)
    docs = {d: doc for d, doc in current.items() if not _UNWRITABLE.search(d)}
    result = ExportResult(out=str(out), tenant=tenant, collection=collection)
    result.unwritable = sorted(set(current) - set(docs))
    result.traces = len(selected)
    queries: list[tuple[str, str]] = []
    qrels: list[tuple[str, str, int]] = []
    for trace in selected:
        resolve: dict[str, str | None] = dict(_chunk_docs(trace))
        unknown = [
            str(j["chunk_id"])
            for fb in trace["feedback"]
            for j in fb["judgments"]
            if not j.get("doc_id") and str(j.get("chunk_id")) not in resolve
        ]
        ids = sorted({c for c in unknown if _is_point_id(c)})  # the store takes UUIDs only
        if ids:
            found = store.retrieve(collection, ids)
            resolve.update({p.id: str(p.payload.get("doc_id")) for p in found})
        for fb in trace["feedback"]:
            for j in fb["judgments"]:
                chunk = j.get("chunk_id")
                if not j.get("doc_id") and resolve.get(str(chunk)) is None:
                    result.deleted.append(
                        DeletedJudgment(trace["id"], str(j["label"]), chunk_id=str(chunk))
                    )
        labels = _labels(trace, resolve)
        kept = {doc: label for doc, label in labels.items() if doc in docs}
        result.deleted += [
            DeletedJudgment(trace["id"], label, doc_id=doc)
            for doc, label in sorted(labels.items())
            if doc not in current
        ]
        if not trace.get("query"):
            result.no_text.append(trace["id"])
            continue
        if not any(_SCORES[label] for label in kept.values()):
            result.no_relevant.append(trace["id"])
            continue
        queries.append((trace["id"], str(trace["query"])))
        qrels += [(trace["id"], doc, _SCORES[label]) for doc, label in sorted(kept.items())]
    if not queries:
        raise InvalidInputError(
            f"none of the {len(selected)} judged traces of tenant {tenant!r} leaves a query with "
            f"a relevant current document ({len(result.no_text)} without query text, "
            f"{len(result.no_relevant)} without a relevant document, {len(result.deleted)} "
            "judged documents deleted since); nothing can be evaluated",
            field="traces",
        )
    result.queries = len(queries)
    result.judgments = len(qrels)
    result.relevant = sum(1 for *_, score in qrels if score)
    result.documents = len(docs)
    _write(out, queries, qrels, docs, result)
    return result


def _write(
    out: Path,
    queries: Sequence[tuple[str, str]],
    qrels: Sequence[tuple[str, str, int]],
    docs: Mapping[str, Mapping[str, str]],
    result: ExportResult,
) -> None:
    (out / "qrels").mkdir(parents=True, exist_ok=True)

    def lines(rel: str, rows: Iterable[str]) -> None:
        tmp = out / f"{rel}.tmp"
        with tmp.open("w", encoding="utf-8") as fh:
            fh.writelines(rows)
        os.replace(tmp, out / rel)

    def record(**fields: Any) -> str:
        return json.dumps(fields, ensure_ascii=False) + "\n"

    lines(
        "corpus.jsonl",
        (
            record(_id=d, title=doc["title"], text=doc["text"], metadata={})
            for d, doc in sorted(docs.items())
        ),
    )
    lines("queries.jsonl", (record(_id=q, text=t, metadata={}) for q, t in queries))
    lines(
        "qrels/test.tsv",
        ["query-id\tcorpus-id\tscore\n", *(f"{q}\t{d}\t{s}\n" for q, d, s in qrels)],
    )
    lines(REPORT, [json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n"])
