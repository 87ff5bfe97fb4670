"""Trimming (``packing.trim_last``): fill the space left with the start of one more chunk.

The text is cut at a sentence boundary, never mid-sentence, so the model reads whole
statements; the item is flagged ``trimmed``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from assembler.packing import Packer, item_of
from assembler.ranking import Ranked

TRIMMED_FLAG = "trimmed"
MAX_ATTEMPTS = 3  # each attempt costs a few exact counts; the best chunks come first anyway

# The end of a sentence (punctuation, closing quotes or brackets, then whitespace) or of a
# paragraph (a blank line).
_BOUNDARY = re.compile(r"[.!?][\"')\]]*(?=\s)|\n[ \t]*\n")


def sentence_ends(text: str) -> list[int]:
    """Offsets at which ``text[:offset]`` ends with a whole sentence or paragraph, ascending."""
    ends = sorted({match.end() for match in _BOUNDARY.finditer(text)})
    return [end for end in ends if text[:end].strip()]


def longest_prefix(text: str, fits: Callable[[str], bool]) -> str | None:
    """The longest sentence-aligned prefix of ``text`` that ``fits``, or None.

    Binary search: the cost of a prefix grows with its length, so a few exact counts suffice.
    """
    ends = sentence_ends(text)
    best: str | None = None
    low, high = 0, len(ends) - 1
    while low <= high:
        middle = (low + high) // 2
        prefix = text[: ends[middle]].rstrip()
        if fits(prefix):
            best = prefix
            low = middle + 1
        else:
            high = middle - 1
    return best


def _fits_in(packer: Packer, entry: Ranked) -> Callable[[str], bool]:
    room, least = packer.remaining, packer.policy.packing.trim_min_tokens
    costing = packer.costing

    def fits(prefix: str) -> bool:
        body = costing.body(entry.candidate, prefix)
        if body < least or body > room:
            return False
        flags = (*packer.flags.get(entry.index, ()), TRIMMED_FLAG)  # as offer will flag it
        return costing.cost(item_of(entry, prefix, flags, body)) <= room

    return fits


def trim_last(packer: Packer) -> None:
    """Pack a sentence-aligned prefix of the best chunks left out for lack of space.

    Tries the best ``over_budget`` candidates in packing order, at most ``MAX_ATTEMPTS``; the
    prefix goes through the same caps and screens as any chunk. Pinned chunks are never
    trimmed: a pin goes in whole when it fits, so that adding candidates never changes which
    pins are packed.

    Args:
        packer: The packer after ``fill``; packs in place.
    """
    rule = packer.policy.packing
    attempts = 0
    for entry in sorted(packer.over_budget, key=lambda ranked: ranked.rank):
        if attempts >= MAX_ATTEMPTS or packer.remaining < rule.trim_min_tokens:
            return
        if entry.pinned or packer.caps.refusal(entry.candidate) is not None:
            continue
        attempts += 1
        prefix = longest_prefix(entry.candidate.text, _fits_in(packer, entry))
        if prefix is None:
            continue
        original = packer.dropped.pop(entry.index)
        if packer.offer(entry, prefix, (TRIMMED_FLAG,)):
            return
        packer.dropped[entry.index] = original  # the prefix failed a screen: keep the first reason
