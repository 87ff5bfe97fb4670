"""``ragctx eval``: DATASET_DIR routes to ``run``; bad input is an error naming the path."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from core.errors import InvalidInputError
from service.cli_eval import eval_app


def test_a_folder_without_qrels_is_an_input_error_naming_the_path(tmp_path: Path) -> None:
    folder = tmp_path / "notbeir"
    folder.mkdir()
    (folder / "corpus.jsonl").write_text("")
    (folder / "queries.jsonl").write_text("")
    result = CliRunner().invoke(eval_app, [str(folder), "--no-save"])
    assert isinstance(result.exception, InvalidInputError)
    assert f"{folder.as_posix()}/qrels/test.tsv does not exist" in str(result.exception)


def test_help_lists_run_gate_and_subset() -> None:
    result = CliRunner().invoke(eval_app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "gate", "subset"):
        assert command in result.output


def test_subset_command_writes_a_beir_folder(tmp_path: Path) -> None:
    from tests.eval.test_datasets import write_beir

    source = write_beir(tmp_path / "toy", docs=12)
    result = CliRunner().invoke(
        eval_app,
        ["subset", str(source), str(tmp_path / "out"), "--queries", "1", "--other-docs", "3"],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "qrels" / "test.tsv").exists()
    assert len((tmp_path / "out" / "corpus.jsonl").read_text().splitlines()) == 5
