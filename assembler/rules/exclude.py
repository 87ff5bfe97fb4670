"""Rule 1, exclude: drop candidates by source, path, tag, doc id, metadata or text pattern."""

from __future__ import annotations

from assembler.policy_schema import Exclude
from assembler.rules.match import any_glob, metadata_equals
from core.types import Candidate


def exclusion(rule: Exclude, candidate: Candidate) -> str | None:
    """Return the rule that excludes ``candidate`` (for the drop detail), or None to keep it.

    Args:
        rule: The policy's ``exclude`` section.
        candidate: The chunk to judge.

    Returns:
        A text such as ``exclude.tags: 'draft'``, or None when no exclusion applies.
    """
    if candidate.doc_id in rule.doc_ids:
        return f"exclude.doc_ids: {candidate.doc_id!r}"
    glob = any_glob(candidate.source, rule.sources)
    if glob is not None:
        return f"exclude.sources: {glob!r}"
    glob = any_glob(candidate.path, rule.paths)
    if glob is not None:
        return f"exclude.paths: {glob!r}"
    for tag in rule.tags:
        if tag in candidate.tags:
            return f"exclude.tags: {tag!r}"
    for key, value in rule.metadata.items():
        if metadata_equals(candidate.metadata, key, value):
            return f"exclude.metadata: {key}={candidate.metadata[key]!r}"
    for pattern, compiled in zip(rule.patterns, rule.compiled_patterns, strict=True):
        # RE2, compiled once per policy: linear in the chunk's length whatever the pattern.
        if compiled.search(candidate.text) is not None:
            return f"exclude.patterns: {pattern!r}"
    for tag in rule.require_tags:
        if tag not in candidate.tags:
            return f"exclude.require_tags: missing tag {tag!r}"
    if rule.require_sources and any_glob(candidate.source, rule.require_sources) is None:
        return f"exclude.require_sources: source {candidate.source!r} matches none"
    return None
