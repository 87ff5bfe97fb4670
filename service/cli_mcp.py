"""``ragctx mcp``: the MCP server on stdio, for an agent host that starts it as a subprocess.

The process acts as one API key, ``RAGCTX_API_KEY`` in its environment (the host's
configuration sets it): the key is checked against the keys file before anything else, and
its tenant and groups bound every call. The process owns the embedded store while it runs, like
``ragctx serve``; while a server holds the store, point the host at that server's ``/mcp``.
Nothing but MCP messages is written to stdout; logs go to stderr.
"""

from __future__ import annotations

from service.errors import AuthError


def mcp() -> None:
    """Serve MCP tools (get_context, search, list_collections, describe_policy) on stdio."""
    from service.cli_common import setup_logging
    from service.mcp import serve_stdio
    from service.telemetry import build_telemetry
    from service.wiring import build_runtime, key_ring, load_models, load_settings, opened_store

    setup_logging(False)
    settings = load_settings()
    if settings.api_key is None:
        raise AuthError(
            "RAGCTX_API_KEY is not set; `ragctx mcp` acts as one API key: set it in the MCP "
            "host's server configuration (`env`), e.g. a key from `ragctx keys add`"
        )
    keys = key_ring(settings)
    grant = keys.verify(settings.api_key.get_secret_value())
    if grant is None:
        raise AuthError(
            f"RAGCTX_API_KEY is not a key of the keys file {str(settings.keys_file)!r}; check "
            "the key or create one with `ragctx keys add`"
        )
    telemetry = build_telemetry(settings.otel_exporter)
    with opened_store(settings, owner="ragctx mcp") as store:
        runtime = build_runtime(
            settings,
            store=store,
            telemetry=telemetry,
            keys=keys,
            models=load_models(settings),
            traces=False,
        )
        try:
            serve_stdio(runtime, grant)
        finally:
            telemetry.shutdown()
