"""Builders shared by the assembler tests: candidates, policies and a one-call ``pack``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import tiktoken

from assembler import ContextPack, Policy, assemble
from assembler.tokens import TokenCounter
from core.types import BODY_TOKEN_ENCODINGS, Candidate, ScoreKind, rendered_body

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def words(count: int, seed: str = "w") -> str:
    """``count`` distinct words, so texts built from different seeds share no shingles."""
    return " ".join(f"{seed}{number}" for number in range(count)) + "."


def candidate(
    chunk_id: str,
    *,
    text: str | None = None,
    doc_id: str | None = None,
    score: float = 1.0,
    kind: ScoreKind = ScoreKind.RERANK,
    days_old: float | None = 10,
    **fields: Any,
) -> Candidate:
    """A candidate with sensible defaults; ``days_old=None`` means no updated_at."""
    updated = None if days_old is None else NOW - timedelta(days=days_old)
    return Candidate(
        chunk_id=chunk_id,
        doc_id=doc_id if doc_id is not None else f"doc-{chunk_id}",
        text=text if text is not None else words(30, seed=chunk_id),
        score=score,
        score_kind=kind,
        tenant="acme",
        source=fields.pop("source", "acme/guides"),
        path=fields.pop("path", f"acme/guides/{chunk_id}.md"),
        title=fields.pop("title", f"Title {chunk_id}"),
        updated_at=updated,
        **fields,
    )


def stored(text: str) -> dict[str, int]:
    """The body counts ingestion stores with a chunk (see ``Chunker.body_tokens``)."""
    return {
        name: len(tiktoken.get_encoding(name).encode_ordinary(rendered_body(text)))
        for name in BODY_TOKEN_ENCODINGS
    }


def policy(**sections: Any) -> Policy:
    """A policy named ``test`` with the given sections (plain dicts, validated)."""
    return Policy.model_validate({"name": "test", "version": "1", **sections})


def pack(
    candidates: Sequence[Candidate],
    counter: TokenCounter,
    *,
    rules: Policy | None = None,
    budget: int = 4000,
    pinned: Sequence[Candidate] = (),
    now: datetime = NOW,
) -> ContextPack:
    """``assemble`` with test defaults."""
    return assemble(
        candidates,
        policy=rules if rules is not None else policy(),
        budget=budget,
        counter=counter,
        now=now,
        pinned=pinned,
    )


def packed_ids(result: ContextPack) -> list[str]:
    """Chunk ids packed, in context order (merged items contribute all their chunks)."""
    return [chunk for item in result.items for chunk in item.chunk_ids]


def reasons(result: ContextPack) -> dict[str, str]:
    """Drop reason by chunk id."""
    return {drop.chunk_id: drop.reason.value for drop in result.dropped}


def drop_detail(result: ContextPack, chunk_id: str) -> str:
    """The drop detail of one chunk."""
    return next(drop.detail for drop in result.dropped if drop.chunk_id == chunk_id)


XML_BLOCK = re.compile(r'<source id="(\d+)"[^\n]*>\n(.*?)\n</source>\n', re.DOTALL)


def xml_blocks(context: str) -> list[tuple[int, str]]:
    """(citation number, rendered text) of every XML block, in context order."""
    return [(int(number), text) for number, text in XML_BLOCK.findall(context)]
