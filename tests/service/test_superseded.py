"""The ``superseded`` drop reason over real HTTP, on the sample corpus's retention question.

The release notes 4.1 declare ``supersedes: [relnotes-3-8]`` in their front matter (read at
ingest into the session's sample store); the server serves the shipped default policy
(``versions: {mode: prefer_latest}``) beside a flagged and an off variant.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.runtime import Models
from tests.service.conftest import (
    REPO,
    Running,
    auth,
    loader_of,
    make_settings,
    running_server,
    write_keys,
)

QUESTION = "What is the default message retention period?"
SUPERSEDED = (
    "versions.prefer_latest: superseded by relnotes-4-1 (relnotes-4-1 supersedes relnotes-3-8)"
)


@pytest.fixture(scope="module")
def server(
    sample_store_template: Path, tmp_path_factory: pytest.TempPathFactory, models: Models
) -> Iterator[Running]:
    work = tmp_path_factory.mktemp("superseded")
    store = work / "qdrant"
    shutil.copytree(sample_store_template, store)
    write_keys(work / "keys.toml")
    policies = work / "policies"
    policies.mkdir()
    shutil.copy(REPO / "data" / "policies" / "default.yaml", policies / "default.yaml")
    for name, mode in (("flagged", "keep_all_flagged"), ("unversioned", "off")):
        # quoted: YAML 1.1 reads a bare `off` as false
        text = f'name: {name}\nversion: "1"\nversions:\n  mode: "{mode}"\n'
        (policies / f"{name}.yaml").write_text(text, "utf-8")
    with running_server(
        lambda port: make_settings(store, work, port=port), loader_of(models)
    ) as run:
        yield run


def ask(server: Running, **extra: Any) -> dict[str, Any]:
    body = {"query": QUESTION, "budget_tokens": 600, **extra}
    with server.client() as client:
        response = client.post("/v1/context", json=body, headers=auth("acme-support"))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_the_shipped_default_packs_the_current_answer_only(server: Running) -> None:
    answer = ask(server)
    assert answer["policy"]["name"] == "default" and answer["policy"]["version"] == "2"
    packed = [item["doc_id"] for item in answer["items"]]
    assert "relnotes-4-1" in packed and "relnotes-3-8" not in packed
    assert "now 14 days, up from 7 days" in answer["context"]
    assert "retention period is 7 days" not in answer["context"]
    old = [drop for drop in answer["dropped"] if drop["doc_id"] == "relnotes-3-8"]
    assert old, "the retention question retrieves release notes 3.8"
    assert {(drop["reason"], drop["detail"]) for drop in old} == {("superseded", SUPERSEDED)}
    assert all(drop["reason"] != "superseded" for drop in answer["dropped"] if drop not in old)
    [step] = [s for s in answer["trace"]["stages"]["context"]["steps"] if s["step"] == "versions"]
    assert step["count_in"] - step["count_out"] == len(old)
    assert step["notes"] == [
        "mode=prefer_latest",
        "1 document superseded: relnotes-3-8 by relnotes-4-1",
    ]


def test_keep_all_flagged_packs_both_and_flags_the_older(server: Running) -> None:
    answer = ask(server, policy="flagged")
    flags = {item["doc_id"]: item["flags"] for item in answer["items"]}
    assert flags["relnotes-3-8"] == ["superseded_by:relnotes-4-1"]
    assert flags["relnotes-4-1"] == []
    assert 'flags="superseded_by:relnotes-4-1"' in answer["context"]
    assert all(drop["reason"] != "superseded" for drop in answer["dropped"])
    assert answer["tokens"] <= answer["budget_tokens"]


def test_off_packs_both_versions_unflagged(server: Running) -> None:
    answer = ask(server, policy="unversioned")
    packed = {item["doc_id"] for item in answer["items"]}
    assert {"relnotes-3-8", "relnotes-4-1"} <= packed
    assert all("superseded" not in " ".join(item["flags"]) for item in answer["items"])
    assert all(drop["reason"] != "superseded" for drop in answer["dropped"])


def test_a_caller_cannot_name_a_versions_mode_or_an_unknown_policy(server: Running) -> None:
    """The mode lives in a reviewed policy file, never in the request."""
    with server.client() as client:
        response = client.post(
            "/v1/context",
            json={"query": QUESTION, "budget_tokens": 600, "versions": {"mode": "off"}},
            headers=auth("acme-support"),
        )
        assert response.status_code == 422, response.text
        assert "versions" in response.text
        response = client.post(
            "/v1/context",
            json={"query": QUESTION, "budget_tokens": 600, "policy": "prefer_latest"},
            headers=auth("acme-support"),
        )
    assert response.status_code in (400, 404, 422), response.text
    assert "prefer_latest" in response.text
