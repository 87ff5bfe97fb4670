"""The stored chunk payload: one typed model, written by ingest and read by retrieval.

A point's payload is a contract with every existing store: :meth:`ChunkPayload.to_payload`
writes the keys, in the order and with the JSON values written since schema version 1, and
:meth:`ChunkPayload.from_payload` reads them back, tolerating what an older or foreign point
lacks (a missing field reads as its default). The field-name constants are the names the
store indexes and filters on (``index.schema.INDEXED_FIELDS``, the access and sync filters).

Light on purpose: no qdrant or numpy import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TENANT = "tenant"
GROUPS = "groups"
TAGS = "tags"
DOC_ID = "doc_id"
DOC_HASH = "doc_hash"
SOURCE = "source"
PATH = "path"
UPDATED_AT = "updated_at"
CHUNK_INDEX = "chunk_index"
CHUNK_COUNT = "chunk_count"


@dataclass(frozen=True, slots=True)
class ChunkPayload:
    """Everything a point stores besides its vectors: one chunk of one version of a document.

    ``doc_hash`` is the document version (``ingest.types.Document.doc_hash``), ``chunk_count``
    how many chunks that version has (a version counts as present only when all are).
    ``body_tokens`` maps tiktoken encodings to the count of ``index.schema.rendered_body(text)``;
    read back, anything but a name mapped to a count >= 0 is dropped, so a wrong count is never
    trusted. ``metadata`` must already be plain JSON.
    """

    tenant: str
    doc_id: str
    text: str
    source: str = ""
    path: str = ""
    doc_hash: str = ""
    title: str = ""
    format: str = "text"
    groups: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    updated_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    chunk_index: int = 0
    chunk_count: int = 0
    section: tuple[str, ...] = ()
    char_start: int = 0
    char_end: int = 0
    tokens: int = 0
    body_tokens: Mapping[str, int] = field(default_factory=dict)

    def to_payload(self) -> dict[str, Any]:
        """The JSON payload to store (keys in the stored order of schema version 1)."""
        return {
            TENANT: self.tenant,
            GROUPS: list(self.groups),
            TAGS: list(self.tags),
            DOC_ID: self.doc_id,
            DOC_HASH: self.doc_hash,
            SOURCE: self.source,
            PATH: self.path,
            "title": self.title,
            "format": self.format,
            UPDATED_AT: self.updated_at.isoformat() if self.updated_at else None,
            "metadata": dict(self.metadata),
            CHUNK_INDEX: self.chunk_index,
            CHUNK_COUNT: self.chunk_count,
            "section": list(self.section),
            "char_start": self.char_start,
            "char_end": self.char_end,
            "tokens": self.tokens,
            "body_tokens": dict(self.body_tokens),
            "text": self.text,
        }

    @classmethod
    def from_payload(cls, raw: Mapping[str, Any]) -> ChunkPayload:
        """Read a stored payload; a missing field (an older or partial point) is its default."""
        updated = raw.get(UPDATED_AT)
        return cls(
            tenant=str(raw.get(TENANT, "")),
            doc_id=str(raw.get(DOC_ID, "")),
            text=str(raw.get("text", "")),
            source=str(raw.get(SOURCE, "")),
            path=str(raw.get(PATH, "")),
            doc_hash=str(raw.get(DOC_HASH, "")),
            title=str(raw.get("title", "")),
            format=str(raw.get("format", "text")),
            groups=tuple(raw.get(GROUPS) or ()),
            tags=tuple(raw.get(TAGS) or ()),
            updated_at=datetime.fromisoformat(updated) if isinstance(updated, str) else None,
            metadata=dict(raw.get("metadata") or {}),
            chunk_index=int(raw.get(CHUNK_INDEX, 0)),
            chunk_count=int(raw.get(CHUNK_COUNT, 0)),
            section=tuple(raw.get("section") or ()),
            char_start=int(raw.get("char_start", 0)),
            char_end=int(raw.get("char_end", 0)),
            tokens=int(raw.get("tokens", 0)),
            body_tokens=_body_tokens(raw.get("body_tokens")),
        )


def _body_tokens(raw: object) -> dict[str, int]:
    """The payload's ``body_tokens`` as written by ingest; anything else counts as absent."""
    if not isinstance(raw, dict):
        return {}
    return {
        name: count
        for name, count in raw.items()
        if isinstance(name, str) and type(count) is int and count >= 0
    }
