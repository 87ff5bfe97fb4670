"""Property-based fuzzing of every reader: no input, however hostile, escapes as an exception.

Hypothesis writes bytes and structured garbage (front matter, JSON records, HTML, damaged
PDFs) into a file of each type; reading the folder must yield documents and problems only,
every problem naming a file of the folder, and the good file beside the hostile one must
always come out. On the code before the fix this failed within a few examples (RecursionError
from nested JSON and HTML, ValueError/OverflowError from YAML dates, KeyError and others from
damaged PDFs). The sync-level test then proves the other half: with a hostile file among good
ones, the good ones sync and a vanished document is still deleted.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.edge import EdgeStore
from ingest import Chunker, InputProblem, SourceSpec, read_source
from ingest.types import Document
from tests.adversarial.ingest_helpers import held_docs, run_sync, small_chunker, write_md
from tests.ingest.conftest import _write_pdf

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the suite stays reproducible; `make test-slow` could raise the count
)
SUFFIXES = (".md", ".txt", ".html", ".pdf", ".json", ".jsonl")
GOOD = "# Good\n\nThe good file beside the hostile one.\n"


def read_folder_with(name: str, content: bytes, **limits: int) -> list[Document | InputProblem]:
    """Write ``content`` as ``name`` next to a good file, read the folder, check the result."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "good.md").write_text(GOOD, "utf-8")
        (folder / name).write_bytes(content)
        spec = SourceSpec(folder, tenant="acme", groups=("public",))
        items = list(read_source(spec, **limits))
        labels = {(folder / "good.md").as_posix(), (folder / name).as_posix()}
        for item in items:
            assert isinstance(item, Document | InputProblem)
            if isinstance(item, InputProblem):
                assert item.path in labels and item.message
            else:
                assert item.tenant == "acme"
        assert any(isinstance(i, Document) and i.doc_id == "good.md" for i in items)
        return items


@FUZZ
@given(suffix=st.sampled_from(SUFFIXES), data=st.binary(max_size=4_096))
def test_any_bytes_in_any_reader(suffix: str, data: bytes) -> None:
    read_folder_with("x" + suffix, data)


# Structured garbage: values YAML and JSON can hold, nested, with the fields readers look at.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(
        ["0000-01-01", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "globex", ""]
    )
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
FIELDS = ["id", "doc_id", "text", "title", "tenant", "groups", "tags", "updated_at", "metadata"]
records = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), values, max_size=8)


@FUZZ
@given(record=records, depth=st.integers(min_value=0, max_value=3_000))
def test_json_and_jsonl_records(record: dict[str, Any], depth: int) -> None:
    line = json.dumps(record, default=str)
    nested = "[" * depth + line + "]" * depth
    read_folder_with("r.jsonl", (line + "\n" + nested + "\n").encode())
    read_folder_with("r.json", nested.encode())


@FUZZ
@given(header=records, raw=st.text(max_size=300), depth=st.integers(min_value=0, max_value=3_000))
def test_markdown_front_matter(header: dict[str, Any], raw: str, depth: int) -> None:
    try:
        dumped = yaml.safe_dump(header, allow_unicode=True)
    except yaml.YAMLError:
        dumped = raw
    read_folder_with("a.md", f"---\n{dumped}---\n# T\n\nbody\n".encode())
    read_folder_with("b.md", f"---\n{raw}\n---\nbody\n".encode())
    read_folder_with("c.md", ("---\nx: " + "[" * depth + "]" * depth + "\n---\nbody\n").encode())


tags = st.sampled_from(["div", "p", "span", "h1", "li", "ul", "ol", "tr", "td", "table", "pre",
                        "template", "style", "script", "br", "meta", "title", "b"])  # fmt: skip
css = st.sampled_from([
    "display:none", "left:-9999px", "font-size:0", "display:/*", "}{;:", "clip:rect(",
    "transform:scale(", "width:0;overflow:hidden", "",
])  # fmt: skip


@st.composite
def html_pages(draw: st.DrawFn) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(min_value=0, max_value=30))):
        tag = draw(tags)
        style = draw(css)
        kind = draw(st.integers(min_value=0, max_value=3))
        if kind == 0:
            parts.append(f'<{tag} style="{style}">')
        elif kind == 1:
            parts.append(f"</{tag}>")
        elif kind == 2:
            parts.append(draw(st.text(max_size=20)))
        else:
            parts.append(f'<meta name="ragctx:{draw(st.sampled_from(FIELDS))}" '
                         f'content="{draw(st.text(max_size=12))}">')  # fmt: skip
    depth = draw(st.integers(min_value=0, max_value=2_000))
    return "<html><body>" + "<div>" * depth + "".join(parts) + "</div>" * depth


@FUZZ
@given(page=html_pages())
def test_html_pages(page: str) -> None:
    read_folder_with("p.html", page.encode("utf-8", "surrogatepass"))


@pytest.fixture(scope="module")
def pdf_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("pdf") / "ok.pdf"
    return _write_pdf(path, ["First page text.", "Second page."], title="T").read_bytes()


@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.integers(min_value=0, max_value=2_000), st.binary(min_size=0, max_size=8)),
        min_size=1,
        max_size=6,
    ),
    cut=st.integers(min_value=0, max_value=2_000),
)
def test_damaged_pdfs(pdf_bytes: bytes, edits: list[tuple[int, bytes]], cut: int) -> None:
    data = bytearray(pdf_bytes)
    for offset, junk in edits:
        at = offset % max(len(data), 1)
        data[at : at + len(junk)] = junk
    read_folder_with("d.pdf", bytes(data[: len(data) - cut % max(len(data), 1)]))


class _FailingChunker(Chunker):
    """Fault injection for the chunking step: the chunker raises for one document.

    No real input is known to break the chunker; this stands for the unknown one.
    """

    def chunk(self, doc: Document) -> Any:
        if doc.doc_id == "boom.md":
            raise RuntimeError("chunker exploded")
        return super().chunk(doc)


def test_a_hostile_folder_syncs_the_rest_and_still_deletes(tmp_path: Path, encoders: Any) -> None:
    chunker = small_chunker(encoders)
    failing = _FailingChunker(
        chunker.params,
        max_model_tokens=encoders.dense.max_tokens,
        model_token_count=encoders.dense.count_tokens,
    )
    src = write_md(tmp_path / "src", 4)
    store = EdgeStore(tmp_path / "store")
    try:
        spec = SourceSpec(src, name="src", tenant="acme")
        run_sync([spec], store, encoders, chunker)
        (src / "doc3.md").unlink()
        hostile = {
            "deep.json": b"[" * 50_000 + b"]" * 50_000,
            "year0.md": b"---\nupdated_at: 0000-01-01\n---\nx\n",
            "bomb.md": b"---\na: &a [1, 2]\nb: [*a, *a]\n---\nx\n",
            "broken.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\ntrailer",
            "deep.html": b"<b>" * 5_000,
            "latin1.txt": "caf\xe9".encode("latin-1"),
            "boom.md": b"# Boom\n\nThe chunker fails on this one.\n",
        }
        for name, data in hostile.items():
            (src / name).write_bytes(data)
        (src / "new.md").write_text("# New\n\nStill synced.\n", "utf-8")
        report = run_sync([spec], store, encoders, failing)
    finally:
        docs = held_docs(store)
        store.close()
    assert report.deleted == 1 and report.added == 1 and report.failed == len(hostile)
    assert {Path(p.path).name for p in report.problems} == set(hostile)
    assert {d for _, _, d in docs} == {"doc0.md", "doc1.md", "doc2.md", "new.md"}
