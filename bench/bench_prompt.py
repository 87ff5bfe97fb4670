"""Benchmark: pack the whole prompt — a 20-turn conversation and 50 candidates into 8,000 tokens.

Standalone and seeded. The conversation is ``eval.prompt_stage``'s system prompt and 20-turn
support history (2,500 tokens with framing) plus a final question; the 50 candidates are
``bench_assembler``'s synthetic ones (80-300 tokens each, with ingestion's body counts, as the
service gets them), plus 5 memory items and one 3,000-token tool output. Timed under
``data/policies/support-chat.yaml`` (evidence floor, history ceiling, redaction, injection
drop) and, for reference, ``assemble`` of the same candidates alone into the evidence's room.

Run: ``.venv/bin/python bench/bench_prompt.py --json-out bench/results/prompt.json``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    """Time the whole-prompt ``assemble`` and print (and optionally write) its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--budget", type=int, default=8000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--policy", type=Path, default=ROOT / "data/policies/support-chat.yaml")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        import llama_index.core  # noqa: PLC0415  (only to find its bundled tiktoken cache)

        cache = Path(llama_index.core.__file__).parent / "_static/tiktoken_cache"
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)

    import random  # noqa: PLC0415

    from assembler import assemble, tiktoken_counter  # noqa: PLC0415
    from assembler.policy import load_policy  # noqa: PLC0415
    from assembler.prompt.types import CallerItem, Message, Role, ToolCall  # noqa: PLC0415
    from assembler.types import ItemKind  # noqa: PLC0415
    from bench.bench_assembler import (  # noqa: PLC0415
        build_candidates,
        sentence,
        with_stored_counts,
    )
    from eval.prompt_stage import SYSTEM_PROMPT, support_history  # noqa: PLC0415

    counter = tiktoken_counter("cl100k_base")
    loaded = load_policy(args.policy)
    candidates = with_stored_counts(build_candidates(args.candidates, args.seed, counter))
    rng = random.Random(args.seed)
    tool_output = " ".join(sentence(rng) for _ in range(160))
    messages = [
        Message(Role.SYSTEM, SYSTEM_PROMPT),
        *support_history(10),
        Message(Role.USER, "Can you check the broker logs for last night?"),
        Message(Role.ASSISTANT, "", tool_calls=(ToolCall("call_1", "broker_logs", "{}"),)),
        Message(Role.TOOL, tool_output, tool_call_id="call_1"),
        Message(Role.USER, "and how long are messages kept by default?"),
    ]
    items = [CallerItem(ItemKind.MEMORY, f"m{n}", sentence(rng), priority=n) for n in range(5)]
    now = datetime(2026, 11, 20, tzinfo=UTC)

    def whole() -> object:
        return assemble(
            candidates,  # type: ignore[arg-type]
            policy=loaded.policy,
            budget=args.budget,
            counter=counter,
            now=now,
            messages=messages,
            items=items,
        )

    pack = whole()
    room = pack.tokens  # type: ignore[attr-defined]

    def evidence_only() -> object:
        return assemble(
            candidates,  # type: ignore[arg-type]
            policy=loaded.policy,
            budget=room,
            counter=counter,
            now=now,
        )

    def timed(run: object) -> float:
        started = time.perf_counter()
        run()  # type: ignore[operator]
        return (time.perf_counter() - started) * 1000

    for _ in range(10):
        timed(whole)
        timed(evidence_only)
    load_before = os.getloadavg()[0]
    samples: dict[str, list[float]] = {"whole": [], "evidence_only": []}
    for _ in range(args.runs):  # interleaved: both meet the same VM speed
        samples["whole"].append(timed(whole))
        samples["evidence_only"].append(timed(evidence_only))

    def summary(times: list[float]) -> dict[str, float]:
        ordered = sorted(times)
        return {
            "median_ms": round(statistics.median(ordered), 3),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        }

    prompt = pack.prompt  # type: ignore[attr-defined]
    whole_s, alone_s = summary(samples["whole"]), summary(samples["evidence_only"])
    result = {
        "benchmark": "assembler.assemble (whole prompt)",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "pinned_cpu": args.cpu,
        "load_average_1m": round(load_before, 2),
        "policy": {"name": loaded.policy.name, "version": loaded.policy.version},
        "turns": len(messages),
        "candidates": args.candidates,
        "budget": args.budget,
        "runs": args.runs,
        "prompt_tokens": prompt.tokens,
        "evidence_tokens": room,
        "evidence_items": len(pack.items),  # type: ignore[attr-defined]
        "sections": {s.name.value: s.tokens for s in prompt.sections},
        "dropped_parts": sum(p.status.value == "dropped" for p in prompt.parts),
        **whole_s,
        "evidence_only": alone_s,
    }
    items_packed = result["evidence_items"]
    sys.stdout.write(
        f"whole prompt: {len(messages)} messages + {args.candidates} candidates -> "
        f"{args.budget} tokens, {args.runs} runs (load {load_before:.1f}): "
        f"{prompt.tokens} tokens, evidence {room} tokens in {items_packed} items\n"
        f"  whole prompt:   median {whole_s['median_ms']:.2f} ms, p95 {whole_s['p95_ms']:.2f} ms\n"
        f"  evidence alone: median {alone_s['median_ms']:.2f} ms, p95 {alone_s['p95_ms']:.2f} ms\n"
    )
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
