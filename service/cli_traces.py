"""``ragctx traces``: the operator's view of the trace store (every tenant), and retention.

Registered by ``service.cli`` as ``app.add_typer(traces_app, name="traces")``::

    ragctx traces list [--tenant T] [--since ISO] [--limit 50] [--json] [--db URL]
    ragctx traces purge [--older-than DAYS] [--tenant T] [--yes] [--json] [--db URL]

The database is RAGCTX_TRACE_DB (``--db`` overrides it); unset, ``traces.sqlite3`` next to the
store folder, as the server uses. Exit codes: 0 ok, 1 the database cannot be reached, 2 bad
usage or input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from core.errors import InvalidInputError
from service.errors import TracesUnavailableError

if TYPE_CHECKING:
    from service.traces import TraceStore

traces_app = typer.Typer(
    help="Read recorded answers (every tenant) and purge old ones.", no_args_is_help=True
)
out_console = Console()
err_console = Console(stderr=True)
MAX_LISTED = 10_000

DbOpt = Annotated[
    str | None, typer.Option("--db", help="sqlite:/// or postgresql:// URL (RAGCTX_TRACE_DB).")
]
TenantOpt = Annotated[str | None, typer.Option(help="Only this tenant's traces.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


@contextmanager
def open_trace_db(db: str | None) -> Iterator[TraceStore]:
    """The trace store of ``--db`` or the settings; its errors as usage (2) or unavailable (1)."""
    from sqlalchemy.exc import SQLAlchemyError

    from service.wiring import load_settings, trace_db_url, trace_store

    settings = load_settings(trace_db=db)
    try:
        store = trace_store(settings)
    except ValueError as exc:  # an unsupported or malformed URL
        raise InvalidInputError(f"{exc}; fix --db or RAGCTX_TRACE_DB") from exc
    except SQLAlchemyError as exc:
        raise TracesUnavailableError(
            f"the trace store {_shown(trace_db_url(settings))} cannot be opened: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        ) from exc
    try:
        yield store
    except SQLAlchemyError as exc:
        raise TracesUnavailableError(
            f"the trace store failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        ) from exc
    finally:
        store.close()


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInputError(
            f"--since {value!r} is not an ISO 8601 date or time (e.g. 2026-12-01 or "
            "2026-12-01T09:00:00Z)"
        ) from exc
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


@traces_app.command("list")
def list_traces(
    tenant: TenantOpt = None,
    since: Annotated[
        str | None, typer.Option(help="Only traces from this time on (ISO 8601; naive is UTC).")
    ] = None,
    limit: Annotated[
        int, typer.Option(help=f"At most this many, newest first (1-{MAX_LISTED}).")
    ] = 50,
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """List recorded answers, newest first, with their feedback verdicts."""
    if not 1 <= limit <= MAX_LISTED:
        raise InvalidInputError(f"--limit {limit}: use 1 to {MAX_LISTED}")
    start = _since(since)
    with open_trace_db(db) as store:
        traces = store.list(tenant, since=start, limit=limit)
    if as_json:
        sys.stdout.write(json.dumps({"traces": traces}, ensure_ascii=False) + "\n")
        return
    table = Table("id", "created", "tenant", "route", "collection", "items", "verdicts", "query")
    for t in traces:
        table.add_row(
            t["id"],
            t["created_at"][:19],
            t["tenant"],
            t["route"],
            t["collection"],
            str(len(t["pack"].get("items", []))),
            ",".join(f["verdict"] for f in t["feedback"]) or "-",
            (t["query"] or f"sha256:{t['query_hash'][:12]}")[:60],
        )
    out_console.print(table)
    err_console.print(f"{len(traces)} traces")


@traces_app.command("purge")
def purge(
    older_than: Annotated[
        int | None,
        typer.Option(help="Delete traces older than this many days (RAGCTX_TRACE_RETENTION_DAYS)."),
    ] = None,
    tenant: TenantOpt = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask; needed without a terminal.")
    ] = False,
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Delete traces (and their feedback) older than a number of days."""
    from service.wiring import load_settings

    days = older_than if older_than is not None else load_settings().trace_retention_days
    if days < 0:
        raise InvalidInputError(f"--older-than {days}: use a number of days, 0 or more")
    if older_than is None and days == 0:
        raise InvalidInputError(
            "RAGCTX_TRACE_RETENTION_DAYS is 0 (keep traces forever); pass --older-than DAYS "
            "to purge anyway"
        )
    cutoff = datetime.now(UTC) - timedelta(days=days)
    scope = f"tenant {tenant!r}" if tenant else "every tenant"
    with open_trace_db(db) as store:
        doomed = store.count_older(older_than=cutoff, tenant=tenant)
        if doomed and not yes:
            if not sys.stdin.isatty():
                raise InvalidInputError(
                    f"{doomed} traces of {scope} older than {days} days would be deleted; "
                    "pass --yes to confirm without a terminal"
                )
            if not typer.confirm(
                f"Delete {doomed} traces of {scope} older than {days} days?", err=True
            ):
                raise typer.Exit(1)
        purged = store.purge(older_than=cutoff, tenant=tenant) if doomed else 0
    if as_json:
        out = {"purged": purged, "older_than_days": days, "cutoff": cutoff.isoformat()}
        sys.stdout.write(json.dumps({**out, "tenant": tenant}) + "\n")
    else:
        err_console.print(f"purged {purged} traces of {scope} older than {days} days")
