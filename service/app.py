"""The HTTP app: ``create_app(settings)`` builds it; nothing is built at import time.

The lifespan opens the store (a missing or locked store stops the start with a clear error),
reads the keys and the policies, writes the hand-off file for ``ragctx ingest``, and starts
loading the models in the background: ``/readyz`` answers 503 until they are in.

Example::

    app = create_app(Settings(qdrant_path=Path("/tmp/store"), keys_file=Path("keys.toml")))
    uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.api.errors import install_error_handlers
from service.api.middleware import BodyLimitMiddleware, ObserveMiddleware
from service.api.routes import admin, context, health, traces
from service.handoff import remove_server_file, write_server_file
from service.jobs import Job, JobRunner
from service.mcp import mount_http
from service.review import install_review
from service.runtime import ModelLoader
from service.settings import Settings
from service.telemetry import build_telemetry
from service.wiring import (
    apply_process_settings,
    build_runtime,
    chunking_params,
    key_ring,
    load_models,
    open_serving_store,
)

log = logging.getLogger(__name__)

API_VERSION = "1.3.0"


def server_url(settings: Settings) -> str:
    """Where this server listens, as clients on this machine reach it."""
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def create_app(settings: Settings, *, model_loader: ModelLoader = load_models) -> FastAPI:
    """Build the app for ``settings``.

    Args:
        settings: the one settings object.
        model_loader: loads the encoders and reranker (tests pass one that hands over models
            already in memory, or one that waits, to watch ``/readyz``).

    Returns:
        The FastAPI app; its lifespan owns the store.
    """
    apply_process_settings(settings)
    telemetry = build_telemetry(settings.otel_exporter)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_serving_store(settings)
        handoff = settings.qdrant_url is None
        try:
            runtime = build_runtime(
                settings, store=store, telemetry=telemetry, keys=key_ring(settings)
            )

            def finished(job: Job) -> None:
                telemetry.metrics.jobs.labels(state=job.state.value).inc()

            runtime.jobs = JobRunner(
                store=store,
                encoders=lambda: runtime.require_models().encoders,
                chunking=chunking_params(settings),
                on_finished=finished,
            )
            app.state.runtime = runtime
            runtime.load_models_in_background(model_loader)
            if handoff:
                write_server_file(settings.qdrant_path, url=server_url(settings))
        except BaseException:
            store.close()
            raise
        log.info(
            "serving %s at %s", settings.qdrant_url or settings.qdrant_path, server_url(settings)
        )
        try:
            async with mcp.running():
                yield
        finally:
            runtime.jobs.shutdown()
            if runtime.traces is not None:
                runtime.traces.close()
                runtime.traces.store.close()
            if handoff:
                remove_server_file(settings.qdrant_path)
            store.close()
            telemetry.shutdown()

    app = FastAPI(
        title="ragctx",
        version=API_VERSION,
        summary="Context for LLM prompts: retrieval, policy-driven packing, citations, traces.",
        lifespan=lifespan,
        # The app traces and measures itself (service.telemetry, one provider per app).
        # FastAPI's own instrumentation would look up the global providers on every request,
        # and trace each dependency and serialization if something set one.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.telemetry = telemetry
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(context.router)
    app.include_router(admin.router)
    app.include_router(traces.router)
    install_review(app)  # the review console at /review (reviewer keys)
    mcp = mount_http(app)  # MCP (streamable HTTP) at /mcp, same keys as the API
    # The last added is the outermost: the observer sees every API answer, a 413 included.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ObserveMiddleware, telemetry=telemetry)
    return app
