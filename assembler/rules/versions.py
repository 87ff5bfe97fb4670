"""Versions: an older version of a document is not packed beside the newer one it contradicts.

Two ways to say a document is newer, both read from ``Candidate.metadata`` (ingest writes them
from front matter, HTML meta tags or record fields; see ``ingest.fields.parse_versions``):

- ``series`` + ``version``: within a series the newest version wins. Versions compare as
  PEP 440 versions (``packaging.version``) when every version of the series parses, else by
  a natural sort key (digit runs as numbers), so ``4.10`` is newer than ``4.9`` either way;
  equal versions are told apart by ``updated_at`` (a missing date is the oldest), and
  versions still equal supersede nobody.
- ``supersedes: [doc ids]``: the document replaces the ones it names.

A document is superseded only by one that is among the candidates (the chunks still alive
after exclusion and freshness): a document nobody packs never displaces another. Chains
resolve to their newest member (A supersedes B, B supersedes C: C is superseded by A); a
cycle (A supersedes B, B supersedes A, or a ``supersedes`` that contradicts the series)
supersedes nobody in it, and is reported in the notes.

Pure: reads only ``doc_id``, ``metadata`` and ``updated_at``, so the caller's own documents,
given as candidates, are judged the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from packaging.version import Version

from assembler.types import VersionsMode
from core.types import Candidate

SERIES = "series"
VERSION = "version"
SUPERSEDES = "supersedes"
FLAG_PREFIX = "superseded_by:"

_RUNS = re.compile(r"[0-9]+|[^0-9]+")  # ASCII digits only: "²" is text
_DIGITS = frozenset("0123456789")
_OLDEST = datetime.min.replace(tzinfo=UTC)

NaturalKey = tuple[tuple[int, int, str], ...]


@dataclass(frozen=True, slots=True)
class Superseded:
    """A document superseded by a newer one among the candidates, and why."""

    newer: str  # the newest document of the chain, the one to pack instead
    why: str  # e.g. "series relnotes, 4.1 > 3.8" or "relnotes-4-1 supersedes relnotes-3-8"

    def detail(self, mode: VersionsMode) -> str:
        """The drop detail (``prefer_latest``) naming the newer document and the rule."""
        return f"versions.{mode.value}: superseded by {self.newer} ({self.why})"

    @property
    def flag(self) -> str:
        """The item flag under ``keep_all_flagged``: ``superseded_by:<doc id>``."""
        return FLAG_PREFIX + self.newer


@dataclass(frozen=True, slots=True)
class VersionsVerdict:
    """Per candidate (input order) its supersession or None, and notes for the trace."""

    superseded: tuple[Superseded | None, ...]
    documents: Mapping[str, Superseded]  # superseded doc id → by what
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Doc:
    doc_id: str
    metadata: Mapping[str, Any]
    updated_at: datetime


def natural_key(text: str) -> NaturalKey:
    """A sort key that orders digit runs as numbers: ``4.10`` after ``4.9``, ``v2`` before
    ``v10``; a number sorts before text at the same place, and text ignores case.

    Digit runs compare by length, then digits (leading zeros aside), never through ``int``:
    a version of thousands of digits is no error.
    """
    key: list[tuple[int, int, str]] = []
    for run in _RUNS.findall(text):
        if run[0] in _DIGITS:
            digits = run.lstrip("0") or "0"
            key.append((0, len(digits), digits))
        else:
            key.append((1, 0, run.casefold()))
    return tuple(key)


def _label(value: object) -> str | None:
    """A series or version as a non-empty string (ingest writes strings; callers may not)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text or None


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return _OLDEST
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _documents(candidates: Sequence[Candidate]) -> dict[str, _Doc]:
    """One entry per document, from its first chunk, in candidate order."""
    docs: dict[str, _Doc] = {}
    for candidate in candidates:
        if candidate.doc_id not in docs:
            meta = candidate.metadata if isinstance(candidate.metadata, Mapping) else {}
            docs[candidate.doc_id] = _Doc(candidate.doc_id, meta, _aware(candidate.updated_at))
    return docs


def _series_edges(docs: Mapping[str, _Doc]) -> dict[str, list[tuple[str, str]]]:
    """older doc id → [(newer doc id, why)] from ``series`` + ``version``."""
    series: dict[str, list[tuple[_Doc, str]]] = {}
    for doc in docs.values():
        name, version = _label(doc.metadata.get(SERIES)), _label(doc.metadata.get(VERSION))
        if name is not None and version is not None:
            series.setdefault(name, []).append((doc, version))
    edges: dict[str, list[tuple[str, str]]] = {}
    for name, members in series.items():
        if len(members) < 2:
            continue
        keys = _version_keys([version for _, version in members])
        ranked = [
            (keys[i], doc.updated_at, doc, version) for i, (doc, version) in enumerate(members)
        ]
        top_key, top_date, top, top_version = max(ranked, key=lambda entry: entry[:2])
        for key, date, doc, version in ranked:
            if (key, date) >= (top_key, top_date):
                continue  # the newest, or tied with it
            if key == top_key:
                why = f"series {name}, {top_version} updated {top_date.date()} > {date.date()}"
            else:
                why = f"series {name}, {top_version} > {version}"
            edges.setdefault(doc.doc_id, []).append((top.doc_id, why))
    return edges


def _version_keys(versions: Sequence[str]) -> list[Any]:
    """PEP 440 versions when all of them parse, else natural sort keys (never mixed)."""
    try:
        return [Version(version) for version in versions]
    except ValueError:  # InvalidVersion, or a number too long for int()
        return [natural_key(version) for version in versions]


def _supersedes(value: object) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple):
        items = (
            item for item in value if isinstance(item, str | int) and not isinstance(item, bool)
        )
        return [text for text in (str(item).strip() for item in items) if text]
    return []


def judge_versions(candidates: Sequence[Candidate]) -> VersionsVerdict:
    """Which candidates belong to a document superseded by another candidate's document.

    Args:
        candidates: The candidates still alive (any number of chunks per document).

    Returns:
        Per candidate, in order, its :class:`Superseded` (or None), and notes for the trace
        (cycles left alone).
    """
    docs = _documents(candidates)
    edges = _series_edges(docs)
    for doc in docs.values():
        for older in _supersedes(doc.metadata.get(SUPERSEDES)):
            if older in docs and older != doc.doc_id:
                why = f"{doc.doc_id} supersedes {older}"
                edges.setdefault(older, []).append((doc.doc_id, why))
    resolved: dict[str, Superseded] = {}
    cycles: set[tuple[str, ...]] = set()
    for doc_id in docs:
        if doc_id not in edges:
            continue
        chain, whys, current = [doc_id], [], doc_id
        while current in edges:
            newer, why = edges[current][0]
            if newer in chain:
                cycles.add(tuple(sorted(chain[chain.index(newer) :])))
                break
            chain.append(newer)
            whys.append(why)
            current = newer
        else:
            resolved[doc_id] = Superseded(newer=current, why="; ".join(reversed(whys)))
    notes = tuple(
        f"versions contradict each other (a cycle), none superseded: {', '.join(cycle)}"
        for cycle in sorted(cycles)
    )
    return VersionsVerdict(
        superseded=tuple(resolved.get(candidate.doc_id) for candidate in candidates),
        documents=resolved,
        notes=notes,
    )
