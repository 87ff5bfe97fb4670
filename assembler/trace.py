"""The assembler's trace: one step per rule, with counts, milliseconds and notes."""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter

from assembler.packing import Packer
from assembler.policy_schema import Policy
from assembler.ranking import Ranked
from assembler.types import StepTrace


class Trace:
    """Collects one ``StepTrace`` per step, timed from the previous mark."""

    def __init__(self) -> None:
        self.steps: list[StepTrace] = []
        self._mark = perf_counter()

    def add(self, step: str, count_in: int, count_out: int, *notes: str) -> None:
        """Add a step timed from the previous one."""
        now = perf_counter()
        ms = round((now - self._mark) * 1000, 3)
        self.steps.append(StepTrace(step, count_in, count_out, ms, tuple(notes)))
        self._mark = now

    def add_timed(self, step: str, count_in: int, count_out: int, ms: float, *notes: str) -> None:
        """Add a step timed by its caller (a screen that ran inside another step)."""
        self.steps.append(StepTrace(step, count_in, count_out, round(ms, 3), tuple(notes)))

    def elapsed_ms(self) -> float:
        """Milliseconds since the last step was added."""
        return (perf_counter() - self._mark) * 1000

    def restart(self) -> None:
        """Start timing the next step now."""
        self._mark = perf_counter()


def screen_steps(trace: Trace, policy: Policy, packer: Packer, ranked: Sequence[Ranked]) -> None:
    """Trace rules 4 to 6; the screens ran inside packing and timed themselves."""
    screens = packer.admission.screens
    packing_ms = trace.elapsed_ms() - screens.injection_ms - screens.dedupe_ms
    signals = ", ".join(f"{name}={count}" for name, count in sorted(screens.signals.items()))
    trace.add_timed(
        "injection",
        screens.injection_checked,
        screens.injection_checked - screens.injection_dropped,
        screens.injection_ms,
        f"action={policy.injection.action.value}; run on the chunks that could still fit",
        f"flagged={screens.injection_flagged} dropped={screens.injection_dropped}",
        *([f"signals: {signals}"] if signals else []),
    )
    dense = policy.dedupe.dense_threshold
    trace.add_timed(
        "dedupe",
        screens.dedupe_checked,
        screens.dedupe_checked - screens.dedupe_dropped,
        screens.dedupe_ms,
        f"{policy.dedupe.shingle_words}-word shingle overlap >= {policy.dedupe.threshold}"
        + ("" if dense is None else f", dense cosine >= {dense}")
        + ("" if policy.dedupe.enabled else " (disabled)"),
    )
    trace.add_timed(
        "packing",
        len(ranked),
        len(packer.packed),
        packing_ms,
        f"reserve={policy.packing.reserve_tokens} left={packer.remaining}",
        *_min_score_notes(policy, ranked),
    )
    trace.restart()


def _min_score_notes(policy: Policy, ranked: Sequence[Ranked]) -> list[str]:
    thresholds = {threshold.kind for threshold in policy.packing.min_score}
    if not thresholds:
        return []
    skipped: dict[str, int] = {}
    for entry in ranked:
        kind = entry.candidate.score_kind
        if not entry.pinned and kind not in thresholds:
            skipped[kind.value] = skipped.get(kind.value, 0) + 1
    return [
        f"min_score skipped for {count} candidates of kind {kind} (no threshold of that kind)"
        for kind, count in sorted(skipped.items())
    ]
