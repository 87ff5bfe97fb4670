"""The gate: a significant drop beyond the tolerance fails (exit 1); noise never does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from core.errors import InvalidInputError
from eval.gate import gate
from service.cli_eval import eval_app
from tests.eval.builders import make_report

QUERIES = [f"q{i}" for i in range(200)]


def _scores(values: np.ndarray) -> dict[str, float]:
    return {q: float(v) for q, v in zip(QUERIES, np.clip(values, 0, 1), strict=True)}


def _pair(shift: float, noise: float, seed: int = 7) -> tuple[dict[str, float], dict[str, float]]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.8, len(QUERIES))
    return _scores(base), _scores(base + shift + rng.normal(0, noise, len(QUERIES)))


def test_a_significant_drop_beyond_the_tolerance_fails() -> None:
    base, worse = _pair(shift=-0.05, noise=0.05)
    result = gate(
        make_report({"hybrid": {"ndcg@10": worse}}),
        make_report({"hybrid": {"ndcg@10": base}}),
        max_drop=0.01,
    )
    assert not result.passed
    (check,) = result.failures
    assert check.stage == "hybrid"
    assert check.metric == "ndcg@10"
    assert check.delta == pytest.approx(-0.05, abs=0.01)
    assert check.p_value is not None
    assert check.p_value < 0.01
    assert check.losses > check.wins
    assert "FAIL  hybrid/ndcg@10" in check.describe()


def test_noise_passes() -> None:
    base, noisy = _pair(shift=0.0, noise=0.05)
    result = gate(
        make_report({"hybrid": {"ndcg@10": noisy}}), make_report({"hybrid": {"ndcg@10": base}})
    )
    assert result.passed
    assert not result.checks[0].significant


def test_a_significant_drop_within_the_tolerance_passes() -> None:
    base, slightly = _pair(shift=-0.005, noise=0.001)
    result = gate(
        make_report({"bm25": {"mrr@10": slightly}}),
        make_report({"bm25": {"mrr@10": base}}),
        max_drop=0.01,
    )
    assert result.checks[0].significant
    assert result.passed


def test_a_stage_measured_in_the_baseline_but_not_now_fails() -> None:
    base, _ = _pair(0.0, 0.0)
    result = gate(
        make_report({}, inactive={"rerank": "no reranker configured"}),
        make_report({"rerank": {"ndcg@10": base}}),
    )
    assert not result.passed
    assert "rerank was measured in the baseline" in result.problems[0]


def test_reports_on_different_data_cannot_be_gated() -> None:
    base, _ = _pair(0.0, 0.0)
    with pytest.raises(InvalidInputError, match="same data"):
        gate(
            make_report({"hybrid": {"ndcg@10": base}}, sha256="one"),
            make_report({"hybrid": {"ndcg@10": base}}, sha256="two"),
        )


def _write(tmp_path: Path, name: str, scores: dict[str, float]) -> Path:
    path = tmp_path / name
    path.write_text(make_report({"hybrid": {"ndcg@10": scores}}).model_dump_json(), "utf-8")
    return path


def _gate(tmp_path: Path, base: dict[str, float], *args: str) -> Result:
    """``ragctx eval gate --baseline <base>`` with ``args``."""
    baseline = str(_write(tmp_path, "b.json", base))
    return CliRunner().invoke(eval_app, ["gate", "--baseline", baseline, *args])


def test_cli_gate_exits_1_on_a_regression_and_says_what_dropped(tmp_path: Path) -> None:
    base, worse = _pair(shift=-0.05, noise=0.05)
    current = str(_write(tmp_path, "c.json", worse))
    result = _gate(tmp_path, base, "--current", current, "--max-drop", "0.01")
    assert result.exit_code == 1, result.output
    assert "hybrid/ndcg@10" in result.output
    assert "delta -0.0" in result.output
    assert "p=" in result.output
    assert "W/T/L" in result.output


def test_cli_gate_exits_0_on_noise_and_prints_json(tmp_path: Path) -> None:
    base, noisy = _pair(shift=0.0, noise=0.05)
    result = _gate(tmp_path, base, "--current", str(_write(tmp_path, "c.json", noisy)), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["passed"] is True
    assert payload["checks"][0]["wtl"]["W"] + payload["checks"][0]["wtl"]["L"] > 0


def test_cli_gate_finds_the_newest_run_of_the_same_dataset(tmp_path: Path) -> None:
    from eval.history import write_run

    base, worse = _pair(shift=-0.05, noise=0.05)
    reports = tmp_path / "reports"
    write_run(make_report({"hybrid": {"ndcg@10": base}}), reports)
    write_run(
        make_report({"hybrid": {"ndcg@10": worse}}, created_at="2026-02-01T00:00:00+00:00"),
        reports,
    )
    result = _gate(tmp_path, base, "--reports", str(reports))
    assert result.exit_code == 1, result.output


def test_cli_gate_without_any_run_is_a_usage_error(tmp_path: Path) -> None:
    base, _ = _pair(0.0, 0.0)
    result = _gate(tmp_path, base, "--reports", str(tmp_path / "none"))
    assert isinstance(result.exception, InvalidInputError)
    assert "ragctx eval DATASET_DIR" in str(result.exception)
