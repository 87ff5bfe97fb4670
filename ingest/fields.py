"""Field values read from documents: dates, group and tag lists, JSON-safe metadata.

Each parser raises :class:`FieldError` with a message that names the field, the value received
and the form expected; the readers turn it into an :class:`~ingest.types.InputProblem`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any

DATE_FORMAT_HINT = "ISO 8601, e.g. 2024-05-01 or 2024-05-01T12:00:00Z"


class FieldError(ValueError):
    """A field's value has the wrong form; the message says which field and what is expected."""


def as_utc(moment: datetime) -> datetime:
    """``moment`` as a timezone-aware UTC datetime; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_date(value: object, label: str) -> datetime:
    """Parse an ISO 8601 string, a date or a datetime into an aware UTC datetime.

    Raises:
        FieldError: the value is not a date; the message names ``label`` and the format.
    """
    try:
        if isinstance(value, datetime):
            return as_utc(value)
        if isinstance(value, date):
            return datetime.combine(value, time(0), tzinfo=UTC)
        if isinstance(value, str) and value.strip():
            return as_utc(datetime.fromisoformat(value.strip()))
    except (ValueError, OverflowError):
        # not ISO 8601, or a moment that leaves datetime's range once moved to UTC
        # ("0001-01-01T00:00:00+01:00")
        pass
    raise FieldError(
        f"{label} has value {value!r}, which is not a date; expected {DATE_FORMAT_HINT}"
    )


def parse_str_list(value: object, label: str) -> tuple[str, ...]:
    """A list of strings, or one comma-separated string, as a tuple without blanks or repeats.

    Raises:
        FieldError: the value is neither; the message names ``label``.
    """
    items: list[object]
    if isinstance(value, str):
        items = list(value.split(","))
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise FieldError(
            f"{label} has value {value!r}; expected a list of strings or a comma-separated string"
        )
    out: list[str] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise FieldError(f"{label} holds {item!r}; expected strings only")
        text = str(item).strip()
        if text and text not in out:
            out.append(text)
    return tuple(out)


def parse_str(value: object, label: str) -> str:
    """A string value (numbers are accepted and written out), stripped.

    Raises:
        FieldError: any other type; the message names ``label``.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FieldError(f"{label} has value {value!r}; expected a string")
    return str(value).strip()


def nesting_depth(value: object) -> int:
    """How deeply lists and mappings nest in ``value`` (a scalar is 0, ``[1]`` is 1).

    Iterative, so a value nested deeper than Python's recursion limit is measured, not a crash.
    """
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: list[object] = list(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            children = list(item)
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def json_safe(value: Any) -> Any:
    """``value`` with dates written as ISO 8601 strings and unknown types as ``str``.

    Metadata goes into the stored payload and into ``doc_hash``, so it must be plain JSON.
    """
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [json_safe(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return str(value)


SERIES = "series"
VERSION = "version"
SUPERSEDES = "supersedes"
"""Metadata keys that declare document versions (``assembler.rules.versions`` reads them)."""


def parse_versions(metadata: Mapping[str, Any], doc_id: str) -> dict[str, Any]:
    """``metadata`` with its version keys checked and written in one form.

    ``series`` and ``version`` are a pair of strings (a whole number is written out; a
    fraction is refused, since ``4.10`` read as a number is ``4.1``); ``supersedes`` is a list
    of document ids, or one string of comma-separated ids. Other keys pass through.

    Raises:
        FieldError: a key has the wrong form, ``version`` comes without ``series`` (or the
            other way round), or the document supersedes itself; the message names the key.
    """
    out = dict(metadata)
    series = _version_str(out, SERIES)
    version = _version_str(out, VERSION)
    if (series is None) != (version is None):
        given, missing = (SERIES, VERSION) if version is None else (VERSION, SERIES)
        raise FieldError(
            f"{given} {out[given]!r} comes without {missing}: a document of a series names both "
            f'(series: relnotes, version: "4.1"); add {missing}, or name the older documents '
            f"with {SUPERSEDES}: [doc ids]"
        )
    if SUPERSEDES in out:
        value = out[SUPERSEDES]
        if not isinstance(value, str | list):
            raise FieldError(
                f"{SUPERSEDES} has value {value!r}; expected a list of document ids "
                "(supersedes: [relnotes-3-8]) or a comma-separated string of them"
            )
        older = list(parse_str_list(value, SUPERSEDES))
        if doc_id in older:
            raise FieldError(f"{SUPERSEDES} names the document itself ({doc_id!r}); remove it")
        out[SUPERSEDES] = older
    return out


def _version_str(metadata: dict[str, Any], key: str) -> str | None:
    """Check ``metadata[key]`` (series or version) and write it back as a string."""
    if key not in metadata:
        return None
    value = metadata[key]
    if isinstance(value, float):
        raise FieldError(
            f'{key} has the number {value!r}; write it as a string ({key}: "4.10"), since '
            "a number loses its trailing zeros (4.10 reads as 4.1)"
        )
    text = parse_str(value, key)
    if not text:
        raise FieldError(f"{key} is empty; give it a value or remove it")
    metadata[key] = text
    return text
