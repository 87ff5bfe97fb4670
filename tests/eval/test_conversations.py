"""``ragctx eval conversations``: the shipped conversational set, its loader, and the command
end to end (the real sample corpus in a temporary Edge store, the real encoders, ranx).

The end-to-end run takes the globex conversations only (5 documents to ingest), so it stays
well under 30 s on a shared machine; the whole set is checked without models below.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from core.errors import InvalidInputError
from eval.conversations import (
    FORMS,
    METRICS,
    SAMPLE_GROUPS,
    load_conversations,
    tenant_folders,
)
from ingest import Document, SourceSpec, read_source
from tests.cli import ragctx
from tests.conftest import REPO

SET = REPO / "data" / "eval" / "conversations"
DOCS = REPO / "data" / "docs"


def sample_docs(tenant: str) -> dict[str, Document]:
    """The sample corpus's documents of ``tenant``, read as ``ragctx ingest`` reads them."""
    spec = SourceSpec(DOCS / tenant, tenant=tenant, groups=("public",))
    return {d.doc_id: d for d in read_source(spec) if isinstance(d, Document)}


# -- the shipped set -------------------------------------------------------------------------


def test_the_shipped_set_is_30_or_more_follow_ups_judged_on_their_tenants_documents() -> None:
    data = load_conversations(SET)
    assert len(data.conversations) >= 30
    assert data.tenants == ["acme", "globex"]
    docs = {tenant: sample_docs(tenant) for tenant in data.tenants}
    for cid, conv in data.conversations.items():
        turns = conv.user_turns
        assert 2 <= len(turns) <= 4, cid
        assert len(turns[-1].split()) <= 14, f"{cid}: a follow-up is short, not a new question"
        assert conv.groups == SAMPLE_GROUPS
        for doc_id, grade in data.qrels[cid].items():
            assert grade >= 1
            doc = docs[conv.tenant].get(doc_id)
            assert doc is not None, f"{cid} judges {doc_id}, not a document of {conv.tenant}"
            assert {"public", *conv.groups} & set(doc.groups), f"{cid} cannot see {doc_id}"


# -- the loader's refusals -------------------------------------------------------------------

GOOD = {"_id": "c1", "tenant": "acme", "messages": [{"role": "user", "content": "q?"}]}


def write_set(folder: Path, lines: Sequence[object], qrels: str = "c1\tfaq-001\t1\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines)
    (folder / "conversations.jsonl").write_text(text + "\n", "utf-8")
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels, "utf-8")
    return folder


@pytest.mark.parametrize(
    ("lines", "qrels", "message"),
    [
        (["{not json"], "c1\tfaq-001\t1\n", r"conversations.jsonl:1: not a JSON object"),
        ([[1, 2]], "c1\tfaq-001\t1\n", r"conversations.jsonl:1: not a JSON object"),
        ([GOOD, GOOD], "c1\tfaq-001\t1\n", r"conversations.jsonl:2: duplicate conversation"),
        ([{**GOOD, "tenant": ""}], "c1\tx\t1\n", r"needs a 'tenant'"),
        ([{**GOOD, "groups": "support"}], "c1\tx\t1\n", r"'groups' must be a list"),
        ([{**GOOD, "messages": []}], "c1\tx\t1\n", r"needs a list of 'messages'"),
        (
            [{**GOOD, "messages": [{"role": "robot", "content": "hi"}]}],
            "c1\tx\t1\n",
            r"message 0 of 'c1' needs a 'role'",
        ),
        (
            [
                {
                    **GOOD,
                    "messages": [
                        {"role": "user", "content": "q?"},
                        {"role": "assistant", "content": "a."},
                    ],
                }
            ],
            "c1\tx\t1\n",
            r"ends with a assistant message",
        ),
        ([GOOD], "c2\tfaq-001\t1\n", r"qrels.tsv:2: unknown conversation id 'c2'"),
        ([GOOD], "c1\tfaq-001\n", r"qrels.tsv:2: expected .* got 2 columns"),
        ([GOOD], "c1\tfaq-001\thigh\n", r"qrels.tsv:2: score 'high' is not an integer"),
        ([GOOD], "c1\tfaq-001\t0\n", r"without a judged relevant document: c1"),
        ([], "", r"holds no conversation"),
    ],
)
def test_a_bad_set_is_refused_naming_the_file_and_line(
    tmp_path: Path, lines: list[object], qrels: str, message: str
) -> None:
    folder = write_set(tmp_path / "set", lines, qrels)
    with pytest.raises(InvalidInputError, match=message):
        load_conversations(folder)


def test_a_folder_without_the_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"conversations.jsonl not found"):
        load_conversations(tmp_path)


def test_a_tenant_without_a_corpus_folder_is_refused(tmp_path: Path) -> None:
    data = load_conversations(write_set(tmp_path / "set", [{**GOOD, "tenant": "initech"}]))
    with pytest.raises(InvalidInputError, match=r"tenant 'initech', but .*initech is not a"):
        tenant_folders(data, DOCS)


# -- the command -----------------------------------------------------------------------------


@pytest.fixture
def offline_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dense_model_path: str
) -> Iterator[Path]:
    """The command's settings, pinned: run from a tmp folder (no ragctx.toml), the offline
    dense model, no reranker, the sample policies."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGCTX_DENSE_MODEL", dense_model_path)
    monkeypatch.setenv("RAGCTX_RERANK_MODEL", "")
    monkeypatch.setenv("RAGCTX_POLICY_DIR", str(REPO / "data" / "policies"))
    monkeypatch.setenv("RAGCTX_QDRANT_PATH", str(tmp_path / "unused-store"))
    yield tmp_path


@pytest.mark.usefixtures("one_torch_thread")
def test_the_command_measures_both_forms_end_to_end(
    offline_settings: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = load_conversations(SET)
    globex = [c for c in SET.joinpath("conversations.jsonl").read_text().splitlines() if c]
    globex = [line for line in globex if json.loads(line)["tenant"] == "globex"]
    ids = {json.loads(line)["_id"] for line in globex}
    qrels = [f"{q}\t{d}\t{g}\n" for q in sorted(ids) for d, g in whole.qrels[q].items()]
    subset = write_set(offline_settings / "globex", globex, "".join(qrels))
    reports = offline_settings / "reports"
    args = ["eval", "conversations", "--data", str(subset), "--corpus", str(DOCS)]
    code = ragctx(monkeypatch, *args, "--reports", str(reports), "--json")
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(out)
    assert report["kind"] == "conversations"
    assert report["forms"] == list(FORMS) == ["last_turn", "conversation"]
    assert report["policy"] == "default"
    assert set(report["rule"]) == {"previous_user_turns", "decay", "first_user_turn"}
    for form in FORMS:
        assert set(report["metrics"][form]) == set(METRICS)
        assert all(0.0 <= v <= 1.0 for v in report["metrics"][form].values())
    n = len(ids)
    assert report["dataset"]["conversations"] == n and report["dataset"]["tenants"] == ["globex"]
    assert sum(report["wins"].values()) == n
    assert report["rerank"]["active"] is False and "rerank" in report["rerank"]["note"]
    rows = {row["id"]: row for row in report["per_conversation"]}
    assert set(rows) == ids
    for row in rows.values():
        assert row["turns_used"][-1] == row["user_turns"] - 1  # the last turn always counts
        assert len(row["turns_used"]) > 1  # the default policy adds earlier turns
        for form in FORMS:
            assert set(row[form]) == set(METRICS)
    saved = json.loads((reports / "conversations.json").read_text())
    assert saved["metrics"] == report["metrics"]
    page = (reports / "conversations.md").read_text()
    assert re.search(r"^\| last_turn \| [0-9.]+ \|", page, re.M)
    assert re.search(r"^\| conversation \| [0-9.]+ \|", page, re.M)
    assert "| globex-01 | globex |" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "no-such-policy"], "--policy 'no-such-policy'"),
        (["--data", "missing-folder"], "conversations.jsonl not found"),
        (["--corpus", "missing-corpus"], "is not a folder"),
    ],
)
def test_bad_options_exit_2_before_any_model_loads(
    offline_settings: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("RAGCTX_DENSE_MODEL", str(offline_settings / "no-model-here"))
    defaults = ["--data", str(SET), "--corpus", str(DOCS)]
    code = ragctx(monkeypatch, "eval", "conversations", *defaults, *args, "--no-save")
    assert code == 2
    assert message in capsys.readouterr().err.replace("\n", "")
