"""``ragctx eval``: quality reports on BEIR data, and the gate that stops a regression.

Registered by ``service.cli`` as ``app.add_typer(eval_app, name="eval")``::

    ragctx eval DATASET_DIR [--json] [--json-out FILE]   # = ragctx eval run DATASET_DIR
    ragctx eval gate --baseline FILE [--current FILE] [--max-drop 0.01] [--max-p 0.01]
    ragctx eval subset SOURCE_DIR DEST_DIR [--queries 40] [--other-docs 200]
    ragctx eval injection [--split test|dev] [--data FILE] [--json]   # the injection screen
    ragctx eval export --from-traces --out DIR [--tenant T] [--since 7d] [--verdict V] [--json]
    ragctx eval replay --from-traces [--tenant T] [--since ISO] [--limit N] [--policy NAME]
    ragctx eval failures [--tenant T] [--since ISO] [--reports DIR] [--json]   # from traces
    ragctx eval conversations [--data DIR] [--corpus DIR] [--policy P] [--json]   # follow-ups

Exit codes: 0 ok, 1 a failed gate or documents that failed to ingest, 2 bad usage or input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer import _click
from typer.core import TyperGroup

from service.cli_export import export_command

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from eval import DocScore, EvalDataset, EvalParams, EvalReport, GateResult
    from eval.context_stage import CombinedScorer
    from eval.conversations import ConversationReport
    from service.settings import Settings
    from service.traces.replay import TraceDiff

err_console = Console(stderr=True)
out_console = Console()

DEFAULT_REPORTS = Path("eval/reports")


class _RunByDefault(TyperGroup):
    """``ragctx eval DATASET_DIR`` means ``ragctx eval run DATASET_DIR``."""

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        """Route anything that is not a sub-command (or help) to ``run``."""
        if args and args[0] not in self.commands and args[0] not in {"--help", "-h"}:
            args = ["run", *args]
        return super().parse_args(ctx, args)


eval_app = typer.Typer(
    cls=_RunByDefault,
    name="eval",
    help="Evaluate retrieval per stage on a BEIR dataset; gate a run against a baseline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# The eval extra (`pip install 'ragctx[eval]'`): the modules eval/ imports that the service
# does not install.
EVAL_EXTRA_MODULES = ("ranx", "ragas", "matplotlib")


@eval_app.callback()
def _needs_the_eval_extra() -> None:
    import importlib.util

    missing = [name for name in EVAL_EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        err_console.print(
            f"ragctx eval needs the eval extra, which is not installed (missing: "
            f"{', '.join(missing)}); install it with: pip install 'ragctx[eval]' "
            "(`make install` does)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)


@eval_app.command("run")
def run_command(
    dataset: Annotated[
        Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv.")
    ],
    *,
    reports: Annotated[
        Path, typer.Option(help="Reports folder: runs/, history.png, history.md.")
    ] = DEFAULT_REPORTS,
    json_out: Annotated[
        Path | None, typer.Option(help="Also write the report JSON to this file.")
    ] = None,
    save: Annotated[bool, typer.Option(help="File the run into the reports folder.")] = True,
    name: Annotated[str | None, typer.Option(help="Dataset name (default: folder).")] = None,
    split: Annotated[str, typer.Option(help="qrels split to evaluate.")] = "test",
    collection: Annotated[
        str | None, typer.Option(help="Eval collection (default: eval-<name>-<params hash>).")
    ] = None,
    k: Annotated[int, typer.Option(min=1, help="Hand-on cutoff: ragas metrics, attribution.")] = 10,
    leg_limit: Annotated[
        int | None,
        typer.Option(min=1, help="Chunks per leg for this run (default: the service's limits)."),
    ] = None,
    doc_score: Annotated[
        str, typer.Option(help="Chunk-to-document scores of fused stages: max | sum.")
    ] = "max",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress (stderr).")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Ingest DATASET incrementally, run every test query, score each stage, file a report."""
    from eval import DocScore, load_dataset, write_run
    from service.cli_common import setup_logging
    from service.wiring import load_settings

    setup_logging(verbose)
    settings = load_settings()
    data = load_dataset(dataset, name=name, split=split)
    params = eval_params(
        settings,
        k=k,
        doc_score=DocScore.parse(doc_score),
        collection=collection,
        leg_limit=leg_limit,
    )
    report = _evaluate(settings, data, params, show_progress=progress and not as_json)
    if save:
        files = write_run(report, reports)
        err_console.print(
            f"report: {files.json} and {files.markdown}; history: {files.history_png}",
            highlight=False,
        )
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(report.model_dump_json() + "\n", "utf-8")
    if as_json:
        sys.stdout.write(report.model_dump_json() + "\n")
    else:
        _print_report(report)
    if report.ingest.failed:
        raise typer.Exit(1)


@eval_app.command("gate")
def gate_command(
    *,
    baseline: Annotated[Path, typer.Option(help="Baseline report JSON (e.g. eval/baselines/…).")],
    current: Annotated[
        Path | None,
        typer.Option(help="Report under test (default: the newest run on the same dataset)."),
    ] = None,
    reports: Annotated[Path, typer.Option(help="Where to find the newest run.")] = DEFAULT_REPORTS,
    max_drop: Annotated[
        float, typer.Option(min=0.0, help="Tolerated drop of a metric's mean.")
    ] = 0.01,
    max_p: Annotated[float, typer.Option(help="Significance level of the paired test.")] = 0.01,
    stat_test: Annotated[str, typer.Option(help="student (paired t-test) | fisher.")] = "student",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Exit 1 when a metric of a stage dropped significantly by more than --max-drop."""
    from core.errors import InvalidInputError
    from eval import gate, latest_run, load_report

    base = load_report(baseline)
    if current is None:
        found = latest_run(reports, sha256=base.dataset.sha256)
        if found is None:
            raise InvalidInputError(
                f"no run on dataset {base.dataset.name!r} (sha256 "
                f"{base.dataset.sha256[:12]}…) in {reports / 'runs'}; run "
                "`ragctx eval DATASET_DIR` first, or pass --current FILE",
                field="current",
            )
        current = found
    result = gate(load_report(current), base, max_drop=max_drop, max_p=max_p, stat_test=stat_test)
    if as_json:
        payload = {"baseline": str(baseline), "current": str(current), **result.to_dict()}
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        _print_gate(result, baseline=baseline, current=current)
    if not result.passed:
        raise typer.Exit(1)


@eval_app.command("subset")
def subset_command(
    source: Annotated[Path, typer.Argument(help="BEIR folder to cut from.")],
    dest: Annotated[Path, typer.Argument(help="Folder to write the subset into.")],
    *,
    queries: Annotated[int, typer.Option(min=1, help="First N judged queries.")] = 40,
    other_docs: Annotated[int, typer.Option(min=0, help="Unjudged documents to add.")] = 200,
    seed: Annotated[str, typer.Option(help="Seed of the sha256 order of others.")] = "ragctx-ci",
) -> None:
    """Write a small fixed BEIR subset (for CI): same arguments, same bytes."""
    from eval import subset

    out = subset(source, dest, queries=queries, other_docs=other_docs, seed=seed)
    err_console.print(f"wrote {out}", highlight=False)


eval_app.command("export")(export_command)


@eval_app.command("injection")
def injection_command(
    *,
    split: Annotated[str, typer.Option(help="Split of the labelled set: test | dev.")] = "test",
    data: Annotated[
        Path | None,
        typer.Option(help="Labelled JSONL (default: data/injection/labelled.jsonl)."),
    ] = None,
    reports: Annotated[
        Path, typer.Option(help="Reports folder: the result is appended to injection.jsonl.")
    ] = DEFAULT_REPORTS,
    save: Annotated[bool, typer.Option(help="Record the result in the history.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    show: Annotated[int, typer.Option(min=0, help="Misses and false alarms to list.")] = 20,
) -> None:
    """Precision, recall and F1 of the injection screen on a labelled set (no models)."""
    from assembler.policy_schema import Injection
    from assembler.rules.injection import injection_signals
    from eval.history import record_injection
    from eval.injection import DEFAULT_DATA, evaluate_screen, load_labelled

    path = DEFAULT_DATA if data is None else data
    rows = load_labelled(path, split=split)
    rule = Injection()
    result = evaluate_screen(
        rows, lambda text: bool(injection_signals(rule, text)), split=split, data=str(path)
    )
    if save:
        history = record_injection(result.to_dict(), reports)
        err_console.print(f"history: {history}", highlight=False)
    if as_json:
        payload = {
            **result.to_dict(),
            "missed": [r.text for r in result.missed],
            "false_alarms": [r.text for r in result.false_alarms],
        }
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
        return
    out_console.print(
        f"injection screen on {path} ({split}): precision {result.precision:.3f}, recall "
        f"{result.recall:.3f}, F1 {result.f1:.3f} (tp {result.tp}, fp {result.fp}, fn "
        f"{result.fn}, tn {result.tn})",
        highlight=False,
    )
    for title, found in (("missed", result.missed), ("false alarm", result.false_alarms)):
        for row in found[:show]:
            out_console.print(f"{title} [{row.group}] {row.text!r}", highlight=False, markup=False)
        if len(found) > show:
            out_console.print(f"… {len(found) - show} more {title}(s)", highlight=False)


@eval_app.command("conversations")
def conversations_command(
    *,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Conversation set: conversations.jsonl + qrels.tsv "
            "(default: data/eval/conversations)."
        ),
    ] = None,
    corpus: Annotated[
        Path | None,
        typer.Option(help="One folder per tenant of the set (default: data/docs)."),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            help="Policy whose conversation.retrieval builds the query (default: the "
            "settings' default policy)."
        ),
    ] = None,
    reports: Annotated[
        Path, typer.Option(help="Reports folder: conversations.json, conversations.md.")
    ] = DEFAULT_REPORTS,
    save: Annotated[bool, typer.Option(help="Write the report files.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Last user turn alone versus conversation-aware retrieval on a conversational set: the
    corpus is ingested into a temporary embedded store, both query forms run through the real
    hybrid retrieval (and the reranker, when a trained one is configured), and ranx scores
    them (recall@5/10, nDCG@10, MRR@10), with a per-conversation win/loss count."""
    import tempfile

    from assembler.policy import PolicyError
    from core.defaults import TOP_K
    from core.errors import InvalidInputError
    from eval.conversations import (
        DEFAULT_CORPUS,
        DEFAULT_DATA,
        evaluate_conversations,
        load_conversations,
        tenant_folders,
        write_conversation_report,
    )
    from index.edge import EdgeStore
    from ingest import Chunker, SyncOptions
    from service import wiring
    from service.cli_common import setup_logging
    from service.errors import UnknownPolicyError
    from service.runtime import PolicyBook

    setup_logging(verbose)
    settings = wiring.load_settings()
    conversations = load_conversations(DEFAULT_DATA if data is None else data)
    corpus_dir = DEFAULT_CORPUS if corpus is None else corpus
    name = policy or settings.default_policy
    try:  # a bad set, corpus or policy fails before any model loads
        rule = PolicyBook(settings.policy_dir).get(name).policy.conversation.retrieval
    except (UnknownPolicyError, PolicyError) as err:
        raise InvalidInputError(f"--policy {name!r}: {err}", field="policy") from err
    tenant_folders(conversations, corpus_dir)
    encoders = wiring.load_encoders(settings)
    chunker = Chunker.for_encoder(wiring.chunking_params(settings), encoders.dense)
    choice = wiring.measured_reranker(settings)
    with tempfile.TemporaryDirectory(prefix="ragctx-eval-conversations-") as tmp:
        store = EdgeStore(Path(tmp), owner="ragctx eval conversations")
        try:
            report = evaluate_conversations(
                conversations,
                corpus=corpus_dir,
                store=store,
                encoders=encoders,
                chunker=chunker,
                reranker=choice.reranker,
                retrieval=wiring.retrieval_params(settings, top_k=TOP_K),
                rule=rule,
                policy=name,
                rerank_note=choice.note,
                sync_options=SyncOptions(max_doc_chars=settings.max_doc_chars),
            )
        finally:
            store.close()
    if save:
        files = write_conversation_report(report, reports)
        err_console.print(f"report: {files.json} and {files.markdown}", highlight=False)
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict()) + "\n")
    else:
        _print_conversations(report)


def _print_conversations(report: ConversationReport) -> None:
    from eval.conversations import FORMS, METRICS, WIN_METRIC

    rule = ", ".join(f"{k}={v}" for k, v in report.rule.items())
    table = Table(title=f"ragctx eval conversations: policy {report.policy} ({rule})")
    table.add_column("form")
    for metric in METRICS:
        table.add_column(metric, justify="right")
    for form in FORMS:
        values = report.metrics[form]
        table.add_row(form, *["n/a" if values[m] is None else f"{values[m]:.4f}" for m in METRICS])
    out_console.print(table)
    w = report.wins
    out_console.print(
        f"{report.dataset['conversations']} conversations; on {WIN_METRIC} the "
        f"conversation-aware query is better in {w['conversation']}, the last turn alone in "
        f"{w['last_turn']}, tied in {w['tie']}; rerank: {report.rerank['note']}",
        highlight=False,
    )


def eval_params(
    settings: Settings,
    *,
    k: int = 10,
    doc_score: DocScore | None = None,
    collection: str | None = None,
    leg_limit: int | None = None,
) -> EvalParams:
    """Evaluation parameters from settings: the service's own retrieval parameters, unless
    ``leg_limit`` overrides both leg limits for this run."""
    from dataclasses import replace

    from core.defaults import TOP_K
    from eval import DocScore, EvalParams
    from ingest import SyncOptions
    from service.wiring import judge_params, retrieval_params

    retrieval = retrieval_params(settings, top_k=TOP_K)
    if leg_limit is not None:
        retrieval = replace(retrieval, dense_limit=leg_limit, bm25_limit=leg_limit)
    recorded = settings.model_dump(mode="json", exclude={"qdrant_api_key", "judge_api_key"})
    return EvalParams(
        retrieval=retrieval,
        k=k,
        doc_score=DocScore.MAX if doc_score is None else doc_score,
        collection=collection,
        sync=SyncOptions(max_doc_chars=settings.max_doc_chars),
        judge=judge_params(settings),
        settings=recorded,
    )


def _context_scorer(settings: Settings) -> CombinedScorer | None:
    """The context stage: the default policy against the naive packer, cl100k_base budgets;
    and the whole prompt (``support-chat`` when the policy folder has it) against LangChain's
    trim-the-history-then-stuff."""
    from datetime import UTC, datetime

    from assembler.policy import load_policy
    from assembler.tokens import tiktoken_counter
    from eval.context_stage import AssemblerContextScorer, CombinedScorer
    from eval.prompt_stage import WholePromptScorer

    path = settings.policy_dir / f"{settings.default_policy}.yaml"
    if not path.exists():
        err_console.print(
            f"[yellow]note[/yellow] no policy at {path}: the context stage is not run "
            "(set RAGCTX_POLICY_DIR)"
        )
        return None
    policy = load_policy(path).policy
    counter, now = tiktoken_counter("cl100k_base"), datetime.now(UTC)
    chat = settings.policy_dir / "support-chat.yaml"
    whole = load_policy(chat).policy if chat.exists() else policy
    return CombinedScorer(
        (
            AssemblerContextScorer(policy=policy, counter=counter, now=now),
            WholePromptScorer(policy=whole, counter=counter, now=now),
        )
    )


def _evaluate(
    settings: Settings, data: EvalDataset, params: EvalParams, *, show_progress: bool
) -> EvalReport:
    from dataclasses import replace

    from eval import run
    from ingest import Chunker
    from service import wiring
    from service.cli_common import progress_bars

    with wiring.opened_store(settings, owner="ragctx eval") as store:
        encoders = wiring.load_encoders(settings)
        chunker = Chunker.for_encoder(wiring.chunking_params(settings), encoders.dense)
        choice = wiring.measured_reranker(settings)
        reranker = choice.reranker
        params = replace(params, rerank_note=choice.note)
        scorer = _context_scorer(settings)
        with progress_bars(show_progress) as bars:
            return run(
                data,
                store=store,
                encoders=encoders,
                chunker=chunker,
                reranker=reranker,
                params=params,
                progress=None if bars is None else _EvalBars(bars),
                context_scorer=scorer,
            )


class _EvalBars:
    """An evaluation's progress: one bar per phase (ingest, queries, scoring)."""

    def __init__(self, bars: Progress) -> None:
        self._bars = bars
        self._task: TaskID | None = None

    def phase(self, name: str, total: int | None) -> None:
        self._task = self._bars.add_task(name, total=total)

    def advance(self, n: int) -> None:
        if self._task is not None:
            self._bars.advance(self._task, n)


def _print_report(report: EvalReport) -> None:
    from eval.metrics import IR_METRICS, ragas_metric_names

    k = report.params.k
    names = (*IR_METRICS, *ragas_metric_names(k))
    labels = ("nDCG@10", "R@100", "MRR@10", "MAP@100", f"ctxP@{k}", f"ctxR@{k}")
    table = Table(title=f"ragctx eval {report.dataset.name}: {report.collection}")
    table.add_column("stage")
    for label in (*labels, "med ms", "p95 ms"):
        table.add_column(label, justify="right")
    inactive = []
    for stage, sr in report.stages.items():
        if not sr.active:
            table.add_row(stage, "inactive", *[""] * (len(names) + 1))
            inactive.append(f"{stage}: {sr.note}")
            continue
        cells = ["n/a" if sr.metrics.get(m) is None else f"{sr.metrics[m]:.4f}" for m in names]
        lat = [f"{sr.latency_ms.get(x, 0.0):.1f}" for x in ("median", "p95")]
        table.add_row(stage, *cells, *lat)
    out_console.print(table)
    for line in inactive:
        out_console.print(f"inactive {line}", highlight=False)
    out_console.print(
        f"attribution (top {report.attribution.k}): "
        + ", ".join(f"{key} {value}" for key, value in report.attribution.totals.items()),
        highlight=False,
    )
    llm = report.llm_metrics
    out_console.print(f"LLM metrics: {llm.status} {llm.reason or ''}", highlight=False)


def _print_gate(result: GateResult, *, baseline: Path, current: Path) -> None:
    out_console.print(
        f"gate: {current} against {baseline} (paired {result.stat_test} test, max_p "
        f"{result.max_p}, max_drop {result.max_drop})",
        highlight=False,
    )
    for check in result.checks:
        style = "red" if check.failed else ("yellow" if check.delta < 0 else "green")
        out_console.print(f"[{style}]{check.describe()}[/{style}]", highlight=False)
    for problem in result.problems:
        out_console.print(f"[red]FAIL[/red]  {problem}", highlight=False)
    for note in result.notes:
        out_console.print(f"note  {note}", highlight=False)
    verdict = (
        "[green]passed[/green]"
        if result.passed
        else (
            f"[red]failed[/red]: {len(result.failures)} significant drop(s) beyond "
            f"{result.max_drop}"
            + (f", {len(result.problems)} problem(s)" if result.problems else "")
        )
    )
    out_console.print(f"gate {verdict}", highlight=False)


@eval_app.command("replay")
def replay_command(
    *,
    from_traces: Annotated[
        bool, typer.Option("--from-traces", help="Replay requests recorded in the trace store.")
    ] = False,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's traces.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only traces from this time on (ISO 8601; naive is UTC).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many traces, newest first.")] = 100,
    policy: Annotated[
        str | None, typer.Option(help="Replay under this policy (default: each trace's own).")
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="Trace store URL (default: RAGCTX_TRACE_DB).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Re-run recorded requests against the current index and policies; show what changed in
    each packed context (added, removed with the reason, reordered, tokens). Exit 1 when a
    trace could not be replayed (each is reported)."""
    from core.errors import InvalidInputError
    from service.cli_traces import MAX_LISTED, _since, open_trace_db
    from service.errors import UnknownPolicyError
    from service.runtime import PolicyBook
    from service.telemetry import build_telemetry
    from service.traces.replay import replay_trace, summary
    from service.wiring import build_runtime, load_models, load_settings, opened_store

    if not from_traces:
        raise InvalidInputError("ragctx eval replay needs --from-traces (the only source)")
    if not 1 <= limit <= MAX_LISTED:
        raise InvalidInputError(f"--limit {limit}: use 1 to {MAX_LISTED}")
    start = _since(since)
    settings = load_settings(trace_db=db)
    if policy is not None:  # an unknown name fails before any model loads
        try:
            PolicyBook(settings.policy_dir).get(policy)
        except UnknownPolicyError as err:
            raise InvalidInputError(f"--policy {policy!r}: {err}", field="policy") from err
    with open_trace_db(db) as traces_db:
        traces = traces_db.list(tenant, since=start, limit=limit)
    diffs = []
    if traces:
        telemetry = build_telemetry("none")
        with opened_store(settings, owner="ragctx eval replay") as store:
            runtime = build_runtime(
                settings,
                store=store,
                telemetry=telemetry,
                keys=None,
                models=load_models(settings),
                traces=False,
            )
            diffs = [replay_trace(t, runtime, policy=policy) for t in reversed(traces)]
        telemetry.shutdown()
    counts = summary(diffs)
    if as_json:
        out = {"summary": counts, "traces": [d.to_dict() for d in diffs]}
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    else:
        _print_replay(diffs, counts)
    if counts["error"]:
        raise typer.Exit(1)


def _print_replay(diffs: list[TraceDiff], counts: dict[str, int]) -> None:
    def chunk(entry: dict[str, Any]) -> str:
        return f"{entry.get('doc_id') or '?'} {str(entry['chunk_id'])[:8]}"

    table = Table(title="ragctx eval replay: the packed context now vs recorded")
    for col in ("trace", "tenant", "policy", "status", "added @pos", "removed (reason)"):
        table.add_column(col, no_wrap=col in ("trace", "status"))
    table.add_column("reordered")
    table.add_column("tokens", justify="right", no_wrap=True)
    for d in diffs:
        tokens = "" if d.token_change is None else f"{d.tokens_before}→{d.tokens_after}"
        policy = d.policy_before or "?"
        if d.policy_after and d.policy_after != d.policy_before:
            policy += f"→{d.policy_after}"
        table.add_row(
            d.trace_id[:12],
            d.tenant,
            policy,
            d.status,
            "\n".join(f"+{chunk(a)} @{a['position']}" for a in d.added),
            "\n".join(f"-{chunk(r)} ({r['reason']})" for r in d.removed),
            "\n".join(f"{chunk(r)} {r['old']}→{r['new']}" for r in d.reordered),
            tokens,
        )
    out_console.print(table)
    for d in diffs:
        if d.error is not None:
            out_console.print(f"{d.status} {d.trace_id}: {d.error}", markup=False, highlight=False)
    err_console.print(
        ", ".join(f"{counts[k]} {k}" for k in ("traces", "unchanged", "changed", "skipped"))
        + f", {counts['error']} failed",
        highlight=False,
    )


@eval_app.command("failures")
def failures_command(
    *,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's traces.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only traces from this time on (ISO 8601; naive is UTC).")
    ] = None,
    limit: Annotated[
        int, typer.Option(help="At most this many judged traces per verdict, newest first.")
    ] = 10_000,
    reports: Annotated[
        Path, typer.Option(help="Reports folder: failures.png, failures.md.")
    ] = DEFAULT_REPORTS,
    save: Annotated[bool, typer.Option(help="Write the plot and table.")] = True,
    db: Annotated[
        str | None, typer.Option("--db", help="Trace store URL (default: RAGCTX_TRACE_DB).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Failure categories of the judged traces, counted per day, tenant and policy version, into
    the quality history (failures.png, failures.md)."""
    from core.errors import InvalidInputError
    from eval.failures import CATEGORIES, count_failures, write_failures
    from service.cli_traces import MAX_LISTED, _since, open_trace_db
    from service.traces import VERDICTS

    if not 1 <= limit <= MAX_LISTED:
        raise InvalidInputError(f"--limit {limit}: use 1 to {MAX_LISTED}")
    start = _since(since)
    with open_trace_db(db) as store:
        by_id = {
            t["id"]: t
            for verdict in VERDICTS
            for t in store.list(tenant, since=start, verdict=verdict, limit=limit)
        }
    rows = count_failures(list(by_id.values()))
    if save:
        png, table = write_failures(rows, reports)
        err_console.print(f"failures: {png} and {table}", highlight=False)
    if as_json:
        sys.stdout.write(json.dumps({"rows": [r.to_dict() for r in rows]}) + "\n")
        return
    out = Table(title="ragctx eval failures: judged traces per day, tenant and policy version")
    for col in ("day", "tenant", "policy", "judged", *CATEGORIES):
        out.add_column(col, justify="right" if col in CATEGORIES or col == "judged" else "left")
    for r in rows:
        out.add_row(
            r.day,
            r.tenant,
            r.policy_version,
            str(r.traces),
            *(str(r.counts[c]) for c in CATEGORIES),
        )
    out_console.print(out)
    err_console.print(f"{sum(r.traces for r in rows)} judged traces", highlight=False)
