"""Admin request and response bodies: ingest jobs (``POST /v1/admin/ingest``, job status).

Apart from ``service.api.schemas`` because a source spec is ingest's own model: the client,
which imports only the context schemas, stays free of ingest (and of Qdrant under it).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    WithJsonSchema,
)
from pydantic_core import PydanticKnownError

from ingest.types import FieldMapping, SourceSpec
from service.api.schemas import Name, _In


class FieldMappingIn(FieldMapping, _In):
    """JSON record fields holding each document field (``ingest.FieldMapping``, HTTP limits)."""

    id: Name = "id"
    text: Name = "text"
    title: Name = "title"
    updated_at: Name = "updated_at"
    tenant: Name = "tenant"
    groups: Name = "groups"
    tags: Name = "tags"
    metadata: tuple[Name, ...] | None = None


MAX_PATH_CHARS = 4096


def _path_text(value: object) -> object:
    # the limits of a JSON string, checked before the text becomes a Path ("" would be ".")
    if not isinstance(value, str):
        raise PydanticKnownError("string_type")
    if not value:
        raise PydanticKnownError("string_too_short", {"min_length": 1})
    if len(value) > MAX_PATH_CHARS:
        raise PydanticKnownError("string_too_long", {"max_length": MAX_PATH_CHARS})
    return value


class SourceIn(SourceSpec, _In):
    """One source to sync: a path on the server's machine (absolute, or relative to its cwd).

    This is ``ingest.SourceSpec`` with the HTTP limits, so the route hands it to the job as is
    and the hand-off client sends ``SourceSpec.model_dump(mode="json")``.
    """

    path: Annotated[
        Path,
        BeforeValidator(_path_text),
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_PATH_CHARS}),
    ]
    name: Name | None = Field(
        default=None, description="Sync scope name; default: the path as given."
    )
    include: tuple[Name, ...] = ()
    exclude: tuple[Name, ...] = ()
    tenant: Name = Field(description="Tenant of documents that name none.")
    groups: tuple[Name, ...] = Field(description="Groups of documents that name none.")
    tags: tuple[Name, ...] = ()
    kind: Literal["auto", "files", "jsonl", "beir"] = "auto"
    fields: FieldMappingIn = Field(default_factory=FieldMappingIn)
    tenant_from_records: bool = Field(
        default=False,
        description="Per-record tenancy: each document's own tenant field decides its tenant.",
    )


class IngestRequest(_In):
    """``POST /v1/admin/ingest``: sync sources into a collection inside the server."""

    sources: Annotated[list[SourceIn], Field(min_length=1, max_length=100)]
    collection: Name | None = None
    dry_run: bool = False
    partition: str | None = Field(
        default=None, description="i/n: one hash partition of each source."
    )
    max_doc_chars: int | None = Field(default=None, ge=1)
    allow_mass_delete: bool = Field(
        default=False,
        description="Delete even when a source yields no documents or would lose most of them.",
    )


class JobProgressOut(BaseModel):
    """Live counters of a job."""

    files_total: int | None
    documents: int
    chunks: int
    embedded: int


class JobOut(BaseModel):
    """An ingest job: state, progress, and when done its summary."""

    id: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    collection: str
    sources: list[str]
    submitted_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: JobProgressOut
    report: dict[str, object] | None
    error: str | None


# Traces and feedback (issue 16) ------------------------------------------------------------
