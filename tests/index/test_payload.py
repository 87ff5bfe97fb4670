"""The stored chunk payload: one model, written by ingest, read by retrieval, unchanged on disk."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from index.payload import ChunkPayload
from index.schema import ACCESS_FIELDS, INDEXED_FIELDS, StoredPoint
from ingest.sync import HELD_FIELDS, _payload, _Pending
from ingest.types import Chunk, Document
from retrieval.hybrid import candidate_from_point

text = st.text(max_size=20)
names = st.lists(st.text(min_size=1, max_size=8), max_size=4).map(tuple)
json_scalar = st.none() | st.booleans() | st.integers() | st.text(max_size=10)
offsets = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
moments = st.none() | st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
)
payloads = st.builds(
    ChunkPayload,
    tenant=text,
    doc_id=text,
    text=text,
    source=text,
    path=text,
    doc_hash=text,
    title=text,
    format=text,
    groups=names,
    tags=names,
    updated_at=moments,
    metadata=st.dictionaries(st.text(max_size=6), json_scalar, max_size=4),
    chunk_index=st.integers(0, 10_000),
    chunk_count=st.integers(0, 10_000),
    section=names,
    char_start=st.integers(0, 10**9),
    char_end=st.integers(0, 10**9),
    tokens=st.integers(0, 10**6),
    body_tokens=st.dictionaries(
        st.sampled_from(["cl100k_base", "o200k_base"]), st.integers(0, 10**6)
    ),
)


def _stored(payload: dict[str, Any]) -> dict[str, Any]:
    """What a store gives back: the payload through JSON, as Qdrant keeps it."""
    back: dict[str, Any] = json.loads(json.dumps(payload))
    return back


@given(payloads)
def test_a_payload_reads_back_as_written(model: ChunkPayload) -> None:
    raw = _stored(model.to_payload())
    assert ChunkPayload.from_payload(raw) == model
    again = ChunkPayload.from_payload(raw).to_payload()
    assert json.dumps(again) == json.dumps(raw)  # same keys, same order, same values


def test_a_partial_or_older_payload_reads_as_defaults() -> None:
    model = ChunkPayload.from_payload({"doc_id": "d", "tenant": "t", "body_tokens": [3]})
    assert model == ChunkPayload(tenant="t", doc_id="d", text="")


def test_field_names_come_from_the_payload_model() -> None:
    keys = set(ChunkPayload(tenant="t", doc_id="d", text="x").to_payload())
    assert set(INDEXED_FIELDS) <= keys and set(ACCESS_FIELDS) <= keys and set(HELD_FIELDS) <= keys


DOC = Document(
    doc_id="guide",
    text="# Queues\n\nMessages wait in a queue.",
    source="data/docs",
    path="data/docs/guide.md",
    tenant="acme",
    title="Queues",
    groups=("support", "public"),
    tags=("relay",),
    updated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    metadata={"owner": "ops", "when": datetime(2025, 5, 1, tzinfo=UTC)},
    format="markdown",
)
CHUNK = Chunk(
    doc_id="guide",
    index=1,
    text="Messages wait in a queue.",
    char_start=10,
    char_end=35,
    tokens=9,
    section=("Queues",),
    embed_text="Queues\nQueues\nMessages wait in a queue.",
    body_tokens={"cl100k_base": 7, "o200k_base": 6},
)


def test_ingest_writes_the_schema_v1_payload_byte_for_byte() -> None:
    # The layout every existing store holds: a change here breaks them (DESIGN.md §3).
    written = _payload(_Pending(DOC, "h1", [CHUNK, CHUNK], False, []), CHUNK)
    assert json.dumps(written) == json.dumps(
        {
            "tenant": "acme",
            "groups": ["support", "public"],
            "tags": ["relay"],
            "doc_id": "guide",
            "doc_hash": "h1",
            "source": "data/docs",
            "path": "data/docs/guide.md",
            "title": "Queues",
            "format": "markdown",
            "updated_at": "2026-01-02T03:04:05+00:00",
            "metadata": {"owner": "ops", "when": "2025-05-01 00:00:00+00:00"},
            "chunk_index": 1,
            "chunk_count": 2,
            "section": ["Queues"],
            "char_start": 10,
            "char_end": 35,
            "tokens": 9,
            "body_tokens": {"cl100k_base": 7, "o200k_base": 6},
            "text": "Messages wait in a queue.",
        }
    )


def test_a_payload_written_by_ingest_reads_back_through_retrieval() -> None:
    written = _payload(_Pending(DOC, "h1", [CHUNK, CHUNK], False, []), CHUNK)
    point = StoredPoint(id="p1", payload=_stored(written))
    c = candidate_from_point(point, stages={}, score=0.5)
    assert (c.chunk_id, c.doc_id, c.tenant, c.source, c.path, c.title) == (
        "p1",
        DOC.doc_id,
        DOC.tenant,
        DOC.source,
        DOC.path,
        DOC.title,
    )
    assert (c.text, c.section, c.chunk_index, c.char_start, c.char_end, c.tokens) == (
        CHUNK.text,
        CHUNK.section,
        CHUNK.index,
        CHUNK.char_start,
        CHUNK.char_end,
        CHUNK.tokens,
    )
    assert (c.groups, c.tags, c.updated_at) == (DOC.groups, DOC.tags, DOC.updated_at)
    assert dict(c.body_tokens) == dict(CHUNK.body_tokens)
    assert dict(c.metadata) == written["metadata"]
    assert ChunkPayload.from_payload(point.payload).to_payload() == written
