"""What every ``ragctx`` command shares: the consoles, logging to stderr, list flags, progress
bars."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

err_console = Console(stderr=True)
out_console = Console()


def setup_logging(verbose: bool) -> None:
    """Log to stderr: INFO with ``--verbose``, else WARNING."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )


def split_values(values: list[str] | None) -> tuple[str, ...]:
    """Accept repeated flags and comma-separated values alike."""
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return tuple(out)


@contextmanager
def progress_bars(show: bool) -> Iterator[Progress | None]:
    """Progress bars on stderr while the block runs, or None when they are not shown
    (``--no-progress``, ``--json``)."""
    if not show:
        yield None
        return
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    ) as bars:
        yield bars
