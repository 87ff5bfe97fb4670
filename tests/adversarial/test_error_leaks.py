"""Answers never name what the caller may not know, over real HTTP (uvicorn on 127.0.0.1).

``/readyz`` tells anyone only ready or not; the details (models, policies, collections, the
keys file's error) need an admin key. An unknown collection or policy is answered without the
list of the server's collections or policies. A policy pinning another tenant's document does
not name it to this tenant's key.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.service.conftest import (  # noqa: F401 (fixtures, used by name)
    Running,
    auth,
    models,
    sample_store_template,
    server,
)

Q = {"query": "how do I rotate keys", "budget_tokens": 400}


def post(srv: Running, body: dict[str, Any], key: str = "acme-support") -> Any:
    with srv.client() as c:
        return c.post("/v1/context", json=body, headers=auth(key))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        auth("acme-support"),
        auth("globex-all"),
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
    ],
    ids=["none", "tenant", "other-tenant", "invalid", "basic"],
)
def test_readyz_without_an_admin_key_says_only_ready(
    server: Running,  # noqa: F811
    headers: dict[str, str],
) -> None:
    with server.client() as c:
        r = c.get("/readyz", headers=headers)
    assert r.status_code == 200 and r.json() == {"status": "ready"}


def test_readyz_with_an_admin_key_has_the_details(server: Running) -> None:  # noqa: F811
    with server.client() as c:
        body = c.get("/readyz", headers=auth("admin")).json()
    assert body["status"] == "ready" and body["ready"] is True and body["models"] == "loaded"
    assert "docs" in body["collections"] and "pinned" in body["policies"]
    assert body["keys_error"] is None


def test_an_unknown_collection_is_not_answered_with_the_stores_collections(
    server: Running,  # noqa: F811
) -> None:
    r = post(server, {**Q, "collection": "nope"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_collection"
    message = r.json()["error"]["message"]
    assert "'nope'" in message
    assert not re.search(r"\bdocs\b", message), message  # the store's collection


def test_an_unknown_policy_is_not_answered_with_the_servers_policies(
    server: Running,  # noqa: F811
) -> None:
    r = post(server, {**Q, "policy": "nope"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_policy"
    message = r.json()["error"]["message"]
    assert "'nope'" in message and "pinned" not in message, message


def test_a_policy_pinning_another_tenants_document_does_not_name_it(
    server: Running,  # noqa: F811
) -> None:
    for key, other in (("acme-all", "globex"), ("globex-all", "acme")):
        r = post(server, {**Q, "policy": "pinned", "debug": True}, key=key)
        assert r.status_code == 200, r.text
        assert f"{other}-runbook" not in r.text, (key, r.text)
