"""bench/rerank_backends.py on a tiny BEIR folder with the test-built cross-encoder (its scores
are noise: only the plumbing and the fp32 agreement are checked here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.loader import load_bench
from tests.bench.test_compare import QUESTIONS, write_tiny_beir
from tests.reranker_model import build_test_cross_encoder


@pytest.fixture(scope="module")
def beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_beir(tmp_path_factory.mktemp("beir-rerank"))


def test_every_backend_scores_the_same_candidates(beir: Path, tmp_path: Path) -> None:
    model = build_test_cross_encoder(tmp_path / "ce", seed=0)
    out = tmp_path / "rerank.json"
    argv = ["--model", str(model), "--dataset", str(beir), "--depth", "4"]
    result = load_bench("rerank_backends").main([*argv, "--json-out", str(out)])
    assert result["queries"] == len(QUESTIONS)
    assert 0 < result["hybrid"]["ndcg@10"] <= 1
    backends = result["backends"]
    assert set(backends) == {"torch", "onnx", "onnx-int8"}
    for name, row in backends.items():
        assert row["loaded"] == name, "a backend fell back to torch"
        assert 0 <= row["alone"]["ndcg@10"] <= 1 and row["rerank_ms_median"] > 0
    # fp32 ONNX ranks as torch does (the same logits within 1e-4)
    assert backends["onnx"]["alone"] == backends["torch"]["alone"]
    assert backends["onnx"]["alone_ndcg10_minus_torch"] == 0
    assert json.loads(out.read_text("utf-8")) == result


def test_a_folder_without_a_model_is_refused(beir: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        load_bench("rerank_backends").main(["--model", str(tmp_path), "--dataset", str(beir)])
