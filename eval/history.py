"""The reports folder: every run's JSON and Markdown, and the history of runs as PNG and table.

Layout (``runs/`` is not committed)::

    eval/reports/
      runs/<UTC timestamp>-<dataset>.json   the whole report
      runs/<UTC timestamp>-<dataset>.md     its summary
      history.png                           nDCG@10 per stage over runs, one panel per dataset
      history.md                            one row per run
      injection.jsonl                       the injection screen's P/R/F1, one line per run
      injection.md                          the same as a table
      failures.png, failures.md             failure categories of judged traces (eval.failures)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import InvalidInputError
from eval.report import STAGE_ORDER, EvalReport, load_report
from eval.summary import render_markdown

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "HistoryRow",
    "RunFiles",
    "history_figure",
    "latest_run",
    "read_history",
    "read_injection_history",
    "record_injection",
    "write_run",
]

log = logging.getLogger(__name__)

HISTORY_METRIC = "ndcg@10"


@dataclass(frozen=True, slots=True)
class RunFiles:
    """Where one run's files went."""

    json: Path
    markdown: Path
    history_png: Path
    history_md: Path


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One past run, as the history shows it."""

    path: Path
    created_at: str
    dataset: str
    sha256: str
    commit: str
    metrics: dict[str, dict[str, float | None]]  # stage -> metric -> mean (active stages)


def write_run(report: EvalReport, reports_dir: Path) -> RunFiles:
    """Write the report's JSON and Markdown under ``runs/``, then redraw the history."""
    runs = Path(reports_dir) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(report.created_at).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = f"{stamp}-{report.dataset.name}-{report.run_id}"
    json_path = runs / f"{stem}.json"
    md_path = runs / f"{stem}.md"
    json_path.write_text(report.model_dump_json() + "\n", "utf-8")
    md_path.write_text(render_markdown(report, history_png="../history.png"), "utf-8")
    rows = read_history(reports_dir)
    png, table = Path(reports_dir) / "history.png", Path(reports_dir) / "history.md"
    plot_history(rows, png)
    table.write_text(history_markdown(rows), "utf-8")
    return RunFiles(json=json_path, markdown=md_path, history_png=png, history_md=table)


def read_history(reports_dir: Path) -> list[HistoryRow]:
    """Every valid report under ``runs/``, oldest first; other files are skipped with a
    warning naming the file and what is wrong with it."""
    rows: list[HistoryRow] = []
    for path in sorted((Path(reports_dir) / "runs").glob("*.json")):
        try:
            report = load_report(path)
        except InvalidInputError as err:
            log.warning("skipping it in the history: %s", err)
            continue
        rows.append(
            HistoryRow(
                path=path,
                created_at=report.created_at,
                dataset=report.dataset.name,
                sha256=report.dataset.sha256,
                commit=(report.environment.git.commit or "")[:8],
                metrics={stage: dict(s.metrics) for stage, s in report.stages.items() if s.active},
            )
        )
    return sorted(rows, key=lambda r: r.created_at)


def latest_run(reports_dir: Path, *, sha256: str | None = None) -> Path | None:
    """The newest run's JSON, optionally on the dataset with checksum ``sha256``."""
    rows = [r for r in read_history(reports_dir) if sha256 is None or r.sha256 == sha256]
    return rows[-1].path if rows else None


def history_markdown(rows: list[HistoryRow]) -> str:
    """One row per run: date, dataset, commit, nDCG@10 per stage."""
    stages = [s for s in STAGE_ORDER if any(s in r.metrics for r in rows)]
    lines = [
        f"# ragctx eval history ({HISTORY_METRIC} per stage)",
        "",
        "![history](history.png)",
        "",
        "| date | dataset | commit | " + " | ".join(stages) + " | report |",
        "|---" * (len(stages) + 4) + "|",
    ]
    for r in rows:
        cells = []
        for s in stages:
            value = r.metrics.get(s, {}).get(HISTORY_METRIC)
            cells.append("" if value is None else f"{value:.4f}")
        lines.append(
            f"| {r.created_at} | {r.dataset} | {r.commit} | "
            + " | ".join(cells)
            + f" | runs/{r.path.name} |"
        )
    return "\n".join(lines) + "\n"


def history_figure(rows: list[HistoryRow]) -> Figure:
    """nDCG@10 per stage over runs, one panel per dataset (matplotlib's object API, no pyplot:
    safe to draw in a server's worker threads)."""
    from matplotlib.figure import Figure

    datasets = sorted({r.dataset for r in rows}) or ["(no runs)"]
    fig = Figure(figsize=(8, 3 * len(datasets)), layout="constrained")
    axes = fig.subplots(len(datasets), 1, squeeze=False)
    for ax, name in zip(axes[:, 0], datasets, strict=True):
        mine = [r for r in rows if r.dataset == name]
        xs = list(range(1, len(mine) + 1))
        for stage in STAGE_ORDER:
            ys = [r.metrics.get(stage, {}).get(HISTORY_METRIC) for r in mine]
            if any(y is not None for y in ys):
                ax.plot(xs, [float("nan") if y is None else y for y in ys], marker="o", label=stage)
        ax.set_title(f"{name}: {HISTORY_METRIC} per stage")
        ax.set_xlabel("run (date, commit)")
        ax.set_xticks(xs, [f"{r.created_at[:10]}\n{r.commit}" for r in mine], fontsize=7)
        ax.grid(alpha=0.3)
        if mine:
            ax.legend(loc="lower right", fontsize=8)
    return fig


def plot_history(rows: list[HistoryRow], path: Path) -> None:
    """:func:`history_figure`, written as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    history_figure(rows).savefig(path, dpi=100)


INJECTION_HISTORY = "injection.jsonl"


def record_injection(entry: dict[str, Any], reports_dir: Path) -> Path:
    """Append one injection-screen result (``eval.injection.InjectionResult.to_dict``) to
    ``injection.jsonl``, stamped with the time and git commit, and redraw ``injection.md``."""
    from eval.environment import git_state

    reports = Path(reports_dir)
    reports.mkdir(parents=True, exist_ok=True)
    git = git_state()
    row = {
        "kind": "injection",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": (git.commit or "")[:8],
        "dirty": git.dirty,
        **entry,
    }
    path = reports / INJECTION_HISTORY
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")
    rows = read_injection_history(reports)
    lines = [
        "# ragctx injection screen history",
        "",
        "| date | commit | split | precision | recall | F1 | tp | fp | fn | tn | data |",
        "|---" * 11 + "|",
    ]
    for r in rows:
        lines.append(
            "| "
            + " | ".join(
                str(r.get(key, ""))
                for key in ("created_at", "commit", "split", "precision", "recall", "f1")
                + ("tp", "fp", "fn", "tn", "data")
            )
            + " |"
        )
    (reports / "injection.md").write_text("\n".join(lines) + "\n", "utf-8")
    return path


def read_injection_history(reports_dir: Path) -> list[dict[str, Any]]:
    """Every readable line of ``injection.jsonl``, oldest first; others are skipped."""
    path = Path(reports_dir) / INJECTION_HISTORY
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        try:
            raw = json.loads(line)
        except ValueError as err:
            log.warning("skipping %s line %d in the history: %s", path, number, err)
            continue
        if isinstance(raw, dict) and raw.get("kind") == "injection":
            rows.append(raw)
    return rows
