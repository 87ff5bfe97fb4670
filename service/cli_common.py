"""What every ``ragctx`` command shares: the consoles, logging to stderr, list flags."""

from __future__ import annotations

import logging
import sys

from rich.console import Console

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
