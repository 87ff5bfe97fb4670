"""The shipped example policies on candidates shaped like the sample corpus (data/docs)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from assembler.policy import load_policy
from tests.assembler.builders import NOW, candidate, pack, packed_ids, reasons

POLICIES = Path(__file__).resolve().parents[2] / "data" / "policies"


def dated(chunk_id: str, day: str, **fields) -> object:
    when = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return candidate(chunk_id, days_old=(NOW - when).total_seconds() / 86_400, **fields)


def test_support_policy_prefers_fresh_release_notes(counter) -> None:
    candidates = [
        dated(
            "relnotes-3-8#2",
            "2025-02-18",
            doc_id="relnotes-3-8",
            tags=("release-notes",),
            text="The default message retention period is 7 days.",
            score=4.0,
        ),
        dated(
            "relnotes-4-1#1",
            "2026-05-12",
            doc_id="relnotes-4-1",
            tags=("release-notes",),
            text="The default message retention period is now 14 days, up from 7 days.",
            score=3.5,
        ),
        dated(
            "faq-006#0",
            "2025-04-15",
            doc_id="faq-006",
            tags=("faq",),
            score=1.0,
            text="Relay offers a 99.95% monthly uptime commitment.",
        ),
        dated("postmortem#0", "2026-07-29", doc_id="acme-postmortem", tags=("postmortem",)),
    ]
    policy = load_policy(POLICIES / "support-fresh-release-notes.yaml").policy
    result = pack(candidates, counter, rules=policy)
    assert packed_ids(result) == ["relnotes-4-1#1", "faq-006#0"]
    assert reasons(result) == {"relnotes-3-8#2": "stale", "postmortem#0": "excluded"}
    assert result.items[0].score_kind == "adjusted-from-rerank"


def test_legal_policy_keeps_only_recent_approved_documents(counter) -> None:
    candidates = [
        dated("dpa#0", "2026-03-01", doc_id="dpa", tags=("legal", "approved")),
        dated("dpa-old#0", "2024-12-05", doc_id="dpa-old", tags=("legal", "approved")),
        dated("msa-draft#0", "2026-10-05", doc_id="msa-draft", tags=("legal", "billing")),
        candidate("undated#0", doc_id="undated", tags=("approved",), days_old=None),
        dated(
            "marked#0",
            "2026-10-01",
            doc_id="marked",
            tags=("approved",),
            text="Negotiation notes, not approved by legal.",
        ),
    ]
    policy = load_policy(POLICIES / "legal-approved-recent.yaml").policy
    result = pack(candidates, counter, rules=policy)
    assert packed_ids(result) == ["dpa#0"]
    assert reasons(result) == {
        "dpa-old#0": "stale",
        "msa-draft#0": "excluded",
        "undated#0": "stale",
        "marked#0": "excluded",
    }
    assert result.context.startswith("[1] Title dpa#0")  # markdown citations


def test_incident_policy_skips_the_rerank_threshold_for_fused_scores(counter) -> None:
    from core.types import ScoreKind

    candidates = [candidate(f"c{n}", score=0.01, kind=ScoreKind.RRF) for n in range(3)]
    policy = load_policy(POLICIES / "incident-long-context.yaml").policy
    result = pack(candidates, counter, rules=policy)
    assert len(result.items) == 3
    packing = next(step for step in result.trace if step.step == "packing")
    assert "min_score skipped for 3 candidates of kind rrf" in " ".join(packing.notes)


def test_support_chat_policy_reserves_evidence_and_redacts(counter) -> None:
    from assembler import assemble
    from assembler.prompt.types import Message, Role
    from tests.assembler.builders import words

    messages = [Message(Role.SYSTEM, "You are Relay's support assistant.")]
    for n in range(20):
        messages += [
            Message(Role.USER, f"turn {n}: {words(40, f'u{n}')}"),
            Message(Role.ASSISTANT, f"reply {n}: {words(60, f'a{n}')}"),
        ]
    messages.append(Message(Role.USER, "and for queues created before that? I'm bob@acme.example"))
    chunks = [
        candidate(
            f"c{n}", text=f"Call +1 415 555 01{n:02d}. " + words(80, f"c{n}"), score=1 - n / 100
        )
        for n in range(30)
    ]
    policy = load_policy(POLICIES / "support-chat.yaml").policy
    result = assemble(
        chunks, policy=policy, budget=4000, counter=counter, now=NOW, messages=messages
    )
    prompt = result.prompt
    assert prompt.tokens <= 4000 and result.tokens >= 0.35 * 4000 - 200
    kept_turns = [p for p in prompt.parts if p.kind == "turn" and p.status.value == "packed"]
    assert kept_turns[0].id == "messages[1]", "the task is kept"
    assert len(kept_turns) <= 2 * 7
    assert prompt.messages[-2].content == result.context, "evidence right before the question"
    assert "[PHONE]" in result.context and "415 555" not in result.context
    assert prompt.messages[-1].content.endswith("bob@acme.example"), "the user's own turn"
