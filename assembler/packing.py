"""Rule 6, packing: fill the token budget by value, with the screens that decide admission.

Candidates come in value order (pins first). For each one the packer asks, cheapest first:
is its score below the policy's threshold for its kind; is its source or document at its cap;
can it fit at all (a word-count lower bound, no exact count); does it look like an injection
(rule 4); does it repeat a packed chunk (rule 5); and finally its exact cost. A chunk that
does not fit is skipped, and smaller ones below it still get their turn. Rules 4 and 5 run
here, on the chunks that could still fit, because that is where they decide anything:
screening 200 chunks up front costs more than the rest of the call, and a chunk that cannot
fit is left out as ``over_budget`` either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from time import perf_counter

from assembler import render
from assembler.policy_schema import Packing, Policy
from assembler.ranking import Ranked
from assembler.rules.dedupe import DuplicateIndex, Signature
from assembler.rules.injection import injection_signals
from assembler.rules.match import any_glob
from assembler.tokens import TokenCounter, joins_cleanly
from assembler.types import ContextItem, Dropped, DropReason, InjectionAction
from retrieval.types import Candidate

INJECTION_FLAG = "injection_suspect"


@dataclass(frozen=True, slots=True)
class Packed:
    """A packed chunk: its text as packed (maybe trimmed) and its costs, part by part."""

    ranked: Ranked
    text: str
    flags: tuple[str, ...]
    frame_tokens: int  # header, closing delimiter and citation line
    body_tokens: int  # the text as rendered

    @property
    def cost(self) -> int:
        """Tokens this chunk adds to the context: its block and its citation line."""
        return self.frame_tokens + self.body_tokens


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


def provisional_item(ranked: Ranked, text: str, flags: tuple[str, ...]) -> ContextItem:
    """The item a chunk would become, before it has a citation number or a token count."""
    candidate = ranked.candidate
    return ContextItem(
        citation=0,
        chunk_id=candidate.chunk_id,
        doc_id=candidate.doc_id,
        source=candidate.source,
        path=candidate.path,
        title=candidate.title,
        section=candidate.section,
        text=text,
        tokens=0,
        score=ranked.score,
        score_kind=ranked.score_kind,
        updated_at=candidate.updated_at,
        flags=flags,
        chunk_ids=(candidate.chunk_id,),
        pinned=ranked.pinned,
    )


class Costing:
    """Counts the parts of a rendered item; short parts repeat, so their counts are cached."""

    def __init__(self, counter: TokenCounter, policy: Policy, placeholder: str) -> None:
        self.counter = counter
        self.fmt = policy.citations.format
        self.with_list = policy.citations.include_list
        self.placeholder = placeholder
        self._short: dict[str, int] = {}

    def short(self, text: str) -> int:
        """Count a short, often repeated text (delimiters, list frame) once per call."""
        known = self._short.get(text)
        if known is None:
            known = self._short[text] = self.counter.count(text)
        return known

    def overhead(self) -> int:
        """Tokens the context spends whatever is packed: the citations list's frame."""
        if not self.with_list:
            return 0
        opening, closing = render.list_frame(self.fmt)
        return self.short(opening) + self.short(closing)

    def frame(self, item: ContextItem) -> tuple[str, str]:
        """The item's header and citation line (the number as a placeholder; "" without list)."""
        line = render.citation_line(item, self.placeholder, self.fmt) if self.with_list else ""
        return render.header(item, self.placeholder, self.fmt), line

    def frame_tokens(self, item: ContextItem, frame: tuple[str, str]) -> int:
        """The exact count of the item's header, footer and citation line, each on its own.

        The header and the line are counted in one call where their join is clean (their
        counts then add up, see ``tokens.joins_cleanly``); the footer repeats, so it is cached.
        """
        header, line = frame
        footer = self.short(render.footer(item, self.fmt))
        if self.counter.additive_at_line_ends and joins_cleanly(frame):
            return self.counter.count(header + line) + footer
        return self.counter.count(header) + self.counter.count(line) + footer

    def renumbering(self, items: Sequence[ContextItem]) -> int:
        """Tokens the real citation numbers add over the placeholder the frames were counted with.

        Exact for encodings whose pre-tokenizer makes every run of digits into pieces of its
        own (see ``TokenCounter.additive_at_line_ends``): the number sits between punctuation
        in the header and in the citation line, so only its own pieces change.
        """
        per_item = 1 + self.with_list  # the header's number, the citation line's number
        placeholder = self.short(self.placeholder)
        return per_item * sum(self.short(str(item.citation)) - placeholder for item in items)

    def pack(self, ranked: Ranked, text: str, flags: tuple[str, ...]) -> Packed:
        """Count every part of the chunk's rendering exactly."""
        item = provisional_item(ranked, text, flags)
        return Packed(
            ranked=ranked,
            text=text,
            flags=flags,
            frame_tokens=self.frame_tokens(item, self.frame(item)),
            body_tokens=self.counter.count(render.safe_body(item, self.fmt)),
        )


def surely_fits(text: str, room: int) -> bool:
    """Whether ``text`` has at most ``room`` tokens for any byte-level BPE, without counting.

    A token is at least one byte and a character at most four, so the word lower bound (a
    split of the text) is skipped while the budget is still wide open.
    """
    return len(text) * (1 if text.isascii() else 4) <= room


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
        self, *, policy: Policy, available: int, costing: Costing, admission: Admission
    ) -> None:
        self.policy = policy
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
        remaining = self.remaining
        # Most candidates end here once the budget is nearly full: the word bound (cheap,
        # stops after remaining + 1 words) proves they cannot fit.
        bound = (
            0
            if surely_fits(text, remaining)
            else self.costing.counter.lower_bound(text, enough=remaining + 1)
        )
        if bound > remaining:
            self.drop(
                entry, DropReason.OVER_BUDGET, f"needs at least {bound} tokens, {remaining} left"
            )
            return False
        signals = self.admission.injection(text)
        flags = extra_flags
        if signals:
            if self.policy.injection.action is InjectionAction.DROP:
                self.admission.screens.injection_dropped += 1
                detail = f"injection.action=drop: {', '.join(signals)}"
                self.drop(entry, DropReason.INJECTION, detail)
                return False
            self.admission.screens.injection_flagged += 1
            flags = (INJECTION_FLAG, *extra_flags)
        costing = self.costing
        item = provisional_item(entry, text, flags)
        frame = costing.frame(item)
        # Exact counts are the expensive part of packing: bound the frame and the body by
        # their words first, and count only what can still fit.
        framing = "".join(frame)
        if not surely_fits(text + framing, remaining):
            bound += costing.counter.lower_bound(framing, enough=remaining + 1 - bound)
        if bound > remaining:
            self.drop(
                entry, DropReason.OVER_BUDGET, f"needs at least {bound} tokens, {remaining} left"
            )
            return False
        vector = entry.candidate.dense_vector
        duplicate, shingles = self.admission.duplicate_of(text, vector, self.packed)
        if duplicate is not None:
            self.admission.screens.dedupe_dropped += 1
            self.drop(entry, DropReason.DUPLICATE, duplicate)
            return False
        frame_tokens = costing.frame_tokens(item, frame)
        body_tokens = costing.counter.count(render.safe_body(item, costing.fmt))
        cost = frame_tokens + body_tokens
        if cost > remaining:
            self.drop(entry, DropReason.OVER_BUDGET, f"needs {cost} tokens, {remaining} left")
            return False
        self.admission.duplicates.add(shingles, vector)
        self.packed.append(Packed(entry, text, flags, frame_tokens, body_tokens))
        self.caps.take(entry.candidate)
        self.remaining -= cost
        return True
