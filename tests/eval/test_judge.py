"""LLM-judged metrics: reported as not run without a judge, never faked when it fails."""

from __future__ import annotations

from eval.judge import JudgeParams, judge_metrics


def test_without_a_judge_the_llm_metrics_are_reported_not_run() -> None:
    out = judge_metrics(None, {"q": "why?"}, {"q": ["text"]}, stage="hybrid")
    assert out.status == "not_run"
    assert out.reason is not None and "no LLM judge configured" in out.reason
    assert out.metrics == {}
    assert set(out.model_dump()) == {"status", "reason", "metrics"}  # the keys reports had


def test_an_unreachable_judge_is_reported_failed_not_scored() -> None:
    judge = JudgeParams(base_url="http://127.0.0.1:9/v1", model="judge", timeout_s=2)
    out = judge_metrics(judge, {"q": "why?"}, {"q": ["text"]}, stage="hybrid")
    assert out.status == "failed"
    assert out.queries_judged == 0
    assert out.metrics == {}
    assert out.reason
