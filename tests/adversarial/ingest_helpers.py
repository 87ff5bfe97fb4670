"""Shared pieces of the ingest adversarial tests: a small chunker, the real store, a sync call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest import Chunker, ChunkingParams, SourceSpec, SyncOptions, SyncReport, sync

C = "docs"


def small_chunker(encoders: Any) -> Chunker:
    """Small chunks, so that a few short documents make several points each."""
    return Chunker.for_encoder(ChunkingParams(chunk_tokens=64, overlap_tokens=8), encoders.dense)


def run_sync(
    specs: list[SourceSpec], store: Any, encoders: Any, chunker: Chunker, **opts: Any
) -> SyncReport:
    return sync(
        specs,
        collection=C,
        store=store,
        encoders=encoders,
        chunker=chunker,
        options=SyncOptions(batch_chunks=16, **opts),
    )


def held_docs(store: Any) -> set[tuple[str, str, str]]:
    """(tenant, source, doc_id) of every document the collection holds."""
    return {
        (p.payload["tenant"], p.payload["source"], p.payload["doc_id"]) for p in store.scroll(C)
    }


def write_md(folder: Path, n: int, *, prefix: str = "doc", front: str = "") -> Path:
    """``n`` Markdown files ``{prefix}{i}.md``, each with its own words."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        head = f"---\n{front}---\n" if front else ""
        (folder / f"{prefix}{i}.md").write_text(
            f"{head}# {prefix} {i}\n\nThe {prefix} number {i} explains queue {i * 13}.\n", "utf-8"
        )
    return folder
