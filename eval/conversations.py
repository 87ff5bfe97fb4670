"""Conversational retrieval: the last user turn alone versus the conversation-aware query.

The set (``data/eval/conversations/``: ``conversations.jsonl`` and BEIR-shaped ``qrels.tsv``)
holds multi-turn conversations over the sample corpus (``data/docs/``) whose last user turn is
ambiguous alone ("and the staging ones?"). Each conversation belongs to one tenant and is asked
as that tenant with every group of the sample corpus, so the judged documents are the tenant's.
:func:`evaluate_conversations` ingests the corpus, runs both query forms through the real hybrid
retrieval (with the reranker passed in, if any), and scores each form's document ranking with
ranx (recall@5, recall@10, nDCG@10, MRR@10), plus a per-conversation win/loss count on nDCG@10.

Example::

    data = load_conversations(Path("data/eval/conversations"))
    report = evaluate_conversations(data, corpus=Path("data/docs"), store=store,
                                    encoders=encoders, chunker=chunker, reranker=None,
                                    retrieval=RetrievalParams(), rule=ConversationRetrieval())
    report.metrics["conversation"]["ndcg@10"]
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError
from core.types import Principal, Stage
from eval.environment import describe_environment
from eval.metrics import ir_metrics, mean
from eval.rankings import doc_ranking
from index import Encoders, Store
from ingest import Chunker, SourceSpec, SyncOptions, sync
from retrieval.conversation import RetrievalRule, conversation_query
from retrieval.hybrid import search
from retrieval.rerank import Reranker
from retrieval.types import RetrievalParams, Retrieved

__all__ = [
    "DEFAULT_CORPUS",
    "DEFAULT_DATA",
    "FORMS",
    "METRICS",
    "Conversation",
    "ConversationReport",
    "ConversationSet",
    "evaluate_conversations",
    "load_conversations",
    "tenant_folders",
    "write_conversation_report",
]

DEFAULT_DATA = Path("data/eval/conversations")
DEFAULT_CORPUS = Path("data/docs")
METRICS: tuple[str, ...] = ("recall@5", "recall@10", "ndcg@10", "mrr@10")
FORMS: tuple[str, ...] = ("last_turn", "conversation")
WIN_METRIC = "ndcg@10"
#: Every group of the sample corpus: a conversation sees all its tenant's documents.
SAMPLE_GROUPS: tuple[str, ...] = ("support", "engineering", "legal")
ROLES = frozenset({"system", "user", "assistant", "tool"})
COLLECTION = "eval-conversations"


@dataclass(frozen=True, slots=True)
class Conversation:
    """One conversation: its id, tenant, groups and messages ``(role, content)`` in order."""

    id: str
    tenant: str
    groups: tuple[str, ...]
    messages: tuple[tuple[str, str], ...]

    @property
    def user_turns(self) -> list[str]:
        """The user messages' texts, in order; the last one is the question."""
        return [content for role, content in self.messages if role == "user"]


@dataclass(frozen=True, slots=True)
class ConversationSet:
    """The conversations by id, their judgements ``{id: {doc_id: grade}}``, and the folder."""

    path: Path
    conversations: dict[str, Conversation]
    qrels: dict[str, dict[str, int]]
    sha256: str

    @property
    def tenants(self) -> list[str]:
        """The tenants the conversations belong to, sorted."""
        return sorted({c.tenant for c in self.conversations.values()})


def load_conversations(folder: Path) -> ConversationSet:
    """Read ``conversations.jsonl`` and ``qrels.tsv`` from ``folder``.

    A conversation line is ``{"_id", "tenant", "groups"?, "messages": [{"role", "content"}]}``;
    its last message is a user turn. ``qrels.tsv`` is BEIR's ``query-id corpus-id score`` (tab
    separated, header optional); every conversation needs a judged relevant document, and every
    judgement a conversation.

    Raises:
        InvalidInputError: a missing file, or a bad line (named by file and line number).
    """
    folder = Path(folder)
    conv_path, qrels_path = folder / "conversations.jsonl", folder / "qrels.tsv"
    for path in (conv_path, qrels_path):
        if not path.is_file():
            raise InvalidInputError(
                f"{path} not found; a conversation set is a folder with conversations.jsonl "
                "and qrels.tsv (see data/eval/conversations/)",
                field="data",
            )
    digest = hashlib.sha256()
    conversations: dict[str, Conversation] = {}
    raw_conv = conv_path.read_bytes()
    digest.update(raw_conv)
    for number, line in enumerate(raw_conv.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{conv_path}:{number}"
        conv = _conversation(line, where)
        if conv.id in conversations:
            raise InvalidInputError(f"{where}: duplicate conversation id {conv.id!r}")
        conversations[conv.id] = conv
    if not conversations:
        raise InvalidInputError(f"{conv_path} holds no conversation", field="data")
    raw_qrels = qrels_path.read_bytes()
    digest.update(raw_qrels)
    qrels = _qrels(raw_qrels.decode("utf-8", errors="replace"), qrels_path, conversations)
    unjudged = sorted(set(conversations) - {q for q, docs in qrels.items() if any(docs.values())})
    if unjudged:
        raise InvalidInputError(
            f"{qrels_path}: conversations without a judged relevant document: "
            f"{', '.join(unjudged[:10])}; judge each one (grade >= 1) or remove it"
        )
    return ConversationSet(folder, conversations, qrels, digest.hexdigest())


def _conversation(line: str, where: str) -> Conversation:
    try:
        raw = json.loads(line)
    except ValueError as err:
        raise InvalidInputError(f"{where}: not a JSON object ({err})") from err
    if not isinstance(raw, dict):
        raise InvalidInputError(f"{where}: not a JSON object")
    cid, tenant = raw.get("_id"), raw.get("tenant")
    if not isinstance(cid, str) or not cid.strip():
        raise InvalidInputError(f"{where}: '_id' must be a non-empty string")
    if not isinstance(tenant, str) or not tenant.strip():
        raise InvalidInputError(f"{where}: conversation {cid!r} needs a 'tenant' (a string)")
    groups = raw.get("groups", list(SAMPLE_GROUPS))
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise InvalidInputError(f"{where}: 'groups' must be a list of strings")
    messages = raw.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidInputError(f"{where}: conversation {cid!r} needs a list of 'messages'")
    out: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if role not in ROLES or not isinstance(content, str) or not content.strip():
            raise InvalidInputError(
                f"{where}: message {i} of {cid!r} needs a 'role' ({', '.join(sorted(ROLES))}) "
                "and a non-empty 'content' string"
            )
        out.append((role, content))
    if out[-1][0] != "user":
        raise InvalidInputError(
            f"{where}: conversation {cid!r} ends with a {out[-1][0]} message; its last message "
            "is the question, a user turn"
        )
    return Conversation(cid, tenant, tuple(groups), tuple(out))


def _qrels(
    text: str, path: Path, conversations: Mapping[str, Conversation]
) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or (number == 1 and line.startswith("query-id")):
            continue
        cols = line.split("\t")
        where = f"{path}:{number}"
        if len(cols) != 3:
            raise InvalidInputError(
                f"{where}: expected 'query-id<TAB>corpus-id<TAB>score', got {len(cols)} columns"
            )
        qid, doc, grade = (c.strip() for c in cols)
        if qid not in conversations:
            raise InvalidInputError(f"{where}: unknown conversation id {qid!r}")
        try:
            score = int(grade)
        except ValueError as err:
            raise InvalidInputError(f"{where}: score {grade!r} is not an integer") from err
        if score < 0 or not doc:
            raise InvalidInputError(f"{where}: needs a document id and a score >= 0")
        qrels.setdefault(qid, {})[doc] = score
    return qrels


@dataclass(frozen=True, slots=True)
class ConversationReport:
    """Both forms' metrics (means), the per-conversation scores and turns used, the win/loss
    count on nDCG@10, and what produced them."""

    created_at: str
    dataset: dict[str, Any]
    rule: dict[str, Any]
    metrics: dict[str, dict[str, float | None]]
    wins: dict[str, int]
    per_conversation: list[dict[str, Any]]
    rerank: dict[str, Any]
    retrieval: dict[str, Any]
    models: dict[str, Any]
    timings: dict[str, float]
    environment: dict[str, Any] = field(default_factory=dict)
    policy: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "kind": "conversations",
            "created_at": self.created_at,
            "dataset": self.dataset,
            "policy": self.policy,
            "rule": self.rule,
            "forms": list(FORMS),
            "metrics": self.metrics,
            "wins": self.wins,
            "rerank": self.rerank,
            "retrieval": self.retrieval,
            "models": self.models,
            "timings": self.timings,
            "environment": self.environment,
            "per_conversation": self.per_conversation,
        }

    def markdown(self) -> str:
        """The report as a Markdown page: metrics per form, wins, per conversation."""
        rule = ", ".join(f"{k}={v}" for k, v in self.rule.items())
        lines = [
            "# ragctx conversational retrieval: last user turn vs conversation-aware",
            "",
            (
                f"{self.created_at}, {self.dataset['conversations']} conversations "
                f"({self.dataset['path']}, sha256 {self.dataset['sha256'][:12]}), policy "
                f"{self.policy or '(none)'}: {rule}; rerank: {self.rerank['note']}"
            ),
            "",
            "| form | " + " | ".join(METRICS) + " |",
            "|---" * (len(METRICS) + 1) + "|",
        ]
        for form in FORMS:
            cells = [_fmt(self.metrics[form].get(m)) for m in METRICS]
            lines.append(f"| {form} | " + " | ".join(cells) + " |")
        w = self.wins
        lines += [
            "",
            (
                f"Per conversation on {WIN_METRIC}: conversation-aware better in "
                f"{w['conversation']}, last turn better in {w['last_turn']}, tied in {w['tie']}."
            ),
            "",
            (
                f"| conversation | tenant | turns used | {WIN_METRIC} last turn | "
                f"{WIN_METRIC} conversation |"
            ),
            "|---|---|---|---|---|",
        ]
        for row in self.per_conversation:
            lines.append(
                f"| {row['id']} | {row['tenant']} | {', '.join(map(str, row['turns_used']))} "
                f"of {row['user_turns']} | {_fmt(row['last_turn'][WIN_METRIC])} | "
                f"{_fmt(row['conversation'][WIN_METRIC])} |"
            )
        return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def evaluate_conversations(
    data: ConversationSet,
    *,
    corpus: Path,
    store: Store,
    encoders: Encoders,
    chunker: Chunker,
    reranker: Reranker | None,
    retrieval: RetrievalParams,
    rule: RetrievalRule,
    policy: str | None = None,
    rerank_note: str = "",
    sync_options: SyncOptions | None = None,
) -> ConversationReport:
    """Ingest ``corpus/<tenant>`` for every tenant of ``data`` into ``store``, then retrieve
    each conversation twice (the last user turn alone; the query ``rule`` builds from its user
    turns) and score both rankings against the judgements.

    The ranking scored is the final order (the reranker's when it acted, else the hybrid
    fusion's) over the whole fused list, chunks mapped to documents by max-passage.

    Raises:
        InvalidInputError: a tenant folder missing from ``corpus``, documents that fail to
            ingest, or a judged document the tenant's corpus does not hold.
    """
    started = time.perf_counter()
    doc_tenant = _ingest(data, corpus, store, encoders, chunker, sync_options)
    ingested = time.perf_counter()
    missing = sorted(
        f"{doc} ({data.conversations[q].tenant}, judged for {q})"
        for q, docs in data.qrels.items()
        for doc in docs
        if data.conversations[q].tenant not in doc_tenant.get(doc, set())
    )
    if missing:
        raise InvalidInputError(
            f"{data.path}/qrels.tsv judges documents the corpus {corpus} does not hold for "
            f"that tenant: {', '.join(missing[:5])}; fix the document ids (a file without a "
            "doc_id is named by its path under the tenant folder)"
        )
    params = replace(retrieval, top_k=retrieval.dense_limit + retrieval.bm25_limit)
    rankings: dict[str, dict[str, list[str]]] = {form: {} for form in FORMS}
    used: dict[str, tuple[int, ...]] = {}
    rerank_active = reranker is not None
    for cid, conv in data.conversations.items():
        principal = Principal(conv.tenant, conv.groups, name="eval-conversations")
        turns = conv.user_turns
        query = conversation_query(turns, rule, max_chars=params.max_query_chars)
        for form, asked in (("last_turn", turns[-1]), ("conversation", query)):
            got = search(
                asked,
                principal,
                collection=COLLECTION,
                store=store,
                encoders=encoders,
                reranker=reranker,
                params=params,
            )
            rerank_active = rerank_active and got.stages[Stage.RERANK].active
            rankings[form][cid] = _final_docs(got)
        used[cid] = query.indexes
    scores = {form: ir_metrics(data.qrels, rankings[form], METRICS) for form in FORMS}
    per_conversation, wins = _compare(data, scores, used)
    return ConversationReport(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        dataset={
            "path": str(data.path),
            "sha256": data.sha256,
            "conversations": len(data.conversations),
            "judged": sum(len(d) for d in data.qrels.values()),
            "corpus": str(corpus),
            "tenants": data.tenants,
        },
        policy=policy,
        rule={
            "previous_user_turns": rule.previous_user_turns,
            "decay": rule.decay,
            "first_user_turn": rule.first_user_turn,
        },
        metrics={form: {m: mean(scores[form][m]) for m in METRICS} for form in FORMS},
        wins=wins,
        per_conversation=per_conversation,
        rerank={
            "active": rerank_active,
            "model": None if reranker is None else reranker.name,
            "note": (
                "reranked"
                if rerank_active
                else (rerank_note or "no reranker configured; the hybrid order is scored")
            ),
        },
        retrieval={
            "dense_limit": params.dense_limit,
            "bm25_limit": params.bm25_limit,
            "rrf_k": params.rrf_k,
            "top_k": params.top_k,
        },
        models={"dense": encoders.dense.name, "backend": encoders.dense.backend},
        timings={
            "ingest_s": round(ingested - started, 3),
            "queries_s": round(time.perf_counter() - ingested, 3),
        },
        environment=describe_environment().model_dump(mode="json"),
    )


def _ingest(
    data: ConversationSet,
    corpus: Path,
    store: Store,
    encoders: Encoders,
    chunker: Chunker,
    options: SyncOptions | None,
) -> dict[str, set[str]]:
    """Sync each tenant's folder (public by default; documents keep their own groups); return
    the tenants holding each document id."""
    specs = [
        SourceSpec(folder, tenant=tenant, groups=("public",))
        for tenant, folder in tenant_folders(data, corpus).items()
    ]
    report = sync(
        specs,
        collection=COLLECTION,
        store=store,
        encoders=encoders,
        chunker=chunker,
        options=options or SyncOptions(),
    )
    if report.failed:
        raise InvalidInputError(
            f"{report.failed} documents of {corpus} failed to ingest: "
            + "; ".join(str(p) for p in report.problems[:3])
        )
    out: dict[str, set[str]] = {}
    for point in store.scroll(COLLECTION, fields=["doc_id", "tenant"]):
        out.setdefault(str(point.payload["doc_id"]), set()).add(str(point.payload["tenant"]))
    return out


def tenant_folders(data: ConversationSet, corpus: Path) -> dict[str, Path]:
    """``corpus/<tenant>`` for every tenant of ``data``.

    Raises:
        InvalidInputError: ``corpus`` or a tenant's folder in it is not a folder.
    """
    folders = {tenant: Path(corpus) / tenant for tenant in data.tenants}
    for tenant, folder in folders.items():
        if not folder.is_dir():
            raise InvalidInputError(
                f"the conversations name tenant {tenant!r}, but {folder} is not a folder; pass "
                "--corpus with one folder per tenant (like data/docs)",
                field="corpus",
            )
    return folders


def _final_docs(got: Retrieved) -> list[str]:
    """Document ids in the final order (rerank when it acted, else hybrid), max-passage."""
    if got.stages[Stage.RERANK].active:
        ordered = list(got.candidates)
    else:
        ordered = sorted(got.candidates, key=lambda c: c.stages[Stage.HYBRID].rank)
    return doc_ranking([c.doc_id for c in ordered])


def _compare(
    data: ConversationSet,
    scores: Mapping[str, Mapping[str, Mapping[str, float]]],
    used: Mapping[str, Sequence[int]],
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    wins = {"conversation": 0, "last_turn": 0, "tie": 0}
    rows = []
    for cid, conv in data.conversations.items():
        last = scores["last_turn"][WIN_METRIC][cid]
        both = scores["conversation"][WIN_METRIC][cid]
        wins["conversation" if both > last else "last_turn" if last > both else "tie"] += 1
        rows.append(
            {
                "id": cid,
                "tenant": conv.tenant,
                "user_turns": len(conv.user_turns),
                "turns_used": list(used[cid]),
                **{form: {m: scores[form][m][cid] for m in METRICS} for form in FORMS},
            }
        )
    return rows, wins


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """Where a conversational report was written."""

    json: Path
    markdown: Path


def write_conversation_report(report: ConversationReport, reports_dir: Path) -> ReportFiles:
    """Write ``conversations.json`` and ``conversations.md`` into ``reports_dir`` (the latest
    run; the JSON records its commit and time)."""
    reports = Path(reports_dir)
    reports.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(reports / "conversations.json", reports / "conversations.md")
    files.json.write_text(json.dumps(report.to_dict(), indent=1) + "\n", "utf-8")
    files.markdown.write_text(report.markdown(), "utf-8")
    return files
