"""``ragctx eval export --from-traces``: a BEIR folder made of judged traces (registered on
``eval_app`` by ``service.cli_eval``; the work is :func:`eval.export.export_from_traces`).

Exit codes: 0 written, 1 the trace or document store cannot be reached, 2 bad usage or input
(a bad date or verdict, a non-empty --out, no judged trace matching).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from service.cli_common import err_console, out_console, split_values


def export_command(
    *,
    out: Annotated[Path, typer.Option(help="Folder to write the BEIR files into (new or empty).")],
    from_traces: Annotated[
        bool, typer.Option("--from-traces", help="Build the set from judged traces (required).")
    ] = False,
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant's traces (needed when several match).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Traces from this time on: 7d, 12h or ISO 8601 (UTC).")
    ] = None,
    verdict: Annotated[
        list[str] | None,
        typer.Option(help="Feedback verdicts to use: accepted, edited, rejected (default all)."),
    ] = None,
    collection: Annotated[
        str | None, typer.Option(help="Only traces of this collection (needed when several).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the export files in a non-empty --out.")
    ] = False,
    db: Annotated[
        str | None, typer.Option("--db", help="Trace database URL (RAGCTX_TRACE_DB).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Write queries, qrels and the current corpus of judged traces as a BEIR folder."""
    from core.errors import InvalidInputError
    from eval.export import check_out, export_from_traces, parse_since, parse_verdicts
    from service import wiring
    from service.cli_traces import open_trace_db

    if not from_traces:
        raise InvalidInputError(
            "ragctx eval export needs a source: pass --from-traces (the only one so far)",
            field="from_traces",
        )
    start = parse_since(since)
    verdicts = parse_verdicts(split_values(verdict))
    check_out(out, force=force)  # before any store is opened
    settings = wiring.load_settings(trace_db=db)
    if settings.qdrant_url is None and not settings.qdrant_path.is_dir():
        raise InvalidInputError(
            f"the embedded store {str(settings.qdrant_path)!r} does not exist; point "
            "RAGCTX_QDRANT_PATH (or RAGCTX_QDRANT_URL) at the store that served the traces",
            field="qdrant_path",
        )
    with (
        open_trace_db(db) as traces,
        wiring.opened_store(settings, owner="ragctx eval export") as store,
    ):
        result = export_from_traces(
            traces,
            store,
            out,
            tenant=tenant,
            since=start,
            verdicts=verdicts,
            collection=collection,
            force=force,
        )
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
    else:
        out_console.print(
            f"wrote {out}: {result.queries} queries of tenant {result.tenant!r} "
            f"({result.relevant} relevant of {result.judgments} judgments), {result.documents} "
            f"documents of collection {result.collection!r}",
            highlight=False,
        )
    for trace_id in result.no_text:
        err_console.print(f"skipped trace {trace_id}: recorded without query text", highlight=False)
    for trace_id in result.no_relevant:
        err_console.print(
            f"skipped trace {trace_id}: no relevant current document", highlight=False
        )
    for doc_id in result.unwritable:
        err_console.print(
            f"[yellow]left out[/yellow]: document {doc_id!r}, its id holds a tab or a line break",
            highlight=False,
        )
    for d in result.deleted:
        item = f"document {d.doc_id}" if d.doc_id else f"chunk {d.chunk_id} (no document known)"
        err_console.print(
            f"[yellow]deleted since judged[/yellow]: {item}, judged {d.label} in trace "
            f"{d.trace_id}; left out of the qrels",
            highlight=False,
        )
