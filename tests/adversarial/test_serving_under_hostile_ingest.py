"""Serving stays up while an admin ingest job chews on hostile input (issue 13 §3).

A real server (uvicorn on 127.0.0.1, real Edge store, real encoders) runs an admin ingest job
over a folder of hostile files next to a few hundred good ones. While the job runs, one thread
polls ``/healthz`` and times each answer, and a few ``/v1/context`` requests go out. The job
must finish with each hostile file reported as a per-file problem and every good file written.
Run with ``-s`` to see the health latency figures.
"""

from __future__ import annotations

import random
import shutil
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.runtime import Models
from tests.service.conftest import (
    Running,
    auth,
    loader_of,
    make_settings,
    models,
    running_server,
    sample_store_template,
)
from tests.service.test_admin_ingest import source, wait_job

# Small limits, so "near the byte limit" stays cheap to read, chunk and embed.
MAX_DOC_CHARS = 60_000
MAX_DOC_BYTES = 240_000
GOOD_FILES = 200

__all__ = ["models", "sample_store_template"]  # the service fixtures, used here


def write_hostile(folder: Path) -> set[str]:
    """Hostile files in ``folder``; returns the names that must come out as problems."""
    folder.mkdir(parents=True, exist_ok=True)
    depth = 100_000
    (folder / "deep.json").write_text("[" * depth + "]" * depth, "utf-8")
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    (folder / "bomb.md").write_text("---\n" + "\n".join(levels) + "\n---\n# Bomb\n", "utf-8")
    # one line of words just over the byte limit (refused unread) ...
    words = "lorem ipsum dolor sit amet "
    over = (words * (MAX_DOC_BYTES // len(words) + 1))[: MAX_DOC_BYTES + 1]
    (folder / "huge-over.txt").write_text(over, "utf-8")
    # ... and one just under it (read, but too many characters once decoded)
    (folder / "huge-under.txt").write_text("x" * (MAX_DOC_BYTES - 10), "utf-8")
    rng = random.Random(13)
    junk = bytes(rng.randrange(256) for _ in range(64_000))
    (folder / "junk.md").write_bytes(junk)
    (folder / "junk.txt").write_bytes(b"\x00\x01\x02" + junk)
    (folder / "deep.html").write_text("<div>" * 50_000 + "deep" + "</div>" * 50_000, "utf-8")
    (folder / "bad-utf8.md").write_bytes(b"# Title\n\nfine text \xff\xfe\xc3\x28 broken\n")
    (folder / "records.json").write_text('{"id": "x", "text": "t", "n": ' + "[" * 5000, "utf-8")
    refused = {p.name for p in folder.iterdir()}
    # read, but built to hurt regular expressions and tokenizers; must go in (or be a problem)
    (folder / "regex.md").write_text("# Regex\n\n" + "a" * 50_000 + "!\n", "utf-8")
    (folder / "long-line.txt").write_text(words * 800, "utf-8")
    return refused


def write_good(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"good-{i:03d}.md").write_text(
            f"# Good {i}\n\nGood note {i} says the ferry leaves pier {i % 17} at {i}:00.\n", "utf-8"
        )


@pytest.fixture(scope="module")
def hostile_server(
    sample_store_template: Path, tmp_path_factory: pytest.TempPathFactory, models: Models
) -> Iterator[Running]:
    """A server over a private store copy, with small document limits."""
    work = tmp_path_factory.mktemp("hostile-server")
    store = work / "qdrant"
    shutil.copytree(sample_store_template, store)
    with running_server(
        lambda port: make_settings(
            store, work, port=port, max_doc_chars=MAX_DOC_CHARS, max_doc_bytes=MAX_DOC_BYTES
        ),
        loader_of(models),
    ) as run:
        yield run


class HealthPoller(threading.Thread):
    """GETs ``/healthz`` back to back until stopped; records each latency in seconds."""

    def __init__(self, server: Running) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.statuses: list[int] = []

    def run(self) -> None:
        with self.server.client() as c:
            while not self.stop.is_set():
                start = time.perf_counter()
                r = c.get("/healthz")
                self.latencies.append(time.perf_counter() - start)
                self.statuses.append(r.status_code)
                time.sleep(0.02)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


@pytest.mark.timeout(120)
def test_health_and_context_answer_while_a_hostile_ingest_runs(
    hostile_server: Running, tmp_path: Path
) -> None:
    folder = tmp_path / "hostile"
    refused = write_hostile(folder)
    write_good(folder, GOOD_FILES)
    poller = HealthPoller(hostile_server)
    context_statuses: list[int] = []
    with hostile_server.client() as c:
        poller.start()
        r = c.post("/v1/admin/ingest", headers=auth("admin"), json={"sources": [source(folder)]})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        started = time.monotonic()
        while c.get(f"/v1/admin/jobs/{job_id}", headers=auth("admin")).json()["state"] in (
            "queued",
            "running",
        ):
            if len(context_statuses) < 5:
                r = c.post(
                    "/v1/context",
                    json={"query": "rotate keys", "budget_tokens": 400},
                    headers=auth("acme-support"),
                )
                context_statuses.append(r.status_code)
            time.sleep(0.2)
        job = wait_job(c, job_id)
        job_seconds = time.monotonic() - started
        poller.stop.set()
        poller.join()
        lat = poller.latencies
        print(
            f"\n/healthz during a hostile ingest ({len(lat)} polls, job {job_seconds:.1f} s, "
            f"{len(context_statuses)} /v1/context calls, 1 thread per library, shared machine): "
            f"median {statistics.median(lat) * 1000:.1f} ms, p95 {p95(lat) * 1000:.1f} ms, "
            f"max {max(lat) * 1000:.1f} ms"
        )

        assert len(lat) >= 20, "the job ended before health was polled enough to measure"
        assert set(poller.statuses) == {200}
        assert max(lat) < 2.0
        assert len(context_statuses) >= 3 and set(context_statuses) == {200}

        assert job["state"] == "failed", job  # finished, with per-file failures
        report = job["report"]
        problems = {Path(p["path"]).name: p["message"] for p in report["problems"]}
        assert refused <= set(problems), (refused - set(problems), problems)
        assert "regex.md" not in problems and "long-line.txt" not in problems, problems
        assert report["added"] == GOOD_FILES + 2, report
        assert report["failed"] == len(problems)
        assert "see report.problems" in job["error"]

        # the good files went in: one of them is found by what it says
        r = c.post(
            "/v1/context",
            json={"query": "good note 123 ferry pier", "budget_tokens": 300},
            headers=auth("acme-support"),
        )
        assert r.status_code == 200 and "Good note 123 says" in r.json()["context"], r.text
