"""``ragctx query``: retrieval + assembly against the local store, the same pack as the endpoint.

The principal comes from ``--tenant``/``--groups`` (a local operator has the store itself, so
there is no API key to take it from). ``--json`` prints the HTTP answer's exact shape.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from service.auth import ApiKey

out_console = Console()
err_console = Console(stderr=True)


def query(
    text: Annotated[str, typer.Argument(help="The question to find context for.")],
    budget: Annotated[int, typer.Option(help="Token budget of the rendered context.")] = 1500,
    policy: Annotated[str | None, typer.Option(help="Policy name (default: settings).")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant to act as.")] = None,
    groups: Annotated[list[str] | None, typer.Option(help="Access groups to act as.")] = None,
    collection: Annotated[str | None, typer.Option(help="Collection to search.")] = None,
    encoding: Annotated[str, typer.Option(help="cl100k_base | o200k_base")] = "cl100k_base",
    top_k: Annotated[int, typer.Option(help="Candidates handed to the assembler.")] = 50,
    debug: Annotated[bool, typer.Option(help="Per-candidate ranks and scores.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the HTTP answer's JSON.")] = False,
) -> None:
    """Retrieve and assemble context for a question; print the context, packed and dropped."""
    from pydantic import ValidationError

    from core.errors import InvalidInputError, validation_message
    from service.api.schemas import ContextRequest
    from service.cli_common import split_values
    from service.context import prepare, run_pipeline
    from service.telemetry import build_telemetry
    from service.wiring import build_runtime, load_models, load_settings, opened_store

    settings = load_settings(collection=collection)
    try:
        body = ContextRequest.model_validate(
            {
                "query": text,
                "budget_tokens": budget,
                "encoding": encoding,
                "policy": policy,
                "collection": collection,
                "top_k": top_k,
                "debug": debug,
            }
        )
    except ValidationError as err:
        raise InvalidInputError(validation_message(err)) from err
    grant = ApiKey(
        id="cli",
        sha256="",
        tenant=tenant or settings.default_tenant,
        groups=split_values(groups) or tuple(settings.default_groups),
    )
    telemetry = build_telemetry("none")
    with opened_store(settings, owner="ragctx query") as store:
        runtime = build_runtime(
            settings, store=store, telemetry=telemetry, keys=None, models=load_models(settings)
        )
        try:
            answer = run_pipeline(prepare(body, grant, runtime), runtime)
        finally:
            if runtime.traces is not None:  # the one trace is written before the CLI exits
                runtime.traces.close()
                runtime.traces.store.close()
    telemetry.shutdown()
    data: dict[str, Any] = answer.response.model_dump(mode="json", exclude_none=True)
    if as_json:
        sys.stdout.write(json.dumps(data) + "\n")
        return
    out_console.print(data["context"], markup=False, highlight=False)
    packed = Table(title=f"packed: {data['tokens']}/{data['budget_tokens']} tokens")
    for col in ("#", "doc_id", "title", "tokens", "score", "updated_at"):
        packed.add_column(col)
    for item in data["items"]:
        packed.add_row(
            str(item["citation"]),
            item["doc_id"],
            item.get("title", ""),
            str(item["tokens"]),
            f"{item['score']:.4f}",
            str(item.get("updated_at", ""))[:10],
        )
    out_console.print(packed)
    dropped = Table(title=f"dropped: {len(data['dropped'])}")
    for col in ("doc_id", "reason", "detail"):
        dropped.add_column(col)
    for d in data["dropped"]:
        dropped.add_row(d["doc_id"], d["reason"], d.get("detail", ""))
    out_console.print(dropped)
    policy_out = data["policy"]
    err_console.print(
        f"policy {policy_out['name']} v{policy_out['version']} · trace {data['trace']['trace_id']}"
    )
