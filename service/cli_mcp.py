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
    from service.auth import KeyRing
    from service.cli import _setup_logging, load_settings, open_configured_store
    from service.mcp import serve_stdio
    from service.runtime import Gate, PolicyBook, Runtime, load_models
    from service.telemetry import build_telemetry

    _setup_logging(False)
    settings = load_settings()
    if settings.api_key is None:
        raise AuthError(
            "RAGCTX_API_KEY is not set; `ragctx mcp` acts as one API key: set it in the MCP "
            "host's server configuration (`env`), e.g. a key from `ragctx keys add`"
        )
    keys = KeyRing(settings.keys_file)
    grant = keys.verify(settings.api_key.get_secret_value())
    if grant is None:
        raise AuthError(
            f"RAGCTX_API_KEY is not a key of the keys file {str(settings.keys_file)!r}; check "
            "the key or create one with `ragctx keys add`"
        )
    telemetry = build_telemetry(settings.otel_exporter)
    policies = PolicyBook(settings.policy_dir)
    policies.get(settings.default_policy)  # the default must exist, as for `ragctx serve`
    with open_configured_store(settings, owner="ragctx mcp") as store:
        runtime = Runtime(
            settings=settings,
            telemetry=telemetry,
            store=store,
            keys=keys,
            policies=policies,
            gate=Gate(settings.max_concurrency),
            models=load_models(settings),
        )
        try:
            serve_stdio(runtime, grant)
        finally:
            telemetry.shutdown()
