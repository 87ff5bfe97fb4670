"""Admin ingest jobs run inside the server that owns the embedded store (DESIGN.md §3).

One worker thread runs the jobs one after another with ``ingest.sync``. Requests keep being
served meanwhile: the job writes in small batches (each write holds the interpreter for a few
milliseconds), never calls ``optimize()``, and a changed document's new chunks are written before
its old ones are deleted, so no reader finds it missing. Progress counters are updated from
``sync``'s progress hooks and read by ``GET /v1/admin/jobs/{id}``.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from core.errors import RagctxError
from index import Encoders, Store
from ingest import Chunker, ChunkingParams, SourceSpec, SyncOptions, sync
from ingest.sources import count_source_files, source_name
from service.errors import OverloadedError

log = logging.getLogger(__name__)

SERVER_BATCH_CHUNKS = 64
"""Chunks per write in a server job: one write holds the interpreter ~1-3 ms on Edge."""


class JobState(StrEnum):
    """Where a job is."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # raised, or finished with failed documents
    CANCELLED = "cancelled"  # the server stopped before the job finished


class JobQueueFullError(OverloadedError):
    """Too many jobs waiting; 503 with ``Retry-After``."""


class JobCancelledError(RagctxError):
    """Raised inside a running job when the server shuts down; a re-run converges."""


@dataclass
class Job:
    """One ingest job and its live progress. Mutated only by the worker thread."""

    id: str
    collection: str
    sources: tuple[str, ...]
    specs: tuple[SourceSpec, ...]
    options: SyncOptions
    submitted_by: str
    check: Callable[[], None] | None = None  # raises when the sources may no longer be read
    state: JobState = JobState.QUEUED
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None
    finished_at: datetime | None = None
    files_total: int | None = None
    documents: int = 0
    chunks: int = 0
    embedded: int = 0
    report: dict[str, Any] | None = None
    error: str | None = None

    def visible_to(self, tenant: str) -> bool:
        """Whether a tenant admin of ``tenant`` may see this job: every source syncs into that
        tenant alone (per-record tenancy may write any tenant, so only operators see those)."""
        return all(s.tenant == tenant and not s.tenant_from_records for s in self.specs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (the admin endpoint's body)."""
        return {
            "id": self.id,
            "state": self.state.value,
            "collection": self.collection,
            "sources": list(self.sources),
            "submitted_by": self.submitted_by,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "progress": {
                "files_total": self.files_total,
                "documents": self.documents,
                "chunks": self.chunks,
                "embedded": self.embedded,
            },
            "report": self.report,
            "error": self.error,
        }


class _Progress:
    """``SyncProgress`` hooks that count into the job and stop it on shutdown."""

    def __init__(self, job: Job, stop: threading.Event) -> None:
        self._job = job
        self._stop = stop

    def _check(self) -> None:
        if self._stop.is_set():
            raise JobCancelledError("the server is shutting down; run the job again to finish it")

    def documents(self, n: int) -> None:
        self._job.documents += n
        self._check()

    def chunks(self, n: int) -> None:
        self._job.chunks += n

    def embedded(self, n: int) -> None:
        self._job.embedded += n
        self._check()


class JobRunner:
    """Runs ingest jobs one at a time in a worker thread; keeps the last ``keep`` jobs."""

    def __init__(
        self,
        *,
        store: Store,
        encoders: Callable[[], Encoders],
        chunking: ChunkingParams,
        on_finished: Callable[[Job], None] | None = None,
        max_queued: int = 16,
        keep: int = 100,
    ) -> None:
        self._store = store
        self._encoders = encoders
        self._chunking = chunking
        self._on_finished = on_finished
        self._max_queued = max_queued
        self._keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="ragctx-ingest-jobs", daemon=True)
        self._thread.start()

    def submit(
        self,
        specs: Sequence[SourceSpec],
        *,
        collection: str,
        options: SyncOptions,
        submitted_by: str,
        check: Callable[[], None] | None = None,
    ) -> Job:
        """Queue a sync of ``specs`` into ``collection``; returns the job at once.

        ``check`` runs when the job starts; what it raises fails the job before any read.
        """
        if self._queue.qsize() >= self._max_queued:
            raise JobQueueFullError(
                f"{self._max_queued} ingest jobs are already waiting; retry when they are done"
            )
        job = Job(
            id=uuid.uuid4().hex,
            collection=collection,
            sources=tuple(source_name(s) for s in specs),
            specs=tuple(specs),
            options=options,
            submitted_by=submitted_by,
            check=check,
        )
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self._keep:
                oldest = next(iter(self._jobs.values()))
                if oldest.state in (JobState.QUEUED, JobState.RUNNING):
                    break
                self._jobs.popitem(last=False)
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        """The job with this id, if it is still kept."""
        with self._lock:
            return self._jobs.get(job_id)

    def shutdown(self, *, timeout_s: float = 30.0) -> None:
        """Stop the running job at its next batch, cancel queued ones, wait for the worker."""
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout=timeout_s)
        if self._thread.is_alive():
            log.error("the ingest job worker did not stop within %.0f s", timeout_s)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                break
            if self._stop.is_set():
                self._finish(job, JobState.CANCELLED, error="the server stopped before it ran")
                continue
            self._run(job)
        # anything left in the queue was never started
        while True:
            try:
                left = self._queue.get_nowait()
            except queue.Empty:
                return
            if left is not None:
                self._finish(left, JobState.CANCELLED, error="the server stopped before it ran")

    def _run(self, job: Job) -> None:
        job.state = JobState.RUNNING
        job.started_at = datetime.now(UTC)
        log.info("ingest job %s started: %s into %s", job.id, list(job.sources), job.collection)
        try:
            if job.check is not None:
                job.check()
            job.files_total = sum(count_source_files(s) for s in job.specs)
            encoders = self._encoders()
            chunker = Chunker.for_encoder(self._chunking, encoders.dense)
            report = sync(
                list(job.specs),
                collection=job.collection,
                store=self._store,
                encoders=encoders,
                chunker=chunker,
                options=job.options,
                progress=_Progress(job, self._stop),
            )
        except JobCancelledError as err:
            self._finish(job, JobState.CANCELLED, error=str(err))
            return
        except RagctxError as err:
            self._finish(job, JobState.FAILED, error=str(err))
            return
        except Exception as err:  # noqa: BLE001 (a job's failure must never kill the worker)
            log.exception("ingest job %s crashed", job.id)
            self._finish(job, JobState.FAILED, error=f"{type(err).__name__}: {err}")
            return
        job.report = report.to_dict()
        state = JobState.FAILED if report.failed or report.withheld else JobState.SUCCEEDED
        errors = [w.message for w in report.withheld]
        if report.failed:
            errors.append(f"{report.failed} document(s) failed to read; see report.problems")
        error = " ".join(errors) or None
        self._finish(job, state, error=error)

    def _finish(self, job: Job, state: JobState, *, error: str | None) -> None:
        job.state = state
        job.error = error
        job.finished_at = datetime.now(UTC)
        log.info("ingest job %s %s", job.id, state.value)
        if self._on_finished is not None:
            self._on_finished(job)
