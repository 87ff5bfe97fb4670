"""Tenant isolation over real HTTP: a key never gets another tenant's chunk, on either leg.

Two tenants hold near-identical runbooks ("rotating API keys": acme_live_ vs gx_live_). Every
query (words that hit BM25, paraphrases that hit the dense leg) runs with every filter the body
can express, with debug on and top_k at its maximum so each leg's full hit list comes back;
every chunk id in items, drops and every stage's list must belong to the key's tenant and
groups.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from core.types import PUBLIC_GROUP
from index.edge import EdgeStore
from tests.service.conftest import KEYS, Running, auth

LEXICAL = [
    "acme_live_ key prefix",
    "gx_live_ gx_test_ sandbox keys",
    "rotate API key grace period relayctl keys rotate",
    "72-hour grace period Vault",
    "24-hour grace period 90 days",
]
PARAPHRASES = [
    "how long does an old credential keep working after I create a replacement?",
    "what do we do when a secret may have leaked?",
    "moving traffic to a backup region when the primary is down",
    "negotiating the renewal of our master services agreement",
]
FILTERS: list[dict[str, Any] | None] = [
    None,
    {"sources": ["acme"]},
    {"sources": ["globex"]},
    {"sources": ["acme", "globex"], "tags": ["runbook", "security", "legal"]},
    {"exclude_doc_ids": ["acme-runbook-rotate-keys", "globex-runbook-rotate-keys"]},
    {
        "exclude_sources": ["acme"],
        "updated_after": "2020-01-01T00:00:00Z",
        "updated_before": "2030-01-01T00:00:00Z",
    },
]
MARKER = {"acme": "acme_live_", "globex": "gx_live_"}


@pytest.fixture(scope="module")
def payloads(server: Running) -> dict[str, dict[str, Any]]:
    """Every chunk id in the store with its tenant and groups (read before the server opened)."""
    # The server owns the store; read a copy of its folder instead of opening it twice.
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy"
        shutil.copytree(
            server.settings.qdrant_path,
            copy,
            ignore=shutil.ignore_patterns(".ragctx.lock", "server.json"),
        )
        store = EdgeStore(copy)
        try:
            out = {p.id: p.payload for p in store.scroll("docs", fields=["tenant", "groups"])}
        finally:
            store.close()
    assert {p["tenant"] for p in out.values()} == {"acme", "globex"}
    return out


def visible(payload: dict[str, Any], tenant: str, groups: set[str]) -> bool:
    return payload["tenant"] == tenant and bool(set(payload["groups"]) & (groups | {PUBLIC_GROUP}))


def chunk_ids(body: dict[str, Any]) -> set[str]:
    ids = {c for i in body["items"] for c in i["chunk_ids"]} | {
        d["chunk_id"] for d in body["dropped"]
    }
    for stage in body["trace"]["stages"].values():
        ids |= {c["chunk_id"] for c in stage.get("candidates", [])}
    return ids


@pytest.mark.parametrize("key", ["acme-all", "globex-all", "acme-support"])
def test_a_key_never_sees_another_tenants_chunk_on_any_query_or_filter(
    server: Running, payloads: dict[str, dict[str, Any]], key: str
) -> None:
    tenant = KEYS[key]["tenant"]
    other = "globex" if tenant == "acme" else "acme"
    groups = set(KEYS[key]["groups"])
    seen_own = 0
    with server.client() as c:
        for query, flt, policy in itertools.product(
            LEXICAL + PARAPHRASES, FILTERS, ["default", "pinned"]
        ):
            if policy == "pinned" and flt not in (None, FILTERS[3]):
                continue  # the pinned leg: enough with and without narrowing
            body: dict[str, Any] = {
                "query": query,
                "budget_tokens": 4000,
                "top_k": 1000,
                "debug": True,
                "policy": policy,
            }
            if flt is not None:
                body["filters"] = flt
            r = c.post("/v1/context", json=body, headers=auth(key))
            assert r.status_code == 200, (query, flt, r.text)
            answer = r.json()
            ids = chunk_ids(answer)
            leaked = [i for i in ids if not visible(payloads[i], tenant, groups)]
            assert not leaked, (key, query, flt, policy, [payloads[i] for i in leaked])
            assert MARKER[other] not in answer["context"], (key, query, flt)
            seen_own += len(ids)
    assert seen_own > 0, "the queries must hit the key's own tenant"


def test_each_tenant_gets_its_own_runbook_for_the_same_question(server: Running) -> None:
    q = {"query": "rotate API key grace period", "budget_tokens": 1500}
    with server.client() as c:
        acme = c.post("/v1/context", json=q, headers=auth("acme-all")).json()
        globex = c.post("/v1/context", json=q, headers=auth("globex-all")).json()
    assert "acme-runbook-rotate-keys" in {i["doc_id"] for i in acme["items"]}
    assert "globex-runbook-rotate-keys" in {i["doc_id"] for i in globex["items"]}
    assert "24-hour grace period" in acme["context"] and "72-hour" not in acme["context"]
    assert "72-hour grace period" in globex["context"] and "24-hour" not in globex["context"]


def test_the_pinned_leg_fetches_only_the_keys_own_pins(server: Running) -> None:
    q = {"query": "invoices", "budget_tokens": 3000, "policy": "pinned"}
    with server.client() as c:
        acme = c.post("/v1/context", json=q, headers=auth("acme-all")).json()
        narrowed = c.post("/v1/context", json={**q, "groups": []}, headers=auth("acme-all")).json()
    pinned = {i["doc_id"] for i in acme["items"] if i["pinned"]}
    assert pinned == {"acme-runbook-rotate-keys"}
    # narrowed to public only: the support/engineering runbook is not fetched at all
    assert not any(i["pinned"] for i in narrowed["items"])
