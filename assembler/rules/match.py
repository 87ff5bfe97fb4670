"""Matching a candidate against a policy selector (sources, paths, tags, metadata)."""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from assembler.policy_schema import MetaMatch, Selector
from core.types import Candidate


def any_glob(value: str, globs: tuple[str, ...]) -> str | None:
    """Return the first glob that matches ``value`` (case-sensitive), or None."""
    for glob in globs:
        if fnmatchcase(value, glob):
            return glob
    return None


def metadata_equals(metadata: Mapping[str, Any], key: str, wanted: object) -> bool:
    """Whether ``metadata[key]`` equals ``wanted`` (or one of it, when ``wanted`` is a tuple).

    A list-valued metadata field matches when any of its elements does.
    """
    if key not in metadata:
        return False
    present = metadata[key]
    options = wanted if isinstance(wanted, tuple) else (wanted,)
    if isinstance(present, list | tuple | set | frozenset):
        return any(item in options for item in present)
    return present in options


def metadata_matches(metadata: Mapping[str, Any], wanted: MetaMatch) -> bool:
    """Whether every key of ``wanted`` matches (see :func:`metadata_equals`)."""
    return all(metadata_equals(metadata, key, value) for key, value in wanted.items())


def selects(selector: Selector, candidate: Candidate) -> bool:
    """Whether ``selector`` applies to ``candidate``: every criterion given must match."""
    if selector.sources and any_glob(candidate.source, selector.sources) is None:
        return False
    if selector.paths and any_glob(candidate.path, selector.paths) is None:
        return False
    if selector.tags and not set(selector.tags).intersection(candidate.tags):
        return False
    return not selector.metadata or metadata_matches(candidate.metadata, selector.metadata)


def describe(selector: Selector) -> str:
    """A short text naming what a selector matches, for trace notes and drop details."""
    parts = []
    if selector.sources:
        parts.append(f"sources={list(selector.sources)}")
    if selector.paths:
        parts.append(f"paths={list(selector.paths)}")
    if selector.tags:
        parts.append(f"tags={list(selector.tags)}")
    if selector.metadata:
        parts.append(f"metadata={dict(selector.metadata)}")
    return " ".join(parts) or "all"
