"""ragctx.client against a real `ragctx serve` (uvicorn on 127.0.0.1, the sample corpus, real
dense model): answers, error bodies, retries of 503 with Retry-After, timeouts."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from core.errors import InvalidInputError
from ragctx.client import (
    ApiError,
    AsyncRagctxClient,
    ConnectionFailedError,
    ContextRequest,
    ContextResponse,
    FiltersIn,
    ItemIn,
    MessageIn,
    RagctxClient,
    RetryPolicy,
    ServerBusyError,
)
from service.runtime import Models
from tests.service.conftest import REPO, Running, key_of, make_settings, running_server

QUESTION = ContextRequest(query="rotate API key grace period", budget_tokens=800)


def test_sync_answer_is_typed_and_matches_the_http_answer(server: Running) -> None:
    with RagctxClient(server.url, api_key=key_of("acme-all")) as client:
        answer = client.context(QUESTION)
    with server.client() as c:
        raw = c.post(
            "/v1/context",
            json={"query": QUESTION.query, "budget_tokens": 800},
            headers={"Authorization": f"Bearer {key_of('acme-all')}"},
        ).json()
    assert answer.context == raw["context"] and answer.tokens <= 800
    assert answer.items[0].doc_id == "acme-runbook-rotate-keys"
    assert answer.citations[0].number == 1 and len(answer.trace.trace_id) == 32


def test_a_conversation_comes_back_as_the_prompt_to_send(server: Running) -> None:
    request = ContextRequest(
        messages=[
            MessageIn(role="system", content="Answer from the evidence."),
            MessageIn(role="user", content="How do I rotate an API key?"),
            MessageIn(role="assistant", content="Create a new key, then revoke the old one."),
            MessageIn(role="user", content="and how long does the old one keep working?"),
        ],
        items=[ItemIn(kind="memory", id="plan", text="The customer is on the Business plan.")],
        budget_tokens=1200,
        model="gpt-4o",
    )
    with RagctxClient(server.url, api_key=key_of("acme-all")) as client:
        answer = client.context(request)
    assert answer.encoding == "o200k_base" and answer.prompt_tokens <= 1200
    assert answer.messages[0] == {"role": "system", "content": "Answer from the evidence."}
    assert answer.messages[-1]["content"] == "and how long does the old one keep working?"
    assert {p.id for p in answer.parts} >= {"messages[3]", "memory:plan"}


def test_async_answer_and_narrowing_filters(server: Running) -> None:
    request = QUESTION.model_copy(update={"filters": FiltersIn(sources=["globex"]), "debug": True})

    async def go() -> tuple[ContextResponse, ContextResponse]:
        async with AsyncRagctxClient(server.url, api_key=key_of("acme-all")) as client:
            return await client.context(QUESTION), await client.context(request)

    plain, filtered = anyio.run(go)
    assert plain.items
    # acme's key asking for globex's source gets nothing: a filter only narrows
    assert filtered.items == []


def test_error_answers_raise_api_error_with_the_body_and_trace_id(server: Running) -> None:
    with RagctxClient(server.url, api_key=key_of("acme-support")) as client:
        with pytest.raises(ApiError, match="groups") as wider:
            client.context(QUESTION.model_copy(update={"groups": ["legal"]}))
        with pytest.raises(ApiError, match="unknown policy 'nope'") as policy:
            client.context(QUESTION.model_copy(update={"policy": "nope"}))
    assert wider.value.status == 403 and wider.value.field == "groups"
    assert policy.value.status == 404 and policy.value.code == "unknown_policy"
    assert policy.value.trace_id is not None and len(policy.value.trace_id) == 32
    with (
        RagctxClient(server.url, api_key="not-a-key") as client,
        pytest.raises(ApiError, match="invalid API key") as bad,
    ):
        client.context(QUESTION)
    assert bad.value.status == 401 and not isinstance(bad.value, ServerBusyError)


def test_a_request_the_model_refuses_never_leaves_the_client() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="tenant"):
        ContextRequest.model_validate({"query": "x", "budget_tokens": 10, "tenant": "globex"})
    with pytest.raises(InvalidInputError, match="api_key is empty"):
        RagctxClient("http://127.0.0.1:9", api_key="")


@pytest.fixture
def loading_server(
    sample_store_template: Path, tmp_path: Path, models: Models
) -> Iterator[tuple[Running, threading.Event]]:
    """A server whose models come in only when the test says: /v1/context answers 503."""
    release = threading.Event()

    def loader(_settings: object) -> Models:
        release.wait(60)
        return models

    store = tmp_path / "qdrant"
    shutil.copytree(sample_store_template, store)
    with running_server(
        lambda port: make_settings(store, tmp_path, port=port), loader, wait_ready=False
    ) as run:
        yield run, release
        release.set()


def test_503_is_retried_after_retry_after_until_the_server_is_ready(
    loading_server: tuple[Running, threading.Event],
) -> None:
    server, release = loading_server
    attempts: list[float] = []

    def count(request: httpx.Request) -> None:
        attempts.append(time.monotonic())

    client = RagctxClient(server.url, api_key=key_of("acme-all"), retry=RetryPolicy(attempts=6))
    client._http.event_hooks["request"] = [count]
    threading.Timer(1.5, release.set).start()
    with client:
        answer = client.context(QUESTION)
    assert answer.items and len(attempts) >= 2
    # the server sends Retry-After: 1, so no retry came sooner than that
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert min(gaps) >= 0.95, gaps


def test_503_retries_run_out_into_server_busy(
    loading_server: tuple[Running, threading.Event],
) -> None:
    server, _ = loading_server
    policy = RetryPolicy(attempts=2, max_wait_s=0.2)
    started = time.monotonic()
    with (
        RagctxClient(server.url, api_key=key_of("acme-all"), retry=policy) as client,
        pytest.raises(ServerBusyError, match="models are still loading") as busy,
    ):
        client.context(QUESTION)
    assert busy.value.status == 503 and busy.value.retry_after == 1.0
    # max_wait_s caps a longer Retry-After
    assert time.monotonic() - started < 5


def test_a_server_that_never_answers_times_out() -> None:
    # a real socket that accepts connections and never answers
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with (
            RagctxClient(url, api_key="k", timeout=0.3) as client,
            pytest.raises(ConnectionFailedError, match="did not answer in time"),
        ):
            client.context(QUESTION)
    finally:
        sock.close()


def test_a_refused_connection_is_retried_then_named() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    policy = RetryPolicy(attempts=3, backoff_s=0.01, max_wait_s=0.02)
    with (
        RagctxClient(f"http://127.0.0.1:{port}", api_key="k", retry=policy) as client,
        pytest.raises(ConnectionFailedError, match="is `ragctx serve` running"),
    ):
        client.context(QUESTION)


def test_the_client_imports_without_torch_or_qdrant() -> None:
    code = (
        "import sys, ragctx.client; "
        "heavy = {'torch', 'qdrant_edge', 'qdrant_client', 'sentence_transformers', 'fastapi'}; "
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
