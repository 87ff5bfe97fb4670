"""Integration fixtures: the service test fixtures (sample corpus in a real Edge store, test
keys and policies, a real uvicorn server on 127.0.0.1), reused as they are."""

from __future__ import annotations

from tests.service.conftest import models, sample_store_template, server

__all__ = ["models", "sample_store_template", "server"]
