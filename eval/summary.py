"""The Markdown summary of one report."""

from __future__ import annotations

import json
from typing import Any

from eval.attribution import CROSS_COUNTS, Outcome
from eval.metrics import IR_METRICS, ragas_metric_names
from eval.report import STAGE_ORDER, EvalReport

__all__ = ["render_markdown"]


def render_markdown(report: EvalReport, *, history_png: str | None = None) -> str:
    """A human summary: metrics and latency per stage, recall attribution, run facts."""
    data, env = report.dataset, report.environment
    git = env.get("git", {})
    commit = str(git.get("commit") or "unknown")[:12] + (" (dirty)" if git.get("dirty") else "")
    k = int(report.params.get("k", 10))
    ragas = ragas_metric_names(k)
    ingest, timings = report.ingest, report.timings
    dataset_line = (
        f"- dataset `{data.get('name')}` sha256 `{str(data.get('sha256'))[:16]}…`: "
        f"{data.get('documents')} documents, {data.get('queries')} queries, "
        f"{data.get('judgments')} judgments"
    )
    ingest_line = (
        f"- collection `{report.collection}`: {ingest.get('points')} chunks; ingest "
        f"{timings.get('ingest_s', 0):.1f} s (added {ingest.get('added')}, updated "
        f"{ingest.get('updated')}, unchanged {ingest.get('unchanged')}, failed "
        f"{ingest.get('failed')})"
    )
    threads = env.get("threads", {})
    lines = [
        f"# ragctx eval: {data.get('name')} ({report.created_at})",
        "",
        f"- run `{report.run_id}`, commit `{commit}`",
        dataset_line,
        ingest_line,
        f"- models: dense `{report.models.get('dense')}`, rerank `{report.models.get('rerank')}`",
        (
            f"- threads: torch intra-op {threads.get('torch_intra_op')}, pools "
            f"{json.dumps(threads.get('pools', []))}, CPUs {env.get('cpu_count')}"
        ),
        "",
        "## Metrics per stage",
        "",
        "| stage | "
        + " | ".join(IR_METRICS)
        + " | "
        + " | ".join(ragas)
        + " | median ms | p95 ms |",
        "|---" * (len(IR_METRICS) + len(ragas) + 3) + "|",
    ]
    for stage in sorted(report.stages, key=_order):
        sr = report.stages[stage]
        if not sr.active:
            lines.append(f"| {stage} | inactive: {sr.note} |")
            continue
        cells = [_fmt(sr.metrics.get(m)) for m in (*IR_METRICS, *ragas)]
        lat = [_fmt(sr.latency_ms.get(x), 1) for x in ("median", "p95")]
        lines.append(f"| {stage} | " + " | ".join(cells + lat) + " |")
    extra = {
        s: {m: v for m, v in sr.metrics.items() if m not in (*IR_METRICS, *ragas)}
        for s, sr in report.stages.items()
    }
    for stage, values in sorted(extra.items(), key=lambda kv: _order(kv[0])):
        if values:
            shown = ", ".join(f"{m} {_fmt(v)}" for m, v in sorted(values.items()))
            lines.append(f"\n{stage}: {shown}")
    totals: dict[str, Any] = dict(report.attribution.get("totals", {}))
    lines += [
        "",
        f"## Where relevant documents were lost (top {report.attribution.get('k')})",
        "",
        "| " + " | ".join(o.value for o in Outcome) + " |",
        "|---" * len(Outcome) + "|",
        "| " + " | ".join(str(totals.get(o.value, 0)) for o in Outcome) + " |",
        "",
        "Across those: " + ", ".join(f"{c} {totals.get(c, 0)}" for c in CROSS_COUNTS) + ".",
        "",
        "## LLM-judged metrics",
        "",
        _llm_line(report.llm_metrics),
        "",
        "## Parameters",
        "",
        "```json",
        json.dumps(report.params, indent=1, sort_keys=True),
        "```",
    ]
    if history_png:
        lines += ["", "## History", "", f"![history]({history_png})"]
    return "\n".join(lines) + "\n"


def _llm_line(llm: Any) -> str:
    status = llm.get("status")
    if status == "not_run":
        return f"Not run: {llm.get('reason')}"
    metrics = ", ".join(f"{m} {_fmt(v)}" for m, v in llm.get("metrics", {}).items())
    return f"{status}: {metrics or 'no scores'} on stage {llm.get('stage')}" + (
        f" ({llm['reason']})" if llm.get("reason") else ""
    )


def _fmt(value: Any, digits: int = 4) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def _order(stage: str) -> int:
    return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)
