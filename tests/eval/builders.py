"""Synthetic reports for gate and report tests: only the fields those read are meaningful."""

from __future__ import annotations

from collections.abc import Mapping

from eval.report import EvalReport, StageReport


def make_report(
    scores: Mapping[str, Mapping[str, Mapping[str, float]]],
    *,
    sha256: str = "abc123",
    name: str = "toy",
    created_at: str = "2026-01-01T00:00:00+00:00",
    inactive: Mapping[str, str] | None = None,
) -> EvalReport:
    """A report whose stages hold ``scores`` (stage -> metric -> query -> score)."""
    stages: dict[str, StageReport] = {
        stage: StageReport(
            active=True,
            metrics={m: sum(q.values()) / len(q) for m, q in per.items()},
            per_query={m: dict(q) for m, q in per.items()},
            latency_ms={"median": 1.0, "p95": 2.0},
        )
        for stage, per in scores.items()
    }
    for stage, note in (inactive or {}).items():
        stages[stage] = StageReport(active=False, note=note)
    return EvalReport(
        run_id="r" + created_at[-14:-6].replace(":", ""),
        created_at=created_at,
        dataset={"name": name, "sha256": sha256, "documents": 10, "queries": 3, "judgments": 4},
        collection="eval-toy",
        params={"k": 10},
        models={"dense": "m"},
        environment={"git": {"commit": "deadbeef", "dirty": False}, "threads": {}},
        stages=stages,
        attribution={"k": 10, "totals": {"found": 1}, "per_query": {}},
        llm_metrics={"status": "not_run", "reason": "no judge"},
        ingest={"added": 10, "points": 20},
        timings={"ingest_s": 1.0},
    )
