"""``eval`` is a generic top-level name: make sure the one imported is ragctx's."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO


def test_eval_is_the_ragctx_package() -> None:
    import eval as package

    assert package.__file__ is not None
    assert Path(package.__file__).resolve().parent == (REPO / "eval").resolve()
    assert {"run", "gate", "load_dataset", "subset", "EvalReport"} <= set(package.__all__)
