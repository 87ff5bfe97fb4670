"""bench/scale.py at tiny sizes: real embedded store, files written, sane values."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.bench.loader import load_bench


def _module() -> ModuleType:
    return load_bench("scale")


def test_scale_writes_sane_report(tmp_path: Path) -> None:
    result = _module().main(["--sizes", "300,600", "--queries", "5", "--out-dir", str(tmp_path)])
    rows = result["sizes"]
    assert [r["points"] for r in rows] == [300, 600]
    for r in rows:
        assert r["upsert_points_per_s"] > 0 and r["disk_mb"] > 0 and r["peak_rss_mb"] > 0
        for key in ("query_ms_before_optimize", "query_ms_after_optimize"):
            assert 0 < r[key]["median"] <= r[key]["p95"]
        assert set(r["leg_ms_after_optimize"]) == {"dense_leg", "bm25_leg", "payload_by_id"}
        assert all(leg["median"] > 0 for leg in r["leg_ms_after_optimize"].values())
    assert json.loads((tmp_path / "scale.json").read_text("utf-8")) == result
    assert "| 600 |" in (tmp_path / "scale.md").read_text("utf-8")
    assert (tmp_path / "scale.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("sizes", ["ten", "", "5"])
def test_scale_rejects_bad_sizes(sizes: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        _module().main(["--sizes", sizes, "--out-dir", str(tmp_path)])
