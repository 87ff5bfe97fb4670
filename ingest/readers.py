"""One reader per file format: bytes on disk → :class:`Document` or :class:`InputProblem`.

Readers never raise for bad input: every failure becomes an ``InputProblem`` that names the file
(and the line, for JSON Lines) and what to do about it. Checks that apply to every document
(empty, too large, duplicate id) live in :mod:`ingest.sources`.
"""

from __future__ import annotations

import io
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from core.linear_regex import compile_linear
from core.types import PUBLIC_GROUP
from ingest.fields import (
    FieldError,
    json_safe,
    nesting_depth,
    parse_date,
    parse_str,
    parse_str_list,
    parse_versions,
)
from ingest.html_text import HtmlTooDeepError, html_to_text
from ingest.types import Document, FieldMapping, InputProblem

BINARY_PROBE_BYTES = 8192
# A UTF-8 character takes at most 4 bytes: a file larger than this cannot fit the limit.
_MAX_BYTES_PER_CHAR = 4
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
# RE2: with re, a line "# a" + many spaces + "x" costs time quadratic in its length.
_H1 = compile_linear(r"^#[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
# Front matter and HTML meta keys that set Document fields instead of metadata.
_DOC_KEYS = ("title", "doc_id", "tenant", "groups", "tags", "updated_at")
MAX_FRONT_MATTER_BYTES = 65_536
"""Front matter is a few fields; more than this is refused before the YAML parser sees it."""
MAX_NESTING = 32
"""Deepest nesting of lists and mappings a document's fields (front matter, JSON) may have."""


@dataclass(frozen=True, slots=True)
class ReadContext:
    """What every reader needs from the source spec."""

    source: str
    tenant: str
    groups: tuple[str, ...]
    tags: tuple[str, ...]
    fields: FieldMapping
    max_doc_chars: int
    max_doc_bytes: int = 8_000_000
    tenant_from_records: bool = False  # a document's own tenant field decides its tenant


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file to read: where it is on disk and how documents name it."""

    disk: Path
    rel: str  # relative to the source folder, posix; the default doc_id
    label: str  # the source name joined with ``rel``: Document.path and InputProblem.path


@dataclass(frozen=True, slots=True)
class Located:
    """A document and where it was read: the file's label, and its line or record number."""

    doc: Document
    label: str
    line: int | None = None
    record: int | None = None

    @property
    def where(self) -> str:
        """``file``, ``file:line`` or ``file (record n)``, for messages."""
        if self.line is not None:
            return f"{self.label}:{self.line}"
        if self.record is not None:
            return f"{self.label} (record {self.record})"
        return self.label


Read = Located | InputProblem


def flag_for(field_name: str) -> str:
    """The CLI flag that sets a record field name, e.g. ``updated_at`` → ``--field-updated-at``."""
    return "--field-" + field_name.replace("_", "-")


def mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    except OSError:
        return None


class NotRegularFileError(OSError):
    """A fifo, socket or device where a file was expected (never read: a fifo would block)."""


def open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file (after symlinks).

    Opened non-blocking, so a fifo never waits for a writer; the open file's own ``fstat``
    decides, so a file swapped for a fifo after the folder was listed is caught too.

    Raises:
        NotRegularFileError: a fifo, socket, device or folder.
        OSError: it cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = (
                "a folder"
                if stat.S_ISDIR(mode)
                else "a fifo"
                if stat.S_ISFIFO(mode)
                else "a socket"
                if stat.S_ISSOCK(mode)
                else "a device"
            )
            raise NotRegularFileError(f"it is {what}, not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def os_problem(ref: FileRef, err: OSError) -> InputProblem:
    if isinstance(err, PermissionError):
        return InputProblem(
            ref.label, "permission denied reading the file; fix its permissions or exclude it"
        )
    if isinstance(err, NotRegularFileError):
        return InputProblem(ref.label, f"not read: {err}; remove it or exclude it")
    reason = err.strerror or str(err)
    return InputProblem(ref.label, f"cannot read the file: {reason}; check the path or exclude it")


def binary_problem(ref: FileRef, head: bytes) -> InputProblem | None:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return InputProblem(ref.label, "file is UTF-16 encoded; re-encode it to UTF-8")
    if b"\x00" in head[:BINARY_PROBE_BYTES]:
        return InputProblem(
            ref.label,
            "binary file (NUL bytes in the first 8 KB), not text; exclude it or convert it",
        )
    return None


def utf8_problem(
    ref: FileRef, err: UnicodeDecodeError, *, base: int = 0, line: int | None = None
) -> InputProblem:
    """The problem for bytes that are not UTF-8, with the file's byte offset of the first one."""
    return InputProblem(
        ref.label,
        f"invalid UTF-8 at byte offset {base + err.start}; re-encode the file to UTF-8 "
        "(e.g. iconv -f latin1 -t utf-8)",
        line=line,
    )


def read_text_file(ref: FileRef, ctx: ReadContext) -> str | InputProblem:
    """The file as UTF-8 text with ``\\n`` line ends, or the problem that stops it being read."""
    try:
        data = read_limited(ref, ctx)
    except OSError as err:
        return os_problem(ref, err)
    if isinstance(data, InputProblem):
        return data
    problem = binary_problem(ref, data[:BINARY_PROBE_BYTES])
    if problem is not None:
        return problem
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return utf8_problem(ref, err)
    # Checked before any parser (YAML, HTML) runs, so their cost is bounded by the limit.
    if len(text) > ctx.max_doc_chars:
        return too_large_problem(ref.label, f"{len(text):,} characters", ctx.max_doc_chars)
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def byte_limit(ctx: ReadContext) -> int:
    """Bytes a file (or a JSON Lines line) may have: ``max_doc_bytes``, and no more than
    ``max_doc_chars`` characters can take in UTF-8."""
    return min(ctx.max_doc_bytes, ctx.max_doc_chars * _MAX_BYTES_PER_CHAR)


def read_limited(ref: FileRef, ctx: ReadContext) -> bytes | InputProblem:
    """The file's bytes, or a problem when it is over the byte limit (never read past it).

    The limit is :func:`byte_limit`. The read stops one byte past it, so neither a huge file
    nor one that grows while it is read is ever held in memory whole.

    Raises:
        OSError: the file cannot be opened or read.
    """
    limit = byte_limit(ctx)
    with open_regular(ref.disk) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        return too_large_bytes_problem(ref.label, limit)
    return data


def too_large_bytes_problem(label: str, limit: int, line: int | None = None) -> InputProblem:
    """The problem for a file (or JSON Lines line) over the byte limit; it is not parsed."""
    what = "line" if line is not None else "file"
    return InputProblem(
        label,
        f"{what} too large: over the limit of {limit:,} bytes, so it is not parsed; split it, "
        "or raise the limit with RAGCTX_MAX_DOC_BYTES (and RAGCTX_MAX_DOC_CHARS)",
        line=line,
    )


def too_large_problem(label: str, size: str, limit: int, line: int | None = None) -> InputProblem:
    """The problem for a document over ``max_doc_chars``."""
    return InputProblem(
        label,
        f"document too large: {size}, over the limit of {limit:,} characters; split it, or raise "
        "the limit with the setting RAGCTX_MAX_DOC_CHARS",
        line=line,
    )


def _document(
    ref: FileRef,
    ctx: ReadContext,
    *,
    text: str,
    title: str,
    fmt: str,
    fields: dict[str, Any],
    extra: dict[str, Any],
) -> Located | InputProblem:
    """Build a file's Document from its own fields (front matter, meta tags) and the defaults."""
    try:
        doc_id = parse_str(fields["doc_id"], "doc_id") if "doc_id" in fields else ref.rel
        if "title" in fields:
            title = parse_str(fields["title"], "title") or title
        tenant = parse_str(fields["tenant"], "tenant") if "tenant" in fields else ""
        groups = parse_str_list(fields["groups"], "groups") if "groups" in fields else ()
        tags = parse_str_list(fields["tags"], "tags") if "tags" in fields else ()
        from_mtime = fields.get("updated_at") is None
        updated_at = (
            mtime(ref.disk) if from_mtime else parse_date(fields["updated_at"], "updated_at")
        )
        metadata = parse_versions(json_safe(extra), doc_id)
    except FieldError as err:
        return InputProblem(ref.label, f"{err}; fix the value in the file")
    if not doc_id:
        return InputProblem(ref.label, "doc_id is empty; give it a value or remove it")
    try:
        tenant, groups = within_grant(tenant, groups, ctx)
    except FieldError as err:
        return InputProblem(ref.label, str(err), doc_id=doc_id)
    doc = Document(
        doc_id=doc_id,
        text=text,
        source=ctx.source,
        path=ref.label,
        tenant=tenant,
        title=title,
        groups=groups,
        tags=merge_tags(tags, ctx.tags),
        updated_at=updated_at,
        metadata=metadata,
        format=fmt,
        updated_at_from_mtime=from_mtime,
    )
    return Located(doc, ref.label)


def within_grant(
    tenant: str, groups: tuple[str, ...], ctx: ReadContext
) -> tuple[str, tuple[str, ...]]:
    """A document's tenant and groups under the sync's grant: its own values may only narrow.

    The sync's tenant and groups are the ceiling (Elasticsearch document-level security works
    the same way: the role, not the document, decides). A document that names no tenant gets
    the sync's; one that names another tenant is refused, unless the sync was started with
    per-record tenancy (``tenant_from_records``), where the document's tenant is taken. Groups
    may narrow the grant: any groups under a grant that holds ``public`` (every principal of
    the tenant), else a subset of the granted groups.

    Raises:
        FieldError: the document names another tenant, or groups beyond the grant; the
            message says what to change.
    """
    if tenant and tenant != ctx.tenant and not ctx.tenant_from_records:
        raise FieldError(
            f"the document names tenant {tenant!r}, but this sync writes tenant "
            f"{ctx.tenant!r}; a document cannot move itself into another tenant: remove its "
            f"tenant field, sync it with --tenant {tenant}, or for a multi-tenant export pass "
            "--tenant-from-records"
        )
    if groups and PUBLIC_GROUP not in ctx.groups:
        wider = [g for g in groups if g not in ctx.groups]
        if wider:
            raise FieldError(
                f"the document names groups {wider} beyond this sync's groups "
                f"{list(ctx.groups)}; a document may narrow its groups, never widen them: "
                "remove those groups from the document, or grant them with --groups"
            )
    return tenant or ctx.tenant, groups or ctx.groups


def merge_tags(own: tuple[str, ...], added: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*own, *added)))


def read_markdown(ref: FileRef, ctx: ReadContext) -> Iterator[Read]:
    """A Markdown file; YAML front matter sets title, doc_id, tenant, groups, tags, updated_at."""
    text = read_text_file(ref, ctx)
    if isinstance(text, InputProblem):
        yield text
        return
    header: dict[str, Any] = {}
    match = _FRONT_MATTER.match(text)
    if match is not None:
        loaded = _front_matter(ref, match.group(1) or "")
        if isinstance(loaded, InputProblem):
            yield loaded
            return
        # Front matter is a mapping. Anything else between two "---" lines is content that
        # happens to start with a thematic break, and stays in the text.
        if loaded is None or isinstance(loaded, dict):
            header = {str(k): v for k, v in (loaded or {}).items()}
            text = text[match.end() :]
    fields = {k: v for k, v in header.items() if k in _DOC_KEYS}
    extra = {k: v for k, v in header.items() if k not in _DOC_KEYS}
    title = _first_h1(text) or ref.disk.stem
    yield _document(ref, ctx, text=text, title=title, fmt="markdown", fields=fields, extra=extra)


class _TooDeepError(yaml.YAMLError):
    """Front matter nests deeper than :data:`MAX_NESTING`."""


class _FrontMatterLoader(yaml.SafeLoader):
    """YAML's safe loader without anchors and aliases, and with bounded nesting.

    Front matter is a few plain fields. An alias can make a few hundred bytes expand into
    gigabytes (the "billion laughs"), and PyYAML's scanner does quadratic work in the depth
    of nested ``[``/``{`` (seconds for 2,000 levels), so nesting is refused while scanning,
    long before the parser would hit Python's recursion limit.
    """

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # noqa: N803 (PyYAML's name)
        if self.flow_level >= MAX_NESTING:
            raise _TooDeepError
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        if len(self.indents) >= MAX_NESTING:
            raise _TooDeepError
        return bool(super().add_indent(column))

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            kind = "alias" if isinstance(event, yaml.AliasEvent) else "anchor"
            raise yaml.YAMLError(
                f"YAML {kind} {event.anchor!r} at line {event.start_mark.line + 1}: anchors "
                "and aliases are not allowed in front matter; write the values out"
            )
        return super().compose_node(parent, index)


def _front_matter(ref: FileRef, raw: str) -> Any:
    """Parse front matter with :class:`_FrontMatterLoader`, bounded in size and nesting."""
    size = len(raw.encode("utf-8"))
    if size > MAX_FRONT_MATTER_BYTES:
        return InputProblem(
            ref.label,
            f"front matter too large: {size:,} bytes, over {MAX_FRONT_MATTER_BYTES:,}; keep "
            "front matter to a few fields and move the rest into the document",
        )
    try:
        loaded = yaml.load(raw, Loader=_FrontMatterLoader)  # a SafeLoader, see the class
    except _TooDeepError:
        return InputProblem(ref.label, _too_deep("front matter"))
    except yaml.YAMLError as err:
        return InputProblem(ref.label, f"invalid YAML front matter: {_one_line(err)}; fix it")
    except (ValueError, OverflowError) as err:
        # YAML's own types fail outside the parser, e.g. a timestamp in year 0
        return InputProblem(
            ref.label, f"invalid value in YAML front matter: {_one_line(err)}; fix it"
        )
    except RecursionError:
        return InputProblem(ref.label, _too_deep("front matter"))
    if nesting_depth(loaded) > MAX_NESTING:
        return InputProblem(ref.label, _too_deep("front matter"))
    return loaded


def _too_deep(what: str) -> str:
    return f"{what} is nested deeper than {MAX_NESTING} levels of lists and mappings; flatten it"


def _first_h1(text: str) -> str:
    in_code = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code and (match := _H1.match(line)):
            return match.group(1).strip()
    return ""


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


def read_plain(ref: FileRef, ctx: ReadContext) -> Iterator[Read]:
    """A plain-text file; its title is the file name without suffix."""
    text = read_text_file(ref, ctx)
    if isinstance(text, InputProblem):
        yield text
        return
    yield _document(ref, ctx, text=text, title=ref.disk.stem, fmt="text", fields={}, extra={})


def read_html(ref: FileRef, ctx: ReadContext) -> Iterator[Read]:
    """An HTML page as Markdown-like text; ``<meta name="ragctx:...">`` tags set its fields."""
    html = read_text_file(ref, ctx)
    if isinstance(html, InputProblem):
        yield html
        return
    try:
        page = html_to_text(html)
    except HtmlTooDeepError as err:
        yield InputProblem(ref.label, f"{err}; flatten the page or exclude it")
        return
    fields: dict[str, Any] = {k: v for k, v in page.meta.items() if k in _DOC_KEYS}
    extra: dict[str, Any] = {k: v for k, v in page.meta.items() if k not in _DOC_KEYS}
    title = page.title or _first_h1(page.text) or ref.disk.stem
    yield _document(ref, ctx, text=page.text, title=title, fmt="html", fields=fields, extra=extra)


def read_pdf(ref: FileRef, ctx: ReadContext) -> Iterator[Read]:
    """A PDF's text layer, page by page, joined with blank lines."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        data = read_limited(ref, ctx)
        if isinstance(data, InputProblem):
            yield data
            return
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            yield InputProblem(ref.label, "encrypted PDF; decrypt it first")
            return
        pages: list[str] = []
        chars = 0
        for page in reader.pages:
            pages.append((page.extract_text() or "").strip())
            chars += len(pages[-1])
            if chars > ctx.max_doc_chars:
                # stop extracting: the document is refused anyway, and a small PDF can hold
                # streams that decompress into far more text than the limit
                yield too_large_problem(
                    ref.label, f"over {chars:,} characters of text", ctx.max_doc_chars
                )
                return
        info = reader.metadata
        meta_title = str(info.title or "").strip() if info is not None else ""
    except OSError as err:
        yield os_problem(ref, err)
        return
    # pypdf raises its own errors and, on damaged files, plain Python ones from deep inside.
    except (PyPdfError, ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
        yield InputProblem(
            ref.label, f"cannot read the PDF: {_one_line(err)}; check the file opens elsewhere"
        )
        return
    text = "\n\n".join(page for page in pages if page)
    if not text.strip():
        yield InputProblem(
            ref.label, "no text layer; OCR it first (e.g. ocrmypdf) and ingest the result"
        )
        return
    title = meta_title or ref.disk.stem
    yield _document(ref, ctx, text=text, title=title, fmt="pdf", fields={}, extra={})
