"""``ragctx query``: retrieval + assembly against the local store, the same pack as the endpoint.

The principal comes from ``--tenant``/``--groups`` (a local operator has the store itself, so
there is no API key to take it from). ``--json`` prints the HTTP answer's exact shape.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from service.auth import ApiKey

out_console = Console()
err_console = Console(stderr=True)


def _json_list(path: Path | None, option: str) -> list[Any] | None:
    """A JSON array from a file (``-``: standard input), or a usage error naming the option."""
    from core.errors import InvalidInputError

    if path is None:
        return None
    try:
        raw = sys.stdin.read() if str(path) == "-" else path.read_text("utf-8")
        value = json.loads(raw)
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{option} {path}: cannot read it ({err})", field=option) from err
    except json.JSONDecodeError as err:
        msg = f"{option} {path}: not JSON ({err.msg} at line {err.lineno}); give a JSON array"
        raise InvalidInputError(msg, field=option) from err
    if not isinstance(value, list):
        msg = f"{option} {path}: a JSON {type(value).__name__}, not an array; give a JSON array"
        raise InvalidInputError(msg, field=option)
    return value


def query(
    text: Annotated[
        str | None,
        typer.Argument(help="The question; optional with --messages (the last user turn)."),
    ] = None,
    budget: Annotated[
        int, typer.Option(help="Token budget of the whole prompt, chat framing included.")
    ] = 1500,
    messages: Annotated[
        Path | None,
        typer.Option(help="JSON file (- for stdin): the conversation, OpenAI chat form."),
    ] = None,
    items: Annotated[
        Path | None,
        typer.Option(help="JSON file: memory, tool outputs, documents, examples to pack too."),
    ] = None,
    prompt_format: Annotated[
        str, typer.Option("--format", help="openai | anthropic | text")
    ] = "openai",
    model: Annotated[
        str | None, typer.Option(help="Reader model (e.g. gpt-4o): sets the encoding.")
    ] = None,
    policy: Annotated[str | None, typer.Option(help="Policy name (default: settings).")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant to act as.")] = None,
    groups: Annotated[list[str] | None, typer.Option(help="Access groups to act as.")] = None,
    collection: Annotated[str | None, typer.Option(help="Collection to search.")] = None,
    encoding: Annotated[str | None, typer.Option(help="cl100k_base | o200k_base")] = None,
    top_k: Annotated[int, typer.Option(help="Candidates handed to the assembler.")] = 50,
    debug: Annotated[bool, typer.Option(help="Per-candidate ranks and scores.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the HTTP answer's JSON.")] = False,
) -> None:
    """Retrieve and pack the whole prompt for a question or a conversation; print the context,
    what was packed and dropped, and (with --messages or --items) every part's fate."""
    from pydantic import ValidationError

    from core.errors import InvalidInputError, validation_message
    from service.api.schemas import ContextRequest
    from service.cli_common import split_values
    from service.context import prepare, run_pipeline
    from service.telemetry import build_telemetry
    from service.wiring import build_runtime, load_models, load_settings, opened_store

    settings = load_settings(collection=collection)
    try:
        fields: dict[str, Any] = {"encoding": encoding} if encoding is not None else {}
        body = ContextRequest.model_validate(
            {
                **fields,
                "query": text,
                "messages": _json_list(messages, "--messages"),
                "items": _json_list(items, "--items"),
                "format": prompt_format,
                "model": model,
                "budget_tokens": budget,
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
    if messages is not None or items is not None:
        _print_parts(data)
    policy_out = data["policy"]
    err_console.print(
        f"policy {policy_out['name']} v{policy_out['version']} · trace {data['trace']['trace_id']}"
    )


def _print_parts(data: dict[str, Any]) -> None:
    """The whole prompt's sections and parts, as tables."""
    sections = Table(
        title=f"prompt: {data['prompt_tokens']}/{data['budget_tokens']} tokens "
        f"({data['budget_left']} left; {data['framing']})"
    )
    for col in ("section", "tokens", "parts", "floor", "ceiling"):
        sections.add_column(col)
    for section in data["sections"]:
        ceiling = section.get("ceiling")
        sections.add_row(
            section["name"],
            str(section["tokens"]),
            str(section["parts"]),
            str(section["floor"]),
            "-" if ceiling is None else str(ceiling),
        )
    out_console.print(sections)
    parts = Table(title="parts")
    for col in ("id", "kind", "status", "tokens", "reason", "detail"):
        parts.add_column(col)
    for part in data["parts"]:
        parts.add_row(
            part["id"],
            part["kind"],
            part["status"],
            str(part["tokens"]),
            part.get("reason") or "",
            part.get("detail", ""),
        )
    out_console.print(parts)
