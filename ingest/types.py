"""Plain typed objects passed between the ingest steps: read → chunk → embed → write."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


class FieldMapping(BaseModel):
    """Names of the JSON/JSONL record fields that hold each document field.

    ``metadata``: the fields kept as extra metadata; ``None`` keeps every unmapped field.
    """

    model_config = ConfigDict(frozen=True)

    id: str = "id"
    text: str = "text"
    title: str = "title"
    updated_at: str = "updated_at"
    tenant: str = "tenant"
    groups: str = "groups"
    tags: str = "tags"
    metadata: tuple[str, ...] | None = None


class SourceSpec(BaseModel):
    """Where to read documents from, and the defaults for what a document does not say.

    ``name`` is the sync scope stored as ``Document.source``; by default the path as given
    (``path.as_posix()``). ``kind`` is one of ``ingest.sources.KINDS``: ``auto`` reads a folder
    holding ``corpus.jsonl`` and ``queries.jsonl`` as a BEIR corpus and anything else by file
    type; ``jsonl`` reads every selected file as JSON Lines (by default ``*.jsonl`` in a folder).

    One model for every caller: the CLI builds it, the admin ingest route's request validates
    into it (``service.api.admin_schemas.SourceIn`` is this model with the HTTP limits), and the
    hand-off client sends ``spec.model_dump(mode="json")``. The path may be given positionally:
    ``SourceSpec(Path("data/docs"), tenant="acme")``.
    """

    model_config = ConfigDict(frozen=True)

    path: Path
    name: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    tenant: str = "default"
    groups: tuple[str, ...] = ("public",)
    tags: tuple[str, ...] = ()
    fields: FieldMapping = Field(default_factory=FieldMapping)
    kind: str = "auto"
    tenant_from_records: bool = False
    """Per-record tenancy: a document's own tenant field decides its tenant (``tenant`` is
    then only the default of documents that name none). Off, a document naming another
    tenant than ``tenant`` is a problem (see ``ingest.readers.within_grant``)."""

    def __init__(self, path: Path | str | None = None, /, **data: Any) -> None:
        if path is not None:
            data["path"] = path
        super().__init__(**data)
