"""Read documents from a source: a file, a folder of files, a JSON Lines file, a BEIR corpus.

Example:
    >>> spec = SourceSpec(Path("data/docs"), include=("**/*.md",), tenant="acme")
    >>> for item in read_source(spec):
    ...     if isinstance(item, InputProblem):
    ...         print(item)  # "data/docs/bad.md: invalid UTF-8 at byte offset 17; ..."

Folders are walked in sorted order, one file at a time; hidden files and folders are skipped.

Glob patterns (``include``/``exclude``) are ``.gitignore`` patterns (pathspec's ``gitignore``
patterns, matched with RE2) against paths relative to the source folder, with ``/`` between
folders:

* ``*`` matches within one path segment and ``?`` one character; neither crosses ``/``;
  ``[abc]`` and ``[!abc]`` match one character of (or not of) a set; a backslash escapes;
* ``**`` matches any number of folders, none included: ``**/*.md``, ``docs/**``;
* a pattern with no ``/`` but at its end matches a name at any depth: ``*.md`` = ``**/*.md``,
  ``drafts/`` = any folder ``drafts``; a leading ``/`` anchors it at the source folder:
  ``/*.md``; a trailing ``/`` matches folders only;
* a pattern that matches a folder matches everything below it: ``drafts``, ``docs/api``;
* a later ``!pattern`` takes a path back out of the list: ``exclude=("*.md", "!keep.md")``
  (as in git, not a file below an excluded folder: that folder is never walked).

A file is read when no ``include`` is given (and its type is supported) or it matches one, and
it matches no ``exclude``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from pathspec import PathSpec
from pathspec.patterns.gitignore import GitIgnorePatternError
from pathspec.patterns.gitignore.basic import GitIgnoreBasicPattern

from core.errors import InvalidInputError
from ingest.readers import (
    FileRef,
    Located,
    Read,
    ReadContext,
    read_html,
    read_markdown,
    read_pdf,
    read_plain,
    too_large_problem,
)
from ingest.records import read_beir_corpus, read_json, read_jsonl
from ingest.types import Document, FieldMapping, InputProblem, SourceSpec

__all__ = [
    "KINDS",
    "FieldMapping",
    "SourceSpec",
    "check_source",
    "count_source_files",
    "read_source",
]

log = logging.getLogger(__name__)

KINDS = ("auto", "files", "jsonl", "beir")
_READERS: dict[str, Callable[[FileRef, ReadContext], Iterator[Read]]] = {
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".txt": read_plain,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
    ".json": read_json,
    ".jsonl": read_jsonl,
}
SUPPORTED_SUFFIXES = tuple(_READERS)


def read_source(
    spec: SourceSpec, *, max_doc_chars: int = 2_000_000, max_doc_bytes: int = 8_000_000
) -> Iterator[Document | InputProblem]:
    """Read every document of a source, one at a time.

    One bad document never stops the rest: it comes out as an :class:`InputProblem` naming the
    file (and line), what is wrong and what to do. Any exception a reader raises is caught
    here too: it becomes a problem of its file, and the other files are still read. The
    second and later documents with an id already read from this source (for one tenant)
    are problems too; the first one stands.

    Args:
        spec: the source and its defaults.
        max_doc_chars: documents longer than this are reported, not read.
        max_doc_bytes: files (and JSON Lines lines) larger than this are reported, not
            parsed.

    Returns:
        An iterator of documents and problems, in sorted path order.

    Raises:
        InvalidInputError: the path does not exist, ``kind`` is unknown or does not fit it,
            or a glob pattern is empty.
    """
    kind = _resolve_kind(spec)
    for name, value in (("max_doc_chars", max_doc_chars), ("max_doc_bytes", max_doc_bytes)):
        if value < 1:
            raise InvalidInputError(
                f"{name} must be at least 1, got {value}; set RAGCTX_{name.upper()}",
                field=name,
                value=value,
            )
    ctx = ReadContext(
        source=source_name(spec),
        tenant=spec.tenant,
        groups=spec.groups,
        tags=spec.tags,
        fields=spec.fields,
        max_doc_chars=max_doc_chars,
        max_doc_bytes=max_doc_bytes,
        tenant_from_records=spec.tenant_from_records,
    )
    return _checked(_read_all(spec, kind, ctx), max_doc_chars)


def check_source(spec: SourceSpec) -> None:
    """Raise for a source that cannot be synced at all, before anything is read or written.

    Raises:
        InvalidInputError: as :func:`read_source` (a missing path, a bad kind or glob).
    """
    _resolve_kind(spec)


def count_source_files(spec: SourceSpec) -> int:
    """How many files :func:`read_source` will open (for a progress bar; not documents).

    Raises:
        InvalidInputError: as :func:`read_source`.
    """
    kind = _resolve_kind(spec)
    if kind == "beir":
        return 1
    return sum(1 for item in _files(spec, kind) if isinstance(item, FileRef))


def source_name(spec: SourceSpec) -> str:
    """The sync scope name: ``spec.name``, else the path as given (posix, no trailing slash)."""
    return spec.name if spec.name is not None else spec.path.as_posix()


def _resolve_kind(spec: SourceSpec) -> str:
    if spec.kind not in KINDS:
        raise InvalidInputError(
            f"unknown source kind {spec.kind!r}; use one of {', '.join(KINDS)}",
            field="kind",
            value=spec.kind,
        )
    _glob_spec(tuple(spec.include))  # a bad pattern is bad usage: say so before reading anything
    _glob_spec(tuple(spec.exclude))
    path = spec.path
    if not path.exists():
        raise InvalidInputError(
            f"source {path.as_posix()!r} does not exist; pass an existing file or folder",
            field="path",
            value=str(path),
        )
    is_beir = path.is_dir() and (path / "corpus.jsonl").is_file()
    if spec.kind == "beir":
        if not is_beir:
            raise InvalidInputError(
                f"source {path.as_posix()!r} is not a BEIR corpus folder (no corpus.jsonl in "
                "it); pass the folder that holds corpus.jsonl, or another --kind",
                field="kind",
                value=spec.kind,
            )
        return "beir"
    if spec.kind == "auto":
        return "beir" if is_beir and (path / "queries.jsonl").is_file() else "files"
    return spec.kind


def _read_all(spec: SourceSpec, kind: str, ctx: ReadContext) -> Iterator[Read]:
    if kind == "beir":
        corpus = spec.path / "corpus.jsonl"
        ref = FileRef(corpus, "corpus.jsonl", _join(ctx.source, "corpus.jsonl"))
        yield from _guarded(read_beir_corpus, ref, ctx)
        return
    for item in _files(spec, kind):
        if isinstance(item, InputProblem):
            yield item
            continue
        suffix = item.disk.suffix.lower()
        reader = read_jsonl if kind == "jsonl" else _READERS.get(suffix)
        if reader is None:
            yield InputProblem(
                item.label,
                f"unsupported file type {suffix or '(no suffix)'!r}; supported: "
                f"{', '.join(SUPPORTED_SUFFIXES)}; narrow --include or convert the file",
            )
            continue
        yield from _guarded(reader, item, ctx)


def _guarded(
    reader: Callable[[FileRef, ReadContext], Iterator[Read]], ref: FileRef, ctx: ReadContext
) -> Iterator[Read]:
    """``reader``'s items; an exception it raises becomes a problem of the file, not a crash.

    Readers turn the failures they know into problems themselves; this is the net under
    them for the ones nobody foresaw (a parser's internal error on hostile bytes). The file's
    documents not read yet keep their stored version: the sync deletes nothing of a file
    with a problem.
    """
    items = reader(ref, ctx)
    while True:
        try:
            item = next(items)
        except StopIteration:
            return
        except Exception as err:  # noqa: BLE001 (any failure of one file is that file's)
            message = " ".join(str(err).split())[:300]
            yield InputProblem(
                ref.label,
                f"cannot read the file: {type(err).__name__}: {message}; the rest of the file "
                "is skipped and its stored documents are kept; fix or exclude the file",
            )
            return
        yield item


def _checked(items: Iterator[Read], max_doc_chars: int) -> Iterator[Document | InputProblem]:
    """Apply the checks every document gets: empty, too large, duplicate id."""
    first_seen: dict[tuple[str, str], str] = {}
    for item in items:
        if isinstance(item, InputProblem):
            yield item
            continue
        doc = item.doc
        record = f"record {item.record}: " if item.record is not None else ""
        if len(doc.text) > max_doc_chars:
            problem = too_large_problem(
                item.label, f"{len(doc.text):,} characters", max_doc_chars, line=item.line
            )
            yield replace(problem, message=record + problem.message, doc_id=doc.doc_id)
            continue
        if not doc.text.strip():
            yield InputProblem(
                item.label,
                record + "empty document; nothing to index",
                line=item.line,
                doc_id=doc.doc_id,
            )
            continue
        earlier = first_seen.get((doc.tenant, doc.doc_id))
        if earlier is not None:
            yield _duplicate(item, earlier)
            continue
        first_seen[doc.tenant, doc.doc_id] = item.where
        yield doc


def _duplicate(item: Located, earlier: str) -> InputProblem:
    return InputProblem(
        item.label,
        f"duplicate doc_id {item.doc.doc_id!r}: first read at {earlier}, again at {item.where}; "
        "this copy is skipped. Ids must be unique within a source: remove one copy or change "
        "its id",
        line=item.line,
        doc_id=item.doc.doc_id,
    )


def _join(source: str, rel: str) -> str:
    return rel if source in ("", ".") else f"{source.rstrip('/')}/{rel}"


def _files(spec: SourceSpec, kind: str) -> Iterator[FileRef | InputProblem]:
    """The files to read, in sorted path order, or problems for folders that cannot be listed."""
    name = source_name(spec)
    if spec.path.is_file():
        yield FileRef(spec.path, spec.path.name, name)
        return
    include = _glob_spec(tuple(spec.include))
    exclude = _glob_spec(tuple(spec.exclude))
    wanted_suffixes = (".jsonl",) if kind == "jsonl" else SUPPORTED_SUFFIXES

    def selected(rel: str) -> bool:
        if _matches(exclude, rel):
            return False
        if include is not None:
            return _matches(include, rel)
        return Path(rel).suffix.lower() in wanted_suffixes

    def listing(folder: Path, prefix: str) -> Iterator[os.DirEntry[str]] | InputProblem:
        try:
            with os.scandir(folder) as entries:
                return iter(sorted(entries, key=lambda e: e.name))
        except OSError as err:
            label = _join(name, prefix.rstrip("/")) if prefix else name
            reason = "permission denied" if isinstance(err, PermissionError) else err.strerror
            return InputProblem(label, f"cannot list the folder: {reason}; its files are skipped")

    # Depth first, each folder in name order: files come out sorted by their relative path,
    # and only one listing per folder level is held at a time.
    root = listing(spec.path, "")
    if isinstance(root, InputProblem):
        yield root
        return
    stack: list[tuple[Iterator[os.DirEntry[str]], str]] = [(root, "")]
    while stack:
        entries, prefix = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        if entry.name.startswith("."):
            continue
        rel = prefix + entry.name
        if entry.is_dir(follow_symlinks=False):
            if not _matches(exclude, rel + "/"):
                below = listing(Path(entry.path), rel + "/")
                if isinstance(below, InputProblem):
                    yield below
                else:
                    stack.append((below, rel + "/"))
        elif selected(rel):
            yield FileRef(Path(entry.path), rel, _join(name, rel))


def _matches(spec: PathSpec[GitIgnoreBasicPattern] | None, rel: str) -> bool:
    """Whether ``rel`` or one of the folders above it (``a/``, ``a/b/``) matches ``spec``."""
    if spec is None:
        return False
    folders = rel.rstrip("/").split("/")[:-1]
    above = ("/".join(folders[: i + 1]) + "/" for i in range(len(folders)))
    return any(spec.match_file(folder) for folder in above) or spec.match_file(rel)


@lru_cache(maxsize=256)
def _glob_spec(patterns: tuple[str, ...]) -> PathSpec[GitIgnoreBasicPattern] | None:
    """The patterns as one pathspec (the last one matching a path decides); None for none."""
    if not patterns:
        return None
    # RE2: with re, a hand-written glob **/**/**/**/**/**/**/**/x took 20 s on a 40-folder path.
    return PathSpec([_compile_glob(p) for p in patterns], backend="re2")


@lru_cache(maxsize=256)
def _compile_glob(pattern: str) -> GitIgnoreBasicPattern:
    """One ``.gitignore`` pattern (see the module docstring), refused when it matches nothing."""
    glob = pattern.strip().removeprefix("./")
    if not glob.strip("/"):
        raise InvalidInputError(
            f"empty glob pattern {pattern!r}; give a pattern such as **/*.md",
            field="include/exclude",
            value=pattern,
        )
    try:
        compiled = GitIgnoreBasicPattern(glob)
    except (GitIgnorePatternError, re.error) as err:
        raise InvalidInputError(
            f"glob pattern {pattern!r} cannot be used ({err}); check its [...] ranges",
            field="include/exclude",
            value=pattern,
        ) from err
    if compiled.include is None:  # "#..." is a comment line in a .gitignore
        raise InvalidInputError(
            f"glob pattern {pattern!r} matches nothing (a leading # starts a comment); "
            "write \\# for a name that starts with #",
            field="include/exclude",
            value=pattern,
        )
    return compiled
