"""``/healthz`` (the process answers), ``/readyz`` (store open, models loaded), ``/metrics``."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.deps import RuntimeDep, key_or_none
from service.api.errors import RETRY_AFTER_S
from service.api.schemas import HealthOut, ReadyOut, ReadyStatusOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> HealthOut:
    """Liveness: the process is up and answering."""
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    response_model=ReadyOut | ReadyStatusOut,
    responses={503: {"model": ReadyOut | ReadyStatusOut}},
)
def readyz(runtime: RuntimeDep, request: Request) -> JSONResponse:
    """Readiness: 200 once the store is open and the models are loaded, 503 before.

    Also 503 while the keys file is gone or invalid. Without an admin key the answer is only
    ``{"status": "ready" | "not_ready"}``; with one it says why (``error``, ``keys_error``,
    ``policy_error``) and lists the policies and collections.
    """
    runtime.policies.refresh()
    keys_error = None if runtime.keys is None else runtime.keys.check()
    ready = runtime.ready and keys_error is None
    status: Literal["ready", "not_ready"] = "ready" if ready else "not_ready"
    headers = None if ready else {"Retry-After": str(RETRY_AFTER_S)}
    code = 200 if ready else 503
    grant = key_or_none(request)
    if grant is None or not grant.admin:
        return JSONResponse(
            ReadyStatusOut(status=status).model_dump(mode="json"), status_code=code, headers=headers
        )
    models: Literal["loading", "loaded", "failed"]
    if runtime.models is not None:
        models = "loaded"
    elif runtime.load_error is not None:
        models = "failed"
    else:
        models = "loading"
    body = ReadyOut(
        status=status,
        ready=ready,
        store=True,
        models=models,
        error=runtime.load_error,
        policies=runtime.policies.names(),
        policy_error=runtime.policies.last_error,
        keys_error=keys_error,
        collections=runtime.store.collections(),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=code, headers=headers)


@router.get("/metrics", include_in_schema=False)
def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus text exposition of this app's registry."""
    return Response(
        generate_latest(runtime.telemetry.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
