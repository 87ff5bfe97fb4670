"""CLI commands of the HTTP service: ``ragctx serve`` and ``ragctx keys add|list|revoke``.

``service/cli.py`` registers them with :func:`register`.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from core.errors import InvalidInputError
from service.cli_common import split_values
from service.settings import Settings

if TYPE_CHECKING:
    from service.auth import ApiKey

keys_app = typer.Typer(
    name="keys",
    help="API keys of the HTTP service (only hashes are stored).",
    no_args_is_help=True,
    add_completion=False,
)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``keys`` group to the main CLI."""
    app.command()(serve)
    app.add_typer(keys_app, name="keys")


def preflight(settings: Settings) -> None:
    """Fail before binding a port when the store, keys or policies cannot be used.

    Raises:
        StoreUnavailableError: the store is missing, locked, or lacks the default collection.
        KeysFileError: the keys file is missing or malformed.
        InvalidInputError: a non-loopback ``host`` while the keys file holds a demo key.
        PolicyError: a policy file is invalid.
        UnknownPolicyError: the default policy is not in the policy folder.
    """
    from service.wiring import key_ring, open_serving_store, policy_book

    refuse_demo_keys_off_loopback(settings.host, key_ring(settings).keys())
    policy_book(settings)
    open_serving_store(settings).close()


def refuse_demo_keys_off_loopback(host: str, keys: dict[str, ApiKey]) -> None:
    """Refuse to serve the published demo keys anywhere but on a loopback address.

    Raises:
        InvalidInputError: ``host`` is not loopback and ``keys`` holds a demo key.
    """
    from service.auth import demo_keys, is_loopback

    found = demo_keys(keys)
    if not found or is_loopback(host):
        return
    ids = ", ".join(k.id for k in found)
    revoke = " && ".join(f"ragctx keys revoke {k.id}" for k in found)
    raise InvalidInputError(
        f"refusing to serve on {host!r}: the keys file holds the demo key(s) {ids}, whose "
        "plaintext is published in data/keys.sample.toml, so anyone who can reach this address "
        f"could use them. Revoke them (`{revoke}`) and make your own with `ragctx keys add "
        "--tenant T --groups G`, or serve on 127.0.0.1",
        field="host",
        value=host,
    )


def serve(
    *,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Serve POST /v1/context (one process owns the embedded store; see README to scale out)."""
    import uvicorn

    from service.app import create_app
    from service.telemetry import configure_logging
    from service.wiring import load_settings

    settings = load_settings(host=host, port=port)
    log_writer = configure_logging(json_logs=settings.log_json)
    # uvicorn re-raises a SIGTERM it handled once it has shut down; by default that ends the
    # process on the spot and the log lines still queued (its last ones) would be lost. As
    # SystemExit it unwinds through the `finally` below, with the same exit status.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        preflight(settings)
        # One worker: the embedded store is owned by one process. Scale out with a Qdrant
        # server (RAGCTX_QDRANT_URL) and several `ragctx serve` replicas behind a load balancer.
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            workers=1,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=30,
        )
    finally:
        log_writer.stop()  # writes the lines still queued


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


KeysFile = Annotated[Path | None, typer.Option(help="Keys file (default RAGCTX_KEYS_FILE).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _keys_path(keys_file: Path | None) -> Path:
    """``--keys-file``, or the keys file of the settings."""
    from service.wiring import load_settings

    return keys_file if keys_file is not None else load_settings().keys_file


@keys_app.command("add")
def keys_add(
    *,
    tenant: Annotated[str, typer.Option(help="Tenant the key sees.")],
    groups: Annotated[
        list[str] | None, typer.Option(help="Access groups the key grants (repeat or commas).")
    ] = None,
    admin: Annotated[
        bool, typer.Option(help="May run admin ingest jobs, for its own tenant only.")
    ] = False,
    operator: Annotated[
        bool, typer.Option(help="An admin key for every tenant (implies --admin).")
    ] = False,
    review: Annotated[
        bool,
        typer.Option(help="A reviewer key: its tenant's traces, feedback and /review only."),
    ] = False,
    key_id: Annotated[str | None, typer.Option("--id", help="A name for the key.")] = None,
    expires: Annotated[
        str | None,
        typer.Option(help="Expiry: a date (2027-01-01), date-time (UTC) or duration (90d, 12h)."),
    ] = None,
    keys_file: KeysFile = None,
    as_json: AsJson = False,
) -> None:
    """Create a key, store its sha256 in the keys file, and print the key once."""
    from service.auth import add_key, parse_expiry

    path = _keys_path(keys_file)
    group_list = split_values(groups)
    if not group_list and not review:
        raise InvalidInputError(
            "give at least one --groups (e.g. --groups support); a key without groups sees "
            "only its tenant's public documents, so say --groups public for that",
            field="groups",
        )
    when = None if expires is None else parse_expiry(expires)
    grant, key = add_key(
        path,
        tenant=tenant,
        groups=group_list,
        admin=admin,
        key_id=key_id,
        expires=when,
        operator=operator,
        review=review,
    )
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "id": grant.id,
                    "tenant": grant.tenant,
                    "groups": list(grant.groups),
                    "admin": grant.admin,
                    "operator": grant.operator,
                    "review": grant.review,
                    "expires": None if when is None else when.isoformat(),
                    "keys_file": str(path),
                    "key": key,
                }
            )
            + "\n"
        )
        return
    sys.stderr.write(
        f"added key {grant.id!r} (tenant {grant.tenant}, groups {', '.join(grant.groups) or 'none'}"
        f"{', operator' if grant.operator else ', admin' if grant.admin else ''}"
        f"{', reviewer' if grant.review else ''}) to {path}; "
        "only its hash is stored, so copy the key now:\n"
    )
    sys.stdout.write(key + "\n")


@keys_app.command("list")
def keys_list(
    *,
    keys_file: KeysFile = None,
    as_json: AsJson = False,
) -> None:
    """List the keys' ids and grants (never the keys, which are not stored)."""
    from service.auth import load_keys

    path = _keys_path(keys_file)
    grants = sorted(load_keys(path).values(), key=lambda g: g.id)
    rows = [
        {
            "id": g.id,
            "tenant": g.tenant,
            "groups": list(g.groups),
            "admin": g.admin,
            "operator": g.operator,
            "review": g.review,
            "expires": None if g.expires is None else g.expires.isoformat(),
            "expired": g.expired(),
        }
        for g in grants
    ]
    if as_json:
        sys.stdout.write(json.dumps({"keys_file": str(path), "keys": rows}) + "\n")
        return
    for g in grants:
        admin = ("\tadmin" if g.admin else "") + ("\toperator" if g.operator else "")
        admin += "\treviewer" if g.review else ""
        expiry = "" if g.expires is None else f"\texpires {g.expires.isoformat()}"
        expiry += "\tEXPIRED" if g.expired() else ""
        sys.stdout.write(f"{g.id}\t{g.tenant}\t{','.join(g.groups)}{admin}{expiry}\n")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[
        str, typer.Argument(metavar="ID", help="Id of the key (`ragctx keys list`).")
    ],
    *,
    keys_file: KeysFile = None,
    as_json: AsJson = False,
) -> None:
    """Remove a key from the keys file; a running server refuses it from its next request."""
    from service.auth import revoke_key

    path = _keys_path(keys_file)
    grant = revoke_key(path, key_id)
    if as_json:
        sys.stdout.write(json.dumps({"revoked": grant.id, "keys_file": str(path)}) + "\n")
        return
    sys.stderr.write(f"revoked key {grant.id!r} (tenant {grant.tenant}) in {path}\n")
