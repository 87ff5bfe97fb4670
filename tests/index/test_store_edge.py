"""The conformance suite on Qdrant Edge, plus what only the embedded store has: its lock."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import StoreLockedError
from index.edge import EdgeStore
from tests.contracts.store_suite import CORPUS, DIM, StoreSuite


class TestEdgeStore(StoreSuite):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[EdgeStore]:
        s = EdgeStore(tmp_path / "store")
        yield s
        s.close()


def test_points_survive_close_and_reopen(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path)
    store.create_collection("c", dense_dim=DIM, meta={})
    store.upsert("c", CORPUS)
    store.close()
    store.close()  # idempotent
    again = EdgeStore(tmp_path)
    assert again.count("c") == len(CORPUS)
    again.optimize("c")
    assert again.count("c") == len(CORPUS)
    again.close()


def test_second_open_in_this_process_is_refused(tmp_path: Path) -> None:
    first = EdgeStore(tmp_path)
    with pytest.raises(StoreLockedError, match=r"held by ragctx \(pid \d+\)"):
        EdgeStore(tmp_path)
    first.close()
    EdgeStore(tmp_path).close()


def test_another_process_gets_a_clear_message(tmp_path: Path) -> None:
    holder = EdgeStore(tmp_path, owner="ragctx serve")
    code = (
        "import sys\n"
        "from index.edge import EdgeStore\n"
        "from core.errors import StoreLockedError\n"
        f"try:\n    EdgeStore(__import__('pathlib').Path({str(tmp_path)!r}))\n"
        "except StoreLockedError as e:\n    print(e); sys.exit(3)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    holder.close()
    assert proc.returncode == 3, proc.stderr
    assert "held by ragctx serve" in proc.stdout
    assert "one process owns an embedded store" in proc.stdout
