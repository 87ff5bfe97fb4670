"""``retrieval.adapt``: a cross-encoder trained on a collection's own pairs, without labels.

Real parts: the corpus goes through ``ingest.sync`` into a real Edge store, negatives come from
the real hybrid retriever, the model is the real all-MiniLM-L6-v2 encoder trained with torch,
and the folder is loaded the way the service loads it (``wiring.load_reranker``).
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core.errors import InvalidInputError, UnknownCollectionError
from index.edge import EdgeStore
from ingest import Chunker, ChunkingParams, SourceSpec, sync
from retrieval.adapt import AdaptParams, adapt, parse_duration, pseudo_queries
from retrieval.rerank import CrossEncoderReranker
from tests.cli import ragctx

COLLECTION = "adapt"
NOUNS = [
    "tomato", "glacier", "violin", "lighthouse", "beehive", "telescope", "bicycle", "volcano",
    "submarine", "orchard", "windmill", "cathedral", "typewriter", "canoe", "satellite",
    "vineyard", "locomotive", "harbor", "piano", "compost", "kite", "aquarium", "greenhouse",
    "tractor",
]  # fmt: skip


def _doc(i: int, noun: str) -> dict[str, Any]:
    return {
        "id": f"doc-{i}",
        "title": f"Looking after the {noun}",
        "text": (
            f"Looking after the {noun}\n\nThe {noun} needs steady attention through the year. "
            f"Experts recommend checking the {noun} every week and writing down what changed. "
            f"A {noun} that is neglected for a month rarely recovers, so plan the work early. "
            f"Most trouble with a {noun} starts small and grows when nobody looks at it."
        ),
    }


@pytest.fixture(scope="module")
def corpus(
    tmp_path_factory: pytest.TempPathFactory, encoders: Any, one_torch_thread: None
) -> Iterator[tuple[EdgeStore, Any]]:
    folder = tmp_path_factory.mktemp("adapt-src")
    path = folder / "docs.jsonl"
    path.write_text("\n".join(json.dumps(_doc(i, n)) for i, n in enumerate(NOUNS)) + "\n")
    store = EdgeStore(Path(tmp_path_factory.mktemp("adapt-store")))
    chunker = Chunker(
        ChunkingParams(chunk_tokens=256, overlap_tokens=0),
        max_model_tokens=encoders.dense.max_tokens,
        model_token_count=encoders.dense.count_tokens,
    )
    report = sync(
        [SourceSpec(path, kind="jsonl")],
        collection=COLLECTION,
        store=store,
        encoders=encoders,
        chunker=chunker,
    )
    assert report.failed == 0, report.problems
    store.create_collection("empty", dense_dim=encoders.dense.dim, meta={})
    yield store, encoders
    store.close()


PARAMS = AdaptParams(
    max_steps=16,
    queries_per_step=4,
    negatives=3,
    max_length=96,
    learning_rate=1e-4,
    warmup_steps=4,
    checkpoint_every=12,
    seed=3,
)


@pytest.fixture(scope="module")
def trained(corpus: tuple[EdgeStore, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    store, encoders = corpus
    out = tmp_path_factory.mktemp("adapted") / "model"
    adapt(store, COLLECTION, encoders, out, PARAMS)
    return out


def test_pseudo_queries_come_from_titles_and_first_sentences(
    corpus: tuple[EdgeStore, Any],
) -> None:
    store, _ = corpus
    got = pseudo_queries(store, COLLECTION)
    kinds = {q.kind for q in got}
    assert kinds == {"title", "first-sentence"}
    title = next(q for q in got if q.kind == "title" and q.doc_id == "doc-0")
    assert title.query == "Looking after the tomato"
    assert not title.passage.startswith("Looking after")  # the title is not in its passage


def test_adapted_model_scores_own_title_above_a_random_title(trained: Path) -> None:
    ce = CrossEncoderReranker.load(str(trained), max_length=96)
    own, other = [], []
    for i, noun in enumerate(NOUNS):
        passage = _doc(i, noun)["text"].split("\n\n", 1)[1]
        wrong = NOUNS[(i + 7) % len(NOUNS)]
        s_own, s_other = (
            ce.score(f"Looking after the {noun}", [passage])[0],
            ce.score(f"Looking after the {wrong}", [passage])[0],
        )
        own.append(s_own)
        other.append(s_other)
    assert statistics.mean(own) > statistics.mean(other) + 0.5
    wins = sum(a > b for a, b in zip(own, other, strict=True))
    assert wins >= 0.75 * len(NOUNS), (wins, own, other)
    card = (trained / "README.md").read_text("utf-8")
    assert "collection `adapt`" in card and "Seed 3" in card
    facts = json.loads((trained / "adapt.json").read_text("utf-8"))
    assert facts["steps"] == 16 and facts["pairs"] > 0


def test_resume_continues_from_the_checkpoint(trained: Path, corpus: Any, tmp_path: Path) -> None:
    store, encoders = corpus
    out = tmp_path / "model"
    shutil.copytree(trained, out)
    more = replace(PARAMS, max_steps=PARAMS.max_steps + 4)
    got = adapt(store, COLLECTION, encoders, out, more, resume=True)
    assert (got.resumed_from_step, got.steps) == (PARAMS.max_steps, PARAMS.max_steps + 4)
    state = json.loads((out / "checkpoints" / "latest" / "state.json").read_text("utf-8"))
    assert state["step"] == PARAMS.max_steps + 4
    with pytest.raises(InvalidInputError, match="same --collection and --seed"):
        adapt(store, COLLECTION, encoders, out, replace(more, seed=4), resume=True)


def test_bad_input_is_refused_before_training(corpus: Any, tmp_path: Path) -> None:
    store, encoders = corpus
    with pytest.raises(UnknownCollectionError, match="'nope'"):
        adapt(store, "nope", encoders, tmp_path / "a", PARAMS)
    with pytest.raises(InvalidInputError, match="'empty' is empty"):
        adapt(store, "empty", encoders, tmp_path / "b", PARAMS)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="is not empty"):
        adapt(store, COLLECTION, encoders, full, PARAMS)
    assert (full / "keep.txt").read_text() == "mine"  # nothing overwritten
    with pytest.raises(InvalidInputError, match="holds no checkpoint"):
        adapt(store, COLLECTION, encoders, full, PARAMS, resume=True)
    with pytest.raises(InvalidInputError, match="is a file"):
        adapt(store, COLLECTION, encoders, full / "keep.txt", PARAMS)


@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("25m", 1500.0), ("1.5h", 5400.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("2s", "too small"),
        ("soon", "not a duration"),
        ("-5m", "not a duration"),
        ("0", "too small"),
    ],
)
def test_bad_durations(text: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        parse_duration(text)


def test_cli_refuses_bad_input(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    encoders: Any,
) -> None:
    """``ragctx reranker adapt``: each bad input exits 2 with a message naming it."""
    qdrant = tmp_path / "qdrant"
    store = EdgeStore(qdrant)
    store.create_collection("empty", dense_dim=encoders.dense.dim, meta={})
    store.close()
    monkeypatch.setenv("RAGCTX_QDRANT_PATH", str(qdrant))
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    cases = [
        (["--collection", "nope", "--out", str(tmp_path / "a")], "unknown collection 'nope'"),
        (["--collection", "empty", "--out", str(full)], "is not empty"),
        (["--collection", "empty", "--out", str(full), "--resume"], "holds no checkpoint"),
        (["--collection", "empty", "--out", str(tmp_path / "b"), "--time-budget", "3s"],
         "too small to train one step"),
        (["--collection", "empty", "--out", str(tmp_path / "c"), "--time-budget", "1e9"],
         "not a duration"),
        (["--collection", "empty", "--out", str(tmp_path / "d"), "--max-steps", "0"],
         "--max-steps"),
    ]  # fmt: skip
    for args, message in cases:
        code = ragctx(monkeypatch, "reranker", "adapt", "--no-progress", *args)
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert message in " ".join(err.split()), (args, err)
    assert (full / "keep.txt").read_text() == "mine"


def test_adapted_folder_loads_as_the_service_loads_it(trained: Path, tmp_path: Path) -> None:
    """``RAGCTX_RERANK_MODEL=OUT``: torch and the fp32 ONNX export give the same scores."""
    from service.settings import Settings
    from service.wiring import load_reranker

    texts = ["The tomato needs steady attention.", "A glacier moves slowly."]
    scores = {}
    for backend in ("torch", "onnx"):
        settings = Settings.model_validate(
            {
                "rerank_model": str(trained),
                "rerank_backend": backend,
                "rerank_max_length": 96,
                "onnx_cache_dir": tmp_path / "onnx",
            }
        )
        reranker = load_reranker(settings).reranker
        assert isinstance(reranker, CrossEncoderReranker)
        assert reranker.backend == backend and reranker.trained
        scores[backend] = reranker.score("Looking after the tomato", texts)
    assert scores["onnx"] == pytest.approx(scores["torch"], abs=1e-3)
