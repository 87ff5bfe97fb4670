"""The quality view's data and charts: the quality report history (``eval.history``: what
``ragctx eval`` files into the reports folder) and the failure categories of the reviewer's
tenant's judged traces per day (``eval.failures``, what ``ragctx eval failures`` counts).

Charts are drawn server-side by matplotlib as SVG, text kept as ``<text>`` (escaped by
matplotlib's XML writer) and never parsed as mathtext, so a dataset or policy name is shown as
written. They need the ``eval`` extra (matplotlib); without it the page says so.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.traces import TraceStore
from service.traces.store import VERDICTS

if TYPE_CHECKING:
    from eval.failures import FailureRow
    from eval.history import HistoryRow

FAILURE_SCAN = 1000  # judged traces per verdict the failure counts look at, newest first
EVAL_EXTRA = "the quality view needs the eval extra (matplotlib): pip install 'ragctx[eval]'"
_draw = threading.Lock()  # rc_context changes matplotlib's global settings


def history_rows(reports_dir: Path) -> list[HistoryRow]:
    """The quality reports filed under ``reports_dir``, oldest first (raises ImportError
    without the eval extra)."""
    from eval.history import read_history

    return read_history(reports_dir)


def failure_rows(store: TraceStore, tenant: str) -> list[FailureRow]:
    """The tenant's judged traces counted per day, policy version and failure category."""
    from eval.failures import count_failures

    by_id: dict[str, dict[str, Any]] = {}
    for verdict in VERDICTS:
        for trace in store.list(tenant, verdict=verdict, limit=FAILURE_SCAN):
            by_id[trace["id"]] = trace
    return count_failures(list(by_id.values()))


def history_svg(rows: list[HistoryRow]) -> str:
    """nDCG@10 per stage over runs, one panel per dataset, as an SVG document."""
    from eval.history import history_figure

    return _svg(lambda: history_figure(rows))


def failures_svg(rows: list[FailureRow]) -> str:
    """Failures per category over days, one panel per policy version, as an SVG document."""
    from eval.failures import failures_figure

    return _svg(lambda: failures_figure(rows))


def _svg(draw: Any) -> str:
    import matplotlib

    out = io.StringIO()
    with _draw, matplotlib.rc_context({"svg.fonttype": "none", "text.parse_math": False}):
        draw().savefig(out, format="svg")
    return out.getvalue()


def stages_of(rows: list[HistoryRow]) -> list[str]:
    """The stages any run scored, in report order."""
    from eval.report import STAGE_ORDER

    return [s for s in STAGE_ORDER if any(s in r.metrics for r in rows)]
