"""Admin ingest jobs: ``POST /v1/admin/ingest`` and ``GET /v1/admin/jobs/{id}`` (admin keys).

A tenant admin key (``admin = true``) syncs only into its own tenant and sees only jobs that
do; an operator key (``operator = true``) may do both for every tenant, and alone may use
per-record tenancy (``tenant_from_records``), which lets documents name any tenant.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request

from core.errors import ForbiddenError, InvalidInputError
from index.schema import validate_collection_name
from ingest import Partition, SourceSpec, SyncOptions
from service.api.admin_schemas import IngestRequest, JobOut
from service.api.deps import AdminKeyDep, RuntimeDep, audit_record
from service.api.schemas import ErrorOut
from service.auth import ApiKey
from service.errors import NotReadyError, UnknownJobError
from service.ingest_roots import check_source
from service.jobs import SERVER_BATCH_CHUNKS

router = APIRouter(prefix="/v1/admin", tags=["admin"])

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 413, 422, 503)
}


def _check_scope(body: IngestRequest, grant: ApiKey) -> None:
    """A tenant admin key may sync only into its own tenant, without per-record tenancy."""
    if grant.operator:
        return
    for i, src in enumerate(body.sources):
        if src.tenant != grant.tenant:
            raise ForbiddenError(
                f"admin key {grant.id!r} is an admin of tenant {grant.tenant!r} only and may "
                f"not sync into tenant {src.tenant!r}; use an operator key "
                "(`ragctx keys add --operator`) or that tenant's admin key",
                field=f"sources[{i}].tenant",
            )
        if src.tenant_from_records:
            raise ForbiddenError(
                f"admin key {grant.id!r} is an admin of tenant {grant.tenant!r} only; "
                "per-record tenancy (tenant_from_records) lets documents name any tenant, so "
                "it needs an operator key (`ragctx keys add --operator`)",
                field=f"sources[{i}].tenant_from_records",
            )


def _specs(body: IngestRequest, roots: tuple[Path, ...]) -> list[SourceSpec]:
    """The request's sources (each a ``SourceSpec``), once their paths are checked."""
    for i, src in enumerate(body.sources):
        if not src.path.exists():
            raise InvalidInputError(
                f"sources[{i}].path {str(src.path)!r} does not exist on the server; the server "
                "reads sources from its own disk: give a path on its machine (absolute, or "
                "relative to the server's working directory)",
                field=f"sources[{i}].path",
                value=str(src.path),
            )
        check_source(src.path, roots, field=f"sources[{i}].path")
    return list(body.sources)


@router.post("/ingest", status_code=202, response_model=JobOut, responses=_ERRORS)
def submit_ingest(
    body: IngestRequest, grant: AdminKeyDep, runtime: RuntimeDep, request: Request
) -> JobOut:
    """Queue a sync job inside the server (which owns the embedded store); 202 with the job."""
    collection = validate_collection_name(body.collection or runtime.settings.collection)
    _check_scope(body, grant)
    roots = runtime.ingest_roots
    specs = _specs(body, roots)

    def recheck() -> None:
        # again when the job starts: the disk may have changed while it was queued
        for i, spec in enumerate(specs):
            check_source(spec.path, roots, field=f"sources[{i}].path")

    options = SyncOptions(
        dry_run=body.dry_run,
        partition=Partition.parse(body.partition) if body.partition else None,
        batch_chunks=SERVER_BATCH_CHUNKS,
        max_doc_chars=body.max_doc_chars or runtime.settings.max_doc_chars,
        max_doc_bytes=runtime.settings.max_doc_bytes,
        optimize_threshold=None,  # never optimize() inside a serving process
        allow_mass_delete=body.allow_mass_delete,
        mass_delete_fraction=runtime.settings.mass_delete_fraction,
        mass_delete_min_docs=runtime.settings.mass_delete_min_docs,
    )
    if runtime.jobs is None:
        raise NotReadyError("the server is starting: the job runner is not up yet; retry")
    job = runtime.jobs.submit(
        specs, collection=collection, options=options, submitted_by=grant.id, check=recheck
    )
    record = audit_record(request)
    if record is not None:
        record.collection, record.job_id = collection, job.id
    return JobOut.model_validate(job.to_dict())


@router.get("/jobs/{job_id}", response_model=JobOut, responses=_ERRORS)
def get_job(job_id: str, grant: AdminKeyDep, runtime: RuntimeDep) -> JobOut:
    """A job's state, live progress counters and, when done, its summary.

    A tenant admin gets 404 for another tenant's job, as for one that does not exist, so job
    ids of other tenants cannot be probed.
    """
    job = runtime.jobs.get(job_id) if runtime.jobs is not None else None
    if job is None or not (grant.operator or job.visible_to(grant.tenant)):
        raise UnknownJobError(
            f"no ingest job {job_id!r} on this server (jobs are kept in memory: the last 100, "
            "until the server restarts)"
        )
    return JobOut.model_validate(job.to_dict())
