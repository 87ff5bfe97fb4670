"""bench/update_readme.py: report bodies go between their markers, nothing else moves."""

from __future__ import annotations

from pathlib import Path

from tests.bench.loader import load_bench

README = """# Project

Intro stays.

<!-- bench:compare-scifact -->
old scifact figures
<!-- /bench:compare-scifact -->

Between stays.

<!-- bench:scale -->
old scale figures
<!-- /bench:scale -->
"""


def test_blocks_take_their_reports_and_the_rest_is_kept(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "compare-scifact.md").write_text("# ragctx beside\n\n| a | b |\n", "utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(README, "utf-8")
    module = load_bench("update_readme")
    assert module.main(["--results", str(results), "--readme", str(readme)]) == 0
    text = readme.read_text("utf-8")
    assert "#### ragctx beside\n\n| a | b |\n<!-- /bench:compare-scifact -->" in text
    assert "old scifact figures" not in text
    # no scale report yet: its block keeps the old figures
    assert "old scale figures" in text
    assert text.startswith("# Project\n\nIntro stays.") and "Between stays." in text
    # idempotent
    assert module.main(["--results", str(results), "--readme", str(readme)]) == 0
    assert readme.read_text("utf-8") == text


def test_a_readme_without_blocks_is_an_error(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# nothing here\n", "utf-8")
    module = load_bench("update_readme")
    assert module.main(["--results", str(tmp_path), "--readme", str(readme)]) == 1
    assert readme.read_text("utf-8") == "# nothing here\n"
