"""Rule 5, near-duplicates: a chunk that says what a packed chunk already says is left out.

Method: word shingles (runs of ``shingle_words`` lower-cased words) and the overlap coefficient
``|A ∩ B| / min(|A|, |B|)``. Jaccard would miss the two cases that matter most in a context:
a short chunk contained in a longer one (a chunk overlapping its neighbour, a paragraph quoted
in a bigger chunk) scores low on Jaccard but 1.0 on overlap. Exact shingle sets, not MinHash:
only the chunks that can still fit are compared, and only against the chunks already packed
(a few dozen), so exact sets cost less than MinHash signatures would, and they never miss or
invent a duplicate. Dense-vector cosine is an optional second signal (``dense_threshold``): it
catches paraphrases, but templated text (release notes of two versions) sits close in
embedding space while stating different facts, so it is off by default and needs a high
threshold. The method works without vectors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from assembler.policy_schema import Dedupe

Shingles = frozenset[tuple[str, ...]]


def _runs(text: str, size: int) -> Iterable[tuple[str, ...]]:
    """The ``size``-word runs of ``text``, lower-cased; a shorter text is one run."""
    words = text.lower().split()
    if len(words) < size:
        return (tuple(words),) if words else ()
    return zip(*(words[start:] for start in range(size)), strict=False)


def shingles(text: str, size: int) -> Shingles:
    """The set of ``size``-word shingles of ``text`` (lower-cased, split on whitespace).

    A text shorter than ``size`` words is one shingle, so short identical texts still match.
    """
    return frozenset(_runs(text, size))


def overlap(first: Shingles, second: Shingles) -> float:
    """The overlap coefficient of two shingle sets, in [0, 1]; 0 when either is empty."""
    smaller = min(len(first), len(second))
    if smaller == 0:
        return 0.0
    return len(first & second) / smaller


def cosines(vector: tuple[float, ...], others: list[tuple[float, ...]]) -> list[float]:
    """Cosine similarity of ``vector`` with each of ``others`` (same length); 0 for a zero vector.

    numpy is imported here, not at module level: most policies never compare vectors.
    """
    import numpy as np  # noqa: PLC0415

    matrix = np.asarray(others, dtype=np.float64)
    query = np.asarray(vector, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(query))
    dots = matrix @ query
    safe = np.where(norms == 0, 1.0, norms)
    return [float(value) for value in np.where(norms == 0, 0.0, dots / safe)]


@dataclass(frozen=True, slots=True)
class DuplicateHit:
    """A packed chunk that a new chunk duplicates, and how similar they are."""

    key: int
    similarity: float
    method: str


Signature = frozenset[int]


class DuplicateIndex:
    """The packed chunks' shingles (and vectors), to test each new chunk against them.

    Local to one ``assemble`` call: built up as chunks are packed, never shared. A signature
    holds each shingle's ``hash()``: integer sets intersect several times faster than sets of
    tuples (whose hashes are recomputed on every probe). Two different shingles colliding in
    64 bits is a ~1e-12 event per call, far below any other source of error here.
    """

    def __init__(self, rule: Dedupe) -> None:
        self.rule = rule
        self._packed: list[Signature] = []
        self._vectors: dict[int, tuple[float, ...]] = {}
        # Every packed shingle, and the smallest packed signature: a new chunk shares no more
        # with any one packed chunk than with all of them, which rules most chunks out in
        # one set intersection instead of one per packed chunk (see ``find``).
        self._union: set[int] = set()
        self._smallest = 0

    def signature(self, text: str) -> Signature:
        """The shingles of ``text`` under this policy (empty when dedupe is off)."""
        if not self.rule.enabled:
            return frozenset()
        return frozenset(map(hash, _runs(text, self.rule.shingle_words)))

    def find(self, mine: Signature, vector: tuple[float, ...] | None) -> DuplicateHit | None:
        """Return the packed chunk that a new chunk duplicates best, or None.

        Args:
            mine: The new chunk's :meth:`signature`.
            vector: Its dense vector, or None.

        Returns:
            The earliest packed chunk with the highest similarity at or above the threshold:
            shingle overlap first, dense cosine only when no shingle match was found.
        """
        if not self.rule.enabled:
            return None
        best: DuplicateHit | None = None
        if mine and self._union and self._could_match(mine):
            for key, other in enumerate(self._packed):
                if not other:
                    continue
                similarity = len(mine & other) / min(len(mine), len(other))
                if similarity >= self.rule.threshold and (
                    best is None or similarity > best.similarity
                ):
                    best = DuplicateHit(key, similarity, "shingle overlap")
        if best is not None or vector is None or self.rule.dense_threshold is None:
            return best
        keys = [key for key in sorted(self._vectors) if len(self._vectors[key]) == len(vector)]
        if not keys:  # nothing packed yet, or vectors from another model: not comparable
            return None
        similarities = cosines(vector, [self._vectors[key] for key in keys])
        for key, similarity in zip(keys, similarities, strict=True):
            if similarity >= self.rule.dense_threshold and (
                best is None or similarity > best.similarity
            ):
                best = DuplicateHit(key, similarity, "dense cosine")
        return best

    def _could_match(self, mine: Signature) -> bool:
        """Whether some packed chunk may reach the threshold (False: none can).

        For every packed ``B``: ``|A ∩ B| <= |A ∩ union|`` and ``min(|A|, |B|) >=
        min(|A|, smallest)``, so the bound's quotient is at least each overlap's (rounding
        is monotonic too): below the threshold, no overlap reaches it.
        """
        bound = len(mine & self._union) / min(len(mine), self._smallest)
        return bound >= self.rule.threshold

    def add(self, mine: Signature, vector: tuple[float, ...] | None) -> int:
        """Record a packed chunk with its :meth:`signature` and vector; return its key."""
        key = len(self._packed)
        self._packed.append(mine)
        if mine:
            self._union |= mine
            self._smallest = len(mine) if not self._smallest else min(self._smallest, len(mine))
        if vector is not None and self.rule.dense_threshold is not None:
            self._vectors[key] = vector
        return key
