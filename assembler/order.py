"""Rule 7, order: arrange the packed chunks; pinned chunks always come first.

``relevance`` keeps packing order (best first). ``edges`` puts the best at both ends: models
attend least to the middle of a long context, so rank 1 opens, rank 2 closes, rank 3 comes
second, and so on. ``document`` groups chunks by document in source order and merges runs of
adjacent chunks into one item, cutting the text they overlap on.
"""

from __future__ import annotations

from collections.abc import Sequence

from assembler.packing import Packed
from assembler.trim import TRIMMED_FLAG
from assembler.types import OrderMode

Group = tuple[Packed, ...]


def _edges(packed: Sequence[Packed]) -> list[Packed]:
    front = list(packed[0::2])
    back = list(packed[1::2])
    return front + back[::-1]


def _offsets_known(chunk: Packed) -> bool:
    # Checked on the chunk as retrieved: a trimmed text is a prefix, so its start still holds.
    candidate = chunk.ranked.candidate
    span = candidate.char_end - candidate.char_start
    return span > 0 and span == len(candidate.text)


def adjacent(first: Packed, second: Packed) -> bool:
    """Whether ``second`` directly follows ``first`` in the same document."""
    one, two = first.ranked.candidate, second.ranked.candidate
    return (
        one.doc_id == two.doc_id
        and two.chunk_index == one.chunk_index + 1
        and TRIMMED_FLAG not in first.flags  # a trimmed chunk's text no longer reaches the next
    )


def merged_text(group: Group) -> str:
    """The text of a run of adjacent chunks, with the overlap between neighbours cut once."""
    text = group[0].text
    for previous, chunk in zip(group, group[1:], strict=False):
        overlap = previous.ranked.candidate.char_end - chunk.ranked.candidate.char_start
        if _offsets_known(previous) and _offsets_known(chunk) and overlap >= 0:
            # Ingest guarantees text == document[char_start:char_end], so the part of this
            # chunk past the previous one's end continues the document exactly.
            text += chunk.text[overlap:]
        else:
            text += "\n" + chunk.text
    return text


def _source_position(chunk: Packed) -> tuple[int, int, int]:
    candidate = chunk.ranked.candidate
    return candidate.chunk_index, candidate.char_start, chunk.ranked.index


def _document_groups(packed: Sequence[Packed]) -> list[Group]:
    first_seen: dict[str, int] = {}
    by_doc: dict[str, list[Packed]] = {}
    for position, chunk in enumerate(packed):  # packing order: pins, then best first
        doc = chunk.ranked.candidate.doc_id
        first_seen.setdefault(doc, position)
        by_doc.setdefault(doc, []).append(chunk)
    groups: list[Group] = []
    for doc in sorted(by_doc, key=first_seen.__getitem__):
        chunks = sorted(by_doc[doc], key=_source_position)
        run = [chunks[0]]
        for chunk in chunks[1:]:
            if adjacent(run[-1], chunk):
                run.append(chunk)
            else:
                groups.append(tuple(run))
                run = [chunk]
        groups.append(tuple(run))
    return groups


def arrange(packed: Sequence[Packed], mode: OrderMode) -> list[Group]:
    """Order packed chunks (given in packing order) into the groups that become items.

    Args:
        packed: The packed chunks, pins first, then by value.
        mode: The policy's ``order``.

    Returns:
        One group per item, in context order; only ``document`` makes groups of several.
    """
    pins = [chunk for chunk in packed if chunk.ranked.pinned]
    rest = [chunk for chunk in packed if not chunk.ranked.pinned]
    if mode is OrderMode.DOCUMENT:
        return _document_groups(pins) + _document_groups(rest)
    if mode is OrderMode.EDGES:
        return [(chunk,) for chunk in pins + _edges(rest)]
    return [(chunk,) for chunk in pins + rest]
