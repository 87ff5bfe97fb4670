"""Traces, metrics and logs of the HTTP service, built per app (never process globals).

* OpenTelemetry: one ``TracerProvider`` per app; exporter ``none`` (spans are not recorded,
  since nothing would read them, but still get ids, so every answer carries a ``trace_id``),
  ``console``, ``otlp`` (HTTP/protobuf; endpoint from the
  standard ``OTEL_EXPORTER_OTLP_*`` variables) or ``memory`` (tests read the spans back).
* Prometheus: one ``CollectorRegistry`` per app, served at ``/metrics``.
* Logs: :func:`configure_logging` installs a JSON formatter on the root logger. Only
  ``ragctx serve`` calls it; the library code only ever calls ``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import queue
import random
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Sampler
from opentelemetry.trace import Tracer
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pythonjsonlogger.json import JsonFormatter as _JsonLinesFormatter

ExporterName = Literal["none", "console", "otlp", "memory"]

# Stage latencies are milliseconds to a second; the request histogram reaches a few seconds.
_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class Metrics:
    """The service's Prometheus instruments, registered in one registry."""

    registry: CollectorRegistry
    stage_seconds: Histogram  # labels: stage
    request_seconds: Histogram  # labels: route
    requests: Counter  # labels: route, status
    dropped: Counter  # labels: reason
    rejected: Counter  # labels: reason (overload, not_ready)
    in_flight: Gauge
    jobs: Counter  # labels: state
    traces_dropped: Counter  # labels: reason (queue_full, shutdown)

    @classmethod
    def create(cls) -> Metrics:
        """Fresh instruments in a fresh registry (one per app, so tests can build many apps)."""
        reg = CollectorRegistry(auto_describe=True)
        return cls(
            registry=reg,
            stage_seconds=Histogram(
                "ragctx_stage_seconds",
                "Time spent per pipeline stage.",
                ["stage"],
                buckets=_STAGE_BUCKETS,
                registry=reg,
            ),
            request_seconds=Histogram(
                "ragctx_request_seconds",
                "End-to-end request time.",
                ["route"],
                buckets=_REQUEST_BUCKETS,
                registry=reg,
            ),
            requests=Counter(
                "ragctx_requests",
                "Requests answered, by route and status.",
                ["route", "status"],
                registry=reg,
            ),
            dropped=Counter(
                "ragctx_dropped_candidates",
                "Candidates the assembler dropped, by reason.",
                ["reason"],
                registry=reg,
            ),
            rejected=Counter(
                "ragctx_rejected_requests",
                "Requests refused with 503 before any work.",
                ["reason"],
                registry=reg,
            ),
            in_flight=Gauge(
                "ragctx_in_flight_requests", "Context requests being worked on.", registry=reg
            ),
            jobs=Counter(
                "ragctx_ingest_jobs", "Admin ingest jobs by final state.", ["state"], registry=reg
            ),
            traces_dropped=Counter(
                "ragctx_traces_dropped",
                "Traces not recorded (writer queue full, or shut down with the database down).",
                ["reason"],
                registry=reg,
            ),
        )


class PrivateIdGenerator(IdGenerator):
    """Span and trace ids from a private ``random.Random`` seeded from ``os.urandom``.

    The SDK default draws them from the ``random`` module, whose sequence repeats whenever
    something in the process seeds it (tests do), and audit lines are joined to traces by these
    ids. ``secrets`` would read ``os.urandom`` for every id: a system call that lets go of the
    GIL on the event loop, for ids that need to be unique, not secret. One instance serves
    every app (``_IDS``); a forked child reseeds it.
    """

    def __init__(self) -> None:
        self._random = random.Random(os.urandom(32))

    def reseed(self) -> None:
        """Start a new sequence (a forked child must not repeat its parent's ids)."""
        self._random.seed(os.urandom(32))

    def generate_span_id(self) -> int:
        """A random non-zero 64-bit span id."""
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        """A random non-zero 128-bit trace id."""
        return self._random.getrandbits(128) or 1


_IDS = PrivateIdGenerator()
os.register_at_fork(after_in_child=_IDS.reseed)


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Tracer, span exporter (``memory`` only) and metrics of one app."""

    provider: TracerProvider
    tracer: Tracer
    metrics: Metrics
    memory_exporter: InMemorySpanExporter | None = None

    def shutdown(self) -> None:
        """Flush and stop the span processors."""
        self.provider.shutdown()


def build_telemetry(exporter: ExporterName, *, service_name: str = "ragctx") -> Telemetry:
    """A tracer provider with the chosen exporter, and fresh metrics.

    Args:
        exporter: ``none``, ``console``, ``otlp`` or ``memory``.
        service_name: the OpenTelemetry ``service.name`` resource attribute.

    Returns:
        The app's telemetry; call ``shutdown()`` when the app stops.
    """
    # With no exporter no span is ever read: sampling every span out keeps the ids (each
    # answer's trace_id) and skips recording, ~40 us per span on the request path.
    sampler: Sampler | None = ALWAYS_OFF if exporter == "none" else None
    provider = TracerProvider(
        sampler=sampler,
        resource=Resource.create({"service.name": service_name}),
        id_generator=_IDS,
    )
    memory: InMemorySpanExporter | None = None
    if exporter == "memory":
        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
    elif exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return Telemetry(
        provider=provider,
        tracer=provider.get_tracer("ragctx.service"),
        metrics=Metrics.create(),
        memory_exporter=memory,
    )


# --------------------------------------------------------------------------------------------
# logs


class JsonFormatter(_JsonLinesFormatter):
    """One JSON object per line (python-json-logger): time, level, logger, message, any
    ``extra=`` fields, and the exception when there is one."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
            json_default=str,
            json_ensure_ascii=False,
        )

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a JSON line."""
        audit = getattr(record, "audit", None)
        if isinstance(audit, dict):  # an audit line is already the JSON object to write
            return self.jsonify_log_record({"logger": record.name, **audit})
        return super().format(record)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """The library's fields after the time, with the level in lower case."""
        created = datetime.fromtimestamp(record.created, UTC)
        log_data["time"] = created.isoformat(timespec="milliseconds")
        super().add_fields(log_data, record, message_dict)
        log_data["level"] = record.levelname.lower()


class _Handoff(logging.handlers.QueueHandler):
    """Puts records on the writer thread's queue as they are: formatting and the write to
    stderr happen on that thread, not on the event loop. (The queue is in-process, so the
    record needs none of the pickling preparation QueueHandler does by default.)"""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """Return ``record`` unchanged."""
        return record


def configure_logging(
    *, json_logs: bool, level: int = logging.INFO
) -> logging.handlers.QueueListener:
    """Send every log record to stderr, as JSON lines or as plain text (process-wide).

    Records are written by a background thread; call ``stop()`` on the returned listener
    before the process exits, which writes what is still queued.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_logs else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, handler)
    root = logging.getLogger()
    root.handlers[:] = [_Handoff(records)]
    root.setLevel(level)
    # uvicorn's own loggers propagate to the root handler instead of printing their own way.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    listener.start()
    return listener
