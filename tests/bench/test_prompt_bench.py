"""bench/bench_prompt.py packs what it says it packs: 20 turns and 50 candidates within 8,000."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.bench.loader import load_bench


def test_the_whole_prompt_benchmark_reports_a_prompt_within_its_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "prompt.json"
    monkeypatch.setattr(sys, "argv", ["bench_prompt", "--runs", "3", "--json-out", str(out)])
    assert load_bench("bench_prompt").main() == 0
    result = json.loads(out.read_text())
    assert result["turns"] >= 20 and result["candidates"] == 50
    assert 0 < result["prompt_tokens"] <= result["budget"] == 8000
    assert result["evidence_tokens"] >= 0.35 * 8000 - 100  # support-chat's evidence floor
    assert result["median_ms"] > 0 and result["evidence_only"]["median_ms"] > 0
