"""Rule 2, freshness: drop content older than a maximum age, and decay the score of old content."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from assembler.policy_schema import Freshness
from assembler.rules.match import describe, selects
from core.types import Candidate

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class FreshnessVerdict:
    """What freshness decided for one candidate: a stale reason, or a decay factor in (0, 1]."""

    stale: str | None
    decay: float


def _aware(moment: datetime) -> datetime:
    # Payload dates without a zone are taken as UTC, the zone ingest writes.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def judge_freshness(rule: Freshness, candidate: Candidate, now: datetime) -> FreshnessVerdict:
    """Apply the freshness section to one candidate.

    The first entry of ``rules`` whose selector matches sets the maximum age and half-life;
    a value it leaves unset falls back to the section's own. A date in the future counts as
    age 0.

    Args:
        rule: The policy's ``freshness`` section.
        candidate: The chunk to judge; its ``updated_at`` comes from the payload.
        now: The caller's clock, timezone-aware.

    Returns:
        The verdict: ``stale`` names the rule that fired, ``decay`` multiplies the score.
    """
    max_age, half_life, where = rule.max_age_days, rule.half_life_days, "freshness"
    for number, entry in enumerate(rule.rules):
        if selects(entry, candidate):
            where = f"freshness.rules[{number}] ({describe(entry)})"
            if entry.max_age_days is not None:
                max_age = entry.max_age_days
            if entry.half_life_days is not None:
                half_life = entry.half_life_days
            break
    if candidate.updated_at is None:
        if rule.drop_undated:
            return FreshnessVerdict("freshness.drop_undated: the chunk has no updated_at", 1.0)
        return FreshnessVerdict(None, 1.0)
    age_days = max((now - _aware(candidate.updated_at)).total_seconds() / SECONDS_PER_DAY, 0.0)
    if max_age is not None and age_days > max_age:
        updated = candidate.updated_at.date().isoformat()
        detail = f"{where} max_age_days={max_age:g}: updated {updated}, {age_days:.0f} days old"
        return FreshnessVerdict(detail, 1.0)
    decay = 1.0 if half_life is None else 0.5 ** (age_days / half_life)
    return FreshnessVerdict(None, decay)
