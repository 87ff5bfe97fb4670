"""``/healthz`` (the process answers), ``/readyz`` (store open, models loaded), ``/metrics``."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.deps import RuntimeDep
from service.api.errors import RETRY_AFTER_S
from service.api.schemas import HealthOut, ReadyOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> HealthOut:
    """Liveness: the process is up and answering."""
    return HealthOut(status="ok")


@router.get("/readyz", response_model=ReadyOut, responses={503: {"model": ReadyOut}})
def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Readiness: 200 once the store is open and the models are loaded, 503 before.

    Also 503 while the keys file is gone or invalid (``keys_error`` says why).
    """
    runtime.policies.refresh()
    keys_error = None if runtime.keys is None else runtime.keys.check()
    ready = runtime.ready and keys_error is None
    models: Literal["loading", "loaded", "failed"]
    if runtime.models is not None:
        models = "loaded"
    elif runtime.load_error is not None:
        models = "failed"
    else:
        models = "loading"
    body = ReadyOut(
        ready=ready,
        store=True,
        models=models,
        error=runtime.load_error,
        policies=runtime.policies.names(),
        policy_error=runtime.policies.last_error,
        keys_error=keys_error,
        collections=runtime.store.collections(),
    )
    headers = None if ready else {"Retry-After": str(RETRY_AFTER_S)}
    return JSONResponse(
        body.model_dump(mode="json"), status_code=200 if ready else 503, headers=headers
    )


@router.get("/metrics", include_in_schema=False)
def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus text exposition of this app's registry."""
    return Response(
        generate_latest(runtime.telemetry.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
