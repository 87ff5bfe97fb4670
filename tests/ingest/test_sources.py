"""read_source: every supported format, the globs, BEIR detection, and every bad-input case.

All fixture files are written by the tests into tmp_path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfWriter

from core.errors import InvalidInputError
from ingest.sources import SourceSpec, count_source_files, read_source
from ingest.types import Document, FieldMapping, InputProblem


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def read_all(spec: SourceSpec, **kwargs: int) -> tuple[list[Document], list[InputProblem]]:
    docs: list[Document] = []
    problems: list[InputProblem] = []
    for item in read_source(spec, **kwargs):
        (docs if isinstance(item, Document) else problems).append(item)  # type: ignore[arg-type]
    return docs, problems


def only_problem(spec: SourceSpec, **kwargs: int) -> InputProblem:
    docs, problems = read_all(spec, **kwargs)
    assert docs == []
    assert len(problems) == 1, problems
    return problems[0]


# -- formats ------------------------------------------------------------------------------------


def test_markdown_front_matter_sets_fields_and_the_rest_becomes_metadata(tmp_path: Path) -> None:
    write(
        tmp_path / "docs" / "acme" / "relnotes.md",
        "---\n"
        "title: Release notes\n"
        "doc_id: relnotes-7\n"
        "tenant: acme\n"
        "groups: [eng, support]\n"
        "tags: release, notes\n"
        "updated_at: 2024-05-01\n"
        "owner: ana\n"
        "reviewed: 2024-04-30\n"
        "---\n"
        "# Version 7\n\nFaster sync.\n",
    )
    spec = SourceSpec(tmp_path / "docs", tags=("imported",), tenant="acme")
    docs, problems = read_all(spec)
    assert problems == []
    [doc] = docs
    assert doc.doc_id == "relnotes-7"
    assert doc.title == "Release notes"
    assert doc.tenant == "acme"
    assert doc.groups == ("eng", "support")
    assert doc.tags == ("release", "notes", "imported")
    assert doc.updated_at == datetime(2024, 5, 1, tzinfo=UTC)
    assert doc.metadata == {"owner": "ana", "reviewed": "2024-04-30"}
    assert doc.text == "# Version 7\n\nFaster sync.\n"
    assert doc.format == "markdown"
    assert doc.source == (tmp_path / "docs").as_posix()
    assert doc.path == f"{(tmp_path / 'docs').as_posix()}/acme/relnotes.md"


def test_markdown_defaults_title_from_first_h1_and_id_from_relative_path(tmp_path: Path) -> None:
    path = write(
        tmp_path / "kb" / "guides" / "setup.markdown",
        "```\n# not a heading\n```\n\n## Sub first\n\n# Setting up\n\nSteps.\r\n",
    )
    os.utime(path, (1_700_000_000, 1_700_000_000))
    write(tmp_path / "kb" / "no-heading.md", "Just text.\n")
    docs, problems = read_all(SourceSpec(tmp_path / "kb", name="kb"))
    assert problems == []
    by_id = {d.doc_id: d for d in docs}
    setup = by_id["guides/setup.markdown"]
    assert setup.title == "Setting up"
    assert setup.path == "kb/guides/setup.markdown"
    assert setup.source == "kb"
    assert setup.tenant == "default"
    assert setup.groups == ("public",)
    assert setup.updated_at == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    assert "\r" not in setup.text
    assert by_id["no-heading.md"].title == "no-heading"


def test_text_file_is_read_as_plain_text(tmp_path: Path) -> None:
    write(tmp_path / "notes.txt", "\ufeffplain words\n")
    docs, problems = read_all(SourceSpec(tmp_path / "notes.txt"))
    assert problems == []
    [doc] = docs
    assert (doc.doc_id, doc.title, doc.text, doc.format) == (
        "notes.txt", "notes", "plain words\n", "text",
    )  # fmt: skip
    assert doc.path == doc.source == (tmp_path / "notes.txt").as_posix()


def test_html_becomes_markdown_like_text_with_meta_tags(tmp_path: Path) -> None:
    write(
        tmp_path / "page.html",
        """<!DOCTYPE html><html><head><title> Pricing  page </title>
        <meta name="ragctx:tenant" content="acme">
        <meta name="ragctx:groups" content="sales, support">
        <meta name="ragctx:tags" content="pricing">
        <meta name="ragctx:updated_at" content="2024-03-02T10:00:00+02:00">
        <meta name="ragctx:doc_id" content="pricing">
        <style>body { color: red }</style></head>
        <body><script>var secret = 1;</script><!-- a comment -->
        <h1>Plans</h1><p>Two   plans,
        <b>both</b> monthly.</p>
        <h2>Team <i>plan</i></h2><ul><li>Ten seats</li><li>Support</li></ul>
        <ol><li>First</li><li>Second</li></ol>
        <table><tr><th>Plan</th><th>Price</th></tr><tr><td>Team</td><td>$10</td></tr></table>
        </body></html>""",
    )
    [doc] = read_all(SourceSpec(tmp_path, tenant="acme"))[0]
    assert doc.title == "Pricing page"
    assert doc.doc_id == "pricing"
    assert doc.tenant == "acme"
    assert doc.groups == ("sales", "support")
    assert doc.tags == ("pricing",)
    assert doc.updated_at == datetime(2024, 3, 2, 8, 0, tzinfo=UTC)
    assert doc.format == "html"
    assert doc.text == (
        "# Plans\n\nTwo plans, both monthly.\n\n## Team plan\n\n- Ten seats\n- Support\n\n"
        "1. First\n2. Second\n\nPlan | Price\nTeam | $10"
    )
    assert "secret" not in doc.text and "comment" not in doc.text and "color" not in doc.text


def test_pdf_pages_are_joined_with_blank_lines_and_titled_from_metadata(
    tmp_path: Path, write_pdf: Callable[..., Path]
) -> None:
    write_pdf(tmp_path / "a.pdf", ["First page.", "Second page."], title="Annual report")
    write_pdf(tmp_path / "b.pdf", ["Only page."])
    docs, problems = read_all(SourceSpec(tmp_path))
    assert problems == []
    a, b = docs
    assert (a.title, a.text, a.format) == ("Annual report", "First page.\n\nSecond page.", "pdf")
    assert b.title == "b"


def test_pdf_without_text_layer_asks_for_ocr(tmp_path: Path) -> None:
    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    with (tmp_path / "scan.pdf").open("wb") as fh:
        writer.write(fh)
    problem = only_problem(SourceSpec(tmp_path))
    assert problem.path.endswith("/scan.pdf")
    assert "no text layer; OCR it first" in problem.message


def test_damaged_pdf_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path / "bad.pdf", b"%PDF-1.4\nthis is not a pdf\n")
    problem = only_problem(SourceSpec(tmp_path))
    assert "bad.pdf" in str(problem)


def test_json_file_holds_one_record_or_a_list(tmp_path: Path) -> None:
    write(tmp_path / "one.json", json.dumps({"id": "a", "text": "alpha", "title": "A"}))
    write(
        tmp_path / "many.json",
        json.dumps([{"id": 1, "text": "one"}, {"id": 2, "text": "two", "lang": "en"}]),
    )
    docs, problems = read_all(SourceSpec(tmp_path, name="recs"))
    assert problems == []
    assert [(d.doc_id, d.text, d.path) for d in docs] == [
        ("1", "one", "recs/many.json#1"),
        ("2", "two", "recs/many.json#2"),
        ("a", "alpha", "recs/one.json#a"),
    ]
    assert docs[1].metadata == {"lang": "en"}
    assert docs[2].title == "A"
    assert all(d.format == "json" for d in docs)


def test_jsonl_records_follow_the_field_mapping(tmp_path: Path) -> None:
    records = [
        {"key": "k1", "body": "first", "heading": "One", "modified": "2024-01-02T03:04:05Z",
         "org": "acme", "teams": ["a", "b"], "labels": "x,y", "lang": "en", "extra": 1},
        {"key": "k2", "body": "second", "lang": "fr"},
    ]  # fmt: skip
    write(tmp_path / "data.jsonl", "\n".join(json.dumps(r) for r in records) + "\n\n")
    fields = FieldMapping(
        id="key", text="body", title="heading", updated_at="modified",
        tenant="org", groups="teams", tags="labels",
    )  # fmt: skip
    spec = SourceSpec(tmp_path / "data.jsonl", fields=fields, tags=("t",), tenant_from_records=True)
    docs, problems = read_all(spec)
    assert problems == []
    k1, k2 = docs
    assert (k1.doc_id, k1.text, k1.title, k1.tenant) == ("k1", "first", "One", "acme")
    assert (k1.groups, k1.tags) == (("a", "b"), ("x", "y", "t"))
    assert k1.updated_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert k1.metadata == {"lang": "en", "extra": 1}
    assert k1.path == f"{(tmp_path / 'data.jsonl').as_posix()}#k1"
    assert (k2.tenant, k2.groups) == ("default", ("public",))
    # no date in the record: the file's mtime, marked so that it stays out of doc_hash
    assert k2.updated_at is not None and k2.updated_at_from_mtime
    assert k2.doc_hash == replace(k2, updated_at=datetime(2000, 1, 1, tzinfo=UTC)).doc_hash

    lang_only = FieldMapping(id="key", text="body", metadata=("lang",))
    only_lang = SourceSpec(tmp_path / "data.jsonl", fields=lang_only, tenant_from_records=True)
    assert [d.metadata for d in read_all(only_lang)[0]] == [{"lang": "en"}, {"lang": "fr"}]


def test_kind_jsonl_reads_any_suffix_as_json_lines(tmp_path: Path) -> None:
    write(tmp_path / "dump.ndjson", '{"id": "a", "text": "x"}\n')
    docs, _ = read_all(SourceSpec(tmp_path / "dump.ndjson", kind="jsonl"))
    assert [d.doc_id for d in docs] == ["a"]


def make_beir(folder: Path) -> Path:
    write(
        folder / "corpus.jsonl",
        json.dumps({"_id": "d1", "title": "T1", "text": "one", "metadata": {"year": 2020}})
        + "\n"
        + json.dumps({"_id": "d2", "title": "", "text": "two", "metadata": {}})
        + "\n",
    )
    write(folder / "queries.jsonl", json.dumps({"_id": "q1", "text": "query"}) + "\n")
    write(folder / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    return folder


def test_beir_folder_is_detected_and_read_from_its_corpus(tmp_path: Path) -> None:
    folder = make_beir(tmp_path / "scifact")
    spec = SourceSpec(folder, name="scifact")
    docs, problems = read_all(spec)
    assert problems == []
    assert [(d.doc_id, d.title, d.text, d.format) for d in docs] == [
        ("d1", "T1", "one", "beir"),
        ("d2", "", "two", "beir"),
    ]
    assert docs[0].metadata == {"year": 2020}
    assert docs[0].path == "scifact/corpus.jsonl#d1"
    assert count_source_files(spec) == 1


def test_corpus_without_queries_is_not_beir_unless_asked(tmp_path: Path) -> None:
    folder = make_beir(tmp_path / "c")
    (folder / "queries.jsonl").unlink()
    _, problems = read_all(SourceSpec(folder))  # read as files: records have "_id", not "id"
    assert problems and all("--field-id" in p.message for p in problems)
    docs, problems = read_all(SourceSpec(folder, kind="beir"))
    assert problems == [] and [d.doc_id for d in docs] == ["d1", "d2"]


def test_kind_beir_on_a_folder_without_corpus_is_bad_usage(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not a BEIR corpus folder"):
        read_source(SourceSpec(tmp_path, kind="beir"))


# -- folders and globs --------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for rel in [
        "a.md", "b.txt", "c.html", "img.png", "notes.rst",
        "docs/guide.md", "docs/api/ref.md", "docs/api/ref2.md", "docs/x1.md", "docs/x2.txt",
        "drafts/wip.md", "drafts/deep/more.md", "archive/2023/drafts/old.md",
        ".hidden.md", ".git/config.md", "docs/.cache/c.md",
    ]:  # fmt: skip
        write(root / rel, f"text of {rel}\n")
    return root


def ids(spec: SourceSpec) -> list[str]:
    docs, problems = read_all(spec)
    assert problems == [], problems
    return [d.doc_id for d in docs]


def test_folder_is_walked_in_sorted_order_skipping_hidden_and_unsupported(tree: Path) -> None:
    expected = [
        "a.md", "archive/2023/drafts/old.md", "b.txt", "c.html", "docs/api/ref.md",
        "docs/api/ref2.md", "docs/guide.md", "docs/x1.md", "docs/x2.txt",
        "drafts/deep/more.md", "drafts/wip.md",
    ]  # fmt: skip
    assert ids(SourceSpec(tree)) == expected
    assert count_source_files(SourceSpec(tree)) == len(expected)


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        # ** matches any number of folders, none included
        (("**/*.md",), (), ["a.md", "archive/2023/drafts/old.md", "docs/api/ref.md",
                            "docs/api/ref2.md", "docs/guide.md", "docs/x1.md",
                            "drafts/deep/more.md", "drafts/wip.md"]),
        # a pattern without "/" matches at any depth, like .gitignore
        (("*.txt",), (), ["b.txt", "docs/x2.txt"]),
        # with a "/" it is anchored at the source folder, and * stays inside one folder
        (("docs/*.md",), (), ["docs/guide.md", "docs/x1.md"]),
        (("/*.md",), (), ["a.md"]),
        (("docs/**",), (), ["docs/api/ref.md", "docs/api/ref2.md", "docs/guide.md",
                            "docs/x1.md", "docs/x2.txt"]),
        # ? is one character, [..] a set, [!..] its complement
        (("docs/x?.*",), (), ["docs/x1.md", "docs/x2.txt"]),
        (("docs/api/ref[0-9].md",), (), ["docs/api/ref2.md"]),
        (("docs/x[!1].*",), (), ["docs/x2.txt"]),
        # a pattern matching a folder matches everything below it, at any depth without "/"
        (("**/*.md",), ("drafts",), ["a.md", "docs/api/ref.md", "docs/api/ref2.md",
                                     "docs/guide.md", "docs/x1.md"]),
        (("**/*.md",), ("drafts/",), ["a.md", "docs/api/ref.md", "docs/api/ref2.md",
                                      "docs/guide.md", "docs/x1.md"]),
        # a leading "/" or one in the middle anchors the pattern
        (("**/*.md",), ("/drafts", "docs/api"), ["a.md", "archive/2023/drafts/old.md",
                                                  "docs/guide.md", "docs/x1.md"]),
        # exclude alone narrows the supported files; exclude beats include
        ((), ("*.md", "*.html"), ["b.txt", "docs/x2.txt"]),
        (("a.md",), ("a.md",), []),
    ],
)  # fmt: skip
def test_include_and_exclude_globs(
    tree: Path, include: tuple[str, ...], exclude: tuple[str, ...], expected: list[str]
) -> None:
    spec = SourceSpec(tree, include=include, exclude=exclude)
    assert ids(spec) == expected
    assert count_source_files(spec) == len(expected)


def test_included_file_of_unsupported_type_is_a_problem(tree: Path) -> None:
    problem = only_problem(SourceSpec(tree, include=("*.rst",)))
    assert problem.path.endswith("tree/notes.rst")
    assert "unsupported file type '.rst'" in problem.message


def test_source_name_defaults_to_the_path_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "data" / "docs" / "acme" / "relnotes.md", "# R\n")
    monkeypatch.chdir(tmp_path)
    [doc] = read_all(SourceSpec(Path("./data/docs/")))[0]
    assert doc.source == "data/docs"
    assert doc.path == "data/docs/acme/relnotes.md"
    assert doc.doc_id == "acme/relnotes.md"


# -- bad usage ----------------------------------------------------------------------------------


def test_missing_path_is_bad_usage_raised_at_call(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist") as info:
        read_source(SourceSpec(tmp_path / "nope"))
    assert info.value.field == "path"


def test_unknown_kind_is_bad_usage_listing_the_kinds(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="auto, files, jsonl, beir"):
        read_source(SourceSpec(tmp_path, kind="csv"))
    with pytest.raises(InvalidInputError):
        count_source_files(SourceSpec(tmp_path, kind="csv"))


def test_empty_glob_is_bad_usage_raised_at_call(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="empty glob pattern") as info:
        read_source(SourceSpec(tmp_path, include=(" ",)))
    assert info.value.field == "include/exclude"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [("#drafts", "matches nothing"), ("!", "cannot be used"), ("[z-a]", "cannot be used")],
)
def test_glob_that_matches_nothing_or_cannot_compile_is_bad_usage(
    tmp_path: Path, pattern: str, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message) as info:
        read_source(SourceSpec(tmp_path, exclude=("*.md", pattern)))
    assert info.value.field == "include/exclude" and repr(pattern) in str(info.value)


def test_a_later_negated_glob_takes_a_path_back(tree: Path) -> None:
    # docs/* matches the folder docs/api, so everything below it too
    assert ids(SourceSpec(tree, include=("docs/*", "!*.txt", "docs/x2*"))) == [
        "docs/api/ref.md", "docs/api/ref2.md", "docs/guide.md", "docs/x1.md", "docs/x2.txt",
    ]  # fmt: skip
    assert ids(SourceSpec(tree, exclude=("*.md", "!docs/x1.md", "*.html", "*.txt"))) == [
        "docs/x1.md"
    ]


# -- bad input: one problem per bad document, the rest still read --------------------------------


def test_unreadable_file_is_a_problem_and_the_rest_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "a.md", "fine\n")
    locked = write(tmp_path / "b.md", "secret\n")
    write(tmp_path / "c.md", "fine too\n")
    if os.geteuid() == 0:  # root reads any file: make this one refuse like chmod 000 would
        real_open = os.open  # the readers open files with os.open (ingest.readers.open_regular)

        def refusing_open(path: Any, *args: Any, **kwargs: Any) -> int:
            if Path(path) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", refusing_open)
    else:
        locked.chmod(0)
    docs, problems = read_all(SourceSpec(tmp_path))
    assert [d.doc_id for d in docs] == ["a.md", "c.md"]
    [problem] = problems
    assert problem.path.endswith("/b.md")
    assert "permission denied" in problem.message


def test_dangling_symlink_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "gone.md").symlink_to(tmp_path / "missing.md")
    problem = only_problem(SourceSpec(tmp_path))
    assert problem.path.endswith("/gone.md")
    assert "cannot read the file: No such file or directory" in problem.message


def test_binary_file_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path / "blob.txt", b"abc\x00\x01\x02" * 10)
    problem = only_problem(SourceSpec(tmp_path))
    assert problem.path.endswith("/blob.txt")
    assert "binary file (NUL bytes in the first 8 KB)" in problem.message


def test_invalid_utf8_names_the_byte_offset(tmp_path: Path) -> None:
    write(tmp_path / "latin.md", b"caf" + "é au lait".encode("latin-1"))
    problem = only_problem(SourceSpec(tmp_path))
    assert problem.path.endswith("/latin.md")
    assert "invalid UTF-8 at byte offset 3" in problem.message
    assert "re-encode the file to UTF-8" in problem.message


def test_utf16_file_is_told_to_be_re_encoded(tmp_path: Path) -> None:
    write(tmp_path / "wide.txt", "hello".encode("utf-16"))
    assert "UTF-16" in only_problem(SourceSpec(tmp_path)).message


def test_malformed_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    lines = ['{"id": "1", "text": "a"}', "", '{"id": "2", "text": ', '{"id": "3", "text": "c"}']
    path = write(tmp_path / "file.jsonl", "\n".join(lines) + "\n")
    docs, problems = read_all(SourceSpec(path))
    assert [d.doc_id for d in docs] == ["1", "3"]
    [problem] = problems
    assert problem.line == 3
    assert str(problem).startswith(f"{path.as_posix()}:3: invalid JSON: ")
    assert str(problem).endswith("; fix or remove the line")


def test_invalid_utf8_in_jsonl_names_line_and_file_offset(tmp_path: Path) -> None:
    path = write(tmp_path / "f.jsonl", b'{"id": "1", "text": "a"}\n{"id": "2", "text": "\xff"}\n')
    [problem] = read_all(SourceSpec(path))[1]
    assert problem.line == 2
    assert "invalid UTF-8 at byte offset 46" in problem.message  # 25 bytes + 21 into line 2


@pytest.mark.parametrize(
    ("record", "field", "flag"),
    [({"text": "no id"}, "'id'", "--field-id"), ({"id": "x"}, "'text'", "--field-text")],
)
def test_record_missing_a_mapped_field_names_it_and_the_flag(
    tmp_path: Path, record: dict[str, str], field: str, flag: str
) -> None:
    path = write(tmp_path / "r.jsonl", '{"id": "ok", "text": "fine"}\n' + json.dumps(record))
    docs, problems = read_all(SourceSpec(path))
    assert [d.doc_id for d in docs] == ["ok"]
    [problem] = problems
    assert problem.line == 2
    assert field in problem.message and flag in problem.message


def test_record_with_a_non_string_text_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "r.jsonl", '{"id": "a", "text": 5}\n[1, 2]\n')
    first, second = read_all(SourceSpec(path))[1]
    assert "'text' (--field-text) of record 'a' is not a string" in first.message
    assert "expected a JSON object per record, got a list" in second.message


def test_duplicate_ids_keep_the_first_and_report_both_locations(tmp_path: Path) -> None:
    rows = [("a", "first"), ("b", "other"), ("a", "second"), ("a", "third")]
    path = write(tmp_path / "d.jsonl", "\n".join(json.dumps({"id": i, "text": t}) for i, t in rows))
    docs, problems = read_all(SourceSpec(path))
    assert [(d.doc_id, d.text) for d in docs] == [("a", "first"), ("b", "other")]
    assert [p.line for p in problems] == [3, 4]
    label = path.as_posix()
    assert f"first read at {label}:1, again at {label}:3" in problems[0].message
    assert problems[0].doc_id == "a"


def test_duplicate_ids_across_files_name_both_files(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "---\ndoc_id: same\n---\nA\n")
    write(tmp_path / "b.md", "---\ndoc_id: same\n---\nB\n")
    docs, problems = read_all(SourceSpec(tmp_path, name="src"))
    assert [d.text for d in docs] == ["A\n"]
    [problem] = problems
    assert problem.path == "src/b.md"
    assert "first read at src/a.md, again at src/b.md" in problem.message


def test_empty_document_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path / "blank.md", "---\ntitle: Nothing\n---\n \n\t\n")
    write(tmp_path / "r.json", json.dumps([{"id": "a", "text": "ok"}, {"id": "b", "text": " "}]))
    problems = read_all(SourceSpec(tmp_path))[1]
    assert [(Path(p.path).name, p.message) for p in problems] == [
        ("blank.md", "empty document; nothing to index"),
        ("r.json", "record 2: empty document; nothing to index"),
    ]


def test_huge_document_names_size_limit_and_setting(tmp_path: Path) -> None:
    write(tmp_path / "big.txt", "x" * 300)
    write(tmp_path / "bigger.txt", "y" * 5000)  # over 4 bytes a character: never parsed
    path = write(tmp_path / "r.jsonl", json.dumps({"id": "r", "text": "z" * 200}) + "\n")
    problems = read_all(SourceSpec(tmp_path), max_doc_chars=100)[1]
    messages = {Path(p.path).name: p.message for p in problems}
    assert "300 characters, over the limit of 100 characters" in messages["big.txt"]
    assert "file too large: over the limit of 400 bytes" in messages["bigger.txt"]
    assert "200 characters" in messages["r.jsonl"]
    assert all("RAGCTX_MAX_DOC_CHARS" in m for m in messages.values())
    assert [p.line for p in problems if p.path == path.as_posix()] == [1]


def test_bad_dates_name_the_field_value_and_format(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "---\nupdated_at: last tuesday\n---\ntext\n")
    write(tmp_path / "r.jsonl", json.dumps({"id": "r", "text": "t", "when": "05/01/2024"}) + "\n")
    spec = SourceSpec(tmp_path, fields=FieldMapping(updated_at="when"))
    md, record = read_all(spec)[1]
    assert "updated_at has value 'last tuesday', which is not a date" in md.message
    assert "expected ISO 8601, e.g. 2024-05-01" in md.message
    assert record.line == 1
    assert "field 'when' (--field-updated-at) has value '05/01/2024'" in record.message
    assert "ISO 8601" in record.message


def test_bad_front_matter_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "---\ntitle: [unclosed\n---\ntext\n")
    write(tmp_path / "b.md", "---\ngroups: {a: 1}\n---\ntext\n")
    write(tmp_path / "c.md", "---\n\nStarts with a rule.\n\n---\n\nMore.\n")  # not front matter
    docs, (a, b) = read_all(SourceSpec(tmp_path))
    assert "invalid YAML front matter" in a.message
    assert "groups has value {'a': 1}" in b.message
    assert [d.text for d in docs] == ["---\n\nStarts with a rule.\n\n---\n\nMore.\n"]


def test_invalid_json_file_names_the_line(tmp_path: Path) -> None:
    write(tmp_path / "x.json", '{\n  "id": "a",\n  "text": oops\n}\n')
    problem = only_problem(SourceSpec(tmp_path))
    assert problem.line == 3 and "invalid JSON" in problem.message


def test_reading_is_lazy(tmp_path: Path) -> None:
    lines = [json.dumps({"id": str(i), "text": f"doc {i}"}) + "\n" for i in range(1000)]
    path = write(tmp_path / "many.jsonl", "".join(lines))
    items = read_source(SourceSpec(path))
    first = next(items)
    assert isinstance(first, Document) and first.doc_id == "0"
    with path.open("a") as fh:  # lines appended after reading started are still read
        fh.write(json.dumps({"id": "late", "text": "appended"}) + "\n")
    rest = list(items)
    assert isinstance(rest[-1], Document) and rest[-1].doc_id == "late"
