"""Admin ingest jobs inside the serving process, queried while they run; the CLI hand-off."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ingest import SourceSpec, SyncOptions
from service.handoff import submit_to_server
from tests.service.conftest import Running, auth, key_of

MARKER = "quokkaflux"


def write_docs(folder: Path, n: int, *, version: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        extra = f" The {MARKER} setting is {version * 100 + i}." if i == 0 else ""
        body = " ".join(
            f"Section {j} of note {i} explains queue setting {i}-{j} in plain words."
            for j in range(12)
        )
        (folder / f"note-{i:02d}.md").write_text(
            f"---\ntitle: Note {i}\ndoc_id: note-{i:02d}\ntenant: acme\ngroups: [support]\n---\n"
            f"# Note {i}\n\n{body}{extra}\n",
            encoding="utf-8",
        )
    return folder


def wait_job(c: Any, job_id: str, timeout: float = 240, key: str = "admin") -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = c.get(f"/v1/admin/jobs/{job_id}", headers=auth(key)).json()
        if job["state"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def source(path: Path, **kw: Any) -> dict[str, Any]:
    return {"path": str(path), "name": "notes", "tenant": "acme", "groups": ["public"], **kw}


def test_admin_routes_need_an_admin_key(server: Running, tmp_path: Path) -> None:
    body = {"sources": [source(write_docs(tmp_path / "n", 1))]}
    with server.client() as c:
        assert c.post("/v1/admin/ingest", json=body).status_code == 401
        r = c.post("/v1/admin/ingest", json=body, headers=auth("acme-all"))
        assert r.status_code == 403 and "admin" in r.json()["error"]["message"]
        assert c.get("/v1/admin/jobs/x", headers=auth("acme-all")).status_code == 403
        r = c.get("/v1/admin/jobs/nope", headers=auth("admin"))
        assert r.status_code == 404 and r.json()["error"]["field"] == "job_id"


def test_bad_ingest_requests_name_the_field(server: Running, tmp_path: Path) -> None:
    with server.client() as c:
        r = c.post(
            "/v1/admin/ingest",
            headers=auth("admin"),
            json={"sources": [source(tmp_path / "missing")]},
        )
        assert r.status_code == 422 and r.json()["error"]["field"] == "sources[0].path"
        assert "server" in r.json()["error"]["message"]
        r = c.post("/v1/admin/ingest", headers=auth("admin"), json={"sources": []})
        assert r.status_code == 422 and r.json()["error"]["field"] == "sources"
        r = c.post(
            "/v1/admin/ingest",
            headers=auth("admin"),
            json={"sources": [source(tmp_path)], "partition": "5/2"},
        )
        assert r.status_code == 422 and r.json()["error"]["field"] == "partition"


class Reader(threading.Thread):
    """Queries for the marker document until stopped; records every answer."""

    def __init__(self, server: Running) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stop = threading.Event()
        self.statuses: list[int] = []
        self.found: list[bool] = []

    def run(self) -> None:
        body = {"query": f"{MARKER} setting", "budget_tokens": 500, "top_k": 20, "debug": True}
        with self.server.client() as c:
            while not self.stop.is_set():
                r = c.post("/v1/context", json=body, headers=auth("acme-support"))
                self.statuses.append(r.status_code)
                if r.status_code == 200:
                    hybrid = r.json()["trace"]["stages"]["hybrid"]["candidates"]
                    self.found.append("note-00" in {h["doc_id"] for h in hybrid})


def test_ingest_job_runs_inside_the_server_while_it_answers(
    server: Running, tmp_path: Path
) -> None:
    notes = write_docs(tmp_path / "notes", 24)
    with server.client() as c:
        reader = Reader(server)
        reader.start()
        r = c.post("/v1/admin/ingest", headers=auth("admin"), json={"sources": [source(notes)]})
        assert r.status_code == 202, r.text
        job = wait_job(c, r.json()["id"])
        time.sleep(0.2)
        reader.stop.set()
        reader.join()
        assert job["state"] == "succeeded", job
        assert job["report"]["added"] == 24 and job["report"]["failed"] == 0
        assert job["progress"]["embedded"] == job["report"]["chunks_written"] > 0
        assert job["submitted_by"] == "admin"
        assert reader.statuses and set(reader.statuses) == {200}
        assert reader.found[-1], "the new document is searchable once the job is done"

        # Change the marker document and re-sync: readers must find it in every answer.
        write_docs(notes, 24, version=2)
        reader = Reader(server)
        reader.start()
        time.sleep(0.3)
        r = c.post("/v1/admin/ingest", headers=auth("admin"), json={"sources": [source(notes)]})
        job = wait_job(c, r.json()["id"])
        time.sleep(0.2)
        reader.stop.set()
        reader.join()
        report = job["report"]
        assert job["state"] == "succeeded" and report["updated"] >= 1
        assert report["updated"] + report["unchanged"] == 24
        assert set(reader.statuses) == {200}
        assert reader.found and all(reader.found), "a reader saw the document missing"

        text = c.post(
            "/v1/context",
            json={"query": f"{MARKER} setting", "budget_tokens": 300},
            headers=auth("acme-support"),
        ).json()["context"]
        assert f"{MARKER} setting is 200" in text


@pytest.mark.parametrize("show_progress", [False, True])
def test_ingest_cli_hands_the_job_to_the_server_holding_the_store(
    server: Running, tmp_path: Path, show_progress: bool
) -> None:
    folder = write_docs(tmp_path / "handoff", 3)
    spec = SourceSpec(
        path=folder, name=f"handoff-{show_progress}", tenant="acme", groups=("public",)
    )
    report = submit_to_server(
        server.settings.qdrant_path,
        [spec],
        SyncOptions(),
        collection="docs",
        admin_key=key_of("admin"),
        show_progress=show_progress,
        poll_s=0.1,
    )
    assert report is not None and report.added == 3 and report.failed == 0
    assert report.sources == (f"handoff-{show_progress}",)


def test_handoff_without_an_admin_key_says_how_to_get_one(server: Running, tmp_path: Path) -> None:
    from core.errors import InvalidInputError

    spec = SourceSpec(path=write_docs(tmp_path / "x", 1), tenant="acme")
    with pytest.raises(InvalidInputError, match="RAGCTX_ADMIN_KEY"):
        submit_to_server(
            server.settings.qdrant_path,
            [spec],
            SyncOptions(),
            collection="docs",
            admin_key=None,
            show_progress=False,
        )
    assert (
        submit_to_server(
            tmp_path, [spec], SyncOptions(), collection="docs", admin_key="k", show_progress=False
        )
        is None
    )


def test_mass_deletion_is_withheld_over_http_until_allowed(server: Running, tmp_path: Path) -> None:
    """The route reports withheld deletions; ``allow_mass_delete`` lifts the guard.

    Its own source name: the module's server is shared, and other tests sync "notes".
    """
    notes = write_docs(tmp_path / "notes", 8)
    with server.client() as c:

        def ingest(state: str = "succeeded", **body: Any) -> dict[str, Any]:
            sources = [source(notes, name="withheld")]
            r = c.post("/v1/admin/ingest", headers=auth("admin"), json={"sources": sources, **body})
            assert r.status_code == 202, r.text
            job = wait_job(c, r.json()["id"])
            assert job["state"] == state, job
            report: dict[str, Any] = job["report"]
            if state == "failed":  # withheld deletions fail the job and say why
                assert "allow-mass-delete" in job["error"], job
            return report

        assert ingest()["added"] == 8
        for i in range(2, 8):
            (notes / f"note-{i:02d}.md").unlink()
        held = ingest("failed")
        assert held["deleted"] == 0
        [withheld] = held["withheld"]
        assert withheld["would_delete"] == 6 and withheld["held"] == 8
        assert withheld["tenant"] == "acme" and withheld["source"] == "withheld"
        assert sorted(withheld["doc_ids"]) == [f"note-{i:02d}" for i in range(2, 8)]
        assert "mass-delete" in withheld["message"]

        bad = c.post(
            "/v1/admin/ingest",
            headers=auth("admin"),
            json={"sources": [source(notes)], "allow_mass_delete": "yes please"},
        )
        assert bad.status_code == 422, bad.text

        allowed = ingest(allow_mass_delete=True)
        assert allowed["deleted"] == 6 and allowed["withheld"] == []


def test_per_record_tenancy_over_http(server: Running, tmp_path: Path) -> None:
    """Without ``tenant_from_records`` a document naming another tenant fails; with it, it lands
    in its own tenant and only that tenant's keys find it."""
    folder = write_docs(tmp_path / "mixed", 2)
    other = folder / "note-01.md"
    other.write_text(
        other.read_text("utf-8").replace("tenant: acme", "tenant: globex")
        + f"\nThe {MARKER} globex value is 77.\n",
        "utf-8",
    )
    with server.client() as c:

        def ingest(**kw: Any) -> dict[str, Any]:
            spec = source(folder, name="mixed", **kw)
            # per-record tenancy is for operator keys only (tests/adversarial/test_admin_scope.py)
            r = c.post("/v1/admin/ingest", headers=auth("operator"), json={"sources": [spec]})
            assert r.status_code == 202, r.text
            return wait_job(c, r.json()["id"], key="operator")

        refused = ingest()
        assert refused["state"] == "failed" and refused["report"]["failed"] == 1
        [problem] = refused["report"]["problems"]
        assert problem["path"].endswith("note-01.md") and "globex" in problem["message"]

        job = ingest(tenant_from_records=True)
        assert job["state"] == "succeeded", job
        assert job["report"]["added"] == 1 and job["report"]["failed"] == 0

        def context(key: str) -> str:
            body = {"query": f"{MARKER} globex value", "budget_tokens": 300}
            text: str = c.post("/v1/context", json=body, headers=auth(key)).json()["context"]
            return text

        assert "globex value is 77" in context("globex-all")
        assert "globex value is 77" not in context("acme-all")
