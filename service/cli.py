"""The ``ragctx`` command line (typer).

Every command that reports takes ``--json`` and then prints exactly one JSON object on stdout;
progress and logs go to stderr. Exit codes: 0 ok, 1 failed items or a failed check, 2 bad usage
or input (DESIGN.md §5).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from core.errors import (
    InvalidInputError,
    RagctxError,
    StoreLockedError,
    UnknownCollectionError,
)
from service.cli_common import (
    err_console,
    out_console,
    progress_bars,
    setup_logging,
    split_values,
)
from service.settings import Settings
from service.wiring import chunking_params, load_encoders, load_settings, opened_store, sync_options

if TYPE_CHECKING:
    from rich.progress import Progress

    from ingest import SourceSpec, SyncOptions, SyncReport

app = typer.Typer(
    name="ragctx",
    help="RAG context engineering: ingest sources into Qdrant, retrieve, assemble context.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("ragctx")


def main() -> None:
    """Console-script entry point: domain errors become messages and exit codes."""
    try:
        # Without standalone mode click returns a command's exit code instead of exiting.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except RagctxError as err:
        err_console.print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        sys.exit(err.exit_code)
    except Exception as err:
        # usage errors from click (typer vendors its own copy, so match by shape)
        show, exit_code = getattr(err, "show", None), getattr(err, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            sys.exit(exit_code)
        if type(err).__name__ == "Abort":
            sys.exit(130)
        raise


# ---------------------------------------------------------------------------------------------
# ingest


@app.command()
def ingest(
    sources: Annotated[
        list[Path], typer.Argument(help="Files, folders, JSONL files, BEIR folders.")
    ],
    collection: Annotated[str | None, typer.Option(help="Target collection.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant for documents that name none.")] = None,
    groups: Annotated[
        list[str] | None, typer.Option(help="Access groups for documents that name none.")
    ] = None,
    tags: Annotated[list[str] | None, typer.Option(help="Tags added to every document.")] = None,
    include: Annotated[list[str] | None, typer.Option(help="Glob of files to take.")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Glob of files to skip.")] = None,
    source_name: Annotated[
        str | None, typer.Option(help="Name of the sync scope (default: the path).")
    ] = None,
    kind: Annotated[str, typer.Option(help="auto | files | jsonl | beir")] = "auto",
    field_id: Annotated[str, typer.Option(help="JSON record field holding the id.")] = "id",
    field_text: Annotated[str, typer.Option(help="JSON record field holding the text.")] = "text",
    field_title: Annotated[str, typer.Option(help="JSON record field: title.")] = "title",
    field_updated_at: Annotated[str, typer.Option(help="JSON record field: date.")] = "updated_at",
    field_tenant: Annotated[str, typer.Option(help="JSON record field: tenant.")] = "tenant",
    field_groups: Annotated[str, typer.Option(help="JSON record field: groups.")] = "groups",
    field_tags: Annotated[str, typer.Option(help="JSON record field: tags.")] = "tags",
    partition: Annotated[
        str | None, typer.Option(help="Take hash partition i/n of each source (e.g. 0/4).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan; write nothing.")] = False,
    tenant_from_records: Annotated[
        bool,
        typer.Option(
            "--tenant-from-records",
            help="Per-record tenancy: each document's own tenant field decides its tenant "
            "(multi-tenant exports); without it a document naming another tenant fails.",
        ),
    ] = False,
    allow_mass_delete: Annotated[
        bool,
        typer.Option(
            "--allow-mass-delete",
            help="Delete even when a source yields no documents, or would lose more than "
            "RAGCTX_MASS_DELETE_FRACTION of them.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars (stderr).")] = True,
    admin_key: Annotated[
        str | None,
        typer.Option(
            help="Admin key to hand the job to a server holding the store "
            "(default RAGCTX_ADMIN_KEY)."
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Sync sources into a collection: add new, replace changed, delete vanished documents.

    When a running `ragctx serve` holds the embedded store, the job is handed to it (admin key)
    and followed with the same progress bars.
    """
    from ingest import FieldMapping, Partition, SourceSpec

    setup_logging(verbose)
    settings = load_settings(collection=collection)
    fields = FieldMapping(
        id=field_id,
        text=field_text,
        title=field_title,
        updated_at=field_updated_at,
        tenant=field_tenant,
        groups=field_groups,
        tags=field_tags,
    )
    if source_name is not None and len(sources) > 1:
        raise InvalidInputError(
            "--source-name names one source; pass one SOURCE with it", field="source_name"
        )
    specs = [
        SourceSpec(
            path=path,
            name=source_name,
            include=split_values(include),
            exclude=split_values(exclude),
            tenant=tenant or settings.default_tenant,
            groups=split_values(groups) or tuple(settings.default_groups),
            tags=split_values(tags),
            fields=fields,
            kind=kind,
            tenant_from_records=tenant_from_records,
        )
        for path in sources
    ]
    for spec in specs:
        if not spec.path.exists():
            raise InvalidInputError(
                f"source {str(spec.path)!r} does not exist; pass a file or folder path",
                field="source",
                value=str(spec.path),
            )
    options = sync_options(
        settings,
        dry_run=dry_run,
        partition=Partition.parse(partition) if partition else None,
        allow_mass_delete=allow_mass_delete,
    )
    show = progress and not as_json
    try:
        report = _run_sync(settings, specs, options, show=show)
    except StoreLockedError:
        from service.handoff import ingest_via_server

        handed = ingest_via_server(
            settings, specs, options, show_progress=show, admin_key=admin_key
        )
        if handed is None:
            raise
        report = handed
    summary = report.to_dict()
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        _print_sync_report(summary)
    for withheld in report.withheld:
        # also with --json: the JSON names it, and stderr tells a person why the exit is 1
        err_console.print(f"[red]deletions withheld[/red] {withheld.message}", highlight=False)
    if report.failed or report.withheld:
        raise typer.Exit(1)


def _run_sync(
    settings: Settings, specs: list[SourceSpec], options: SyncOptions, *, show: bool
) -> SyncReport:
    from ingest import Chunker, sync

    with opened_store(settings, owner="ragctx ingest") as store, progress_bars(show) as bars:
        encoders = load_encoders(settings)
        progress = None if bars is None else _SyncBars(bars)
        report = sync(
            specs,
            collection=settings.collection,
            store=store,
            encoders=encoders,
            chunker=Chunker.for_encoder(chunking_params(settings), encoders.dense),
            options=options,
            progress=progress,
        )
        if progress is not None:
            progress.finish()
        return report


class _SyncBars:
    """A sync's progress as three bars; a file may hold many documents (JSONL, BEIR), so the
    document count has no total until the end."""

    def __init__(self, bars: Progress) -> None:
        self._bars = bars
        self._docs = bars.add_task("documents", total=None)
        self._chunks = bars.add_task("chunks", total=None)
        self._embedded = bars.add_task("embedded", total=None)

    def documents(self, n: int) -> None:
        self._bars.advance(self._docs, n)

    def chunks(self, n: int) -> None:
        self._bars.advance(self._chunks, n)
        self._bars.update(self._embedded, total=self._bars.tasks[self._chunks].completed)

    def embedded(self, n: int) -> None:
        self._bars.advance(self._embedded, n)

    def finish(self) -> None:
        for task in (self._docs, self._chunks):
            self._bars.update(task, total=self._bars.tasks[task].completed)


def _print_sync_report(summary: dict[str, Any]) -> None:
    title = "ingest plan (dry run)" if summary["dry_run"] else "ingest summary"
    table = Table(title=f"{title}: {summary['collection']}")
    for col in ("added", "updated", "unchanged", "deleted", "failed", "chunks", "seconds"):
        table.add_column(col, justify="right")
    table.add_row(
        str(summary["added"]),
        str(summary["updated"]),
        str(summary["unchanged"]),
        str(summary["deleted"]),
        str(summary["failed"]),
        f"+{summary['chunks_written']} / -{summary['chunks_deleted']}",
        f"{summary['seconds']:.2f}",
    )
    out_console.print(table)
    if summary["dry_run"] and summary["plan"]:
        plan = Table(title="plan")
        for col in ("action", "source", "doc_id"):
            plan.add_column(col)
        for row in summary["plan"]:
            plan.add_row(row["action"], row["source"], row["doc_id"])
        out_console.print(plan)
    for problem in summary["problems"]:
        where = problem["path"] + (f":{problem['line']}" if problem["line"] is not None else "")
        err_console.print(f"[yellow]failed[/yellow] {where}: {problem['message']}", highlight=False)
    for note in summary["notes"]:
        err_console.print(f"[yellow]note[/yellow] {note}", highlight=False)
    if summary["optimized"]:
        err_console.print("optimized the collection (HNSW built)")


# ---------------------------------------------------------------------------------------------
# stats, optimize


@app.command()
def stats(
    collection: Annotated[str | None, typer.Option(help="Collection to count.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Documents, chunks and sources a collection holds."""
    from ingest import stats as collection_stats

    settings = load_settings(collection=collection)
    with opened_store(settings, owner="ragctx stats") as store:
        result = collection_stats(store, settings.collection).to_dict()
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    table = Table(
        title=f"collection {result['collection']}: {result['documents']} documents, "
        f"{result['chunks']} chunks"
    )
    table.add_column("source")
    table.add_column("documents", justify="right")
    table.add_column("chunks", justify="right")
    for source, counts in result["sources"].items():  # type: ignore[attr-defined]
        table.add_row(source, str(counts["documents"]), str(counts["chunks"]))
    out_console.print(table)


@app.command()
def optimize(
    collection: Annotated[str | None, typer.Option(help="Collection to optimize.")] = None,
) -> None:
    """Build the HNSW index and merge segments (blocking; never run it on a serving store)."""
    import time

    settings = load_settings(collection=collection)
    with opened_store(settings, owner="ragctx optimize") as store:
        if not store.has_collection(settings.collection):
            raise UnknownCollectionError(settings.collection, available=store.collections())
        started = time.perf_counter()
        store.optimize(settings.collection)
        err_console.print(
            f"optimized {settings.collection} in {time.perf_counter() - started:.1f} s"
        )


# ---------------------------------------------------------------------------------------------
# policy

policy_app = typer.Typer(help="Validate context policies and print their JSON Schema.")
app.add_typer(policy_app, name="policy")


@policy_app.command("check")
def policy_check(
    files: Annotated[list[Path], typer.Argument(help="Policy files or folders of *.yaml.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Validate policies (for a deploy pipeline): every problem in every file; exit 1 if any."""
    from assembler.policy import check_policies

    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise InvalidInputError(
            f"no such policy file or folder: {', '.join(missing)}", field="files", value=missing
        )
    problems = check_policies(files)
    if as_json:
        sys.stdout.write(
            json.dumps({"ok": not problems, "problems": [str(p) for p in problems]}) + "\n"
        )
    else:
        for problem in problems:
            err_console.print(f"[red]invalid[/red] {problem}", highlight=False, soft_wrap=True)
        if not problems:
            err_console.print(f"ok: {len(files)} path(s) checked, no problems")
    if problems:
        raise typer.Exit(1)


@policy_app.command("schema")
def policy_schema() -> None:
    """Print the policy file's JSON Schema."""
    from assembler.policy import policy_json_schema

    sys.stdout.write(json.dumps(policy_json_schema(), indent=2) + "\n")


def _register_subcommands() -> None:
    from service.cli_eval import eval_app
    from service.cli_mcp import mcp
    from service.cli_query import query
    from service.cli_reranker import reranker_app
    from service.cli_serve import register
    from service.cli_traces import traces_app

    app.command()(query)
    app.command()(mcp)
    app.add_typer(eval_app, name="eval")
    app.add_typer(traces_app, name="traces")
    app.add_typer(reranker_app, name="reranker")
    register(app)


_register_subcommands()
