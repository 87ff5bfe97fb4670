"""LLM-judged ragas metrics, run only when an OpenAI-compatible judge endpoint is configured.

Without a judge they are reported as ``not_run`` with the reason, never estimated. With one,
ragas' ``ContextRelevance`` (it needs no reference answer, which BEIR does not have) scores the
top ``k`` chunks handed on for each query. Queries the judge fails on are counted, not scored.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["JudgeEndpoint", "JudgeParams", "LLMMetrics", "judge_metrics"]

log = logging.getLogger(__name__)

NOT_CONFIGURED = (
    "no LLM judge configured: set an OpenAI-compatible endpoint and model (the lead's settings "
    "judge_url and judge_model, env RAGCTX_JUDGE_URL and RAGCTX_JUDGE_MODEL) to run ragas' "
    "LLM-based metrics"
)


@dataclass(frozen=True, slots=True)
class JudgeParams:
    """An OpenAI-compatible chat endpoint used as the ragas judge."""

    base_url: str
    model: str
    api_key: str | None = None
    max_queries: int | None = None  # a cost cap: judge only the first n queries
    concurrency: int = 4
    timeout_s: float = 60.0


class JudgeEndpoint(BaseModel):
    """The judge a report was scored by (never its key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str
    model: str


JudgeStatus = Literal["not_run", "ok", "partial", "failed"]


def _absent_if_none(value: object) -> bool:
    return value is None


class LLMMetrics(BaseModel):
    """The LLM-judged metrics of a report, or why they were not run.

    ``not_run`` and an unavailable client carry only ``status``, ``reason`` and empty
    ``metrics``; a run judge also says which stage, which judge, and how many queries.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: JudgeStatus
    reason: str | None = Field(default=None, exclude_if=_absent_if_none)
    stage: str | None = Field(default=None, exclude_if=_absent_if_none)
    judge: JudgeEndpoint | None = Field(default=None, exclude_if=_absent_if_none)
    queries_judged: int | None = Field(default=None, exclude_if=_absent_if_none)
    queries_failed: int | None = Field(default=None, exclude_if=_absent_if_none)
    metrics: dict[str, float] = Field(default_factory=dict)
    per_query: dict[str, dict[str, float]] | None = Field(default=None, exclude_if=_absent_if_none)


def judge_metrics(
    judge: JudgeParams | None,
    queries: Mapping[str, str],
    contexts: Mapping[str, Sequence[str]],
    *,
    stage: str,
) -> LLMMetrics:
    """ragas' LLM metrics per query, or why they did not run.

    Args:
        judge: the endpoint, or None (then nothing runs).
        queries: query id -> text.
        contexts: query id -> the texts handed on (top k chunks of ``stage``).
        stage: the stage whose context was judged, for the report.

    Returns:
        The metrics (status ``ok`` or ``partial``), or why there are none.
    """
    if judge is None:
        return LLMMetrics(status="not_run", reason=NOT_CONFIGURED)
    qids = [q for q in queries if contexts.get(q)]
    if judge.max_queries is not None:
        qids = qids[: judge.max_queries]
    try:
        values = _run(_score(judge, [(queries[q], list(contexts[q])) for q in qids]))
    except ImportError as err:
        return LLMMetrics(status="failed", reason=f"judge client unavailable: {err}")
    scores: dict[str, float] = {}
    errors: list[str] = []
    for qid, value in zip(qids, values, strict=True):
        if isinstance(value, BaseException):
            errors.append(f"{type(value).__name__}: {value}")
        elif math.isnan(float(value)):
            # ragas turns judge errors (an unreachable endpoint too) into NaN: not a score
            errors.append("the judge returned no score (NaN); check the endpoint and model")
        else:
            scores[qid] = float(value)
    status: JudgeStatus = "ok" if not errors else ("partial" if scores else "failed")
    if errors:
        log.warning("the judge failed on %d of %d queries: %s", len(errors), len(qids), errors[0])
    return LLMMetrics(
        status=status,
        stage=stage,
        judge=JudgeEndpoint(base_url=judge.base_url, model=judge.model),
        queries_judged=len(scores),
        queries_failed=len(errors),
        metrics={"context_relevance": sum(scores.values()) / len(scores)} if scores else {},
        per_query={"context_relevance": scores},
        reason=(
            f"the judge failed on {len(errors)} queries; first error: {errors[0]}"
            if errors
            else None
        ),
    )


async def _score(judge: JudgeParams, items: list[tuple[str, list[str]]]) -> list[Any]:
    from openai import AsyncOpenAI
    from ragas.llms import llm_factory
    from ragas.metrics.collections import ContextRelevance

    client = AsyncOpenAI(
        base_url=judge.base_url,
        api_key=judge.api_key or "unused",
        timeout=judge.timeout_s,
        max_retries=1,
    )
    metric = ContextRelevance(
        llm=llm_factory(judge.model, provider="openai", client=client), max_retries=2
    )
    gate = asyncio.Semaphore(judge.concurrency)

    async def one(query: str, texts: list[str]) -> float:
        async with gate:
            result = await metric.ascore(user_input=query, retrieved_contexts=texts)
            return float(result.value)

    return list(await asyncio.gather(*(one(q, t) for q, t in items), return_exceptions=True))


def _run(coro: Any) -> list[Any]:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return list(asyncio.run(coro))
    with ThreadPoolExecutor(max_workers=1) as pool:
        return list(pool.submit(asyncio.run, coro).result())
