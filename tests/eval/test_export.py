"""``ragctx eval export --from-traces`` through the real entry point, on a real trace store
(SQLite, and PostgreSQL when its binaries are here) filled by TraceStore with real feedback, and
a real Edge store. The points' vectors are arbitrary: export reads payloads only, no model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eval import load_dataset
from index.edge import EdgeStore
from index.payload import ChunkPayload
from index.schema import PointRecord, SparseVec, point_id
from service.traces import TraceRecord, TraceStore
from tests.cli import ragctx
from tests.traces.conftest import _psql, postgres_url  # noqa: F401  (a fixture)

DOCS = {  # doc id -> (tenant, text); every text is cut into two overlapping chunks
    "a1": ("acme", "Rotate API keys from the admin console, then revoke the old key."),
    "a2": ("acme", "Invoices are sent on the first day of each month by e-mail."),
    "a3": ("acme", "Key rotation can also be scripted with the ragctx CLI tool."),
    "g1": ("globex", "Globex rotates keys every ninety days by policy."),
}


def _chunks(doc_id: str, tenant: str, text: str) -> list[PointRecord]:
    cut, overlap = len(text) // 2, 6
    spans = [(0, cut + overlap), (cut, len(text))]
    return [
        PointRecord(
            id=point_id(tenant, "src", doc_id, "h1", i),
            dense=[1.0, 0.0, 0.0, 0.0],
            sparse=SparseVec(indices=[1], values=[1.0]),
            payload=ChunkPayload(
                tenant=tenant,
                doc_id=doc_id,
                text=text[start:end],
                source="src",
                doc_hash="h1",
                title=f"Title {doc_id}",
                groups=("public",),
                chunk_index=i,
                chunk_count=2,
                char_start=start,
                char_end=end,
            ).to_payload(),
        )
        for i, (start, end) in enumerate(spans)
    ]


def chunk_of(doc_id: str, i: int = 0) -> str:
    return point_id(DOCS[doc_id][0], "src", doc_id, "h1", i)


def _trace(
    trace_id: str, tenant: str, packed: list[str], pinned: tuple[str, ...] = ()
) -> TraceRecord:
    items = [
        {"chunk_id": chunk_of(d), "doc_id": d, "tokens": 10, "flags": [], "pinned": d in pinned}
        for d in packed
    ]
    return TraceRecord(
        id=trace_id,
        tenant=tenant,
        route="/v1/context",
        collection="docs",
        query=f"question of {trace_id}",
        request={"query": f"question of {trace_id}"},
        stages={"dense": {"active": True, "note": "", "candidates": []}},
        pack={"items": items, "dropped": []},
        timings_ms={},
    )


BOTH_DBS = pytest.mark.parametrize("trace_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="module")
def trace_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh trace database: SQLite, or (``BOTH_DBS``) also the throwaway PostgreSQL."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('traces') / 'traces.sqlite3'}"
        return
    base: str = request.getfixturevalue("postgres_url")
    name = f"export_{abs(hash(request.node.nodeid)) % 10**9}"
    admin = _psql(base, f"CREATE DATABASE {name}")
    yield base.rsplit("/", 1)[0] + f"/{name}"
    _psql(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, trace_url: str) -> dict[str, Any]:
    """acme's and globex's documents in an Edge store, their judged traces in the trace DB
    (read only by the tests: each exports into its own folder)."""
    store_path = tmp_path_factory.mktemp("export") / "qdrant"
    edge = EdgeStore(store_path)
    edge.create_collection("docs", dense_dim=4, meta={})
    edge.upsert("docs", [p for d, (t, text) in DOCS.items() for p in _chunks(d, t, text)])
    edge.upsert("docs", _chunks("a4", "acme", "A document deleted after it was judged."))
    edge.upsert("docs", _chunks("bad\tid", "acme", "An id no qrels line can hold."))
    edge.delete("docs", [point_id("acme", "src", "a4", "h1", i) for i in range(2)])
    edge.close()
    traces = TraceStore(trace_url)
    traces.upgrade()
    traces.write(
        [
            _trace("t1", "acme", ["a1", "a2"]),
            _trace("t2", "acme", ["a1", "a2"], pinned=("a2",)),
            _trace("t3", "acme", ["a2"]),
            _trace("t5", "acme", ["a1"]),  # never judged: never exported
            _trace("g1", "globex", ["g1"]),
            _trace("x1", "initech", ["a1"]),
        ]
    )
    TraceStore(trace_url, store_text=False).write([_trace("t4", "acme", ["a1"])])
    fb = traces.add_feedback
    # t1: a chunk judged relevant, a document not relevant, one missing; later an edit.
    fb("acme", "t1", "accepted", [
        {"chunk_id": chunk_of("a1", 1), "label": "relevant"},
        {"doc_id": "a2", "label": "not_relevant"},
        {"doc_id": "a3", "label": "missing"},
        {"doc_id": "bad\tid", "label": "relevant"},
    ])  # fmt: skip
    fb("acme", "t1", "edited", [{"doc_id": "a2", "label": "relevant"}])
    fb("acme", "t2", "accepted")  # no judgments: the packed, unpinned documents are relevant
    fb("acme", "t3", "rejected", [
        {"doc_id": "a4", "label": "relevant"},  # deleted since
        {"chunk_id": "no-such-chunk", "label": "missing"},
        {"doc_id": "a2", "label": "relevant"},
    ])  # fmt: skip
    fb("acme", "t4", "accepted", [{"doc_id": "a1", "label": "relevant"}])
    fb("globex", "g1", "accepted", [{"doc_id": "g1", "label": "relevant"}])
    # initech holds no document: nothing of it can be evaluated
    fb("initech", "x1", "rejected", [{"doc_id": "a1", "label": "not_relevant"}])
    traces.close()
    return {"store": store_path, "url": trace_url}


@pytest.fixture
def world(
    stores: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The stores of the module as the CLI's settings, and this test's own folder."""
    monkeypatch.chdir(tmp_path)  # no ragctx.toml of the repository
    monkeypatch.setenv("RAGCTX_QDRANT_PATH", str(stores["store"]))
    monkeypatch.setenv("RAGCTX_TRACE_DB", stores["url"])
    return {"tmp": tmp_path, **stores}


def export(monkeypatch: pytest.MonkeyPatch, out: Path, *args: str) -> int:
    return ragctx(monkeypatch, "eval", "export", "--from-traces", "--out", str(out), *args)


def _qrels(out: Path) -> dict[tuple[str, str], int]:
    rows = (out / "qrels" / "test.tsv").read_text("utf-8").splitlines()
    assert rows[0] == "query-id\tcorpus-id\tscore"
    return {(q, d): int(s) for q, d, s in (r.split("\t") for r in rows[1:])}


@BOTH_DBS
def test_export_writes_a_beir_folder_that_loads(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = world["tmp"] / "set"
    assert export(monkeypatch, out, "--tenant", "acme", "--json") == 0
    captured = capsys.readouterr()
    got = json.loads(captured.out)
    assert (got["tenant"], got["collection"], got["traces"], got["queries"]) == (
        "acme",
        "docs",
        4,
        3,
    )
    assert got["no_text"] == ["t4"] and got["no_relevant"] == []
    assert got["unwritable"] == ["bad\tid"] and "'bad\\tid'" in captured.err
    assert _qrels(out) == {
        ("t1", "a1"): 1,  # its chunk judged relevant
        ("t1", "a2"): 1,  # not relevant, then relevant in the newer (edited) feedback
        ("t1", "a3"): 1,  # missing: the answer should have had it
        ("t2", "a1"): 1,  # accepted without judgments: packed, unpinned
        ("t3", "a2"): 1,
    }
    deleted = {(d["trace_id"], d["doc_id"], d["chunk_id"], d["label"]) for d in got["deleted"]}
    assert deleted == {("t3", "a4", None, "relevant"), ("t3", None, "no-such-chunk", "missing")}
    assert "document a4" in captured.err and "no-such-chunk" in captured.err  # printed, too
    report = json.loads((out / "export-report.json").read_text("utf-8"))
    assert report["deleted"] == got["deleted"]
    corpus = [json.loads(line) for line in (out / "corpus.jsonl").read_text("utf-8").splitlines()]
    assert {c["_id"]: c["text"] for c in corpus} == {
        d: text for d, (t, text) in DOCS.items() if t == "acme"
    }  # rebuilt from overlapping chunks, acme's only
    assert corpus[0]["title"] == "Title a1"
    data = load_dataset(out)
    assert set(data.queries) == {"t1", "t2", "t3"} and data.documents == 3
    assert data.queries["t1"] == "question of t1"


def test_verdicts_choose_the_feedback_used(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = world["tmp"] / "accepted"
    assert export(monkeypatch, out, "--tenant", "acme", "--verdict", "accepted", "--json") == 0
    qrels = _qrels(out)
    assert qrels[("t1", "a2")] == 0  # the edit is not used: its not-relevant judgment stands
    assert {q for q, _ in qrels} == {"t1", "t2"}
    out = world["tmp"] / "rejected"
    capsys.readouterr()
    args = ("--verdict", "rejected", "--verdict", "edited", "--tenant", "acme", "--json")
    assert export(monkeypatch, out, *args) == 0
    assert json.loads(capsys.readouterr().out)["queries"] == 2
    assert {q for q, _ in _qrels(out)} == {"t1", "t3"}
    # Only acme's traces have an edit: its tenant needs no --tenant.
    assert export(monkeypatch, world["tmp"] / "edited", "--verdict", "edited", "--json") == 0
    assert json.loads(capsys.readouterr().out)["tenant"] == "acme"
    assert _qrels(world["tmp"] / "edited") == {("t1", "a2"): 1}


@BOTH_DBS
def test_another_tenants_traces_and_documents_are_never_exported(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = world["tmp"] / "globex"
    assert export(monkeypatch, out, "--tenant", "globex", "--json") == 0
    assert _qrels(out) == {("g1", "g1"): 1}
    corpus = (out / "corpus.jsonl").read_text("utf-8")
    assert '"g1"' in corpus and "acme" not in corpus and '"a1"' not in corpus
    assert "t1" not in (out / "queries.jsonl").read_text("utf-8")
    # Without --tenant the judged traces of two tenants are refused, not mixed.
    capsys.readouterr()
    assert export(monkeypatch, world["tmp"] / "both") == 2
    err = capsys.readouterr().err
    assert "acme, globex, initech" in err and "--tenant" in err
    assert not (world["tmp"] / "both").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since 'yesterday'"),
        (["--since", "2999-01-01"], "in the future"),
        (["--since", "-3d"], "--since '-3d'"),
        (["--verdict", "liked"], "--verdict 'liked'"),
        (["--verdict", "accepted,meh"], "--verdict 'meh'"),
        (["--collection", "nope"], "no trace with feedback matches"),
        (["--tenant", "nobody"], "no trace with feedback matches"),
        (["--since", "1h", "--tenant", "nobody"], "tenant 'nobody'"),
        (["--db", "mysql://x/y"], "only sqlite:/// and postgresql://"),
    ],
)
def test_bad_input_exits_2_naming_it(
    world: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    out = world["tmp"] / "bad"
    assert export(monkeypatch, out, *args) == 2
    assert message in capsys.readouterr().err.replace("\n", " ")
    assert not out.exists() or not any(out.iterdir())


def test_the_out_folder_is_never_overwritten_unasked(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = world["tmp"] / "kept"
    out.mkdir()
    (out / "notes.txt").write_text("mine", "utf-8")
    assert export(monkeypatch, out, "--tenant", "acme") == 2
    assert "is not empty" in capsys.readouterr().err and not (out / "corpus.jsonl").exists()
    assert export(monkeypatch, out, "--tenant", "acme", "--force") == 0
    assert (out / "notes.txt").read_text("utf-8") == "mine" and (out / "corpus.jsonl").is_file()
    file = world["tmp"] / "a-file"
    file.write_text("x", "utf-8")
    assert export(monkeypatch, file, "--tenant", "acme", "--force") == 2
    assert "is a file" in capsys.readouterr().err
    assert ragctx(monkeypatch, "eval", "export", "--out", str(world["tmp"] / "n")) == 2
    assert "--from-traces" in capsys.readouterr().err
    monkeypatch.setenv("RAGCTX_QDRANT_PATH", str(world["tmp"] / "no-store"))
    assert export(monkeypatch, world["tmp"] / "n", "--tenant", "acme") == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (world["tmp"] / "no-store").exists()


def test_no_relevant_current_document_left_is_refused(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export(monkeypatch, world["tmp"] / "none", "--tenant", "initech") == 2
    assert "nothing can be evaluated" in capsys.readouterr().err.replace("\n", " ")
