"""The quality gate: does a run retrieve significantly worse than a baseline?

For every stage measured in both reports and every metric scored per query in both, the gate
pairs the two runs' per-query scores (queries present in both, null scores left out) and runs
ranx's paired significance test (by default the two-sided paired Student's t-test, the one
``ranx.compare(stat_test="student")`` runs; ``random_seed`` feeds Fisher's randomization
test). A check fails only when the mean drops by more than ``max_drop`` *and* the drop is
significant at ``max_p``: noise never fails the gate, and neither does a significant drop
within the tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import InvalidInputError
from eval.report import EvalReport

__all__ = ["GateCheck", "GateResult", "gate"]


@dataclass(frozen=True, slots=True)
class GateCheck:
    """One stage and metric compared. ``wins`` counts queries where the current run scores
    higher than the baseline, ``losses`` lower."""

    stage: str
    metric: str
    baseline: float
    current: float
    delta: float
    p_value: float | None
    significant: bool
    failed: bool
    wins: int
    ties: int
    losses: int
    queries: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "stage": self.stage,
            "metric": self.metric,
            "baseline": round(self.baseline, 6),
            "current": round(self.current, 6),
            "delta": round(self.delta, 6),
            "p_value": self.p_value,
            "significant": self.significant,
            "failed": self.failed,
            "wtl": {"W": self.wins, "T": self.ties, "L": self.losses},
            "queries": self.queries,
        }

    def describe(self) -> str:
        """One line: which metric, how much, the p-value, W/T/L."""
        p = "n/a" if self.p_value is None else f"{self.p_value:.2g}"
        verdict = "FAIL" if self.failed else ("worse" if self.delta < 0 else "ok")
        return (
            f"{verdict:<5} {self.stage}/{self.metric}: {self.baseline:.4f} -> {self.current:.4f} "
            f"(delta {self.delta:+.4f}, p={p}, W/T/L {self.wins}/{self.ties}/{self.losses}, "
            f"n={self.queries})"
        )


@dataclass(frozen=True, slots=True)
class GateResult:
    """All checks; ``passed`` is False when any check failed or a stage went missing."""

    passed: bool
    max_drop: float
    max_p: float
    stat_test: str
    checks: tuple[GateCheck, ...]
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def failures(self) -> list[GateCheck]:
        """The checks that failed."""
        return [c for c in self.checks if c.failed]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "passed": self.passed,
            "max_drop": self.max_drop,
            "max_p": self.max_p,
            "stat_test": self.stat_test,
            "checks": [c.to_dict() for c in self.checks],
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


def gate(
    current: EvalReport,
    baseline: EvalReport,
    *,
    max_drop: float = 0.01,
    max_p: float = 0.01,
    stat_test: str = "student",
    random_seed: int = 42,
    metrics: Sequence[str] | None = None,
) -> GateResult:
    """Compare ``current`` with ``baseline`` query by query.

    Example::

        base = load_report(Path("eval/baselines/scifact.json"))
        result = gate(load_report(Path("run.json")), base, max_drop=0.01)
        for check in result.failures:
            print(check.describe())

    Args:
        current: the run under test.
        baseline: the reference run (same dataset, by checksum).
        max_drop: the tolerated drop of a metric's mean (absolute, e.g. 0.01 nDCG).
        max_p: the p-value below which a difference is significant.
        stat_test: ``student`` (paired t-test) or ``fisher`` (randomization), as in ranx.
        random_seed: seed of the randomization test.
        metrics: the metrics to check; default every metric both reports score per query.

    Returns:
        The checks, and whether the gate passed.

    Raises:
        InvalidInputError: the reports are on different datasets, or a bad parameter.
    """
    if stat_test not in {"student", "fisher"}:
        raise InvalidInputError(
            f"unknown stat_test {stat_test!r}; use 'student' (paired t-test) or 'fisher'",
            field="stat_test",
            value=stat_test,
        )
    if max_drop < 0 or not 0 < max_p <= 1:
        raise InvalidInputError(
            f"max_drop must be >= 0 and max_p in (0, 1], got {max_drop} and {max_p}",
            field="max_drop",
            value=(max_drop, max_p),
        )
    base_sum, cur_sum = baseline.dataset.sha256, current.dataset.sha256
    if base_sum != cur_sum:
        raise InvalidInputError(
            f"the baseline was measured on dataset {baseline.dataset.name!r} "
            f"(sha256 {base_sum[:12]}…) and this run on {current.dataset.name!r} "
            f"(sha256 {cur_sum[:12]}…); gate a run against a baseline of the same data",
            field="baseline",
        )
    checks: list[GateCheck] = []
    problems: list[str] = []
    notes: list[str] = []
    for stage, base_stage in baseline.stages.items():
        cur_stage = current.stages.get(stage)
        if not base_stage.active:
            if cur_stage is not None and cur_stage.active:
                notes.append(f"stage {stage} runs now but was not measured in the baseline")
            continue
        if cur_stage is None or not cur_stage.active:
            problems.append(
                f"stage {stage} was measured in the baseline but not in this run"
                + (f" ({cur_stage.note})" if cur_stage is not None and cur_stage.note else "")
            )
            continue
        names = [m for m in base_stage.per_query if m in cur_stage.per_query]
        if metrics is not None:
            names = [m for m in names if m in metrics]
        for metric in names:
            check = _check(
                stage,
                metric,
                base_stage.per_query[metric],
                cur_stage.per_query[metric],
                max_drop=max_drop,
                max_p=max_p,
                stat_test=stat_test,
                random_seed=random_seed,
            )
            if check is None:
                notes.append(f"{stage}/{metric}: no query scored in both runs")
            else:
                checks.append(check)
    passed = not problems and not any(c.failed for c in checks)
    return GateResult(
        passed=passed,
        max_drop=max_drop,
        max_p=max_p,
        stat_test=stat_test,
        checks=tuple(checks),
        problems=tuple(problems),
        notes=tuple(notes),
    )


def _check(
    stage: str,
    metric: str,
    base: Any,
    cur: Any,
    *,
    max_drop: float,
    max_p: float,
    stat_test: str,
    random_seed: int,
) -> GateCheck | None:
    from ranx.statistical_tests import compute_statistical_significance

    qids = sorted(q for q in base if q in cur and _real(base[q]) and _real(cur[q]))
    if not qids:
        return None
    b = np.array([float(base[q]) for q in qids], dtype=np.float64)
    c = np.array([float(cur[q]) for q in qids], dtype=np.float64)
    delta = float(c.mean() - b.mean())
    p_value: float | None = None
    if len(qids) > 1 and not np.array_equal(b, c):
        result = compute_statistical_significance(
            model_names=["baseline", "current"],
            metric_scores={"baseline": {metric: b}, "current": {metric: c}},
            stat_test=stat_test,
            n_permutations=1000,
            max_p=max_p,
            random_seed=random_seed,
        )
        raw = result[frozenset(["baseline", "current"])][metric]["p_value"]
        p_value = None if raw is None or math.isnan(float(raw)) else float(raw)
    significant = p_value is not None and p_value <= max_p
    return GateCheck(
        stage=stage,
        metric=metric,
        baseline=float(b.mean()),
        current=float(c.mean()),
        delta=delta,
        p_value=p_value,
        significant=significant,
        failed=significant and delta < -max_drop,
        wins=int((c > b).sum()),
        ties=int((c == b).sum()),
        losses=int((c < b).sum()),
        queries=len(qids),
    )


def _real(value: Any) -> bool:
    return value is not None and not math.isnan(float(value))
