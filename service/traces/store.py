"""The trace store: SQLite (WAL) by default, PostgreSQL by URL; schema by Alembic at open.

:class:`TraceStore` is synchronous and tenant-scoped on every read: a trace of another tenant
reads as absent. :class:`TraceWriter` puts the writes on one thread behind a bounded queue, so a
request never waits on, or fails because of, the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, delete, event, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.traces.models import FeedbackRow, TraceRow

log = logging.getLogger(__name__)

Verdict = Literal["accepted", "edited", "rejected"]
VERDICTS: tuple[str, ...] = ("accepted", "edited", "rejected")
_MIGRATIONS = Path(__file__).parent / "migrations"


def default_url(data_dir: Path) -> str:
    """The SQLite file used when RAGCTX_TRACE_DB is unset: ``<data dir>/traces.sqlite3``."""
    return f"sqlite:///{(data_dir / 'traces.sqlite3').resolve()}"


def query_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """Everything recorded for one answer (of /v1/context or ``ragctx query``)."""

    id: str
    tenant: str
    route: str
    collection: str
    query: str
    request: dict[str, Any]
    stages: dict[str, Any]
    pack: dict[str, Any]
    timings_ms: dict[str, Any]
    policy_version: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def _as_dict(row: TraceRow, feedback: Sequence[FeedbackRow]) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant": row.tenant,
        "created_at": _aware(row.created_at).isoformat(),
        "route": row.route,
        "collection": row.collection,
        "policy_version": row.policy_version,
        "query": row.query,
        "query_hash": row.query_hash,
        "request": row.request,
        "stages": row.stages,
        "pack": row.pack,
        "timings_ms": row.timings_ms,
        "feedback": [
            {
                "id": f.id,
                "created_at": _aware(f.created_at).isoformat(),
                "verdict": f.verdict,
                "judgments": f.judgments,
                "note": f.note,
                "who": f.who,
            }
            for f in feedback
        ],
    }


def _aware(at: datetime) -> datetime:
    # SQLite hands DateTime(timezone=True) back naive; everything is stored in UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


class TraceStore:
    """Traces and feedback in one SQL database, migrated to the newest schema when opened."""

    def __init__(self, url: str, *, store_text: bool = True) -> None:
        self.url = url
        self.store_text = store_text
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"timeout": 5})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        elif parsed.get_backend_name() == "postgresql":
            if parsed.get_driver_name() in ("", "psycopg2"):
                parsed = parsed.set(drivername="postgresql+psycopg")
            self.engine = create_engine(
                parsed, pool_pre_ping=True, connect_args={"connect_timeout": 5}
            )
        else:
            raise ValueError(
                f"RAGCTX_TRACE_DB={url!r}: only sqlite:/// and postgresql:// URLs are supported"
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.engine.dispose()

    # writes ------------------------------------------------------------------------------

    def write(self, records: Sequence[TraceRecord]) -> None:
        """Insert ``records`` in one statement and one transaction; a trace already stored (a
        write retried after a commit whose answer was lost) is left as it is."""
        if not records:
            return
        insert = postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        statement = insert(TraceRow).on_conflict_do_nothing(index_elements=[TraceRow.id])
        with self._sessions.begin() as s:
            s.execute(statement, [self._values(r) for r in records])

    def _values(self, r: TraceRecord) -> dict[str, Any]:
        request = dict(r.request)
        if not self.store_text:
            request.pop("query", None)
        return {
            "id": r.id,
            "tenant": r.tenant,
            "created_at": r.created_at,
            "route": r.route,
            "collection": r.collection,
            "policy_version": r.policy_version,
            "query": r.query if self.store_text else None,
            "query_hash": query_hash(r.query),
            "request": request,
            "stages": r.stages,
            "pack": r.pack,
            "timings_ms": r.timings_ms,
        }

    def add_feedback(
        self,
        tenant: str,
        trace_id: str,
        verdict: str,
        judgments: Sequence[dict[str, Any]] = (),
        note: str | None = None,
        who: str | None = None,
    ) -> int | None:
        """Keep one more judgment of ``trace_id``; None when the tenant has no such trace."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict {verdict!r}: use one of {', '.join(VERDICTS)}")
        with self._sessions.begin() as s:
            if self._own(s, tenant, trace_id) is None:
                return None
            row = FeedbackRow(
                trace_id=trace_id,
                tenant=tenant,
                created_at=datetime.now(UTC),
                verdict=verdict,
                judgments=list(judgments),
                note=note,
                who=who,
            )
            s.add(row)
            s.flush()
            return row.id

    def count_older(self, *, older_than: datetime, tenant: str | None = None) -> int:
        """How many traces :meth:`purge` would delete."""
        q = select(func.count()).select_from(TraceRow).where(TraceRow.created_at < older_than)
        if tenant is not None:
            q = q.where(TraceRow.tenant == tenant)
        with self._sessions() as s:
            return int(s.scalar(q) or 0)

    def purge(self, *, older_than: datetime, tenant: str | None = None) -> int:
        """Delete traces (and their feedback) created before ``older_than``; returns how many."""
        with self._sessions.begin() as s:
            ids = select(TraceRow.id).where(TraceRow.created_at < older_than)
            if tenant is not None:
                ids = ids.where(TraceRow.tenant == tenant)
            doomed = list(s.scalars(ids))
            for start in range(0, len(doomed), 500):
                part = doomed[start : start + 500]
                s.execute(delete(FeedbackRow).where(FeedbackRow.trace_id.in_(part)))
                s.execute(delete(TraceRow).where(TraceRow.id.in_(part)))
            return len(doomed)

    # reads -------------------------------------------------------------------------------

    @staticmethod
    def _own(s: Session, tenant: str, trace_id: str) -> TraceRow | None:
        return s.scalar(select(TraceRow).where(TraceRow.id == trace_id, TraceRow.tenant == tenant))

    def get(self, tenant: str, trace_id: str) -> dict[str, Any] | None:
        """The tenant's trace with its feedback, or None (also for another tenant's id)."""
        with self._sessions() as s:
            row = self._own(s, tenant, trace_id)
            if row is None:
                return None
            fb = s.scalars(
                select(FeedbackRow).where(FeedbackRow.trace_id == trace_id).order_by(FeedbackRow.id)
            ).all()
            return _as_dict(row, fb)

    def list(
        self,
        tenant: str | None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        collection: str | None = None,
        verdict: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Newest first; ``tenant=None`` (operator CLI only) lists every tenant's traces.

        ``verdict`` keeps traces with at least one judgment of that verdict.
        """
        q = select(TraceRow)
        if tenant is not None:
            q = q.where(TraceRow.tenant == tenant)
        if since is not None:
            q = q.where(TraceRow.created_at >= since)
        if until is not None:
            q = q.where(TraceRow.created_at < until)
        if collection is not None:
            q = q.where(TraceRow.collection == collection)
        if verdict is not None:
            judged = select(FeedbackRow.trace_id).where(FeedbackRow.verdict == verdict)
            q = q.where(TraceRow.id.in_(judged))
        q = q.order_by(TraceRow.created_at.desc(), TraceRow.id).limit(limit)
        with self._sessions() as s:
            rows = s.scalars(q).all()
            ids = [r.id for r in rows]
            fb: dict[str, list[FeedbackRow]] = {i: [] for i in ids}
            if ids:
                for f in s.scalars(
                    select(FeedbackRow)
                    .where(FeedbackRow.trace_id.in_(ids))
                    .order_by(FeedbackRow.id)
                ):
                    fb[f.trace_id].append(f)
            return [_as_dict(r, fb[r.id]) for r in rows]


class LateTraceStore(TraceStore):
    """A store whose schema is brought up at its first successful write (a database that was
    down when the server started)."""

    _ready = False

    def write(self, records: Sequence[TraceRecord]) -> None:
        if not self._ready:
            self.upgrade()
            self._ready = True
        super().write(records)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class TraceWriter:
    """One thread writing queued traces in batches. :meth:`submit` never blocks and never raises:
    when the queue is full the trace is dropped and ``on_drop`` counts it. When the database is
    down or slow, the thread retries the batch with backoff; traces resume once it is back.

    With ``retention_days`` > 0 the same thread purges traces older than that when it starts
    and then every ``purge_every_s`` (RAGCTX_TRACE_RETENTION_DAYS); a failed purge is logged
    and tried again at the next turn.
    """

    def __init__(
        self,
        store: TraceStore,
        *,
        maxsize: int = 10_000,
        batch: int = 200,
        on_drop: Callable[[str], None] = lambda _reason: None,
        retry_s: float = 0.5,
        max_retry_s: float = 10.0,
        retention_days: int = 0,
        purge_every_s: float = 3600.0,
    ) -> None:
        if retention_days < 0:
            raise ValueError(f"retention_days={retention_days}: use 0 (keep forever) or more")
        self.store = store
        self._retention = timedelta(days=retention_days) if retention_days else None
        self._purge_every_s = purge_every_s
        self._next_purge = time.monotonic()  # the first purge runs as the thread starts
        self.purged = 0
        self._queue: queue.Queue[TraceRecord | None] = queue.Queue(maxsize=maxsize)
        self._batch = batch
        self._on_drop = on_drop
        self._retry_s = retry_s
        self._max_retry_s = max_retry_s
        self._stop = threading.Event()
        self.written = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="ragctx-traces", daemon=True)
        self._thread.start()

    def submit(self, record: TraceRecord) -> bool:
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._on_drop("queue_full")
            return False
        return True

    def pending(self) -> int:
        return self._queue.qsize()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (tests, shutdown); False on timeout."""
        done = threading.Event()

        def wait_all() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait_all, daemon=True).start()
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        self.flush(timeout)
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout)

    def _maybe_purge(self) -> None:
        if self._retention is None or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + self._purge_every_s
        cutoff = datetime.now(UTC) - self._retention
        try:
            n = self.store.purge(older_than=cutoff)
        except Exception as exc:  # noqa: BLE001  # a failed purge must not stop the writes
            log.warning(
                "trace retention purge failed (retrying in %.0f s): %s", self._purge_every_s, exc
            )
            return
        self.purged += n
        if n:
            log.info("trace retention: purged %d traces older than %s", n, cutoff.isoformat())

    def _next_item(self) -> TraceRecord | None | Literal["idle"]:
        if self._retention is None:
            return self._queue.get()
        try:
            return self._queue.get(timeout=max(0.01, self._next_purge - time.monotonic()))
        except queue.Empty:
            return "idle"

    def _run(self) -> None:
        while True:
            self._maybe_purge()
            item = self._next_item()
            if isinstance(item, str):  # "idle": time for the next purge
                continue
            if item is None:
                self._queue.task_done()
                return
            batch = [item]
            while len(batch) < self._batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._stop.set()
                    self._queue.task_done()
                    break
                batch.append(nxt)
            self._write(batch)
            for _ in batch:
                self._queue.task_done()
            if self._stop.is_set() and self._queue.empty():
                return

    def _write(self, batch: list[TraceRecord]) -> None:
        wait = self._retry_s
        while True:
            try:
                self.store.write(batch)
                self.written += len(batch)
                if wait != self._retry_s:
                    log.warning("trace store writable again")
                return
            except Exception as exc:  # noqa: BLE001  # any DB error: none may stop the thread
                self.failures += 1
                # One warning per outage, not one per retry.
                level = logging.WARNING if wait == self._retry_s else logging.DEBUG
                log.log(
                    level,
                    "trace store write failed (%d traces kept, retrying): %s",
                    len(batch),
                    exc,
                )
                if self._stop.wait(wait):
                    for _ in batch:
                        self._on_drop("shutdown")
                    return
                wait = min(wait * 2, self._max_retry_s)
