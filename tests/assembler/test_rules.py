"""Rules 1-3 and the packing thresholds: exclude, freshness, priority, min_score, caps."""

from __future__ import annotations

import math

import pytest

from assembler.rules.priority import positive_score
from core.types import ScoreKind
from tests.assembler.builders import candidate, drop_detail, pack, packed_ids, policy, reasons


def test_exclude_by_each_criterion_names_the_rule(counter) -> None:
    candidates = [
        candidate("by-source", source="acme/drafts"),
        candidate("by-path", path="acme/internal/x.md"),
        candidate("by-tag", tags=("draft",)),
        candidate("by-doc", doc_id="retired-doc"),
        candidate("by-meta", metadata={"status": "retracted"}),
        candidate("by-meta-list", metadata={"status": ["ok", "retracted"]}),
        candidate("by-pattern", text="This page is CONFIDENTIAL, do not share."),
        candidate("kept"),
    ]
    rules = policy(
        exclude={
            "sources": ["*/drafts"],
            "paths": ["*/internal/*"],
            "tags": ["draft"],
            "doc_ids": ["retired-doc"],
            "metadata": {"status": "retracted"},
            "patterns": ["(?i)confidential"],
        }
    )
    result = pack(candidates, counter, rules=rules)
    assert packed_ids(result) == ["kept"]
    assert set(reasons(result).values()) == {"excluded"}
    assert drop_detail(result, "by-source") == "exclude.sources: '*/drafts'"
    assert drop_detail(result, "by-path") == "exclude.paths: '*/internal/*'"
    assert drop_detail(result, "by-tag") == "exclude.tags: 'draft'"
    assert drop_detail(result, "by-doc") == "exclude.doc_ids: 'retired-doc'"
    assert drop_detail(result, "by-meta").startswith("exclude.metadata: status=")
    assert drop_detail(result, "by-meta-list").startswith("exclude.metadata: status=")
    assert drop_detail(result, "by-pattern") == "exclude.patterns: '(?i)confidential'"


def test_require_tags_and_sources_are_allow_lists(counter) -> None:
    candidates = [
        candidate("approved", tags=("legal", "approved"), source="acme/legal"),
        candidate("unapproved", tags=("legal",), source="acme/legal"),
        candidate("elsewhere", tags=("approved",), source="acme/guides"),
    ]
    rules = policy(exclude={"require_tags": ["approved"], "require_sources": ["*/legal"]})
    result = pack(candidates, counter, rules=rules)
    assert packed_ids(result) == ["approved"]
    assert drop_detail(result, "unapproved") == "exclude.require_tags: missing tag 'approved'"
    assert "require_sources" in drop_detail(result, "elsewhere")


def test_max_age_drops_stale_and_rules_override_per_tag(counter) -> None:
    candidates = [
        candidate("old-notes", tags=("release-notes",), days_old=200),
        candidate("new-notes", tags=("release-notes",), days_old=100),
        candidate("old-guide", days_old=400),
        candidate("older-guide", days_old=800),
        candidate("undated", days_old=None),
    ]
    rules = policy(
        freshness={
            "max_age_days": 730,
            "rules": [{"tags": ["release-notes"], "max_age_days": 180}],
        }
    )
    result = pack(candidates, counter, rules=rules)
    assert sorted(packed_ids(result)) == ["new-notes", "old-guide", "undated"]
    assert reasons(result) == {"old-notes": "stale", "older-guide": "stale"}
    assert drop_detail(result, "old-notes").startswith(
        "freshness.rules[0] (tags=['release-notes'])"
    )
    assert "max_age_days=730" in drop_detail(result, "older-guide")


def test_drop_undated(counter) -> None:
    result = pack(
        [candidate("undated", days_old=None)],
        counter,
        rules=policy(freshness={"drop_undated": True}),
    )
    assert reasons(result) == {"undated": "stale"}


def test_decay_lets_fresh_content_overtake_old(counter) -> None:
    candidates = [
        candidate("old-but-higher", score=2.0, days_old=365),
        candidate("fresh", score=1.5, days_old=5),
    ]
    assert packed_ids(pack(candidates, counter))[0] == "old-but-higher"
    result = pack(candidates, counter, rules=policy(freshness={"half_life_days": 90}))
    assert packed_ids(result)[0] == "fresh"
    fresh = result.items[0]
    assert fresh.score_kind == "adjusted-from-rerank"
    expected = positive_score(1.5, ScoreKind.RERANK) * 0.5 ** (5 / 90)
    assert fresh.score == pytest.approx(expected)


def test_boosts_multiply_and_label_the_score_kind(counter) -> None:
    candidates = [
        candidate("guide", score=1.0),
        candidate("runbook", score=0.5, tags=("runbook",)),
    ]
    rules = policy(priority={"boosts": [{"tags": ["runbook"], "factor": 2.0}]})
    result = pack(candidates, counter, rules=rules)
    assert packed_ids(result) == ["runbook", "guide"]
    assert {item.score_kind for item in result.items} == {"adjusted-from-rerank"}
    priority = next(step for step in result.trace if step.step == "priority")
    assert any("adjusted-from-rerank" in note for note in priority.notes)


def test_without_adjustments_scores_keep_their_kind(counter) -> None:
    result = pack([candidate("a", score=0.03, kind=ScoreKind.RRF)], counter)
    assert (result.items[0].score, result.items[0].score_kind) == (0.03, "rrf")


def test_boost_on_negative_logits_still_promotes() -> None:
    # Multiplying a logit of -2 by 2 would make it -4, i.e. worse; on the positive scale a
    # boost always raises the score.
    assert positive_score(-2.0, ScoreKind.RERANK) * 2 > positive_score(-2.0, ScoreKind.RERANK)
    assert positive_score(-2.0, ScoreKind.RERANK) < positive_score(-1.0, ScoreKind.RERANK)
    assert positive_score(-1000.0, ScoreKind.RERANK) >= 0.0
    assert math.isclose(positive_score(0.0, ScoreKind.DENSE), 0.5)


def test_score_kinds_are_never_compared(counter) -> None:
    # Retrieval put the reranked chunk first; a larger RRF number must not jump ahead of it.
    candidates = [
        candidate("reranked", score=-3.0, kind=ScoreKind.RERANK),
        candidate("fused", score=5.0, kind=ScoreKind.RRF),
    ]
    result = pack(candidates, counter)
    assert packed_ids(result) == ["reranked", "fused"]
    priority = next(step for step in result.trace if step.step == "priority")
    assert any("never compared" in note for note in priority.notes)


def test_min_score_applies_only_to_its_kind_and_traces_the_skip(counter) -> None:
    candidates = [
        candidate("good", score=1.0),
        candidate("bad", score=-1.0),
        candidate("fused", score=0.001, kind=ScoreKind.RRF),
    ]
    rules = policy(packing={"min_score": {"kind": "rerank", "value": 0.0}})
    result = pack(candidates, counter, rules=rules)
    assert reasons(result) == {"bad": "below_min_score"}
    assert drop_detail(result, "bad") == "packing.min_score kind=rerank value=0: score -1"
    packing = next(step for step in result.trace if step.step == "packing")
    assert "min_score skipped for 1 candidates of kind rrf" in " ".join(packing.notes)


def test_source_and_document_caps(counter) -> None:
    candidates = [
        candidate("f1", source="acme/faq", score=0.9),
        candidate("f2", source="acme/faq", score=0.8),
        candidate("f3", source="acme/faq", score=0.7),
        candidate("g1", source="acme/guides", doc_id="guide", score=0.6),
        candidate("g2", source="acme/guides", doc_id="guide", score=0.5),
    ]
    rules = policy(packing={"source_caps": {"*/faq": 2}, "max_per_doc": 1})
    result = pack(candidates, counter, rules=rules)
    assert packed_ids(result) == ["f1", "f2", "g1"]
    assert reasons(result) == {"f3": "source_cap", "g2": "source_cap"}
    assert drop_detail(result, "f3").startswith("packing.source_caps['*/faq']=2")
    assert drop_detail(result, "g2").startswith("packing.max_per_doc=1")


def test_repeated_chunk_id_is_a_duplicate_of_its_first_entry(counter) -> None:
    first = candidate("a")
    result = pack([first, candidate("b"), first], counter)
    assert packed_ids(result) == ["a", "b"]
    assert [(drop.chunk_id, drop.reason.value) for drop in result.dropped] == [("a", "duplicate")]
    assert "twice" in result.dropped[0].detail


def test_a_nan_score_ranks_last(counter) -> None:
    candidates = [candidate("nan", score=float("nan")), candidate("low", score=-5.0)]
    assert packed_ids(pack(candidates, counter)) == ["low", "nan"]
