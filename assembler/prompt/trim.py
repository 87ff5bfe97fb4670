"""Trimming a long tool output to a head and a tail, with a marker naming what was cut."""

from __future__ import annotations

from assembler.tokens import TokenCounter


def marker(cut_tokens: int) -> str:
    """The visible note left where the middle of a tool output was cut."""
    return f"\n[… ragctx cut {cut_tokens} tokens of this tool output here …]\n"


def head_and_tail(
    text: str, limit: int, counter: TokenCounter, *, head_share: float
) -> tuple[str, int] | None:
    """``text`` cut to at most ``limit`` tokens: its start and end around a marker.

    The characters kept are split ``head_share`` to the head; the longest split that fits is
    found by bisection over the characters kept, counting each try as a whole.

    Returns:
        The trimmed text and the tokens cut, or None when not even the marker fits.
    """
    total = counter.count(text)

    def attempt(kept: int) -> tuple[str, int]:
        head_chars = round(kept * head_share)
        head, tail = text[:head_chars], text[len(text) - (kept - head_chars) :]
        cut = max(total - counter.count(head) - counter.count(tail), 1)
        return head + marker(cut) + tail, cut

    best = attempt(0)
    if counter.count(best[0]) > limit:
        return None
    low, high = 0, len(text) - 1  # keep fewer characters than the whole
    while low < high:
        middle = (low + high + 1) // 2
        trial = attempt(middle)
        if counter.count(trial[0]) <= limit:
            low, best = middle, trial
        else:
            high = middle - 1
    return best
