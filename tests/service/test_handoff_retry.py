"""The hand-off client retries a 503 (a server still starting) with tenacity, waiting what
Retry-After asks, until ``ready_wait_s`` is spent; then the 503 is the error it reports.

The server here is a stdlib HTTP server on 127.0.0.1 (real HTTP) that plays a starting
ragctx server: the routes and bodies are the real ones, the ingest itself is not run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ingest import SourceSpec, SyncOptions
from ingest.sync import SyncReport
from service.handoff import HandoffError, submit_to_server, write_server_file

REPORT = SyncReport(
    collection="docs", sources=("s",), added=1, updated=0, unchanged=0, deleted=0, failed=0,
    chunks_written=2, chunks_deleted=0, seconds=0.1,
)  # fmt: skip


class Starting(BaseHTTPRequestHandler):
    busy_answers = 2  # 503s before the 202
    retry_after = "0"
    posts = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        cls.posts += 1
        if cls.posts <= cls.busy_answers:
            self.answer(503, {"error": {"message": "starting"}}, {"Retry-After": cls.retry_after})
        else:
            job = {"id": "j1", "state": "done", "report": REPORT.to_dict(), "error": None}
            self.answer(202, job, {})

    def answer(self, status: int, body: object, headers: dict[str, str]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(raw))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Starting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Starting.posts = 0
    write_server_file(tmp_path, url=f"http://127.0.0.1:{server.server_port}")
    yield tmp_path
    server.shutdown()
    server.server_close()


def submit(store: Path, ready_wait_s: float) -> SyncReport | None:
    spec = SourceSpec(path=store, name="s")
    return submit_to_server(
        store, [spec], SyncOptions(), collection="docs", admin_key="k",
        show_progress=False, ready_wait_s=ready_wait_s,
    )  # fmt: skip


def test_503s_are_retried_until_the_job_is_taken(store: Path) -> None:
    Starting.busy_answers, Starting.retry_after = 2, "0"
    report = submit(store, ready_wait_s=10)
    assert Starting.posts == 3
    assert report is not None and report.added == 1 and report.chunks_written == 2


def test_a_server_that_stays_busy_is_reported_once_the_wait_is_spent(store: Path) -> None:
    # a Retry-After that is no number (an HTTP-date from a proxy, or junk) waits one second
    Starting.busy_answers, Starting.retry_after = 100, "soon"
    with pytest.raises(HandoffError, match=r"refused the ingest job \(503\): starting"):
        submit(store, ready_wait_s=0.5)
    assert Starting.posts == 2
