"""Bounded cost of one input: size checked before parsing, nesting bounded, no YAML aliases.

Readers only (no store, no model): each hostile file must come out as a problem naming the
file and the fix, quickly, while the file next to it is still read. Each test failed on the
code before the fix: by a crash (RecursionError, ValueError, OverflowError out of the
reader), by parsing what is over the limit, or by running for minutes (an alias bomb).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ingest.records
from ingest import InputProblem, SourceSpec, read_source
from ingest.types import Document


def read_all(folder: Path, **limits: int) -> tuple[dict[str, Document], dict[str, InputProblem]]:
    docs: dict[str, Document] = {}
    problems: dict[str, InputProblem] = {}
    for item in read_source(SourceSpec(folder, tenant="acme"), **limits):
        if isinstance(item, InputProblem):
            problems[Path(item.path).name] = item
        else:
            docs[item.doc_id] = item
    return docs, problems


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "good.md").write_text("# Good\n\nStill read.\n", "utf-8")
    return tmp_path


@pytest.mark.timeout(60)
def test_front_matter_refuses_aliases_and_anchors(folder: Path) -> None:
    # the billion laughs: 9 levels of 9 aliases each, a few hundred bytes
    levels = ["a0: [x, x, x, x, x, x, x, x, x]"]
    levels[0] = "a0: &a0 [x, x, x, x, x, x, x, x, x]"
    for i in range(1, 10):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    (folder / "bomb.md").write_text("---\n" + "\n".join(levels) + "\n---\n# Bomb\n", "utf-8")
    (folder / "anchor.md").write_text("---\nowner: &o ana\n---\n# A\n\nText.\n", "utf-8")
    docs, problems = read_all(folder)
    assert set(docs) == {"good.md"}
    assert "anchors and aliases are not allowed" in problems["bomb.md"].message
    assert "anchor 'o'" in problems["anchor.md"].message


def test_front_matter_is_size_limited(folder: Path) -> None:
    fields = "".join(f"k{i}: {'v' * 60}\n" for i in range(1200))
    (folder / "big.md").write_text(f"---\n{fields}---\n# Big\n\nText.\n", "utf-8")
    _, problems = read_all(folder)
    assert "front matter too large" in problems["big.md"].message


def test_dates_out_of_range_are_the_documents_problem(folder: Path) -> None:
    (folder / "year0.md").write_text("---\nupdated_at: 0000-01-01\n---\n# Y\n\nText.\n", "utf-8")
    (folder / "edge.md").write_text(
        "---\nupdated_at: 0001-01-01T00:00:00+01:00\n---\n# E\n\nText.\n", "utf-8"
    )
    (folder / "r.jsonl").write_text(
        json.dumps({"id": "r", "text": "t", "updated_at": "0001-01-01T00:30:00+01:00"}) + "\n"
    )
    docs, problems = read_all(folder)
    assert set(docs) == {"good.md"}
    assert set(problems) == {"year0.md", "edge.md", "r.jsonl"}
    assert problems["r.jsonl"].line == 1 and "updated_at" in problems["r.jsonl"].message


def test_deep_nesting_is_refused_not_a_crash(folder: Path) -> None:
    depth = 100_000
    (folder / "deep.json").write_text("[" * depth + "]" * depth, "utf-8")
    (folder / "deep.jsonl").write_text(
        json.dumps({"id": "ok", "text": "fine"})
        + "\n"
        + '{"id": "d", "text": "t", "x": '
        + "[" * depth
        + "]" * depth
        + "}\n"
        + json.dumps({"id": "after", "text": "still read"})
        + "\n",
        "utf-8",
    )
    (folder / "nested40.json").write_text(
        json.dumps({"id": "n", "text": "t", "x": json.loads("[" * 40 + "]" * 40)}), "utf-8"
    )
    (folder / "deep.html").write_text("<div>" * 5_000 + "text" + "</div>" * 5_000, "utf-8")
    (folder / "deep.md").write_text("---\nx: " + "[" * 5_000 + "]" * 5_000 + "\n---\n# D\n")
    docs, problems = read_all(folder)
    assert set(docs) == {"good.md", "ok", "after"}
    assert set(problems) == {"deep.json", "deep.jsonl", "nested40.json", "deep.html", "deep.md"}
    assert problems["deep.jsonl"].line == 2
    for problem in problems.values():
        assert "nested deeper" in problem.message and "flatten" in problem.message


def test_json_over_the_byte_limit_is_never_parsed(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[int] = []
    real_loads = json.loads

    def counting_loads(text: str | bytes, **kw: object) -> object:
        parsed.append(len(text))
        return real_loads(text, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest.records.json, "loads", counting_loads)
    big = json.dumps({"id": "big", "text": "w " * 3_000})
    (folder / "big.json").write_text(big, "utf-8")
    (folder / "lines.jsonl").write_text(
        big + "\n" + json.dumps({"id": "small", "text": "ok"}) + "\n", "utf-8"
    )
    docs, problems = read_all(folder, max_doc_bytes=1_000)
    assert set(docs) == {"good.md", "small"}
    assert "over the limit of 1,000 bytes" in problems["big.json"].message
    assert problems["lines.jsonl"].line == 1
    assert "RAGCTX_MAX_DOC_BYTES" in problems["lines.jsonl"].message
    assert max(parsed) < 1_000  # only the small line reached the JSON parser


def test_html_and_pdf_over_the_limits_are_not_parsed(folder: Path) -> None:
    (folder / "big.html").write_text("<p>" + "word " * 2_000 + "</p>", "utf-8")
    (folder / "big.pdf").write_bytes(b"%PDF-1.4\n" + b"0" * 5_000)
    docs, problems = read_all(folder, max_doc_bytes=4_000, max_doc_chars=5_000)
    assert set(docs) == {"good.md"}
    assert "too large" in problems["big.html"].message
    assert "over the limit of 4,000 bytes" in problems["big.pdf"].message
