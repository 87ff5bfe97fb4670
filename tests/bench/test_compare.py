"""bench/compare.py on a tiny generated BEIR folder: every system runs and the files are sane."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from core.errors import InvalidInputError
from tests.bench.loader import load_bench

REPO = Path(__file__).resolve().parents[2]

TOPICS = {
    "whale": "Blue whales are the largest animals and feed on krill in cold oceans.",
    "volcano": "Volcanic eruptions release lava, ash and sulphur dioxide into the air.",
    "vaccine": "Vaccines train the immune system to recognise a virus before infection.",
    "glacier": "Glaciers retreat as the climate warms and their ice melts into the sea.",
    "bee": "Honey bees pollinate flowering crops and make honey from nectar.",
    "chess": "Chess openings such as the Sicilian defence shape the middle game.",
}
QUESTIONS = {
    "whale": "what do blue whales eat",
    "volcano": "what gases do volcanoes release",
    "vaccine": "how do vaccines protect against viruses",
    "bee": "which insects pollinate crops",
}


def _module() -> ModuleType:
    return load_bench("compare")


def write_tiny_beir(root: Path) -> Path:
    """A BEIR folder of six one-line documents and four judged questions, in ``root``."""
    (root / "qrels").mkdir()
    corpus = [{"_id": f"d-{t}", "title": t, "text": body} for t, body in TOPICS.items()]
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus), "utf-8")
    queries = [{"_id": f"q-{t}", "text": text} for t, text in QUESTIONS.items()]
    (root / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries), "utf-8")
    qrels = "query-id\tcorpus-id\tscore\n" + "".join(f"q-{t}\td-{t}\t1\n" for t in QUESTIONS)
    (root / "qrels/test.tsv").write_text(qrels, "utf-8")
    return root


@pytest.fixture(scope="module")
def beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_beir(tmp_path_factory.mktemp("beir"))


def test_compare_writes_sane_report(beir: Path, tmp_path: Path, encoders: object) -> None:
    out = tmp_path / "results"
    # the session's encoders (the settings' model, all-MiniLM-L6-v2): loaded once for the suite
    argv = ["--dataset", str(beir), "--quick", "3", "--out-dir", str(out)]
    result = _module().main(argv, encoders=encoders)
    assert result["queries"] == 3
    systems = result["systems"]
    expected = {"ragctx-bm25", "ragctx-dense", "ragctx-hybrid", "bm25s", "rank-bm25", "llamaindex"}
    assert expected <= set(systems), result["skipped"]
    for name, row in systems.items():
        # six distinct topics, one relevant document each: every system finds it near the top
        assert row["quality"]["recall@100"] == 1.0, name
        assert row["quality"]["mrr@10"] >= 0.5, name
        assert 0 < row["latency_ms"]["median"] <= row["latency_ms"]["p95"], name
    assert result["ratios"]["ragctx_hybrid_over_llamaindex"] > 0
    assert result["floors"]["bare_encode_query_ms"]["median"] > 0
    packed = result["packed"]
    assert packed["budget_tokens"] == 1500 and 0 < packed["packed_tokens_median"] <= 1500
    search, served = packed["search_ms"], packed["search_and_assemble_ms"]
    assert 0 < search["median"] <= served["median"], packed
    assert 0 < packed["store_query_ms"]["median"] < search["median"], packed
    floors = result["floors"]
    for floor in ("bare_edge_same_information_ms", "bare_edge_fused_ms"):
        assert 0 < floors[floor]["median"] <= floors[floor]["p95"], floor
        assert result["ratios"][f"ragctx_store_query_over_{floor[:-3]}"] > 0
    assert result["ratios"]["ragctx_packed_over_llamaindex"] > 0
    rerank_floors = ("bare_cross_encoder_predict_ms", "llamaindex_sentence_transformer_rerank_ms")
    for floor in rerank_floors:
        # measured when a trained reranker is configured, otherwise skipped with the reason
        assert (floor in floors) != (floor in result["skipped"]), floor
    saved = json.loads((out / f"compare-{beir.name}.json").read_text("utf-8"))
    assert saved["systems"].keys() == systems.keys()
    table = (out / f"compare-{beir.name}.md").read_text("utf-8")
    assert "| llamaindex |" in table and "shared machine" in table
    assert "| search + assemble (packed context out) |" in table
    assert "bare Edge, what the store query returns" in table
    assert "CrossEncoder.predict" in table
    assert "ragctx_store_query_over_bare_edge_same_information" in table
    assert (out / f"compare-{beir.name}.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_rejects_a_folder_without_beir_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="corpus.jsonl"):
        _module().main(["--dataset", str(tmp_path), "--out-dir", str(tmp_path / "out")])


def test_compare_rejects_negative_quick(beir: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        _module().main(["--dataset", str(beir), "--quick", "-1", "--out-dir", str(tmp_path)])


def test_benchdata_env_var_wins_and_a_bad_one_is_named(tmp_path: Path) -> None:
    compare = _module()
    (tmp_path / "data").mkdir()
    assert compare.benchdata({"RAGCTX_BENCHDATA": str(tmp_path / "data")}, REPO) == (
        tmp_path / "data"
    )
    with pytest.raises(FileNotFoundError, match="RAGCTX_BENCHDATA=.*not a folder"):
        compare.benchdata({"RAGCTX_BENCHDATA": str(tmp_path / "missing")}, REPO)


def test_benchdata_found_above_a_nested_checkout(tmp_path: Path) -> None:
    compare = _module()
    (tmp_path / "shared/benchdata").mkdir(parents=True)
    nested = tmp_path / "wt/deep/checkout"
    nested.mkdir(parents=True)
    assert compare.benchdata({}, nested) == tmp_path / "shared/benchdata"
    with pytest.raises(FileNotFoundError, match="set RAGCTX_BENCHDATA"):
        compare.benchdata({}, tmp_path.parent)  # the folder above holds no shared/benchdata


def test_compare_without_benchdata_exits_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAGCTX_BENCHDATA", str(tmp_path / "absent"))
    with pytest.raises(SystemExit):
        _module().main(["--out-dir", str(tmp_path / "out")])
    assert "RAGCTX_BENCHDATA" in capsys.readouterr().err


def test_rerank_floors_time_the_same_pairs(tmp_path: Path) -> None:
    """The rerank floors, which main() runs only with a trained reranker configured, on the
    seeded test cross-encoder (real MiniLM, untrained head: timings only, never quality)."""
    from types import SimpleNamespace

    from retrieval.rerank import CrossEncoderReranker
    from tests.reranker_model import build_test_cross_encoder

    folder = build_test_cross_encoder(tmp_path / "ce", seed=0)
    reranker = CrossEncoderReranker.load(str(folder), trained=True)
    settings = SimpleNamespace(rerank_model=str(folder), rerank_top_n=3)
    heads = {q: list(TOPICS.values())[:3] for q in QUESTIONS.values()}
    skipped: dict[str, str] = {}
    floors = _module()._bare_rerank(heads, reranker, settings, skipped)
    assert skipped == {}
    for name in ("bare_cross_encoder_predict_ms", "llamaindex_sentence_transformer_rerank_ms"):
        assert 0 < floors[name]["median"] <= floors[name]["p95"], name
