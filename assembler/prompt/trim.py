"""Trimming a long tool output to a head and a tail, with a marker naming what was cut."""

from __future__ import annotations

from assembler.tokens import TokenCounter, TokenSlicer


def marker(cut_tokens: int) -> str:
    """The visible note left where the middle of a tool output was cut."""
    return f"\n[… ragctx cut {cut_tokens} tokens of this tool output here …]\n"


def head_and_tail(
    text: str, limit: int, counter: TokenCounter, *, head_share: float
) -> tuple[str, int] | None:
    """``text`` cut to at most ``limit`` tokens: its start and end around a marker.

    What is kept is split ``head_share`` to the head. A counter that can cut at token
    boundaries (tiktoken's) cuts there and recounts the result, a few counts in all; any other
    is bisected over the characters kept, counting each try as a whole.

    Returns:
        The trimmed text and the tokens cut, or None when not even the marker fits.
    """
    if isinstance(counter, TokenSlicer):
        return _by_tokens(text, limit, counter, head_share)
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


def _by_tokens(
    text: str, limit: int, counter: TokenSlicer, head_share: float
) -> tuple[str, int] | None:
    """:func:`head_and_tail` at token boundaries: cut, recount, keep less while over."""
    tokens = counter.encode(text)
    total = len(tokens)
    keep = min(limit - counter.count(marker(total)), total - 1)
    while keep >= 0:
        head_tokens = round(keep * head_share)
        tail_tokens = keep - head_tokens
        head = counter.decode(tokens[:head_tokens])
        tail = counter.decode(tokens[total - tail_tokens :]) if tail_tokens else ""
        cut = total - keep
        trimmed = head + marker(cut) + tail
        over = counter.count(trimmed) - limit
        if over <= 0:
            return trimmed, cut
        keep -= over  # joins and split characters can cost a token or two more
    return None
