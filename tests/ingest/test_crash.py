"""A sync killed with SIGKILL mid-embedding, run again, ends exactly as one clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from index.edge import EdgeStore
from ingest import Chunker, ChunkingParams, SourceSpec, SyncOptions, sync
from tests.ingest.test_sync import state, write_corpus

REPO = Path(__file__).resolve().parents[2]


def kill_after(store: Path, source: Path, batches: int) -> int:
    """Start a sync in a subprocess and SIGKILL it after it wrote ``batches`` batches."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.ingest.crash_driver", str(store), str(source)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.stdout is not None
    written = 0
    for line in proc.stdout:
        if line.startswith("embedded"):
            written += 1
            if written == batches:
                os.kill(proc.pid, signal.SIGKILL)  # while the next batch is being embedded
                break
        if line.startswith("done"):
            break
    proc.wait(timeout=120)
    return proc.returncode


def resync(store_path: Path, source: Path, encoders: Any) -> dict[str, Any]:
    store = EdgeStore(store_path)
    try:
        chunker = Chunker(
            ChunkingParams(chunk_tokens=64, overlap_tokens=8),
            max_model_tokens=encoders.dense.max_tokens,
            model_token_count=encoders.dense.count_tokens,
        )
        sync(
            [SourceSpec(source, name="src", tenant="acme")],
            collection="docs",
            store=store,
            encoders=encoders,
            chunker=chunker,
            options=SyncOptions(batch_chunks=8),
        )
        return state(store)
    finally:
        store.close()


@pytest.mark.parametrize("batches", [2])
def test_killed_first_sync_converges(tmp_path: Path, encoders: Any, batches: int) -> None:
    src = write_corpus(tmp_path / "src", n=8)
    assert kill_after(tmp_path / "killed", src, batches) == -signal.SIGKILL
    assert resync(tmp_path / "killed", src, encoders) == resync(tmp_path / "clean", src, encoders)


def test_killed_replacement_converges(tmp_path: Path, encoders: Any) -> None:
    src = write_corpus(tmp_path / "src", n=8)
    resync(tmp_path / "killed", src, encoders)
    for i in range(8):  # change every document, so the killed run is mid-replacement
        path = src / f"doc{i}.md"
        path.write_text(path.read_text("utf-8").replace("paragraph", "section"), "utf-8")
    assert kill_after(tmp_path / "killed", src, 3) == -signal.SIGKILL
    assert resync(tmp_path / "killed", src, encoders) == resync(tmp_path / "clean", src, encoders)
