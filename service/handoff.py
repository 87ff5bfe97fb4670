"""Handing an ingest job to the server that owns the embedded store (DESIGN.md §3).

``ragctx serve`` writes ``<store folder>/server.json`` (url, pid) once the store is open and
removes it on shutdown. ``ragctx ingest``, finding the store locked, calls
:func:`submit_to_server`: it posts the job to ``POST /v1/admin/ingest`` with an admin key and
follows ``GET /v1/admin/jobs/{id}`` with the usual progress bars. The server reads the sources
itself, so they must be paths on the server's machine; they are sent as absolute paths, with
the sync scope name the standalone ingest would have used.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import InvalidInputError, RagctxError, StoreUnavailableError
from ingest import SourceSpec, SyncOptions, SyncReport
from ingest.sources import source_name

if TYPE_CHECKING:
    from tenacity import RetryCallState

    from service.settings import Settings

log = logging.getLogger(__name__)

SERVER_FILE = "server.json"


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """Where the server holding a store listens."""

    url: str
    pid: int


def server_file(store_path: Path) -> Path:
    """The hand-off file of an embedded store folder."""
    return Path(store_path) / SERVER_FILE


def write_server_file(store_path: Path, *, url: str) -> Path:
    """Record that this process serves the store at ``url`` (atomic replace)."""
    target = server_file(store_path)
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}) + "\n", "utf-8")
    os.replace(tmp, target)
    return target


def remove_server_file(store_path: Path) -> None:
    """Remove the hand-off file if this process wrote it."""
    target = server_file(store_path)
    info = read_server_file(store_path)
    if info is not None and info.pid == os.getpid():
        target.unlink(missing_ok=True)


def read_server_file(store_path: Path) -> ServerInfo | None:
    """The server recorded for a store, or None (no file, unreadable, or a dead process)."""
    try:
        raw = json.loads(server_file(store_path).read_text("utf-8"))
        info = ServerInfo(url=str(raw["url"]).rstrip("/"), pid=int(raw["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by another user
    return info


class HandoffError(RagctxError):
    """The server refused the job or could not be followed."""


def job_body(
    specs: Sequence[SourceSpec], options: SyncOptions, *, collection: str
) -> dict[str, Any]:
    """The ``POST /v1/admin/ingest`` body for ``specs``: absolute paths, standalone names.

    Raises:
        InvalidInputError: a source path that does not exist here (the server reads it).
    """
    sources = []
    for spec in specs:
        if not spec.path.exists():
            raise InvalidInputError(
                f"source {str(spec.path)!r} does not exist; the server reads sources from this "
                "machine's disk, so pass an existing file or folder path",
                field="source",
                value=str(spec.path),
            )
        # the server resolves nothing: an absolute path, and the scope name used here
        absolute = spec.model_copy(update={"path": spec.path.resolve(), "name": source_name(spec)})
        sources.append(absolute.model_dump(mode="json"))
    part = options.partition
    return {
        "collection": collection,
        "sources": sources,
        "dry_run": options.dry_run,
        "partition": None if part is None else f"{part.index}/{part.count}",
        "max_doc_chars": options.max_doc_chars,
        "allow_mass_delete": options.allow_mass_delete,
    }


def submit_to_server(
    store_path: Path,
    specs: Sequence[SourceSpec],
    options: SyncOptions,
    *,
    collection: str,
    admin_key: str | None,
    show_progress: bool,
    poll_s: float = 0.5,
    ready_wait_s: float = 120.0,
) -> SyncReport | None:
    """Run the sync in the server that holds ``store_path``; None if no server holds it.

    Example::

        try:
            report = run_here(...)
        except StoreLockedError:
            report = submit_to_server(path, specs, options, collection="docs",
                                      admin_key=key, show_progress=True)
            if report is None:
                raise

    Args:
        store_path: the embedded store folder (``RAGCTX_QDRANT_PATH``).
        specs: the sources; their paths must exist on this machine.
        options: dry run, partition, document size limit (batching is the server's).
        collection: the target collection.
        admin_key: an admin API key (``RAGCTX_ADMIN_KEY``).
        show_progress: draw rich progress bars on stderr while the job runs.
        poll_s: seconds between progress polls.
        ready_wait_s: how long to wait for a starting server to become ready.

    Returns:
        The job's report, or None when no live server is recorded for the store.

    Raises:
        InvalidInputError: no admin key, or a source path that does not exist.
        HandoffError: the server refused the job, or the job failed to run.
    """
    import httpx

    info = read_server_file(store_path)
    if info is None:
        return None
    if not admin_key:
        raise InvalidInputError(
            f"the store {str(store_path)!r} is held by the server at {info.url} (pid "
            f"{info.pid}); to hand it the job, set RAGCTX_ADMIN_KEY (or pass --admin-key) to an "
            "admin key (`ragctx keys add --admin ...`)",
            field="admin_key",
        )
    body = job_body(specs, options, collection=collection)
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=info.url, headers=headers, timeout=30.0) as client:
        try:
            resp = _post_job(client, body, ready_wait_s)
        except httpx.TransportError as err:
            raise StoreUnavailableError(
                f"the store is held by the server at {info.url} (pid {info.pid}), which "
                f"does not answer ({err}); stop it or wait for it to start"
            ) from err
        if resp.status_code != 202:
            raise HandoffError(
                f"the server at {info.url} refused the ingest job ({resp.status_code}): "
                f"{_message(resp)}"
            )
        job = resp.json()
        log.info("ingest handed to the server at %s as job %s", info.url, job["id"])
        if show_progress:
            job = _follow_with_bars(client, job, poll_s)
        else:
            job = _follow(client, job, poll_s)
    if job["report"] is None:
        raise HandoffError(f"ingest job {job['id']} on {info.url} {job['state']}: {job['error']}")
    return SyncReport.from_dict(job["report"])


def _post_job(client: Any, body: dict[str, Any], ready_wait_s: float) -> Any:
    """POST the job; a 503 (the server still starting) is retried, waiting its Retry-After,
    for ``ready_wait_s``; then the last answer is returned whatever it is."""
    from tenacity import Retrying, retry_if_result, stop_after_delay

    def retry_after(state: RetryCallState) -> float:
        value = state.outcome.result().headers.get("Retry-After", "1") if state.outcome else "1"
        try:
            return min(max(float(value), 0.0), 30.0)
        except ValueError:  # an HTTP-date (from a proxy): wait a second
            return 1.0

    retrying = Retrying(
        retry=retry_if_result(lambda resp: resp.status_code == 503),
        stop=stop_after_delay(ready_wait_s),
        wait=retry_after,
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
    )
    return retrying(client.post, "/v1/admin/ingest", json=body)


def _message(resp: Any) -> str:
    try:
        return str(resp.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return str(resp.text)[:500]


def _poll(client: Any, job_id: str) -> dict[str, Any]:
    resp = client.get(f"/v1/admin/jobs/{job_id}")
    if resp.status_code != 200:
        raise HandoffError(
            f"cannot follow ingest job {job_id} ({resp.status_code}): {_message(resp)}"
        )
    out: dict[str, Any] = resp.json()
    return out


def _done(job: dict[str, Any]) -> bool:
    return job["state"] not in ("queued", "running")


def _follow(client: Any, job: dict[str, Any], poll_s: float) -> dict[str, Any]:
    while not _done(job):
        time.sleep(poll_s)
        job = _poll(client, job["id"])
    return job


def _follow_with_bars(client: Any, job: dict[str, Any], poll_s: float) -> dict[str, Any]:
    from service.cli_common import progress_bars

    with progress_bars(True) as bars:
        assert bars is not None  # shown: progress_bars(True) always yields the bars
        files = bars.add_task("files", total=None)
        chunks = bars.add_task("chunks", total=None)
        embedded = bars.add_task("embedded", total=None)
        while True:
            p = job["progress"]
            bars.update(files, total=p["files_total"], completed=p["documents"])
            bars.update(chunks, completed=p["chunks"])
            bars.update(embedded, total=p["chunks"] or None, completed=p["embedded"])
            if _done(job):
                bars.update(files, total=p["documents"])
                return job
            time.sleep(poll_s)
            job = _poll(client, job["id"])


def ingest_via_server(
    settings: Settings,
    specs: Sequence[SourceSpec],
    options: SyncOptions,
    *,
    show_progress: bool,
    admin_key: str | None = None,
) -> SyncReport | None:
    """:func:`submit_to_server` with the store path, collection and admin key from settings.

    ``admin_key`` (a ``--admin-key`` flag) wins over ``RAGCTX_ADMIN_KEY``. Returns None when no
    live server holds the store (the caller then re-raises its ``StoreLockedError``).
    """
    if settings.qdrant_url is not None:
        return None
    if admin_key is None:
        configured = settings.admin_key
        admin_key = configured.get_secret_value() if configured is not None else None
    return submit_to_server(
        settings.qdrant_path,
        specs,
        options,
        collection=settings.collection,
        admin_key=admin_key,
        show_progress=show_progress,
    )
