"""Run the ``ragctx`` command in this process, as a user would type it (the console script
would run the installed copy, not this checkout)."""

from __future__ import annotations

import sys

import pytest
import typer

from service.cli import main
from service.cli_serve import register


def ragctx(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """The exit code of ``ragctx ARGS...``."""
    monkeypatch.setattr(sys, "argv", ["ragctx", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def keys_cli() -> typer.Typer:
    """A typer app holding only the ``serve`` and ``keys`` commands, for ``CliRunner``."""
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Test root."""

    register(app)
    return app
