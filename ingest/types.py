"""Plain typed objects passed between the ingest steps: read → chunk → embed → write."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def canonical_sha256(value: Any) -> str:
    """sha256 of ``value`` as canonical JSON (sorted keys, no whitespace), never ``hash()``."""
    data = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Document:
    """One document read from a source, with its access metadata.

    ``source`` names the sync scope (the source a sync keeps in step: a folder, a file, a BEIR
    corpus); ``path`` says where this document lives inside it (a file path, or ``file#id`` for
    a record). ``doc_id`` is unique within its source. ``text`` is the document's text as
    chunked: Markdown for Markdown and HTML sources, plain text otherwise; chunk character
    offsets index into it.
    """

    doc_id: str
    text: str
    source: str
    path: str
    tenant: str
    title: str = ""
    groups: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    updated_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    format: str = "text"  # markdown | text | html | pdf | json | beir
    updated_at_from_mtime: bool = False  # the date is the file's mtime, not the document's

    @property
    def doc_hash(self) -> str:
        """sha256 over content and metadata: a change to either makes the document "changed".

        A date taken from the file's mtime is left out: touching a file, or rewriting a JSONL
        file for one record, must not re-embed every document in it.
        """
        updated = None if self.updated_at is None or self.updated_at_from_mtime else self.updated_at
        return canonical_sha256(
            {
                "doc_id": self.doc_id,
                "text": self.text,
                "title": self.title,
                "source": self.source,
                "path": self.path,
                "tenant": self.tenant,
                "groups": sorted(self.groups),
                "tags": sorted(self.tags),
                "updated_at": updated.isoformat() if updated else None,
                "metadata": dict(self.metadata),
                "format": self.format,
            }
        )


@dataclass(frozen=True, slots=True)
class Chunk:
    """A token-bounded piece of a document.

    Invariant: ``document.text[char_start:char_end] == text``. ``section`` is the heading path
    (outermost first). ``tokens`` counts ``embed_text`` with the chunker's tiktoken encoding.
    ``embed_text`` is what the encoders see: the chunk prefixed with its document title and
    section path, so a chunk keeps the context its headings give it. ``body_tokens`` counts
    the text as a context renders it (``index.schema.rendered_body``) in each of
    ``index.schema.BODY_TOKEN_ENCODINGS``, for the assembler.
    """

    doc_id: str
    index: int
    text: str
    char_start: int
    char_end: int
    tokens: int
    section: tuple[str, ...] = ()
    embed_text: str = ""
    body_tokens: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InputProblem:
    """A document or input that could not be read: where, and what to do about it."""

    path: str
    message: str
    line: int | None = None
    doc_id: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Names of the JSON/JSONL record fields that hold each document field.

    ``metadata``: the fields kept as extra metadata; ``None`` keeps every unmapped field.
    """

    id: str = "id"
    text: str = "text"
    title: str = "title"
    updated_at: str = "updated_at"
    tenant: str = "tenant"
    groups: str = "groups"
    tags: str = "tags"
    metadata: tuple[str, ...] | None = None
