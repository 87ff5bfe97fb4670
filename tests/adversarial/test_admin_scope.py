"""Admin keys are scoped to their tenant; admin sources stay inside RAGCTX_INGEST_ROOTS.

Real HTTP (uvicorn on 127.0.0.1), real Edge store, real encoders. Each test failed on the code
before the fix: any admin key could sync into any tenant and read every tenant's jobs, and the
server read any path it was given (a fifo hung the job worker).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from service.auth import KeysFileError, load_keys
from service.runtime import Models
from tests.service.conftest import (  # noqa: F401 (sample_store_template: a fixture)
    Running,
    auth,
    loader_of,
    make_settings,
    running_server,
    sample_store_template,
)
from tests.service.test_keys_and_logs import cli

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs fifos (POSIX)")


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's one ingest root."""
    return tmp_path_factory.mktemp("ingest-root")


@pytest.fixture(scope="module")
def srv(
    tmp_path_factory: pytest.TempPathFactory,
    encoders: Any,
    roots: Path,
    sample_store_template: Path,  # noqa: F811 (the imported fixture, by name)
) -> Iterator[Running]:
    models = Models(encoders=encoders, reranker=None)
    work = tmp_path_factory.mktemp("admin-scope")
    shutil.copytree(sample_store_template, work / "qdrant")
    with running_server(
        lambda port: make_settings(work / "qdrant", work, port=port, ingest_roots=[roots]),
        loader_of(models),
    ) as run:
        yield run


def note(folder: Path, tenant: str, name: str = "n.md") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(
        f"---\ntitle: Scope note\ndoc_id: {folder.name}-{name}\n---\n# Scope note\n\n"
        f"A short note of tenant {tenant} about queue settings.\n",
        "utf-8",
    )
    return folder


def body(path: Path, tenant: str, name: str, **kw: Any) -> dict[str, Any]:
    src = {"path": str(path), "name": name, "tenant": tenant, "groups": ["public"], **kw}
    return {"sources": [src]}


def submit(c: httpx.Client, key: str, payload: dict[str, Any]) -> httpx.Response:
    return c.post("/v1/admin/ingest", json=payload, headers=auth(key))


def wait(c: httpx.Client, job_id: str, key: str = "operator") -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        job: dict[str, Any] = c.get(f"/v1/admin/jobs/{job_id}", headers=auth(key)).json()
        if job["state"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def error(r: httpx.Response) -> dict[str, Any]:
    detail: dict[str, Any] = r.json()["error"]
    return detail


def test_a_tenant_admin_syncs_only_into_its_own_tenant(srv: Running, roots: Path) -> None:
    folder = note(roots / "t1", "globex")
    with srv.client() as c:
        r = submit(c, "admin", body(folder, "globex", "t1"))
        assert r.status_code == 403, r.text
        assert error(r)["field"] == "sources[0].tenant"
        assert "'globex'" in error(r)["message"] and "'acme'" in error(r)["message"]
        r = submit(c, "admin", body(folder, "acme", "t1", tenant_from_records=True))
        assert r.status_code == 403 and error(r)["field"] == "sources[0].tenant_from_records"
        assert "operator" in error(r)["message"]
        # its own tenant is fine
        r = submit(c, "admin", body(note(roots / "t1a", "acme"), "acme", "t1a"))
        assert r.status_code == 202, r.text
        assert wait(c, r.json()["id"])["state"] == "succeeded"


def test_jobs_are_seen_by_their_tenant_and_operators_only(srv: Running, roots: Path) -> None:
    with srv.client() as c:
        r = submit(c, "operator", body(note(roots / "t2", "globex"), "globex", "t2"))
        assert r.status_code == 202, r.text  # an operator key syncs into any tenant
        globex_job = r.json()["id"]
        r = submit(c, "admin", body(note(roots / "t2a", "acme"), "acme", "t2a"))
        acme_job = r.json()["id"]
        assert wait(c, globex_job)["state"] == "succeeded"
        assert wait(c, acme_job)["state"] == "succeeded"
        for key, job, code in [
            ("admin", globex_job, 404),
            ("globex-admin", acme_job, 404),
            ("globex-admin", globex_job, 200),
            ("admin", acme_job, 200),
            ("operator", acme_job, 200),
        ]:
            r = c.get(f"/v1/admin/jobs/{job}", headers=auth(key))
            assert r.status_code == code, (key, job, r.text)
        # another tenant's job reads exactly as one that does not exist
        other = c.get(f"/v1/admin/jobs/{globex_job}", headers=auth("admin")).json()
        none = c.get("/v1/admin/jobs/nope", headers=auth("admin")).json()
        assert other["error"]["message"].replace(globex_job, "X") == none["error"][
            "message"
        ].replace("nope", "X")
        # per-record tenancy may write any tenant: its jobs are for operators only
        r = submit(
            c,
            "operator",
            body(note(roots / "t2b", "acme"), "acme", "t2b", tenant_from_records=True),
        )
        assert r.status_code == 202, r.text
        wait(c, r.json()["id"])
        assert c.get(f"/v1/admin/jobs/{r.json()['id']}", headers=auth("admin")).status_code == 404


def test_sources_outside_the_ingest_roots_are_refused(
    srv: Running, roots: Path, tmp_path: Path
) -> None:
    outside = note(tmp_path / "outside", "acme")
    (roots / "t3").mkdir()
    (roots / "t3" / "escape").symlink_to(outside, target_is_directory=True)
    mixed = note(roots / "t3" / "mixed", "acme")
    (mixed / "leak.md").symlink_to(outside / "n.md")
    cases = [
        outside,  # plainly outside
        roots / "t3" / "escape",  # a symlink inside the root leading out
        roots / "t3" / "escape" / "n.md",  # a file through it
        roots / "t3" / ".." / ".." / outside.parent.name,  # dot-dot out of the root
        mixed,  # a folder with one file linking out
    ]
    with srv.client() as c:
        for path in cases:
            r = submit(c, "operator", body(path, "acme", "t3"))
            assert r.status_code in (403, 422), (path, r.text)
            if r.status_code == 403:
                assert error(r)["field"] == "sources[0].path"
                assert "RAGCTX_INGEST_ROOTS" in error(r)["message"], r.text
        assert submit(c, "operator", body(mixed, "acme", "t3")).status_code == 403
        # a symlink that stays inside the roots is fine
        (mixed / "leak.md").unlink()
        (mixed / "again.md").symlink_to(note(roots / "t3-other", "acme") / "n.md")
        r = submit(c, "operator", body(mixed, "acme", "t3"))
        assert r.status_code == 202, r.text
        assert wait(c, r.json()["id"])["state"] == "succeeded"


def test_fifos_are_refused_or_reported_never_a_hang(srv: Running, roots: Path) -> None:
    folder = note(roots / "t4", "acme")
    fifo = roots / "t4-fifo.md"
    os.mkfifo(fifo)
    os.mkfifo(folder / "pipe.md")
    with srv.client() as c:
        r = submit(c, "operator", body(fifo, "acme", "t4-fifo"))
        assert r.status_code == 422 and error(r)["field"] == "sources[0].path"
        assert "fifo" in error(r)["message"]
        r = submit(c, "operator", body(folder, "acme", "t4"))
        assert r.status_code == 202, r.text
        job = wait(c, r.json()["id"])  # hung forever before: opening a fifo blocks
    assert job["state"] == "failed" and job["report"]["added"] == 1, job
    problems = job["report"]["problems"]
    assert any("pipe.md" in str(p) and "fifo" in str(p) for p in problems), problems


def test_operator_keys_in_the_file_and_the_cli(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    result = CliRunner().invoke(
        cli(),
        [
            "keys",
            "add",
            "--tenant",
            "acme",
            "--groups",
            "support",
            "--id",
            "ops",
            "--operator",
            "--keys-file",
            str(keys),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"operator": true' in result.stdout and '"admin": true' in result.stdout
    (grant,) = load_keys(keys).values()
    assert grant.admin and grant.operator
    listed = CliRunner().invoke(cli(), ["keys", "list", "--keys-file", str(keys)])
    assert listed.stdout.strip() == "ops\tacme\tsupport\tadmin\toperator"
    # operator without admin, or not a boolean: the file is refused naming the entry
    bad = tmp_path / "bad.toml"
    text = keys.read_text("utf-8")
    bad.write_text(text.replace("admin = true", "admin = false"), "utf-8")
    with pytest.raises(KeysFileError, match=r"ops.*operator"):
        load_keys(bad)
    bad.write_text(text.replace("operator = true", 'operator = "yes"'), "utf-8")
    with pytest.raises(KeysFileError, match=r"'operator' must be true or false"):
        load_keys(bad)
    # a legacy admin key (no operator field) is a tenant admin
    bad.write_text(text.replace("operator = true\n", ""), "utf-8")
    (legacy,) = load_keys(bad).values()
    assert legacy.admin and not legacy.operator


def test_a_symlink_added_while_the_job_waits_fails_it(
    srv: Running, roots: Path, tmp_path: Path
) -> None:
    busy = roots / "t5-busy"
    for i in range(20):  # a job that runs a second or more, so the next one waits behind it
        note(busy, "acme", f"n{i:02d}.md")
    later = note(roots / "t5", "acme")
    outside = note(tmp_path / "outside", "acme")
    with srv.client() as c:
        first = submit(c, "operator", body(busy, "acme", "t5-busy"))
        r = submit(c, "operator", body(later, "acme", "t5"))
        assert first.status_code == r.status_code == 202, r.text
        (later / "leak.md").symlink_to(outside / "n.md")  # after the submit-time check
        job = wait(c, r.json()["id"])
        assert wait(c, first.json()["id"])["state"] == "succeeded"
    assert job["state"] == "failed" and job["report"] is None, job
    assert "RAGCTX_INGEST_ROOTS" in job["error"] and "leak.md" in job["error"]
