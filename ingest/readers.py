"""One reader per file format: bytes on disk → :class:`Document` or :class:`InputProblem`.

Readers never raise for bad input: every failure becomes an ``InputProblem`` that names the file
(and the line, for JSON Lines) and what to do about it. Checks that apply to every document
(empty, too large, duplicate id) live in :mod:`ingest.sources`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ingest.fields import FieldError, json_safe, parse_date, parse_str, parse_str_list
from ingest.html_text import html_to_text
from ingest.types import Document, InputProblem

if TYPE_CHECKING:
    from ingest.sources import FieldMapping

BINARY_PROBE_BYTES = 8192
# A UTF-8 character takes at most 4 bytes: a file larger than this cannot fit the limit.
_MAX_BYTES_PER_CHAR = 4
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_H1 = re.compile(r"^#[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
# Front matter and HTML meta keys that set Document fields instead of metadata.
_DOC_KEYS = ("title", "doc_id", "tenant", "groups", "tags", "updated_at")


@dataclass(frozen=True, slots=True)
class ReadContext:
    """What every reader needs from the source spec."""

    source: str
    tenant: str
    groups: tuple[str, ...]
    tags: tuple[str, ...]
    fields: FieldMapping
    max_doc_chars: int


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


def os_problem(ref: FileRef, err: OSError) -> InputProblem:
    if isinstance(err, PermissionError):
        return InputProblem(
            ref.label, "permission denied reading the file; fix its permissions or exclude it"
        )
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
        size = ref.disk.stat().st_size
        if size > ctx.max_doc_chars * _MAX_BYTES_PER_CHAR:
            return too_large_problem(ref.label, f"{size:,} bytes", ctx.max_doc_chars)
        with ref.disk.open("rb") as fh:
            data = fh.read()
    except OSError as err:
        return os_problem(ref, err)
    problem = binary_problem(ref, data[:BINARY_PROBE_BYTES])
    if problem is not None:
        return problem
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return utf8_problem(ref, err)
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


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
    except FieldError as err:
        return InputProblem(ref.label, f"{err}; fix the value in the file")
    if not doc_id:
        return InputProblem(ref.label, "doc_id is empty; give it a value or remove it")
    doc = Document(
        doc_id=doc_id,
        text=text,
        source=ctx.source,
        path=ref.label,
        tenant=tenant or ctx.tenant,
        title=title,
        groups=groups or ctx.groups,
        tags=merge_tags(tags, ctx.tags),
        updated_at=updated_at,
        metadata=json_safe(extra),
        format=fmt,
        updated_at_from_mtime=from_mtime,
    )
    return Located(doc, ref.label)


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
        try:
            loaded = yaml.safe_load(match.group(1) or "")
        except yaml.YAMLError as err:
            yield InputProblem(ref.label, f"invalid YAML front matter: {_one_line(err)}; fix it")
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
    page = html_to_text(html)
    fields: dict[str, Any] = {k: v for k, v in page.meta.items() if k in _DOC_KEYS}
    extra: dict[str, Any] = {k: v for k, v in page.meta.items() if k not in _DOC_KEYS}
    title = page.title or _first_h1(page.text) or ref.disk.stem
    yield _document(ref, ctx, text=page.text, title=title, fmt="html", fields=fields, extra=extra)


def read_pdf(ref: FileRef, ctx: ReadContext) -> Iterator[Read]:
    """A PDF's text layer, page by page, joined with blank lines."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(ref.disk)
        if reader.is_encrypted and not reader.decrypt(""):
            yield InputProblem(ref.label, "encrypted PDF; decrypt it first")
            return
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
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
