"""Failure counts over time: the trace store's judged traces, counted per failure category, per
day, tenant and policy version (``service.traces.diagnose`` says what each category means).

Written next to the quality history::

    eval/reports/
      failures.png    failures per category over days, one panel per tenant and policy version
      failures.md     one row per day, tenant and policy version
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.traces.diagnose import CATEGORIES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CATEGORIES",
    "FailureRow",
    "count_failures",
    "failures_figure",
    "failures_markdown",
    "plot_failures",
    "write_failures",
]


@dataclass(frozen=True, slots=True)
class FailureRow:
    """The failures of the judged traces of one day, tenant and policy version."""

    day: str  # YYYY-MM-DD (UTC) of the traces' creation
    tenant: str
    policy_version: str
    traces: int  # judged traces
    counts: dict[str, int]  # category -> failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "tenant": self.tenant,
            "policy_version": self.policy_version,
            "traces": self.traces,
            "counts": self.counts,
        }


def count_failures(traces: list[dict[str, Any]]) -> list[FailureRow]:
    """Count the failure categories of the traces that have feedback (others are skipped: only
    a judgment says what an answer should have had), oldest day first."""
    from service.traces.diagnose import failure_categories

    judged: Counter[tuple[str, str, str]] = Counter()
    counts: dict[tuple[str, str, str], Counter[str]] = {}
    for trace in traces:
        if not trace.get("feedback"):
            continue
        key = (
            str(trace["created_at"])[:10],
            str(trace["tenant"]),
            str(trace.get("policy_version") or "unknown"),
        )
        judged[key] += 1
        found = counts.setdefault(key, Counter())
        for failure in failure_categories(trace):
            found[failure["category"]] += 1
    return [
        FailureRow(
            day=day,
            tenant=tenant,
            policy_version=version,
            traces=judged[(day, tenant, version)],
            counts={c: counts[(day, tenant, version)].get(c, 0) for c in CATEGORIES},
        )
        for day, tenant, version in sorted(judged)
    ]


def failures_markdown(rows: list[FailureRow]) -> str:
    """One row per day, tenant and policy version: judged traces and failures per category."""
    lines = [
        "# ragctx failure counts (judged traces, per failure category)",
        "",
        "![failures](failures.png)",
        "",
        "| day | tenant | policy | judged traces | " + " | ".join(CATEGORIES) + " |",
        "|---" * (len(CATEGORIES) + 4) + "|",
    ]
    for r in rows:
        cells = " | ".join(str(r.counts.get(c, 0)) for c in CATEGORIES)
        lines.append(f"| {r.day} | {r.tenant} | {r.policy_version} | {r.traces} | {cells} |")
    if not rows:
        lines.append("\nNo judged traces yet: post feedback (`POST /v1/feedback`) first.")
    return "\n".join(lines) + "\n"


def failures_figure(rows: list[FailureRow]) -> Figure:
    """Failures per category over days, one panel per tenant and policy version (matplotlib's
    object API, no pyplot: safe to draw in a server's worker threads)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = sorted({(r.tenant, r.policy_version) for r in rows}) or [("(no judged traces)", "")]
    fig = Figure(figsize=(8, 3 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False)
    for ax, (tenant, version) in zip(axes[:, 0], panels, strict=True):
        mine = [r for r in rows if (r.tenant, r.policy_version) == (tenant, version)]
        xs = list(range(1, len(mine) + 1))
        for category in CATEGORIES:
            ys = [r.counts.get(category, 0) for r in mine]
            if any(ys):
                ax.plot(xs, ys, marker="o", label=category)
        ax.set_title(f"{tenant} {version}: failures per category (judged traces)")
        ax.set_xlabel("day (judged traces)")
        ax.set_xticks(xs, [f"{r.day}\n{r.traces}" for r in mine], fontsize=7)
        ax.set_ylabel("failures")
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if any(any(r.counts.values()) for r in mine):
            ax.legend(loc="upper left", fontsize=8)
    return fig


def plot_failures(rows: list[FailureRow], path: Path) -> None:
    """:func:`failures_figure`, written as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    failures_figure(rows).savefig(path, dpi=100)


def write_failures(rows: list[FailureRow], reports_dir: Path) -> tuple[Path, Path]:
    """``failures.png`` and ``failures.md`` in the reports folder; their paths."""
    reports = Path(reports_dir)
    reports.mkdir(parents=True, exist_ok=True)
    png, table = reports / "failures.png", reports / "failures.md"
    plot_failures(rows, png)
    table.write_text(failures_markdown(rows), "utf-8")
    return png, table
