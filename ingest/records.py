"""JSON, JSON Lines and BEIR corpus readers: one Document per record.

JSON Lines files are read line by line, so a corpus of any size streams through in constant
memory. A bad line is reported with its line number and the rest of the file is still read.
A record's ``updated_at`` comes from the record, else from the file's mtime; a date from the
mtime is marked (``updated_at_from_mtime``) and left out of ``doc_hash``, so an edit to one
record leaves the others unchanged for the sync.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from ingest.fields import (
    FieldError,
    json_safe,
    nesting_depth,
    parse_date,
    parse_str,
    parse_str_list,
    parse_versions,
)
from ingest.readers import (
    BINARY_PROBE_BYTES,
    MAX_NESTING,
    FileRef,
    Located,
    Read,
    ReadContext,
    binary_problem,
    byte_limit,
    flag_for,
    merge_tags,
    mtime,
    open_regular,
    os_problem,
    read_limited,
    too_large_bytes_problem,
    utf8_problem,
    within_grant,
)
from ingest.types import Document, FieldMapping, InputProblem

_MAPPED = ("id", "text", "title", "updated_at", "tenant", "groups", "tags")


class _RecordError(ValueError):
    """A record that cannot become a Document; the message says why and what to change."""


def read_jsonl(ref: FileRef, ctx: ReadContext, *, fmt: str = "json") -> Iterator[Read]:
    """Read a JSON Lines file, one record per non-blank line.

    A line longer than the byte limit is reported and skipped without being held in memory
    whole or parsed; the lines after it are still read.
    """
    limit = byte_limit(ctx)
    try:
        with open_regular(ref.disk) as fh:
            problem = binary_problem(ref, fh.read(BINARY_PROBE_BYTES))
            if problem is not None:
                yield problem
                return
            fh.seek(0)
            offset = 0
            lineno = 0
            while raw := fh.readline(limit + 1):
                lineno += 1
                base, offset = offset, offset + len(raw)
                if len(raw) > limit and not raw.endswith(b"\n"):
                    while (rest := fh.readline(limit)) and not rest.endswith(b"\n"):
                        offset += len(rest)
                    offset += len(rest)
                    yield too_large_bytes_problem(ref.label, limit, line=lineno)
                    continue
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    yield utf8_problem(ref, err, base=base, line=lineno)
                    continue
                if lineno == 1:
                    line = line.removeprefix("\ufeff")
                if not line.strip():
                    continue
                record = _parse_json(ref, line, line=lineno)
                if isinstance(record, InputProblem):
                    yield record
                    continue
                yield _from_record(record, ref, ctx, line=lineno, fmt=fmt)
    except OSError as err:
        yield os_problem(ref, err)


def _parse_json(ref: FileRef, text: str, *, line: int | None) -> Any:
    """``json.loads`` with its failures as problems; the text was size-checked already."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        fix = "fix or remove the line" if line is not None else "fix the file"
        return InputProblem(
            ref.label, f"invalid JSON: {err}; {fix}", line=line if line is not None else err.lineno
        )
    except RecursionError:
        return InputProblem(
            ref.label,
            f"JSON nested deeper than {MAX_NESTING} levels of lists and objects; flatten it",
            line=line,
        )


def read_json(ref: FileRef, ctx: ReadContext) -> Iterator[Read]:
    """Read a JSON file holding one record or a list of records (within the byte limit)."""
    try:
        data = read_limited(ref, ctx)
    except OSError as err:
        yield os_problem(ref, err)
        return
    if isinstance(data, InputProblem):
        yield data
        return
    problem = binary_problem(ref, data[:BINARY_PROBE_BYTES])
    if problem is not None:
        yield problem
        return
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        yield utf8_problem(ref, err)
        return
    loaded = _parse_json(ref, text, line=None)
    if isinstance(loaded, InputProblem):
        yield loaded
        return
    if isinstance(loaded, dict):
        yield _from_record(loaded, ref, ctx, line=None, fmt="json")
        return
    if not isinstance(loaded, list):
        yield InputProblem(
            ref.label,
            f"a JSON file must hold one record (an object) or a list of them, not a "
            f"{type(loaded).__name__}",
        )
        return
    for number, record in enumerate(loaded, start=1):
        yield _from_record(record, ref, ctx, line=None, fmt="json", number=number)


def read_beir_corpus(ref: FileRef, ctx: ReadContext) -> Iterator[Read]:
    """Read a BEIR ``corpus.jsonl``: records ``{"_id", "title", "text", "metadata"}``."""
    beir_ctx = replace(ctx, fields=FieldMapping(id="_id", metadata=("metadata",)))
    for item in read_jsonl(ref, beir_ctx, fmt="beir"):
        if isinstance(item, Located):
            # BEIR nests extra fields under "metadata": lift them to the top level.
            meta = dict(item.doc.metadata)
            nested = meta.pop("metadata", None)
            if isinstance(nested, Mapping):
                meta = {**nested, **meta}
            try:
                meta = parse_versions(meta, item.doc.doc_id)
            except FieldError as err:
                yield InputProblem(ref.label, str(err), line=item.line, doc_id=item.doc.doc_id)
                continue
            yield replace(item, doc=replace(item.doc, metadata=meta))
        else:
            yield item


def _from_record(
    record: Any,
    ref: FileRef,
    ctx: ReadContext,
    *,
    line: int | None,
    fmt: str,
    number: int | None = None,
) -> Read:
    prefix = f"record {number}: " if number is not None else ""
    doc_id: str | None = None
    try:
        if not isinstance(record, dict):
            raise _RecordError(f"expected a JSON object per record, got a {type(record).__name__}")
        if nesting_depth(record) > MAX_NESTING:
            raise _RecordError(
                f"record nested deeper than {MAX_NESTING} levels of lists and objects; flatten it"
            )
        doc_id = _record_id(record, ctx)
        doc = _record_document(record, doc_id, ref, ctx, fmt=fmt)
    except (_RecordError, FieldError) as err:
        return InputProblem(ref.label, prefix + str(err), line=line, doc_id=doc_id)
    except Exception as err:  # noqa: BLE001 (one record's failure, whatever it is, is its own)
        return InputProblem(
            ref.label,
            f"{prefix}cannot read the record: {type(err).__name__}: {err}; fix or remove it",
            line=line,
            doc_id=doc_id,
        )
    return Located(doc, ref.label, line, number)


def _record_id(record: dict[str, Any], ctx: ReadContext) -> str:
    name = ctx.fields.id
    if name not in record:
        raise _RecordError(
            f"record has no {name!r} field for its id; add one, or name the field that holds "
            f"the id with {flag_for('id')}"
        )
    value = record[name]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _RecordError(
            f"field {name!r} (the id) has value {value!r}; expected a string or an integer"
        )
    doc_id = str(value).strip()
    if not doc_id:
        raise _RecordError(f"field {name!r} (the id) is empty; give every record an id")
    return doc_id


def _record_document(
    record: dict[str, Any],
    doc_id: str,
    ref: FileRef,
    ctx: ReadContext,
    *,
    fmt: str,
) -> Document:
    fields = ctx.fields

    def label(attr: str) -> str:
        return f"field {getattr(fields, attr)!r} ({flag_for(attr)})"

    def get(attr: str) -> Any:
        return record.get(getattr(fields, attr))

    if fields.text not in record:
        raise _RecordError(
            f"record {doc_id!r} has no {fields.text!r} field for its text; add one, or name "
            f"the field that holds the text with {flag_for('text')}"
        )
    text = record[fields.text]
    if not isinstance(text, str):
        raise _RecordError(f"{label('text')} of record {doc_id!r} is not a string: {text!r}")
    title = "" if get("title") is None else parse_str(get("title"), label("title"))
    tenant = "" if get("tenant") is None else parse_str(get("tenant"), label("tenant"))
    groups = () if get("groups") is None else parse_str_list(get("groups"), label("groups"))
    tenant, groups = within_grant(tenant, groups, ctx)
    tags = () if get("tags") is None else parse_str_list(get("tags"), label("tags"))
    raw_date = get("updated_at")
    # The mtime fallback stays out of doc_hash (see Document.doc_hash): rewriting one line of
    # a JSONL file must not re-embed every record in it.
    from_mtime = raw_date is None
    updated_at = mtime(ref.disk) if from_mtime else parse_date(raw_date, label("updated_at"))
    mapped = {getattr(fields, name) for name in _MAPPED}
    if fields.metadata is None:
        extra = {k: v for k, v in record.items() if k not in mapped}
    else:
        extra = {k: record[k] for k in fields.metadata if k in record}
    return Document(
        doc_id=doc_id,
        text=text,
        source=ctx.source,
        path=f"{ref.label}#{doc_id}",
        tenant=tenant,
        title=title,
        groups=groups,
        tags=merge_tags(tags, ctx.tags),
        updated_at=updated_at,
        metadata=parse_versions(json_safe(extra), doc_id),
        format=fmt,
        updated_at_from_mtime=from_mtime,
    )
