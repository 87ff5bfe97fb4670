"""``ragctx reranker``: a cross-encoder adapted to one collection, without labels.

Registered by ``service.cli`` as ``app.add_typer(reranker_app, name="reranker")``::

    ragctx reranker adapt --collection C --out DIR [--max-steps N] [--time-budget 25m]
                          [--seed S] [--resume] [--json]

The store and the encoders are the settings' (RAGCTX_QDRANT_PATH, RAGCTX_DENSE_MODEL, ...), the
ones the collection was ingested with. Training is ``retrieval.adapt``; the folder it writes is
what RAGCTX_RERANK_MODEL points at. Exit codes: 0 ok, 2 bad usage or input (an unknown or empty
collection, an unusable output folder, a budget too small to train one step).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from core.errors import UnknownCollectionError
from service.cli_common import err_console, out_console, setup_logging

reranker_app = typer.Typer(
    help="Adapt a cross-encoder to a collection (no labels needed).", no_args_is_help=True
)


@reranker_app.command("adapt")
def adapt_command(
    *,
    collection: Annotated[str, typer.Option(help="The collection to train on (its own chunks).")],
    out: Annotated[Path, typer.Option(help="Model folder to write (new or empty; see --resume).")],
    max_steps: Annotated[int, typer.Option(min=1, help="Stop after this many steps.")] = 1000,
    time_budget: Annotated[
        str | None, typer.Option(help="Stop after this long: 90, 90s, 25m, 1h (default: none).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the pair order, negatives and head.")] = 0,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the checkpoint in --out.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar (stderr).")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Train a cross-encoder on COLLECTION's own pairs and write it into OUT."""
    from retrieval.adapt import AdaptParams, AdaptStatus, adapt, check_out, parse_duration
    from service.wiring import load_encoders, load_settings, opened_store

    setup_logging(verbose)
    budget = None if time_budget is None else parse_duration(time_budget)
    settings = load_settings()
    params = AdaptParams(max_steps=max_steps, time_budget_s=budget, seed=seed)
    with opened_store(settings, owner="ragctx reranker adapt") as store:
        # before the models load, so a bad collection or folder fails at once
        if not store.has_collection(collection):
            raise UnknownCollectionError(collection, available=store.collections())
        check_out(out, resume=resume)
        encoders = load_encoders(settings)
        if not progress or as_json:
            result = adapt(store, collection, encoders, out, params, resume=resume)
        else:
            with Progress(
                TextColumn("adapt"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.3f}  {task.fields[pairs]:,} pairs"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=err_console,
            ) as bars:
                task = bars.add_task("adapt", total=max_steps, loss=float("nan"), pairs=0)

                def show(s: AdaptStatus) -> None:
                    bars.update(task, completed=s.step, loss=s.loss, pairs=s.pairs)

                result = adapt(
                    store, collection, encoders, out, params, resume=resume, progress=show
                )
    if as_json:
        sys.stdout.write(json.dumps(asdict(result)) + "\n")
        return
    out_console.print(
        f"adapted: {result.steps:,} steps, {result.pairs:,} pairs, {result.seconds:,.1f} s "
        f"(stopped by {result.stopped_by}); model in {result.out}; use it with "
        f"RAGCTX_RERANK_MODEL={result.out}",
        highlight=False,
        soft_wrap=True,
    )
