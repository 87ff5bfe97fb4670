"""``ragctx eval replay --from-traces``: recorded requests re-run through the real pipeline (the
sample corpus in a real Edge store, the session's real encoders, a real SQLite trace store);
the diff names what a candidate policy adds, removes (with the reason) and reorders."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from index.edge import EdgeStore
from service.api.schemas import ContextRequest
from service.auth import ApiKey
from service.context import prepare, run_pipeline, trace_record
from service.runtime import Models, Runtime
from service.settings import Settings
from service.telemetry import build_telemetry
from service.traces import TraceStore
from service.traces.replay import diff_packs, replay_trace
from service.wiring import build_runtime
from tests.cli import ragctx
from tests.service.conftest import COLLECTION, make_settings

QUERIES = ("How do I rotate API keys?", "maximum message size")


@dataclass
class Recorded:
    settings: Settings
    url: str
    traces: list[dict[str, Any]]  # as the store reads them back, oldest first
    excluded: str  # the doc the candidate policy excludes


@contextmanager
def local_runtime(settings: Settings, models: Models) -> Iterator[Runtime]:
    store = EdgeStore(settings.qdrant_path)
    try:
        yield build_runtime(
            settings,
            store=store,
            telemetry=build_telemetry("none"),
            keys=None,
            models=models,
            traces=False,
        )
    finally:
        store.close()


@pytest.fixture(scope="module")
def recorded(
    sample_store_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    models: Models,
    one_torch_thread: None,
) -> Recorded:
    import shutil

    work = tmp_path_factory.mktemp("replay")
    shutil.copytree(sample_store_template, work / "qdrant")
    url = f"sqlite:///{work / 'traces.sqlite3'}"
    settings = make_settings(work / "qdrant", work, trace_db=url)
    db = TraceStore(url)
    db.upgrade()
    grant = ApiKey(id="k", sha256="", tenant="acme", groups=("support", "engineering"))
    with local_runtime(settings, models) as runtime:
        for q in QUERIES:
            req = prepare(
                ContextRequest(query=q, budget_tokens=600, groups=["support"]), grant, runtime
            )
            answer = run_pipeline(req, runtime)
            db.write([trace_record(req, answer, route="/v1/context")])
    traces = list(reversed(db.list("acme")))
    db.close()
    excluded = traces[0]["pack"]["items"][0]["doc_id"]
    (work / "policies" / "candidate.yaml").write_text(
        f'name: candidate\nversion: "7"\nexclude:\n  doc_ids: [{excluded}]\n', "utf-8"
    )
    return Recorded(settings=settings, url=url, traces=traces, excluded=excluded)


def test_the_same_index_and_policy_replay_unchanged(recorded: Recorded, models: Models) -> None:
    with local_runtime(recorded.settings, models) as runtime:
        diffs = [replay_trace(t, runtime) for t in recorded.traces]
    assert [d.status for d in diffs] == ["unchanged", "unchanged"], diffs
    assert diffs[0].token_change == 0 and diffs[0].policy_after == "default@1"


def test_a_candidate_policy_shows_what_it_removes_and_why(
    recorded: Recorded, models: Models
) -> None:
    trace = recorded.traces[0]
    with local_runtime(recorded.settings, models) as runtime:
        diff = replay_trace(trace, runtime, policy="candidate")
    assert diff.status == "changed" and diff.policy_after == "candidate@7"
    gone = [r for r in diff.removed if r["doc_id"] == recorded.excluded]
    assert gone and {r["reason"] for r in gone} == {"excluded"}, diff.removed
    assert diff.tokens_before == trace["pack"]["tokens"] and diff.token_change is not None


def test_a_deleted_collection_and_a_trace_without_text_are_reported(
    recorded: Recorded, models: Models, tmp_path: Path
) -> None:
    trace = recorded.traces[0]
    gone = {**trace, "collection": "gone", "request": {**trace["request"], "collection": "gone"}}
    # recorded with RAGCTX_TRACE_TEXT=false: the store keeps only the query's sha256
    from service.traces import TraceRecord

    blind = TraceStore(f"sqlite:///{tmp_path / 'blind.sqlite3'}", store_text=False)
    blind.upgrade()
    blind.write(
        [
            TraceRecord(
                id="blind",
                tenant="acme",
                route="/v1/context",
                collection=COLLECTION,
                query=trace["query"],
                request=trace["request"],
                stages=trace["stages"],
                pack=trace["pack"],
                timings_ms={},
            )
        ]
    )
    hashed = blind.get("acme", "blind")
    blind.close()
    assert hashed is not None and hashed["query"] is None
    with local_runtime(recorded.settings, models) as runtime:
        missing = replay_trace(gone, runtime)
        garbled = replay_trace(
            {**trace, "request": {**trace["request"], "filters": {"updated_after": "soon"}}},
            runtime,
        )
        skipped = replay_trace(hashed, runtime)
    assert missing.status == "error" and "gone" in (missing.error or "")
    assert garbled.status == "error" and "unreadable recorded request" in (garbled.error or "")
    assert skipped.status == "skipped" and "RAGCTX_TRACE_TEXT" in (skipped.error or "")


def test_diff_reports_added_removed_and_reordered_positions() -> None:
    from assembler.tokens import tiktoken_counter
    from tests.assembler.builders import candidate, pack

    new = pack(
        [candidate("c", score=0.9), candidate("a", score=0.8), candidate("n", score=0.7)],
        tiktoken_counter("cl100k_base"),
    )
    assert [i.chunk_id for i in new.items] == ["c", "a", "n"]
    old = {"items": [{"chunk_id": x, "doc_id": f"doc-{x}"} for x in ("a", "b", "c")]}
    added, removed, reordered = diff_packs(old, new, {"a", "c", "n"})
    assert added == [{"chunk_id": "n", "doc_id": "doc-n", "position": 3}]
    assert removed == [
        {"chunk_id": "b", "doc_id": "doc-b", "position": 2, "reason": "not retrieved"}
    ]
    assert {(r["chunk_id"], r["old"], r["new"]) for r in reordered} == {("a", 1, 2), ("c", 3, 1)}
    # a removal that only shifts the others is no reordering
    _, _, shifted = diff_packs({"items": [{"chunk_id": x} for x in "xcan"]}, new, set())
    assert shifted == []


# the CLI, through the real entry point ------------------------------------------------------


@pytest.fixture
def cli_env(recorded: Recorded, monkeypatch: pytest.MonkeyPatch, models: Models) -> Recorded:
    s = recorded.settings
    monkeypatch.chdir(s.policy_dir.parent)  # no ragctx.toml of the repository
    for name, value in {
        "RAGCTX_QDRANT_PATH": str(s.qdrant_path),
        "RAGCTX_POLICY_DIR": str(s.policy_dir),
        "RAGCTX_COLLECTION": COLLECTION,
        "RAGCTX_TRACE_DB": recorded.url,
        "RAGCTX_DENSE_MODEL": s.dense_model,
        "RAGCTX_RERANK_MODEL": "",
    }.items():
        monkeypatch.setenv(name, value)
    # The session's encoders, already in memory, instead of a second load of the same model.
    monkeypatch.setattr("service.wiring.load_models", lambda _settings: models)
    return recorded


def test_cli_replays_under_a_candidate_policy_as_json(
    cli_env: Recorded, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = ragctx(
        monkeypatch, "eval", "replay", "--from-traces", "--tenant", "acme", "--policy",
        "candidate", "--json",
    )  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert out["summary"]["traces"] == 2 and out["summary"]["changed"] >= 1
    assert [t["trace_id"] for t in out["traces"]] == [t["id"] for t in cli_env.traces]
    # a replay is not recorded as a new trace
    db = TraceStore(cli_env.url)
    assert len(db.list(None)) == 2
    db.close()


def test_cli_table_and_no_traces(
    cli_env: Recorded, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ragctx(monkeypatch, "eval", "replay", "--from-traces", "--limit", "1") == 0
    captured = capsys.readouterr()
    assert "unchanged" in captured.out and "1 traces, 1 unchanged" in captured.err
    assert ragctx(monkeypatch, "eval", "replay", "--from-traces", "--tenant", "nobody") == 0
    assert "0 traces" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--since", "last tuesday"], "--since 'last tuesday'"),
        (["--policy", "no-such-policy"], "no-such-policy"),
        (["--limit", "0"], "--limit 0"),
        ([], "--from-traces"),
    ],
)
def test_cli_bad_input_exits_2_naming_it(
    cli_env: Recorded,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    named: str,
) -> None:
    base = [] if not args else ["--from-traces"]
    assert ragctx(monkeypatch, "eval", "replay", *base, *args) == 2
    assert named in capsys.readouterr().err.replace("\n", " ")


def test_cli_a_trace_of_a_deleted_collection_is_reported_and_exits_1(
    cli_env: Recorded,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from service.traces import TraceRecord

    url = f"sqlite:///{tmp_path / 'gone.sqlite3'}"
    db = TraceStore(url)
    db.upgrade()
    t = cli_env.traces[0]
    db.write(
        [
            TraceRecord(
                id="gone-1",
                tenant="acme",
                route="/v1/context",
                collection="gone",
                query=t["query"],
                request={**t["request"], "collection": "gone"},
                stages=t["stages"],
                pack=t["pack"],
                timings_ms={},
                policy_version="default@1",
            )
        ]
    )
    db.close()
    monkeypatch.setenv("RAGCTX_TRACE_DB", url)
    assert ragctx(monkeypatch, "eval", "replay", "--from-traces") == 1
    captured = capsys.readouterr()
    assert "error gone-1:" in captured.out and "'gone'" in captured.out
    assert "1 traces, 0 unchanged, 0 changed, 0 skipped, 1 failed" in captured.err
