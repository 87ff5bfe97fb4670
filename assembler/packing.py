"""Rule 6, packing: fill the token budget by value, with the screens that decide admission.

Candidates come in value order (pins first). For each one the packer asks, cheapest first:
is its score below the policy's threshold for its kind; is its source or document at its cap;
does its body fit (the count stored at ingestion, else counted); does its whole block fit
(header, body, closing delimiter and citation line, counted); does it look like an injection
(rule 4); and does it repeat a packed chunk (rule 5). A chunk that does not fit is skipped,
and smaller ones below it still get their turn. Rules 4 and 5 run here, on the chunks that
fit, because that is where they decide anything: a chunk that cannot fit is left out as
``over_budget`` either way.

The costs taken here are per item; the assembler counts the rendered context once more as a
whole after ordering (see ``assembler.pipeline``), and that count is the one the budget holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from time import perf_counter

from assembler import render
from assembler.policy_schema import Packing, Policy
from assembler.ranking import Ranked
from assembler.rules.dedupe import DuplicateIndex, Signature
from assembler.rules.injection import injection_signals
from assembler.rules.match import any_glob
from assembler.tokens import TokenCounter
from assembler.types import ContextItem, Dropped, DropReason, InjectionAction
from core.types import Candidate

INJECTION_FLAG = "injection_suspect"
# English prose averages ~4 characters a token in cl100k and o200k; a stored count implying
# more than this many is not trusted (the body is counted instead).
PLAUSIBLE_CHARS_PER_TOKEN = 8


@dataclass(frozen=True, slots=True)
class Packed:
    """A packed chunk: its item as packed (maybe trimmed or flagged) and what it cost.

    The item's ``citation`` is provisional (its place in packing order); the assembler
    numbers the items again after ordering them.
    """

    ranked: Ranked
    item: ContextItem
    cost: int  # tokens of its block and its citation line, as counted when packed

    @property
    def text(self) -> str:
        """The chunk's text as packed."""
        return self.item.text

    @property
    def flags(self) -> tuple[str, ...]:
        """The chunk's flags (``trimmed``, ``injection_suspect``)."""
        return self.item.flags


@dataclass(slots=True)
class Screens:
    """Counters and timings of the admission screens, for the trace (local to one call)."""

    injection_checked: int = 0
    injection_flagged: int = 0
    injection_dropped: int = 0
    injection_ms: float = 0.0
    dedupe_checked: int = 0
    dedupe_dropped: int = 0
    dedupe_ms: float = 0.0
    signals: dict[str, int] = field(default_factory=dict)


def item_of(ranked: Ranked, text: str, flags: tuple[str, ...], tokens: int) -> ContextItem:
    """The context item ``ranked`` becomes when packed as ``text``, numbered provisionally."""
    return ContextItem.of(
        ranked.candidate,
        citation=ranked.rank + 1,
        text=text,
        tokens=tokens,
        score=ranked.score,
        score_kind=ranked.score_kind,
        flags=flags,
        pinned=ranked.pinned,
    )


class Costing:
    """Counts the parts of a rendered item with the caller's counter."""

    def __init__(self, counter: TokenCounter, policy: Policy) -> None:
        self.counter = counter
        self.encoding = counter.name  # the key of the stored body counts
        self.fmt = policy.citations.format
        self.with_list = policy.citations.include_list

    def overhead(self) -> int:
        """Tokens the context spends whatever is packed: the citations list's frame."""
        if not self.with_list:
            return 0
        opening, closing = render.list_frame(self.fmt)
        return self.counter.count(opening) + self.counter.count(closing)

    def cost(self, item: ContextItem) -> int:
        """Tokens of the item's block and citation line: the body's count (``item.tokens``) and
        one count of its frame, the header, the closing delimiter and the citation line.

        An estimate (counts do not add up exactly across joins): the one exact count of the
        rendered context after packing is what keeps the budget.
        """
        return item.tokens + self.counter.count("".join(self._frame(item)))

    def _frame(self, item: ContextItem) -> Iterator[str]:
        """The item's header, closing delimiter and citation line (if the list is on)."""
        yield render.header(item, self.fmt)
        yield render.footer(item, self.fmt)
        if self.with_list:
            yield render.citation_line(item, self.fmt)

    def stored_body(self, candidate: Candidate, text: str) -> int | None:
        """The body's count as ingestion stored it, where it holds for ``text`` and is plausible.

        It holds when ``text`` is the candidate's own (not trimmed, not merged) and rendering
        leaves it as it is (no delimiter look-alike to escape). Plausible: at most the body's
        UTF-8 length (a token is at least one byte) and at least one token per
        ``PLAUSIBLE_CHARS_PER_TOKEN`` characters. That catches a count of some other text,
        not an off-by-a-few (ingestion is the only writer of the counts); a text of unusually
        long tokens fails it too, and is merely counted. None: count the body.
        """
        known = candidate.body_tokens.get(self.encoding)
        if known is None or text != candidate.text:
            return None
        if render.rendered_text(text, self.fmt) != render.body(text):
            return None  # rendering normalises it or escapes a look-alike
        if len(text) > PLAUSIBLE_CHARS_PER_TOKEN * known or known > len(text.encode()) + 1:
            return None  # the + 1: the body's line end
        return known

    def body(self, candidate: Candidate, text: str) -> int:
        """The exact count of ``text`` as rendered: the stored count, or else counted."""
        known = self.stored_body(candidate, text)
        return self.count_body(text) if known is None else known

    def count_body(self, text: str) -> int:
        """Count ``text`` as rendered inside its delimiters."""
        return self.counter.count(render.rendered_text(text, self.fmt))


def min_score_verdict(rule: Packing, ranked: Ranked) -> str | None:
    """The threshold ``ranked`` falls below, or None; only thresholds of its own score kind."""
    candidate = ranked.candidate
    for threshold in rule.min_score:
        if threshold.kind is candidate.score_kind and candidate.score < threshold.value:
            return (
                f"packing.min_score kind={threshold.kind.value} value={threshold.value:g}: "
                f"score {candidate.score:.4g}"
            )
    return None


class Caps:
    """Per-source and per-document caps; pinned chunks count but are never refused."""

    def __init__(self, rule: Packing) -> None:
        self._rule = rule
        self.active = (
            bool(rule.source_caps)
            or rule.max_per_source is not None
            or (rule.max_per_doc is not None)
        )
        self._sources: dict[str, int] = {}
        self._docs: dict[str, int] = {}

    def refusal(self, candidate: Candidate) -> str | None:
        """The cap that refuses ``candidate`` now, or None."""
        if not self.active:
            return None
        glob = any_glob(candidate.source, tuple(self._rule.source_caps))
        cap = self._rule.max_per_source if glob is None else self._rule.source_caps[glob]
        packed = self._sources.get(candidate.source, 0)
        if cap is not None and packed >= cap:
            key = "max_per_source" if glob is None else f"source_caps[{glob!r}]"
            return f"packing.{key}={cap}: {packed} chunks of source {candidate.source!r} packed"
        cap = self._rule.max_per_doc
        packed = self._docs.get(candidate.doc_id, 0)
        if cap is not None and packed >= cap:
            return f"packing.max_per_doc={cap}: {packed} chunks of {candidate.doc_id!r} packed"
        return None

    def take(self, candidate: Candidate) -> None:
        """Count a packed chunk."""
        self._sources[candidate.source] = self._sources.get(candidate.source, 0) + 1
        self._docs[candidate.doc_id] = self._docs.get(candidate.doc_id, 0) + 1


class Admission:
    """Runs the injection screen and the duplicate check on one chunk's text."""

    def __init__(self, policy: Policy, screens: Screens) -> None:
        self.policy = policy
        self.screens = screens
        self.duplicates = DuplicateIndex(policy.dedupe)

    def injection(self, text: str) -> tuple[str, ...]:
        """The injection detectors that fire on ``text`` (none when the screen is off)."""
        if self.policy.injection.action is InjectionAction.OFF:
            return ()
        started = perf_counter()
        signals = injection_signals(self.policy.injection, text)
        self.screens.injection_checked += 1
        for signal in signals:
            self.screens.signals[signal] = self.screens.signals.get(signal, 0) + 1
        self.screens.injection_ms += (perf_counter() - started) * 1000
        return signals

    def duplicate_of(
        self, text: str, vector: tuple[float, ...] | None, packed: Sequence[Packed]
    ) -> tuple[str | None, Signature]:
        """A drop detail naming the packed chunk ``text`` repeats (or None), and its shingles."""
        started = perf_counter()
        mine = self.duplicates.signature(text)
        hit = self.duplicates.find(mine, vector)
        self.screens.dedupe_checked += 1
        self.screens.dedupe_ms += (perf_counter() - started) * 1000
        if hit is None:
            return None, mine
        kept = packed[hit.key].ranked.candidate
        threshold = (
            self.policy.dedupe.threshold
            if hit.method == "shingle overlap"
            else self.policy.dedupe.dense_threshold
        )
        detail = (
            f"near-duplicate of {kept.chunk_id} (doc {kept.doc_id}; {hit.method} "
            f"{hit.similarity:.2f} >= {threshold})"
        )
        return detail, mine


class Packer:
    """Packs candidates into ``available`` tokens and records every candidate it leaves out.

    Local to one ``assemble`` call. ``dropped`` is keyed by input position so that trimming
    can take back an ``over_budget`` drop.
    """

    def __init__(
        self,
        *,
        policy: Policy,
        available: int,
        costing: Costing,
        admission: Admission,
        flags: Mapping[int, tuple[str, ...]] | None = None,
    ) -> None:
        self.policy = policy
        self.flags = flags or {}  # flags by input position, set before packing (versions)
        self.costing = costing
        self.admission = admission
        self.caps = Caps(policy.packing)
        self.packed: list[Packed] = []
        self.dropped: dict[int, Dropped] = {}
        self.over_budget: list[Ranked] = []
        self.remaining = available

    def drop(self, entry: Ranked, reason: DropReason, detail: str) -> None:
        """Record that ``entry`` is left out, with its one reason."""
        candidate = entry.candidate
        self.dropped[entry.index] = Dropped(candidate.chunk_id, candidate.doc_id, reason, detail)
        if reason is DropReason.OVER_BUDGET:
            self.over_budget.append(entry)

    def fill(self, ranked: Sequence[Ranked]) -> None:
        """Offer every candidate, in packing order (value order, pins first)."""
        rule = self.policy.packing
        screened = bool(rule.min_score) or self.caps.active
        for entry in ranked:
            if screened and not entry.pinned:
                refusal = min_score_verdict(rule, entry)
                if refusal is not None:
                    self.drop(entry, DropReason.BELOW_MIN_SCORE, refusal)
                    continue
                refusal = self.caps.refusal(entry.candidate)
                if refusal is not None:
                    self.drop(entry, DropReason.SOURCE_CAP, refusal)
                    continue
            self.offer(entry, entry.candidate.text, ())

    def offer(self, entry: Ranked, text: str, extra_flags: tuple[str, ...]) -> bool:
        """Pack ``text`` for ``entry`` if it passes the screens and fits; say whether it did."""
        # The body first: its count is stored at ingestion (most candidates end here once the
        # budget is nearly full), and the screens cost more than a count.
        body_tokens = self.costing.body(entry.candidate, text)
        if self.over(entry, body_tokens):
            return False
        extra_flags = (*self.flags.get(entry.index, ()), *extra_flags)
        item = item_of(entry, text, extra_flags, body_tokens)
        cost = self.costing.cost(item)
        if self.over(entry, cost):
            return False
        signals = self.admission.injection(text)
        if signals:
            if self.policy.injection.action is InjectionAction.DROP:
                self.admission.screens.injection_dropped += 1
                detail = f"injection.action=drop: {', '.join(signals)}"
                self.drop(entry, DropReason.INJECTION, detail)
                return False
            self.admission.screens.injection_flagged += 1
            item = replace(item, flags=(INJECTION_FLAG, *extra_flags))
            cost = self.costing.cost(item)  # the flag shows in the header
            if self.over(entry, cost):
                return False
        # Last, the duplicate check: it costs the most, and only a chunk that fits needs it.
        vector = entry.candidate.dense_vector
        duplicate, shingles = self.admission.duplicate_of(text, vector, self.packed)
        if duplicate is not None:
            self.admission.screens.dedupe_dropped += 1
            self.drop(entry, DropReason.DUPLICATE, duplicate)
            return False
        self.admission.duplicates.add(shingles, vector)
        self.packed.append(Packed(entry, item, cost))
        self.caps.take(entry.candidate)
        self.remaining -= cost
        return True

    def over(self, entry: Ranked, tokens: int) -> bool:
        """Drop ``entry`` as ``over_budget`` if ``tokens`` exceed the room left; say whether."""
        if tokens <= self.remaining:
            return False
        detail = f"needs at least {tokens} tokens, {self.remaining} left"
        self.drop(entry, DropReason.OVER_BUDGET, detail)
        return True
