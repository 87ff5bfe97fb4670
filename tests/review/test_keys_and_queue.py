"""The reviewer grant in the keys file and the CLI, and the queue's reasons (no server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from core.errors import InvalidInputError
from service.auth import DEMO_KEY_SHA256, KeysFileError, add_key, hash_key, load_keys
from service.review.queue import build_queue, candidate_rows, reasons
from tests.cli import keys_cli as cli

REPO = Path(__file__).resolve().parents[2]


def test_keys_add_review_makes_a_reviewer_key_without_groups(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    result = CliRunner().invoke(
        cli(), ["keys", "add", "--tenant", "acme", "--review", "--keys-file", str(keys), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["review"] is True and out["admin"] is False and out["groups"] == []
    (grant,) = load_keys(keys).values()
    assert grant.review and grant.sha256 == hash_key(out["key"])
    listed = CliRunner().invoke(cli(), ["keys", "list", "--keys-file", str(keys)])
    assert "reviewer" in listed.stdout
    both = CliRunner().invoke(
        cli(), ["keys", "add", "--tenant", "acme", "--review", "--admin", "--keys-file", str(keys)]
    )
    assert both.exit_code != 0 and "--review with --admin" in str(both.exception)
    with pytest.raises(InvalidInputError, match="reviewer key"):
        add_key(keys, tenant="acme", groups=(), review=True, operator=True)


@pytest.mark.parametrize(
    ("extra", "message"),
    [('review = "yes"', "'review' must be true or false"), ("admin = true\nreview = true", "")],
)
def test_a_bad_review_field_in_the_keys_file_names_the_key(
    tmp_path: Path, extra: str, message: str
) -> None:
    keys = tmp_path / "keys.toml"
    base = f'[[keys]]\nid = "r"\nsha256 = "{"0" * 64}"\ntenant = "acme"\n'
    keys.write_text(base + extra + "\n", "utf-8")
    with pytest.raises(KeysFileError, match=message or "'review = true' and 'admin = true'"):
        load_keys(keys)


def test_the_sample_reviewer_key_is_a_published_demo_key() -> None:
    keys = load_keys(REPO / "data" / "keys.sample.toml")
    grant = keys[hash_key("demo-acme-reviewer-key")]
    assert grant.review and grant.tenant == "acme" and not grant.admin
    assert grant.sha256 in DEMO_KEY_SHA256  # `ragctx serve` refuses it off loopback


def _trace(tid: str, **pack: Any) -> dict[str, Any]:
    cands = [
        {"chunk_id": f"c{i}", "doc_id": f"d{i}", "rank": i, "score": 1.0 - i * 0.1}
        for i in range(1, 6)
    ]
    return {
        "id": tid,
        "policy_version": "default@1",
        "stages": {
            "dense": {"active": True, "candidates": cands},
            "hybrid": {"active": True, "candidates": cands},
            "rerank": {"active": False, "candidates": []},
        },
        "pack": {
            "items": pack.get("items", [{"chunk_id": "c1", "doc_id": "d1"}] * 2),
            "dropped": pack.get("dropped", []),
        },
        "feedback": pack.get("feedback", []),
    }


def test_the_queue_names_each_reason_and_puts_the_urgent_first() -> None:
    ordinary = next(
        _trace(f"t{i}") for i in range(100) if not reasons(_trace(f"t{i}"))
    )  # a trace with no reason and outside the sample
    rejected = _trace("rej", feedback=[{"verdict": "rejected", "judgments": []}])
    empty = _trace("empty", items=[])
    nearly = _trace("nearly", items=[{"chunk_id": "c1", "doc_id": "d1"}])
    injected = _trace("inj", dropped=[{"chunk_id": "c4", "reason": "injection"}])
    top_cut = _trace("cut", dropped=[{"chunk_id": "c2", "reason": "over_budget"}])
    low_cut = _trace("low", dropped=[{"chunk_id": "c5", "reason": "over_budget"}])
    close = _trace("close")
    close["stages"]["dense"]["candidates"][1]["score"] = 0.895  # 0.9 vs 0.895: < 0.02 apart
    assert reasons(rejected) == ["rejected"]
    assert reasons(empty) == ["empty_pack"] and reasons(nearly) == ["nearly_empty_pack"]
    assert reasons(injected) == ["injection"] and reasons(top_cut) == ["top_dropped_over_budget"]
    assert "top_dropped_over_budget" not in reasons(low_cut)
    assert reasons(close) == ["close_top_scores"] and reasons(ordinary) == []
    queue = build_queue([ordinary, close, top_cut, injected, nearly, empty, rejected])
    assert [e.trace["id"] for e in queue] == ["rej", "empty", "nearly", "inj", "cut", "close"]
    assert [e.trace["id"] for e in build_queue([empty, close], failure="empty_pack")] == ["empty"]
    assert build_queue([close], policy="other") == []
    assert len(build_queue([close], policy="default")) == 1
    assert len(build_queue([ordinary], everything=True)) == 1
    assert build_queue([rejected], unjudged=True) == []


def test_candidate_rows_give_every_candidate_once_with_its_outcome() -> None:
    trace = _trace("t", dropped=[{"chunk_id": "c2", "reason": "over_budget", "detail": "x"}])
    rows = candidate_rows(trace, ("dense", "bm25", "hybrid", "rerank"))
    assert [r["chunk_id"] for r in rows] == ["c1", "c2", "c3", "c4", "c5"]
    assert rows[0]["outcome"] == "packed" and rows[1]["outcome"] == "dropped: over_budget"
    assert rows[2]["outcome"] == "not handed on" and rows[0]["ranks"]["dense"] == (1, 0.9)
