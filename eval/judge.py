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
from typing import Any

__all__ = ["JudgeParams", "judge_metrics"]

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


def judge_metrics(
    judge: JudgeParams | None,
    queries: Mapping[str, str],
    contexts: Mapping[str, Sequence[str]],
    *,
    stage: str,
) -> dict[str, Any]:
    """ragas' LLM metrics per query, or why they did not run.

    Args:
        judge: the endpoint, or None (then nothing runs).
        queries: query id -> text.
        contexts: query id -> the texts handed on (top k chunks of ``stage``).
        stage: the stage whose context was judged, for the report.

    Returns:
        ``{"status": "not_run" | "ok" | "partial" | "failed", "reason" | "metrics", ...}``.
    """
    if judge is None:
        return {"status": "not_run", "reason": NOT_CONFIGURED, "metrics": {}}
    qids = [q for q in queries if contexts.get(q)]
    if judge.max_queries is not None:
        qids = qids[: judge.max_queries]
    try:
        values = _run(_score(judge, [(queries[q], list(contexts[q])) for q in qids]))
    except ImportError as err:
        return {"status": "failed", "reason": f"judge client unavailable: {err}", "metrics": {}}
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
    status = "ok" if not errors else ("partial" if scores else "failed")
    if errors:
        log.warning("the judge failed on %d of %d queries: %s", len(errors), len(qids), errors[0])
    out: dict[str, Any] = {
        "status": status,
        "stage": stage,
        "judge": {"base_url": judge.base_url, "model": judge.model},
        "queries_judged": len(scores),
        "queries_failed": len(errors),
        "metrics": {"context_relevance": sum(scores.values()) / len(scores)} if scores else {},
        "per_query": {"context_relevance": scores},
    }
    if errors:
        out["reason"] = f"the judge failed on {len(errors)} queries; first error: {errors[0]}"
    return out


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
