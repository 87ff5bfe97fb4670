"""End to end on the fixed SciFact CI subset, then the gate against the committed baseline.

Not marked slow: this is the check CI runs. The subset (40 test queries, every document they
judge, 200 others by seeded sha256 order) is ingested into a fresh embedded store with the
parameters the baseline recorded (chunking, BM25, leg limits, RRF k), every query runs, and
the run must pass ``ragctx eval gate`` against eval/baselines/scifact-ci.json. Regenerate that
baseline when a change is meant to move the numbers (eval/README.md says how).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eval import load_dataset, load_report, subset
from service.cli_eval import eval_app
from tests.conftest import BENCHDATA, REPO

SCIFACT = BENCHDATA / "scifact"
BASELINE = REPO / "eval" / "baselines" / "scifact-ci.json"

# The settings that decide the numbers; taken from the baseline so that it stays comparable.
PINNED = (
    "chunk_tokens", "chunk_overlap", "chunk_encoding", "bm25_k", "bm25_b", "bm25_avg_len",
    "bm25_language", "dense_limit", "bm25_limit", "rrf_k", "rerank_top_n",
)  # fmt: skip

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(
        not (SCIFACT / "corpus.jsonl").exists(), reason=f"SciFact is not at {SCIFACT}"
    ),
]


def test_ci_subset_runs_every_stage_and_passes_the_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dense_model_path: str
) -> None:
    data_dir = subset(SCIFACT, tmp_path / "scifact-ci")
    baseline = load_report(BASELINE)
    assert load_dataset(data_dir).checksum == baseline.dataset.sha256
    monkeypatch.chdir(tmp_path)  # no ragctx.toml here
    recorded = baseline.params.settings
    for name in PINNED:
        monkeypatch.setenv(f"RAGCTX_{name.upper()}", str(recorded[name]))
    monkeypatch.setenv("RAGCTX_QDRANT_PATH", str(tmp_path / "store"))
    monkeypatch.setenv("RAGCTX_POLICY_DIR", str(REPO / "data" / "policies"))
    monkeypatch.setenv("RAGCTX_DENSE_MODEL", dense_model_path)
    monkeypatch.setenv("RAGCTX_RERANK_MODEL", "")
    out = tmp_path / "run.json"
    runner = CliRunner()
    result = runner.invoke(
        eval_app,
        [
            str(data_dir),
            "--name",
            "scifact-ci",
            "--json-out",
            str(out),
            "--reports",
            str(tmp_path / "reports"),
            "--no-progress",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["stages"]) == {"bm25", "dense", "hybrid", "rerank", "context"}
    context = report["stages"]["context"]["metrics"]
    for budget in (512, 1024, 2048):  # the assembler is at least as good as the naive packer
        assert context[f"assembler_recall@{budget}"] >= context[f"naive_recall@{budget}"]
    for budget in (2000, 4000, 8000):  # next to a system prompt and a 20-turn history
        assert (
            context[f"prompt_assembler_recall@{budget}"]
            >= context[f"prompt_langchain_recall@{budget}"]
        )
    assert report["stages"]["rerank"]["active"] is False
    assert report["llm_metrics"]["status"] == "not_run"
    assert report["dataset"]["queries"] == 40
    assert (tmp_path / "reports" / "history.png").exists()

    gated = runner.invoke(eval_app, ["gate", "--baseline", str(BASELINE), "--current", str(out)])
    assert gated.exit_code == 0, gated.output
