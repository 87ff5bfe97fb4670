"""The context stage of ``ragctx eval``: assembler vs the naive packer, per budget."""

from __future__ import annotations

from assembler.tokens import tiktoken_counter
from eval.context_stage import AssemblerContextScorer
from tests.assembler.builders import NOW, candidate, policy, words


def test_the_assembler_keeps_a_relevant_chunk_the_naive_packer_stops_before() -> None:
    # A huge first chunk fills the naive pack's budget; the relevant small one comes after.
    counter = tiktoken_counter("cl100k_base")
    big = candidate("big", text=words(600, seed="b"), score=0.9)
    small = candidate("rel", text=words(40, seed="r"), doc_id="relevant", score=0.5)
    scorer = AssemblerContextScorer(
        policy=policy(), counter=counter, now=NOW, budgets=(512,), top_k=50
    )
    scores = scorer("q", [big, small], {"relevant"})
    assert scores == {"assembler_recall@512": 1.0, "naive_recall@512": 0.0}


def test_scores_are_shares_per_budget() -> None:
    counter = tiktoken_counter("cl100k_base")
    cands = [candidate(f"c{i}", doc_id=f"d{i}", score=1.0 - i / 10) for i in range(4)]
    scorer = AssemblerContextScorer(policy=policy(), counter=counter, now=NOW, budgets=(512, 2048))
    scores = scorer("q", cands, {"d0", "d3", "missing"})
    assert set(scores) == {
        "assembler_recall@512",
        "naive_recall@512",
        "assembler_recall@2048",
        "naive_recall@2048",
    }
    assert scores["assembler_recall@2048"] == 2 / 3
    assert all(0.0 <= v <= 1.0 for v in scores.values())


def test_the_whole_prompt_stage_against_langchains_trim_then_stuff() -> None:
    from pathlib import Path

    from assembler.policy import load_policy
    from assembler.prompt.framing import prompt_tokens
    from assembler.prompt.types import Message, PromptFormat, Role
    from eval.prompt_stage import SYSTEM_PROMPT, WholePromptScorer, support_history

    counter = tiktoken_counter("cl100k_base")
    history = support_history()
    assert len(history) == 20 and 2200 < prompt_tokens(history, counter, PromptFormat.OPENAI) < 2400
    chat = load_policy(Path(__file__).parents[2] / "data/policies/support-chat.yaml").policy
    cands = [
        candidate(f"c{i}", doc_id=f"d{i}", text=words(150, f"c{i}"), score=1.0 - i / 100)
        for i in range(30)
    ]
    scorer = WholePromptScorer(policy=chat, counter=counter, now=NOW, budgets=(2000, 8000))
    scores = scorer("what is the retention?", cands, {"d0", "d1", "d2"})
    assert set(scores) == {
        f"prompt_{who}_recall@{b}" for who in ("assembler", "langchain") for b in (2000, 8000)
    }
    # at 2,000 tokens the history takes everything LangChain's way; the policy's floor keeps
    # room for evidence
    assert scores["prompt_langchain_recall@2000"] == 0.0
    assert scores["prompt_assembler_recall@2000"] > 0
    # LangChain's prompt stays within its budget too (the comparison is fair)
    question = Message(Role.USER, "what is the retention?")
    for budget in (2000, 8000):
        evidence = scorer.langchain_evidence(cands, question, budget)
        assert evidence.tokens <= budget
    assert SYSTEM_PROMPT.startswith("You are")
