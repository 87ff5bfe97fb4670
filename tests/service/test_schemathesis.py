"""Property-based requests generated from the OpenAPI schema: no request ever gets a 500.

Schemathesis generates valid and invalid requests for every operation; they are sent with no
key, a tenant key and an admin key. Admin ingest bodies get their source paths moved under a
folder that does not exist, so a generated path like "/" can never start a real job.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.service.conftest import Running, auth

KEYS: list[str | None] = [None, "acme-support", "admin"]


def _defuse(case: Any) -> None:
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("sources"), list):
        for src in body["sources"]:
            if isinstance(src, dict) and "path" in src:
                src["path"] = f"/nonexistent-ragctx-fuzz/{src['path']}"


def test_no_generated_request_gets_a_server_error(server: Running) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)

            @settings(
                max_examples=12,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def check(case: Any) -> None:
                nonlocal count
                _defuse(case)
                for key in KEYS:
                    headers = {**(case.headers or {}), **(auth(key) if key else {})}
                    response = case.call(base_url=server.url, headers=headers, timeout=60)
                    count += 1
                    if response.status_code >= 500 and response.status_code != 503:
                        failures.append(
                            f"{case.method} {case.path} ({key}) -> {response.status_code}: "
                            f"{response.text[:300]} body={case.body!r:.300}"
                        )

            try:
                check()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to break in GET /healthz
    assert count > 50
    assert not failures, "\n".join(failures[:10])
