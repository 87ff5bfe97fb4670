"""Rule 6, packing: fill the token budget by value, with the screens that decide admission.

Candidates come in value order (pins first). For each one the packer asks, cheapest first:
is its score below the policy's threshold for its kind; is its source or document at its cap;
can its body fit (the count stored at ingestion, else a word-count lower bound, then the exact
count); can its frame fit (a lower bound); does it look like an injection (rule 4); what is its
exact cost; and does it repeat a packed chunk (rule 5). A chunk that does not fit is skipped,
and smaller ones below it still get their turn. Rules 4 and 5 run here, on the chunks that
fit, because that is where they decide anything: screening 200 chunks up front costs more than
the rest of the call, and a chunk that cannot fit is left out as ``over_budget`` either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from time import perf_counter

from assembler import render, untrusted
from assembler.policy_schema import Packing, Policy
from assembler.ranking import Ranked
from assembler.rules.dedupe import DuplicateIndex, Signature
from assembler.rules.injection import injection_signals
from assembler.rules.match import any_glob
from assembler.tokens import TokenCounter, joins_cleanly
from assembler.types import CitationFormat, ContextItem, Dropped, DropReason, InjectionAction
from core.types import Candidate

INJECTION_FLAG = "injection_suspect"
# English prose averages ~4 characters a token in cl100k and o200k; a stored count implying
# more than this many is not trusted (the body is counted instead).
PLAUSIBLE_CHARS_PER_TOKEN = 8


@dataclass(frozen=True, slots=True)
class Packed:
    """A packed chunk: its text as packed (maybe trimmed) and its costs, part by part."""

    ranked: Ranked
    text: str
    flags: tuple[str, ...]
    frame: tuple[str, str]  # header and citation line, numbered with the placeholder
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


@dataclass(slots=True)
class Draft:
    """What a chunk's frame shows, before the chunk is an item (see ``render.Framed``).

    Built for every chunk that reaches the frame check, so it is a plain slotted class: a
    ``ContextItem`` (frozen, 15 fields) builds several times slower.
    """

    # in the order a header shows them; the text sets a Markdown fence, the id stands in for
    # a missing title
    title: str
    section: tuple[str, ...]
    source: str
    path: str
    updated_at: datetime | None
    flags: tuple[str, ...]
    text: str
    doc_id: str


def draft(candidate: Candidate, text: str, flags: tuple[str, ...]) -> Draft:
    """The frame's fields of ``candidate`` packed as ``text`` with ``flags``."""
    return Draft(
        candidate.title,
        candidate.section,
        candidate.source,
        candidate.path,
        candidate.updated_at,
        flags,
        text,
        candidate.doc_id,
    )


class Costing:
    """Counts the parts of a rendered item; short parts repeat, so their counts are cached."""

    def __init__(self, counter: TokenCounter, policy: Policy, placeholder: str) -> None:
        self.counter = counter
        self.encoding = counter.name  # the key of the stored body counts
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

    def frame(self, item: render.Framed) -> tuple[str, str]:
        """The item's header and citation line (the number as a placeholder; "" without list)."""
        line = render.citation_line(item, self.placeholder, self.fmt) if self.with_list else ""
        return render.header(item, self.placeholder, self.fmt), line

    def frame_tokens(self, item: render.Framed, frame: tuple[str, str]) -> int:
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
        ascii_text = text.isascii()
        if not ascii_text and untrusted.clean(text) != text:
            return None  # normalising changes it
        xml = self.fmt is CitationFormat.XML
        if xml and ("<" in text or not ascii_text) and render.neutralize_xml(text) != text:
            return None
        size = len(text) if text.isascii() else len(text.encode())
        if not (len(text) <= PLAUSIBLE_CHARS_PER_TOKEN * known and known <= size + 1):
            return None  # the + 1: the body's line end
        return known

    def body(self, candidate: Candidate, text: str) -> int:
        """The exact count of ``text`` as rendered: the stored count, or else counted."""
        known = self.stored_body(candidate, text)
        return self.count_body(text) if known is None else known

    def count_body(self, text: str) -> int:
        """Count ``text`` as rendered inside its delimiters."""
        return self.counter.count(render.rendered_text(text, self.fmt))

    def pack(self, ranked: Ranked, text: str, flags: tuple[str, ...]) -> Packed:
        """Count every part of the chunk's rendering exactly."""
        item = draft(ranked.candidate, text, flags)
        frame = self.frame(item)
        return Packed(
            ranked=ranked,
            text=text,
            flags=flags,
            frame=frame,
            frame_tokens=self.frame_tokens(item, frame),
            body_tokens=self.body(ranked.candidate, text),
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
        costing = self.costing
        # Most candidates end here once the budget is nearly full: the body's count stored at
        # ingestion, or else the word bound (cheap, stops after remaining + 1 words), proves
        # they cannot fit.
        stored = costing.stored_body(entry.candidate, text)
        if stored is not None:
            bound = stored
        elif surely_fits(text, remaining):
            bound = 0
        else:
            bound = costing.counter.lower_bound(text, enough=remaining + 1)
        if bound > remaining:
            return self.refuse(entry, bound, remaining)
        # The body's exact count comes before the screens: it is stored, or it costs less
        # than they do, and most chunks that pass the word bound late in a fill do not fit.
        body_tokens = costing.count_body(text) if stored is None else stored
        if body_tokens > remaining:
            return self.refuse(entry, body_tokens, remaining)
        item = draft(entry.candidate, text, extra_flags)
        frame = costing.frame(item)
        # The frame's lower bound next (its words, or its letter and digit runs). The injection
        # flag only adds to both (a `flags="injection_suspect"` attribute, or that value put
        # before existing flags with a comma), so the bound holds for a flagged frame too and
        # the screen runs only on chunks that can still fit.
        header, line = frame
        room = remaining - body_tokens
        bound = body_tokens
        if not surely_fits(header + line, room):  # the frame's count is at least the parts'
            bound += costing.counter.lower_bound(header, enough=room + 1)
            bound += costing.counter.lower_bound(line, enough=room + 1)
        if bound > remaining:
            return self.refuse(entry, bound, remaining)
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
            item = draft(entry.candidate, text, flags)
            frame = costing.frame(item)
        frame_tokens = costing.frame_tokens(item, frame)
        cost = frame_tokens + body_tokens
        if cost > remaining:
            self.drop(entry, DropReason.OVER_BUDGET, f"needs {cost} tokens, {remaining} left")
            return False
        # Last, the duplicate check: it costs the most, and only a chunk that fits needs it.
        vector = entry.candidate.dense_vector
        duplicate, shingles = self.admission.duplicate_of(text, vector, self.packed)
        if duplicate is not None:
            self.admission.screens.dedupe_dropped += 1
            self.drop(entry, DropReason.DUPLICATE, duplicate)
            return False
        self.admission.duplicates.add(shingles, vector)
        self.packed.append(Packed(entry, text, flags, frame, frame_tokens, body_tokens))
        self.caps.take(entry.candidate)
        self.remaining -= cost
        return True

    def refuse(self, entry: Ranked, bound: int, remaining: int) -> bool:
        """Drop ``entry`` as ``over_budget``: it needs at least ``bound`` tokens. Returns False.

        The most frequent drop by far (most candidates, once the budget is nearly full), so it
        records the drop itself rather than through :meth:`drop`.
        """
        candidate = entry.candidate
        detail = f"needs at least {bound} tokens, {remaining} left"
        self.dropped[entry.index] = Dropped(
            candidate.chunk_id, candidate.doc_id, DropReason.OVER_BUDGET, detail
        )
        self.over_budget.append(entry)
        return False
