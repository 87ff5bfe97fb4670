"""Incremental, crash-safe sync of sources into a collection. Qdrant is the only state.

For each source the sync reads what the collection holds for it, then:

* unchanged (same ``doc_hash``, every chunk present) → skipped;
* new or changed → chunked, embedded, its new chunks upserted under ids that include the new
  hash, and only then the old version's points deleted, so a reader never finds it missing;
* gone from the source → its points deleted.

A job killed at any point and run again converges to the state of one clean run: point ids are
deterministic, a version counts as present only when all its chunks are, and leftovers of an
interrupted replacement are removed on the next run.

A document that fails to read on re-sync keeps its previous version (it is reported as failed
and never deleted as "gone"): stale but searchable beats missing.

Scope. A sync's scope is (collection, tenant, source): it reads, replaces and deletes only the
documents of its own tenant under that source name, so two tenants' sources may share a name.
With per-record tenancy (``SourceSpec.tenant_from_records``) the documents' own tenants decide,
and deletions are scoped per record tenant: a document of tenant T is deleted as gone only when
this run read at least one document of T from the source.

Deletion guards (rsync's ``--max-delete`` is the model). Nothing is deleted under a file or
folder that could not be read. A source that yields no documents while the collection holds
some for it, or a sync that would delete more than ``mass_delete_fraction`` of a source's
documents (and at least ``mass_delete_min_docs``), deletes nothing of that source and reports
the deletions as withheld, unless ``allow_mass_delete`` is set. Additions and updates still
happen; the plan of a dry run shows the same.

Plan and apply. :class:`SourcePlanner` decides what a source's sync does (add, update, clean
up, delete, withhold) from what the store holds and what the source yields, without touching
the store: its :class:`SyncPlan` is what ``--dry-run`` prints (:func:`plan_source` runs it
alone). ``_sync_source`` applies it: each planned write is chunked and written in batches as
the source is read (a source is never held in memory whole), the deletions once it is done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from pydantic import TypeAdapter

import index.payload as stored
from core.errors import InvalidInputError
from index import Encoders, Store
from index.payload import ChunkPayload
from index.schema import Filter, MatchValue, PointRecord, point_id
from ingest.chunking import Chunker
from ingest.sources import SourceSpec, check_source, read_source, source_name
from ingest.types import Chunk, Document, InputProblem

log = logging.getLogger(__name__)

HELD_FIELDS = (
    stored.TENANT,
    stored.DOC_ID,
    stored.DOC_HASH,
    stored.CHUNK_INDEX,
    stored.CHUNK_COUNT,
    stored.PATH,
)


class SyncProgress(Protocol):
    """Progress hooks; the CLI draws them as rich progress bars."""

    def documents(self, n: int) -> None:
        """``n`` more documents read."""

    def chunks(self, n: int) -> None:
        """``n`` more chunks made."""

    def embedded(self, n: int) -> None:
        """``n`` more chunks embedded and written."""


@dataclass(frozen=True, slots=True)
class Partition:
    """Partition ``index`` of ``count`` (0-based): a stable hash split of a source's doc ids."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Partition:
        """Parse ``i/n`` with 0 <= i < n."""
        try:
            left, right = text.split("/")
            part = cls(int(left), int(right))
        except ValueError as err:
            raise InvalidInputError(
                f"invalid partition {text!r}: expected i/n with integers, e.g. 0/4",
                field="partition",
                value=text,
            ) from err
        if part.count < 1 or not 0 <= part.index < part.count:
            raise InvalidInputError(
                f"invalid partition {text!r}: need 0 <= i < n, e.g. 0/4 … 3/4",
                field="partition",
                value=text,
            )
        return part

    def owns(self, doc_id: str) -> bool:
        """Whether ``doc_id`` falls in this partition (sha256, stable across runs)."""
        bucket = int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:8], "big")
        return bucket % self.count == self.index


@dataclass(frozen=True, slots=True)
class SyncOptions:
    """How a sync runs."""

    dry_run: bool = False
    partition: Partition | None = None
    batch_chunks: int = 256
    max_doc_chars: int = 2_000_000
    max_doc_bytes: int = 8_000_000
    optimize_threshold: int | None = None  # optimize() after the sync once this many points
    allow_mass_delete: bool = False
    mass_delete_fraction: float = 0.5  # of a source's documents, in its tenant and partition
    mass_delete_min_docs: int = 5  # fewer deletions than this are never "mass"


@dataclass(frozen=True, slots=True)
class WithheldDeletion:
    """Deletions a sync did not make: a source that would lose most (or all) of its documents."""

    source: str
    tenant: str | None  # None: every record tenant of a per-record sync
    would_delete: int
    held: int
    doc_ids: tuple[str, ...]  # the first few of them, for the message
    message: str


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """One line of a ``--dry-run`` plan."""

    action: str  # add | update | delete
    source: str
    doc_id: str


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What a sync did (or, with ``dry_run``, would do)."""

    collection: str
    sources: tuple[str, ...]
    added: int
    updated: int
    unchanged: int
    deleted: int
    failed: int
    chunks_written: int
    chunks_deleted: int
    seconds: float
    dry_run: bool = False
    optimized: bool = False
    problems: tuple[InputProblem, ...] = ()
    plan: tuple[PlannedAction, ...] = ()
    notes: tuple[str, ...] = ()
    withheld: tuple[WithheldDeletion, ...] = ()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SyncReport:
        """The report of a :meth:`to_dict` summary (an admin job's, read by the hand-off client).

        Raises:
            pydantic.ValidationError: ``raw`` is not such a summary.
        """
        return _report_adapter().validate_python(raw)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``--json`` summary and the admin job summary)."""
        return {
            "collection": self.collection,
            "sources": list(self.sources),
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "failed": self.failed,
            "chunks_written": self.chunks_written,
            "chunks_deleted": self.chunks_deleted,
            "seconds": round(self.seconds, 3),
            "dry_run": self.dry_run,
            "optimized": self.optimized,
            "problems": [
                {"path": p.path, "line": p.line, "doc_id": p.doc_id, "message": p.message}
                for p in self.problems
            ],
            "plan": [
                {"action": a.action, "source": a.source, "doc_id": a.doc_id} for a in self.plan
            ],
            "notes": list(self.notes),
            "withheld": [
                {
                    "source": w.source,
                    "tenant": w.tenant,
                    "would_delete": w.would_delete,
                    "held": w.held,
                    "doc_ids": list(w.doc_ids),
                    "message": w.message,
                }
                for w in self.withheld
            ],
        }


@cache
def _report_adapter() -> TypeAdapter[SyncReport]:
    return TypeAdapter(SyncReport)


@dataclass(slots=True)
class Held:
    """What the collection holds for one document: point ids per version, and its path."""

    versions: dict[str, dict[int, str]] = field(default_factory=dict)  # hash -> index -> id
    counts: dict[str, int] = field(default_factory=dict)  # hash -> chunk_count
    path: str = ""

    def complete(self, doc_hash: str) -> bool:
        have = self.versions.get(doc_hash, {})
        return bool(have) and len(have) == self.counts.get(doc_hash, -1)

    def ids_except(self, doc_hash: str | None) -> list[str]:
        return [
            pid for h, chunks in self.versions.items() if h != doc_hash for pid in chunks.values()
        ]


@dataclass(slots=True)
class _Tally:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    problems: list[InputProblem] = field(default_factory=list)
    plan: list[PlannedAction] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    withheld: list[WithheldDeletion] = field(default_factory=list)

    def record(self, plan: SyncPlan) -> None:
        """Count a source's plan in: what it adds, updates, keeps, deletes, and its problems."""
        self.added += plan.added
        self.updated += plan.updated
        self.unchanged += plan.unchanged
        self.deleted += len(plan.deleting)
        self.failed += len(plan.problems)
        self.problems.extend(plan.problems)
        self.plan.extend(plan.actions())
        self.notes.extend(plan.notes)
        if plan.withheld is not None:
            self.withheld.append(plan.withheld)


@dataclass(frozen=True, slots=True)
class _Pending:
    doc: Document
    doc_hash: str
    chunks: list[Chunk]
    is_new: bool
    stale_ids: list[str]


def sync(
    sources: Sequence[SourceSpec],
    *,
    collection: str,
    store: Store,
    encoders: Encoders,
    chunker: Chunker,
    options: SyncOptions = SyncOptions(),
    progress: SyncProgress | None = None,
) -> SyncReport:
    """Bring ``collection`` in step with ``sources``.

    Example::

        store = open_store(StoreParams(path=Path(".ragctx/qdrant")))
        report = sync([SourceSpec(Path("data/docs"))], collection="docs", store=store,
                      encoders=Encoders.load(params), chunker=Chunker(ChunkingParams()))
        print(report.added, report.updated, report.deleted)

    Args:
        sources: the sources to sync; each is its own sync scope (its tenant and
            ``SourceSpec.name``).
        collection: created on first use with the encoders' dimension.
        store: the open store.
        encoders: dense and BM25 encoders (the collection records which).
        chunker: splits documents into chunks.
        options: dry run, partition, batch size, limits, deletion guards, optimize threshold.
        progress: optional progress hooks.

    Returns:
        The counts, the problems met, the deletions withheld and, for a dry run, the plan.

    Raises:
        InvalidInputError: a source path that does not exist, or two sources with one scope;
            raised before anything is written.
        StoreUnavailableError: the store cannot be written.
    """
    started = time.perf_counter()
    names = [source_name(spec) for spec in sources]
    for spec in sources:
        check_source(spec)  # a missing path stops the sync before any source is touched
    scopes = [
        (name, None if spec.tenant_from_records else spec.tenant)
        for spec, name in zip(sources, names, strict=True)
    ]
    clashes = sorted(
        {
            name
            for i, (name, tenant) in enumerate(scopes)
            for other, other_tenant in scopes[i + 1 :]
            if name == other and (tenant is None or other_tenant is None or tenant == other_tenant)
        }
    )
    if clashes:
        raise InvalidInputError(
            f"two sources share the name(s) {clashes} in one tenant; give each a distinct "
            "--source-name",
            field="source",
        )
    _ensure_collection(store, collection, encoders, create=not options.dry_run)
    tally = _Tally()
    for spec, name in zip(sources, names, strict=True):
        _sync_source(
            spec,
            name,
            collection=collection,
            store=store,
            encoders=encoders,
            chunker=chunker,
            options=options,
            progress=progress,
            tally=tally,
        )

    optimized = False
    if (
        not options.dry_run
        and options.optimize_threshold is not None
        and tally.chunks_written > 0
        and store.count(collection) >= options.optimize_threshold
    ):
        store.optimize(collection)
        optimized = True
    return SyncReport(
        collection=collection,
        sources=tuple(names),
        added=tally.added,
        updated=tally.updated,
        unchanged=tally.unchanged,
        deleted=tally.deleted,
        failed=tally.failed,
        chunks_written=tally.chunks_written,
        chunks_deleted=tally.chunks_deleted,
        seconds=time.perf_counter() - started,
        dry_run=options.dry_run,
        optimized=optimized,
        problems=tuple(tally.problems),
        plan=tuple(tally.plan),
        notes=tuple(tally.notes),
        withheld=tuple(tally.withheld),
    )


def _ensure_collection(store: Store, collection: str, encoders: Encoders, *, create: bool) -> None:
    meta = encoders.collection_meta()
    if not store.has_collection(collection):
        if create:
            store.create_collection(collection, dense_dim=encoders.dense.dim, meta=meta)
        return
    held = store.collection_meta(collection)
    if held and (held.get("dense_dim") != meta["dense_dim"] or held.get("bm25") != meta["bm25"]):
        raise InvalidInputError(
            f"collection {collection!r} was built with dense_dim={held.get('dense_dim')} and "
            f"bm25={held.get('bm25')}, but the current settings give dense_dim="
            f"{meta['dense_dim']} and bm25={meta['bm25']}; use the same model and BM25 "
            "settings, or ingest into a new collection",
            field="collection",
            value=collection,
        )


HeldKey = tuple[str, str]  # (tenant, doc_id)


def _held_state(
    store: Store, collection: str, source: str, tenant: str | None
) -> dict[HeldKey, Held]:
    """What the collection holds for the scope: ``source`` in ``tenant`` (None: every tenant).

    Point ids are read, never recomputed, so points written under an older id scheme
    (``index.schema.legacy_point_id``) are replaced and deleted like any others.
    """
    if not store.has_collection(collection):
        return {}
    held: dict[HeldKey, Held] = {}
    must: tuple[MatchValue, ...] = (MatchValue(stored.SOURCE, source),)
    if tenant is not None:
        must += (MatchValue(stored.TENANT, tenant),)
    for point in store.scroll(collection, Filter(must=must), fields=HELD_FIELDS):
        p = point.payload
        entry = held.setdefault((str(p[stored.TENANT]), str(p[stored.DOC_ID])), Held())
        doc_hash = str(p[stored.DOC_HASH])
        entry.versions.setdefault(doc_hash, {})[int(p[stored.CHUNK_INDEX])] = point.id
        entry.counts[doc_hash] = int(p[stored.CHUNK_COUNT])
        entry.path = str(p.get(stored.PATH, ""))
    return held


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    """A new or changed document to chunk, embed and write; then its ``stale_ids`` go."""

    doc: Document
    doc_hash: str
    is_new: bool
    stale_ids: tuple[str, ...]  # the points of its other (older or partial) versions


@dataclass(frozen=True, slots=True)
class PlannedCleanup:
    """An unchanged document's leftovers of an interrupted replacement, to delete."""

    doc_id: str
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PlannedDelete:
    """A document gone from its source: every point it holds goes."""

    tenant: str
    doc_id: str
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What a sync of one source does, decided without touching the store (a dry run's plan).

    ``writes`` are the adds and updates in read order; ``deletes`` the documents gone from the
    source, which are not made when ``withheld`` says why (the deletion guards).
    """

    source: str
    writes: tuple[PlannedAction, ...] = ()
    unchanged: int = 0
    cleanups: tuple[PlannedCleanup, ...] = ()
    deletes: tuple[PlannedDelete, ...] = ()
    withheld: WithheldDeletion | None = None
    problems: tuple[InputProblem, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def added(self) -> int:
        """Documents to add."""
        return sum(a.action == "add" for a in self.writes)

    @property
    def updated(self) -> int:
        """Documents to replace with their new version."""
        return sum(a.action == "update" for a in self.writes)

    @property
    def deleting(self) -> tuple[PlannedDelete, ...]:
        """The deletions to make: none while they are withheld."""
        return () if self.withheld is not None else self.deletes

    def actions(self) -> tuple[PlannedAction, ...]:
        """The plan's lines: adds and updates in read order, then the deletions made."""
        gone = tuple(PlannedAction("delete", self.source, d.doc_id) for d in self.deleting)
        return self.writes + gone


class SourcePlanner:
    """Decides what a sync of one source does, document by document; touches no store.

    Feed it what the source yields (:meth:`take`), in order, then :meth:`finish` for the plan.
    :meth:`take` returns what to write (or clean up) for that document at once, so the sync
    writes in batches as it reads and never holds a whole source in memory.
    """

    def __init__(
        self,
        source: str,
        held: Mapping[HeldKey, Held],
        *,
        scope_tenant: str | None,
        partition: Partition | None = None,
    ) -> None:
        self.source = source
        self._held = held
        self._scope_tenant = scope_tenant  # None: per-record tenancy
        self._part = partition
        self._seen: set[HeldKey] = set()
        self._failed_ids: set[str] = set()  # a failed document's id: its stored versions stay
        self._failed_paths: list[str] = []
        self._read_tenants: set[str] = set()
        self._writes: list[PlannedAction] = []
        self._unchanged = 0
        self._cleanups: list[PlannedCleanup] = []
        self._problems: list[InputProblem] = []

    def take(self, item: Document | InputProblem) -> PlannedWrite | PlannedCleanup | None:
        """Plan one document (or read problem): what to write or clean up, or None."""
        part = self._part
        if isinstance(item, InputProblem):
            if item.doc_id is not None and part is not None and not part.owns(item.doc_id):
                self._failed_ids.add(item.doc_id)
                return None
            self.fail(item)
            return None
        doc = item
        key = (doc.tenant, doc.doc_id)
        self._seen.add(key)
        self._read_tenants.add(doc.tenant)
        if part is not None and not part.owns(doc.doc_id):
            return None
        try:
            doc_hash = doc.doc_hash
        except Exception as err:  # noqa: BLE001 (one document's failure is its own)
            self.fail(_document_problem(doc, "cannot hash the document", err))
            return None
        entry = self._held.get(key)
        if entry is not None and entry.complete(doc_hash):
            self._unchanged += 1
            leftovers = entry.ids_except(doc_hash)
            if not leftovers:
                return None
            # an interrupted replacement left an old or partial version: finish it
            cleanup = PlannedCleanup(doc.doc_id, tuple(leftovers))
            self._cleanups.append(cleanup)
            return cleanup
        is_new = entry is None
        self._writes.append(PlannedAction("add" if is_new else "update", self.source, doc.doc_id))
        stale = () if entry is None else tuple(entry.ids_except(doc_hash))
        return PlannedWrite(doc, doc_hash, is_new, stale)

    def fail(self, problem: InputProblem, write: PlannedWrite | None = None) -> None:
        """Record a document that failed (``write``: one planned, then failed to chunk)."""
        if write is not None:  # the last one planned: a write is chunked as soon as planned
            self._writes.pop()
        self._failed_paths.append(problem.path)
        if problem.doc_id is not None:
            self._failed_ids.add(problem.doc_id)
        self._problems.append(problem)
        log.warning("skipped %s", problem)

    def finish(self, options: SyncOptions) -> SyncPlan:
        """The plan, with the deletions of documents gone from the source and the guards."""
        # Documents gone from the source (in this partition and tenant scope), unless their
        # file, a folder above it or the document itself failed to read.
        part, held = self._part, self._held
        in_scope = {
            key: entry
            for key, entry in held.items()
            if (part is None or part.owns(key[1]))
            and (self._scope_tenant is not None or key[0] in self._read_tenants)
        }
        notes: list[str] = []
        gone: list[tuple[HeldKey, Held]] = []
        for key, entry in sorted(in_scope.items()):
            if key in self._seen:
                continue
            if key[1] in self._failed_ids or any(
                _same_file(entry.path, bad) for bad in self._failed_paths
            ):
                notes.append(
                    f"kept {key[1]!r}: its file {entry.path!r} failed to read; fix it and re-run"
                )
                continue
            gone.append((key, entry))
        if self._scope_tenant is None:
            others = sorted({t for t, _ in held} - self._read_tenants)
            if others:
                notes.append(
                    f"kept the documents of tenant(s) {others} under {self.source!r}: this run "
                    "read no record of theirs (per-record tenancy deletes only within the "
                    "tenants it reads)"
                )
        withheld = _withheld(
            self.source,
            self._scope_tenant,
            gone,
            held=len(in_scope),
            read=bool(self._seen),
            options=options,
        )
        return SyncPlan(
            source=self.source,
            writes=tuple(self._writes),
            unchanged=self._unchanged,
            cleanups=tuple(self._cleanups),
            deletes=tuple(
                PlannedDelete(key[0], key[1], tuple(entry.ids_except(None))) for key, entry in gone
            ),
            withheld=withheld,
            problems=tuple(self._problems),
            notes=tuple(notes),
        )


def plan_source(
    source: str,
    held: Mapping[HeldKey, Held],
    items: Iterable[Document | InputProblem],
    *,
    scope_tenant: str | None,
    options: SyncOptions = SyncOptions(),
) -> SyncPlan:
    """The plan of syncing ``items`` (what a source yields) over ``held`` (what the store holds).

    Pure: the same inputs give the same plan. ``--dry-run`` prints it; a sync applies it.
    """
    planner = SourcePlanner(source, held, scope_tenant=scope_tenant, partition=options.partition)
    for item in items:
        planner.take(item)
    return planner.finish(options)


def _sync_source(
    spec: SourceSpec,
    name: str,
    *,
    collection: str,
    store: Store,
    encoders: Encoders,
    chunker: Chunker,
    options: SyncOptions,
    progress: SyncProgress | None,
    tally: _Tally,
) -> None:
    """Plan the sync of one source and apply it: writes in batches as it reads, then deletions."""
    scope_tenant = None if spec.tenant_from_records else spec.tenant
    held = _held_state(store, collection, name, scope_tenant)
    planner = SourcePlanner(name, held, scope_tenant=scope_tenant, partition=options.partition)
    writer = _BatchWriter(
        name,
        collection=collection,
        store=store,
        encoders=encoders,
        batch_chunks=options.batch_chunks,
        progress=progress,
        tally=tally,
    )
    items = read_source(
        spec, max_doc_chars=options.max_doc_chars, max_doc_bytes=options.max_doc_bytes
    )
    for item in items:
        if progress is not None:
            progress.documents(1)
        step = planner.take(item)
        if step is None or options.dry_run:
            continue
        if isinstance(step, PlannedCleanup):
            store.delete(collection, list(step.ids))
            tally.chunks_deleted += len(step.ids)
            continue
        try:
            chunks = chunker.chunk(step.doc)
        except Exception as err:  # noqa: BLE001 (one document's failure is its own)
            planner.fail(_document_problem(step.doc, "cannot chunk the document", err), step)
            continue
        if progress is not None:
            progress.chunks(len(chunks))
        writer.add(step, chunks)
    writer.flush()
    plan = planner.finish(options)
    if plan.withheld is not None:
        log.warning("%s", plan.withheld.message)
    elif not options.dry_run:
        for gone in plan.deletes:
            store.delete(collection, list(gone.ids))
            tally.chunks_deleted += len(gone.ids)
    tally.record(plan)


def _withheld(
    name: str,
    tenant: str | None,
    gone: list[tuple[HeldKey, Held]],
    *,
    held: int,
    read: bool,
    options: SyncOptions,
) -> WithheldDeletion | None:
    """The deletions to withhold from a source, or None when they may go ahead."""
    if not gone or options.allow_mass_delete:
        return None
    scope = f"source {name!r}" + (f" of tenant {tenant!r}" if tenant is not None else "")
    fix = "If that is intended, run the sync again with --allow-mass-delete"
    if not read:
        message = (
            f"{scope} yielded no documents, but the collection holds {held} for it: nothing "
            f"was deleted. Check that the path is the right one and is mounted. {fix}"
        )
    elif (
        len(gone) >= options.mass_delete_min_docs
        and len(gone) > options.mass_delete_fraction * held
    ):
        message = (
            f"{scope}: the sync would delete {len(gone)} of its {held} documents "
            f"({len(gone) / held:.0%}), more than RAGCTX_MASS_DELETE_FRACTION "
            f"({options.mass_delete_fraction:.0%}): nothing was deleted. {fix}"
        )
    else:
        return None
    return WithheldDeletion(
        source=name,
        tenant=tenant,
        would_delete=len(gone),
        held=held,
        doc_ids=tuple(key[1] for key, _ in gone[:10]),
        message=message,
    )


def _document_problem(doc: Document, what: str, err: Exception) -> InputProblem:
    message = " ".join(str(err).split())[:300]
    return InputProblem(
        doc.path,
        f"{what}: {type(err).__name__}: {message}; fix or exclude the document",
        doc_id=doc.doc_id,
    )


def _same_file(doc_path: str, problem_path: str) -> bool:
    # A record's path is "file.jsonl#id"; a problem names the file (and maybe a line), or a
    # folder that could not be listed: nothing below it was read.
    return doc_path == problem_path or doc_path.startswith((problem_path + "#", problem_path + "/"))


class _BatchWriter:
    """Chunks of planned writes, embedded and written ``batch_chunks`` at a time."""

    def __init__(
        self,
        source: str,
        *,
        collection: str,
        store: Store,
        encoders: Encoders,
        batch_chunks: int,
        progress: SyncProgress | None,
        tally: _Tally,
    ) -> None:
        self._source = source
        self._collection = collection
        self._store = store
        self._encoders = encoders
        self._batch_chunks = batch_chunks
        self._progress = progress
        self._tally = tally
        self._batch: list[_Pending] = []
        self._chunks = 0

    def add(self, write: PlannedWrite, chunks: list[Chunk]) -> None:
        """Queue a document's chunks; write the batch once it is full."""
        self._batch.append(
            _Pending(write.doc, write.doc_hash, chunks, write.is_new, list(write.stale_ids))
        )
        self._chunks += len(chunks)
        if self._chunks >= self._batch_chunks:
            self.flush()

    def flush(self) -> None:
        """Write what is queued: the new versions first, complete; only then the old go."""
        if not self._batch:
            return
        batch, self._batch, self._chunks = self._batch, [], 0
        chunks = [c for p in batch for c in p.chunks]
        texts = [c.embed_text or c.text for c in chunks]
        dense = self._encoders.dense.encode(texts)
        sparse = self._encoders.sparse.embed_documents(texts)
        points: list[PointRecord] = []
        row = 0
        for pending in batch:
            for chunk in pending.chunks:
                points.append(
                    PointRecord(
                        id=point_id(
                            pending.doc.tenant,
                            self._source,
                            pending.doc.doc_id,
                            pending.doc_hash,
                            chunk.index,
                        ),
                        dense=dense[row].tolist(),
                        sparse=sparse[row],
                        payload=_payload(pending, chunk),
                    )
                )
                row += 1
        self._store.upsert(self._collection, points)
        stale = [pid for p in batch for pid in p.stale_ids]
        self._store.delete(self._collection, stale)
        self._tally.chunks_written += len(points)
        self._tally.chunks_deleted += len(stale)
        if self._progress is not None:
            self._progress.embedded(len(points))


def _payload(pending: _Pending, chunk: Chunk) -> dict[str, Any]:
    doc = pending.doc
    return ChunkPayload(
        tenant=doc.tenant,
        doc_id=doc.doc_id,
        text=chunk.text,
        source=doc.source,
        path=doc.path,
        doc_hash=pending.doc_hash,
        title=doc.title,
        format=doc.format,
        groups=doc.groups,
        tags=doc.tags,
        updated_at=doc.updated_at,
        metadata=_json_safe(dict(doc.metadata)),
        chunk_index=chunk.index,
        chunk_count=len(pending.chunks),
        section=chunk.section,
        char_start=chunk.char_start,
        char_end=chunk.char_end,
        tokens=chunk.tokens,
        body_tokens=chunk.body_tokens,
    ).to_payload()


def _json_safe(value: dict[str, Any]) -> dict[str, Any]:
    # front matter may hold dates and other YAML types; the payload is JSON
    safe: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return safe
