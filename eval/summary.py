"""The Markdown summary of one report."""

from __future__ import annotations

import json

from eval.attribution import CROSS_COUNTS, Outcome
from eval.judge import LLMMetrics
from eval.metrics import IR_METRICS, ragas_metric_names
from eval.report import STAGE_ORDER, EvalReport

__all__ = ["render_markdown"]


def render_markdown(report: EvalReport, *, history_png: str | None = None) -> str:
    """A human summary: metrics and latency per stage, recall attribution, run facts."""
    data, env, ingest = report.dataset, report.environment, report.ingest
    commit = (env.git.commit or "unknown")[:12] + (" (dirty)" if env.git.dirty else "")
    ragas = ragas_metric_names(report.params.k)
    dataset_line = (
        f"- dataset `{data.name}` sha256 `{data.sha256[:16]}…`: {data.documents} documents, "
        f"{data.queries} queries, {data.judgments} judgments"
    )
    ingest_line = (
        f"- collection `{report.collection}`: {ingest.points} chunks; ingest "
        f"{report.timings.ingest_s:.1f} s (added {ingest.added}, updated {ingest.updated}, "
        f"unchanged {ingest.unchanged}, failed {ingest.failed})"
    )
    pools = [p.model_dump() for p in env.threads.pools or []]
    lines = [
        f"# ragctx eval: {data.name} ({report.created_at})",
        "",
        f"- run `{report.run_id}`, commit `{commit}`",
        dataset_line,
        ingest_line,
        f"- models: dense `{report.models.dense}`, rerank `{report.models.rerank}`",
        (
            f"- threads: torch intra-op {env.threads.torch_intra_op}, pools "
            f"{json.dumps(pools)}, CPUs {env.cpu_count}"
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
    totals = report.attribution.totals
    lines += [
        "",
        f"## Where relevant documents were lost (top {report.attribution.k})",
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
        json.dumps(report.params.model_dump(mode="json"), indent=1, sort_keys=True),
        "```",
    ]
    if history_png:
        lines += ["", "## History", "", f"![history]({history_png})"]
    return "\n".join(lines) + "\n"


def _llm_line(llm: LLMMetrics) -> str:
    if llm.status == "not_run":
        return f"Not run: {llm.reason}"
    metrics = ", ".join(f"{m} {_fmt(v)}" for m, v in llm.metrics.items())
    return f"{llm.status}: {metrics or 'no scores'} on stage {llm.stage}" + (
        f" ({llm.reason})" if llm.reason else ""
    )


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def _order(stage: str) -> int:
    return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)
