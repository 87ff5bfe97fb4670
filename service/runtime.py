"""What a running server holds: the store, the models, the policies, the keys, the gate.

Built once per app in its lifespan and kept on ``app.state.runtime``; routes reach it through
``service.api.deps``. The store, keys and policies load synchronously at start-up (a store that
is missing or locked stops the start with a clear message); the models load in a background
thread so ``/healthz`` answers at once and ``/readyz`` says 503 until they are in.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from anyio import CapacityLimiter

from core.errors import RagctxError
from index import Encoders, Store
from retrieval.rerank import Reranker
from service.auth import KeyRing
from service.errors import NotReadyError, OverloadedError, UnknownPolicyError
from service.settings import Settings
from service.telemetry import Telemetry
from service.traces import TraceWriter

if TYPE_CHECKING:
    from assembler.policy import LoadedPolicy
    from assembler.tokens import TokenCounter
    from service.jobs import JobRunner

log = logging.getLogger(__name__)

GC_YOUNG_THRESHOLD = 10_000  # net container allocations between young collections (default 700)


@dataclass(frozen=True, slots=True)
class Models:
    """Everything loaded from model files: encoders and the optional reranker."""

    encoders: Encoders
    reranker: Reranker | None = None


ModelLoader = Callable[[Settings], Models]


def settle_heap() -> None:
    """Tune the cyclic garbage collector for serving, once the models are in.

    Everything loaded so far lives as long as the process: frozen, the collector stops
    scanning it (a full collection over it stalled a request by ~370 ms on the dev VM). A
    request allocates and frees thousands of containers; with the default threshold of 700
    that set off ~3 young collections per request (~0.3 ms) that found nothing to free.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


class PolicyBook:
    """The server's policies by name, re-read when a file in the folder changes.

    A folder that turns invalid (a bad file, two files with one name) never replaces the last
    good set: the error is logged and kept in ``last_error`` for ``/readyz``.
    """

    def __init__(self, folder: Path, *, check_every_s: float = 1.0) -> None:
        from assembler.policy import load_policies

        self.folder = folder
        self.check_every_s = check_every_s
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._stamp = self._signature()
        self._policies: dict[str, LoadedPolicy] = load_policies(folder)
        self._checked = time.monotonic()

    def _signature(self) -> tuple[tuple[str, int, int], ...]:
        try:
            entries = sorted(os.scandir(self.folder), key=lambda e: e.name)
        except OSError:
            return ()
        out: list[tuple[str, int, int]] = []
        for entry in entries:
            if entry.name.endswith((".yaml", ".yml")):
                try:
                    st = entry.stat()
                except OSError:
                    continue
                out.append((entry.name, st.st_mtime_ns, st.st_size))
        return tuple(out)

    def refresh(self, *, force: bool = False) -> None:
        """Reload if a file changed (checked at most every ``check_every_s`` unless forced)."""
        from assembler.policy import PolicyError, load_policies

        now = time.monotonic()
        if not force and now - self._checked < self.check_every_s:
            return
        with self._lock:
            self._checked = now
            stamp = self._signature()
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                loaded = load_policies(self.folder)
            except PolicyError as err:
                self.last_error = str(err)
                log.error("policy folder changed but is invalid; keeping the last good: %s", err)
                return
            self._policies = loaded
            self.last_error = None
            log.info("policies reloaded: %s", ", ".join(sorted(loaded)))

    def get(self, name: str) -> LoadedPolicy:
        """The policy called ``name``; raises UnknownPolicyError."""
        self.refresh()
        policies = self._policies
        found = policies.get(name)
        if found is None:
            raise UnknownPolicyError(name, sorted(policies))
        return found

    def names(self) -> list[str]:
        """Names of the policies in use."""
        return sorted(self._policies)


class Gate:
    """Bounded concurrency: a request takes a slot or is refused at once (no unbounded queue).

    ``limiter`` runs the admitted work in worker threads; it has as many tokens as there are
    slots, so admitted work never waits for a thread.
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.in_flight = 0
        self.limiter = CapacityLimiter(slots)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot for the block; raises OverloadedError when none is free.

        Called from the event loop thread only, so the counter needs no lock.
        """
        if self.in_flight >= self.slots:
            raise OverloadedError(
                f"all {self.slots} request slots are busy; retry after the Retry-After delay "
                "(the limit is RAGCTX_MAX_CONCURRENCY)"
            )
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1


@dataclass
class Runtime:
    """The shared state of one running app."""

    settings: Settings
    telemetry: Telemetry
    store: Store
    keys: KeyRing | None  # None only for the local `ragctx query`, which has no HTTP keys
    policies: PolicyBook
    gate: Gate
    jobs: JobRunner | None = None
    ingest_roots: tuple[Path, ...] = ()  # resolved RAGCTX_INGEST_ROOTS (service.ingest_roots)
    traces: TraceWriter | None = None  # None: RAGCTX_TRACE_STORE=false
    models: Models | None = None
    load_error: str | None = None
    _counters: dict[str, TokenCounter] = field(default_factory=dict)
    _counter_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def ready(self) -> bool:
        """Store open and models loaded."""
        return self.models is not None

    def require_models(self) -> Models:
        """The models, or NotReadyError while they load (or after they failed to)."""
        models = self.models
        if models is None:
            if self.load_error is not None:
                raise NotReadyError(f"the models failed to load: {self.load_error}")
            raise NotReadyError("the server is starting: models are still loading; retry")
        return models

    def counter(self, encoding: str) -> TokenCounter:
        """The token counter for ``encoding``, loaded once (tiktoken files are read lazily)."""
        found = self._counters.get(encoding)
        if found is not None:
            return found
        from assembler.tokens import tiktoken_counter

        with self._counter_lock:
            found = self._counters.get(encoding)
            if found is None:
                found = tiktoken_counter(encoding)
                self._counters[encoding] = found
        return found

    def load_models_in_background(self, loader: ModelLoader) -> threading.Thread:
        """Start loading the models; ``ready`` turns true when they are in."""

        def run() -> None:
            started = time.perf_counter()
            try:
                models = loader(self.settings)
                self.counter(self.settings.chunk_encoding)
            except (RagctxError, OSError, ValueError, RuntimeError) as err:
                self.load_error = str(err)
                log.error("loading the models failed; the server will not become ready: %s", err)
                return
            self.models = models
            log.info("models loaded in %.1f s; ready", time.perf_counter() - started)

        thread = threading.Thread(target=run, name="ragctx-load-models", daemon=True)
        thread.start()
        return thread
